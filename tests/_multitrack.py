"""A video such as real releases carry: several audio tracks with languages and titles, SubRip
subtitles, an attachment, chapters and a title (built with PyAV, for the tests of what a rewrite
of a video's sound keeps)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from provenance.core.audio import Audio

SUBTITLES = """1
00:00:00,500 --> 00:00:01,500
Guten Tag

2
00:00:02,000 --> 00:00:02,800
Auf Wiedersehen
"""

CHAPTERS = [("Opening", 0.0, 1.5), ("Ending", 1.5, 3.0)]
"""(title, start s, end s) of the chapters written."""


@dataclass(frozen=True)
class Track:
    audio: Audio
    language: str
    title: str
    default: bool
    codec: str = "aac"
    """FFmpeg encoder: aac, libmp3lame, libopus, pcm_s16le, pcm_s24le, flac ..."""
    kbps: int | None = None


def multitrack_video(path: Path, tracks: list[Track], *, seconds: float, subtitles: bool = True,
                     attachment: bool = True) -> Path:
    """Write ``path`` (MP4, MOV or Matroska by its extension): ``seconds`` of 25 fps H.264 picture,
    the ``tracks`` (AAC unless they say), and, in Matroska, SubRip subtitles (German) and a text attachment; both
    containers get the chapters of :data:`CHAPTERS` and the title "A film"."""
    mkv = path.suffix == ".mkv"
    srt = None
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 160, 96, "yuv420p"
        audio_streams = []
        for track in tracks:
            stream = out.add_stream(track.codec, rate=track.audio.sample_rate, layout="stereo")
            if track.kbps:
                stream.bit_rate = track.kbps * 1000
            if track.codec == "flac":
                stream.format = "s32"  # 24-bit FLAC
            stream.metadata["language"] = track.language
            stream.metadata["title"] = track.title
            stream.disposition = av.stream.Disposition.default if track.default else av.stream.Disposition(0)
            audio_streams.append(stream)
        if mkv and subtitles:
            srt_path = path.with_suffix(".srt")
            srt_path.write_text(SUBTITLES)
            srt = av.open(str(srt_path))
            sub = out.add_stream_from_template(srt.streams[0])
            sub.metadata["language"] = "deu"
        if mkv and attachment:
            out.add_attachment("notes.txt", "text/plain", b"credits: the test suite")
        out.metadata["title"] = "A film"
        out.set_chapters([{"id": i + 1, "start": round(a * 1000), "end": round(b * 1000),
                           "time_base": Fraction(1, 1000), "metadata": {"title": t}}
                          for i, (t, a, b) in enumerate(CHAPTERS)])
        frames = round(seconds * 25)
        for i in range(frames):
            picture = np.zeros((96, 160, 3), np.uint8)
            picture[30:50, (i * 4) % 140:(i * 4) % 140 + 20] = 255
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if srt is not None:
            for packet in srt.demux(srt.streams[0]):
                if packet.size:
                    packet.stream = sub
                    out.mux(packet)
            srt.close()
        for stream, track in zip(audio_streams, tracks):
            x = np.ascontiguousarray(np.broadcast_to(track.audio.samples, (2, track.audio.frames))
                                     if track.audio.channels == 1 else track.audio.samples)
            for j in range(0, x.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, j:j + 1024]), format="fltp",
                                                   layout="stereo")
                frame.sample_rate, frame.pts = track.audio.sample_rate, j
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return path


def describe(path: Path) -> dict:
    """What a rewrite must keep: the title, the chapters (title, start s, end s), and per stream its
    type, codec, language, title and default flag (stream order kept)."""
    with av.open(str(path)) as c:
        chapters = [(ch["metadata"].get("title"), round(float(ch["start"] * ch["time_base"]), 3),
                     round(float(ch["end"] * ch["time_base"]), 3)) for ch in c.chapters()]
        streams = []
        for s in c.streams:
            tags = {k.lower(): v for k, v in s.metadata.items()}
            streams.append({
                "type": s.type,
                "codec": s.codec_context.name if s.codec_context is not None else None,
                "language": tags.get("language"),
                "title": tags.get("title", tags.get("name")),
                "filename": tags.get("filename"),
                "default": bool(s.disposition & av.stream.Disposition.default),
            })
        return {"title": c.metadata.get("title"), "chapters": chapters, "streams": streams}


def subtitle_packets(path: Path) -> list[tuple[float, bytes]]:
    """(time s, text bytes) of every subtitle packet."""
    with av.open(str(path)) as c:
        if not c.streams.subtitles:
            return []  # demux() of no streams would demux them all
        return [(round(float(p.pts * p.time_base), 3), bytes(p))
                for p in c.demux(c.streams.subtitles) if p.size]
