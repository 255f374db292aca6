"""Video: replacing or rewriting the audio of a video file while copying everything else.

The picture, subtitle, data and attachment streams are copied packet for packet, with the
container's tags (title ...), each stream's tags (language, title) and flags (default, forced),
and the chapters: only the audio is re-encoded."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import av
import numpy as np

from provenance.core.atomic import atomic_path
from provenance.core.audio import Audio
from provenance.core.errors import FoleySealError, FormatError, InputError
from provenance.core.io.common import (
    _AV_LOSSLESS_CODED,
    _AV_SUBTYPES,
    _MAX_KBPS,
    _VIDEO_MUXERS,
    WRITE_FORMATS,
    PathLike,
    _as_block,
    _check_file,
    _check_finite,
    _check_params,
    _output_mode,
    _wrapped,
    timeline_start_s,
)
from provenance.core.io.read import _is_moving_picture, _rechunk, audio_info, audio_track_count, main_audio_stream
from provenance.core.io.write import _AvAudioEncoder, _check_codec_channels, _validate_audio, lossless_codec


_WEBM_VIDEO_CODECS = {"vp8", "vp9", "av1", "libdav1d", "libvpx", "libvpx-vp9"}


def replace_audio_track(video_in: PathLike, audio: Audio, video_out: PathLike, *,
                        codec: str | None = None, bitrate_kbps: float | None = 192,
                        start_s: float | None = None) -> None:
    """Write ``video_out``: ``video_in`` with ``audio`` encoded as its only audio track; the old
    audio tracks are dropped. Video, subtitle, data and attachment streams are copied packet
    for packet (no re-encode), with the tags and chapters (see the module's docstring; a data or
    attachment stream the output container cannot hold is left out).

    The output container follows the extension of ``video_out`` (mp4, m4v, mov, mkv, webm).
    ``codec`` is ``aac`` (default for MP4/MOV/MKV; FFmpeg's fast coder), ``opus`` (default, and the
    only choice, for WebM; MP4, MKV), ``mp3`` (MP4, MKV), uncompressed PCM, ``pcm_16``,
    ``pcm_24`` or ``float`` (32-bit float; MP4, MOV, MKV), or lossless ``flac`` (MP4, MKV) or
    ``alac`` (MP4, MOV, MKV), both at 24 bits; ``bitrate_kbps`` is the bitrate of the lossy codecs.

    ``start_s`` is the time (s, on the file's timeline: after its earliest stream's start, as
    :func:`~provenance.core.io.timeline_start_s` counts) at which the first sample plays. By
    default it is the start of the audio track being replaced (0.0 if there is none), so
    audio read with :func:`read_audio` from ``video_in`` and written back stays in sync even when
    the track starts late (real files often start it tens of ms after time 0). Pass
    :func:`video_start_s` for audio made against the picture, e.g. a generated soundtrack whose
    first sample goes with the first frame. The new track always starts at time 0, with
    ``start_s`` of leading silence: MP4/MOV cannot both delay an AAC track and trim its encoder
    priming, so silence is the portable way. The output's timeline starts at 0: a file whose
    streams start later (an MPEG-TS at 1.4 s, a clip cut from a recording at 3600 s) has every
    copied stream moved back by that start, as FFmpeg does, so no hour of silence comes first.

    Written atomically. Raises FormatError if ``video_in`` has no video stream or the container
    cannot hold the streams. :func:`replace_audio_track_stream` does the same with the audio
    given block by block, for tracks of any length in bounded memory.
    """
    video_in, video_out = Path(video_in), Path(video_out)
    _check_file(video_in)
    _validate_audio(audio, video_out)
    x, step = audio.samples, _feed_frames(audio.sample_rate)
    blocks = (x[:, i:i + step] for i in range(0, audio.frames, step))
    _check_start(start_s, video_out)
    _write_video(video_in, video_out, [_NewTrack(blocks, audio.sample_rate, audio.channels, start_s)],
                 codec=codec, bitrate_kbps=bitrate_kbps)


def replace_audio_track_stream(video_in: PathLike, blocks: Iterable[np.ndarray | Audio],
                               video_out: PathLike, *, sample_rate: int, channels: int,
                               codec: str | None = None, bitrate_kbps: float | None = 192,
                               start_s: float | None = None) -> None:
    """:func:`replace_audio_track` with the new audio given as consecutive ``blocks`` of float
    samples ``(channels, frames)`` (or :class:`Audio` at ``sample_rate``), of any sizes, instead
    of one :class:`Audio`: each block is encoded and muxed as the video packets reach its time
    and then dropped, so memory stays bounded at any length (the blocks are pulled about one
    second of the timeline ahead of the video packets copied).

    Same container, codec, ``start_s`` and atomic-write rules. The blocks are checked as they
    arrive: a wrong shape or rate, NaN/Inf samples, or no samples at all raise :class:`InputError`
    naming ``video_out``, and what the iterator itself raises propagates unchanged; either way
    ``video_out`` is left as it was and no temporary file remains.
    """
    video_in, video_out = Path(video_in), Path(video_out)
    _check_file(video_in)
    _check_params(sample_rate, channels, video_out)
    _check_start(start_s, video_out)
    checked = _checked_blocks(blocks, int(sample_rate), int(channels), video_out)
    _write_checked(video_in, video_out, [_NewTrack(checked, int(sample_rate), int(channels), start_s)],
                   codec=codec, bitrate_kbps=bitrate_kbps)


def rewrite_audio_tracks_stream(video_in: PathLike, tracks: Sequence[Iterable[np.ndarray | Audio]],
                                video_out: PathLike, *, codec: str | None = None,
                                bitrate_kbps: float | None = 192) -> None:
    """Write ``video_out``: ``video_in`` with each of its audio tracks re-encoded from new samples,
    ``tracks[i]`` (blocks as in :func:`replace_audio_track_stream`) for its ``i``-th audio stream
    (:func:`~provenance.core.io.audio_track_count`), each at that stream's rate, channel count and
    start time on the timeline, keeping its tags (language, title) and flags (default). Everything
    else is copied as by :func:`replace_audio_track`: an edit of a video's sound (a watermark, a
    loudness fix) that loses no language, commentary or subtitle track.

    Without ``codec``, each track keeps its kind of coding where the container holds it: a
    FLAC or ALAC track stays FLAC or ALAC, at 24 bits (FLAC into MOV, which holds no FLAC: ALAC);
    another lossless one (PCM, WavPack ...) is written as PCM of its depth (16 bits, 24 bits, or
    float), so nothing is lost to a lossy codec; AAC, MP3 and Opus stay AAC, MP3 and Opus, at
    ``bitrate_kbps`` or the track's own bitrate if higher; anything else, or what the container
    cannot hold, gets its default (AAC; Opus in WebM). Same atomic-write rules; every track's
    blocks are checked as they arrive (InputError naming ``video_out`` and the track).
    """
    video_in, video_out = Path(video_in), Path(video_out)
    _check_file(video_in)
    count = audio_track_count(video_in)
    if len(tracks) != count:
        raise InputError(f"{video_in.name} has {count} audio track(s), and {len(tracks)} were given",
                         path=video_out)
    new = []
    for i, blocks in enumerate(tracks):
        info = audio_info(video_in, track=i)
        where = f"{video_out} (audio track {i})"
        _check_params(info.sample_rate, info.channels, where)
        checked = _checked_blocks(blocks, info.sample_rate, info.channels, where)
        new.append(_NewTrack(checked, info.sample_rate, info.channels, None, source=i))
    _write_checked(video_in, video_out, new, codec=codec, bitrate_kbps=bitrate_kbps)


@dataclass
class _NewTrack:
    """An audio track to encode into the output."""

    blocks: Iterable[np.ndarray]
    """float32 ``(channels, n)`` blocks, already checked."""
    sample_rate: int
    """Hz."""
    channels: int
    start_s: float | None
    """Where its first sample plays on the timeline (s); None: where the audio it replaces
    started (the ``source`` stream's start, or the main audio stream's; 0.0 without one)."""
    source: int | None = None
    """The position, among the input's audio streams, of the stream it re-encodes (its tags,
    flags and place are kept); None for new audio, which replaces every audio stream."""


def _check_start(start_s: float | None, path: Path) -> None:
    if start_s is not None and not (math.isfinite(start_s) and start_s >= 0):
        raise InputError(f"start_s must be a finite time >= 0 s, got {start_s}", path=path)


def _write_checked(video_in: Path, video_out: Path, tracks: list[_NewTrack], *,
                   codec: str | None, bitrate_kbps: float | None) -> None:
    """:func:`_write_video` for blocks from the caller's iterators: what those raise propagates
    unchanged (not as a fault of the output file)."""
    try:
        _write_video(video_in, video_out, tracks, codec=codec, bitrate_kbps=bitrate_kbps)
    except _BlockSourceError as failed:
        raise failed.error from None


class _BlockSourceError(Exception):
    """Carries an exception raised by the caller's block iterator past :func:`_wrapped`, which
    would report it as a fault of the output file."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _checked_blocks(blocks: Iterable[np.ndarray | Audio], sample_rate: int, channels: int,
                    path: Path | str) -> Iterator[np.ndarray]:
    """The caller's blocks as float32 ``(channels, n)``, each checked; InputError if none holds a sample."""
    source = iter(blocks)
    position = 0
    while True:
        try:
            data = next(source)
        except StopIteration:
            break
        except FoleySealError:
            raise
        except Exception as exc:
            raise _BlockSourceError(exc) from exc
        block = _as_block(data, channels, sample_rate, path)
        _check_finite(block, path, position, sample_rate)
        position += block.shape[1]
        if block.shape[1]:
            yield block
    if position == 0:
        raise InputError("no audio samples were given (zero length)", path=path)


def _feed_frames(sample_rate: int) -> int:
    """Frames handed to the encoder at a time: a quarter of a second."""
    return max(1, sample_rate // 4)


def _write_video(video_in: Path, video_out: Path, tracks: list[_NewTrack], *, codec: str | None,
                 bitrate_kbps: float | None) -> None:
    """The checks and the atomic write shared by the public writers; ``tracks`` are the new
    audio, already validated."""
    ext = video_out.suffix.lower().lstrip(".")
    if ext not in _VIDEO_MUXERS:
        raise FormatError(f"cannot write video with extension {video_out.suffix!r}; supported: "
                          f"{', '.join(sorted(_VIDEO_MUXERS))}", path=video_out)
    muxer, format_key = _VIDEO_MUXERS[ext]
    allowed = WRITE_FORMATS[format_key].subtypes
    if codec is not None and codec.upper() not in allowed:
        raise FormatError(f"a {ext} file cannot carry {codec.upper()} audio; use "
                          f"{' or '.join(s.lower() for s in allowed)}", path=video_out)
    with _wrapped(video_in, "read the video"), av.open(str(video_in)) as src:
        plan = _stream_plan(src, muxer, video_in, video_out)
        codings = [_coding(src, t, codec, allowed, bitrate_kbps) for t in tracks]
        for track, (subtype, _) in zip(tracks, codings):
            _check_codec_channels(subtype, track.channels, video_out)
        starts = [_start_frame(src, t) for t in tracks]
        with atomic_path(video_out, mode=_output_mode()) as tmp, \
                _wrapped(video_out, f"write the {ext} file"), \
                av.open(str(tmp), "w", format=muxer) as dst:
            _remux(src, plan, dst, tracks, starts, codings)


_LOSSLESS_CODECS = frozenset({"flac", "alac", "wavpack", "tta", "truehd", "mlp", "ape", "mp4als"})
"""FFmpeg decoders of lossless audio (besides ``pcm_*``)."""
_PCM_BY_SAMPLE_FORMAT = {"u8": "PCM_16", "u8p": "PCM_16", "s16": "PCM_16", "s16p": "PCM_16",
                         "s32": "PCM_24", "s32p": "PCM_24", "s64": "PCM_24", "s64p": "PCM_24",
                         "flt": "FLOAT", "fltp": "FLOAT", "dbl": "FLOAT", "dblp": "FLOAT"}
"""The PCM that holds a lossless track decoded to each sample format (24-bit and 32-bit integer
audio both decode to s32; 24 bits keep 144 dB)."""


def _coding(src: av.container.InputContainer, track: _NewTrack, codec: str | None,
            allowed: tuple[str, ...], bitrate_kbps: float | None) -> tuple[str, float | None]:
    """The codec (subtype) and bitrate (kbps) ``track`` is written with (see
    :func:`rewrite_audio_tracks_stream`)."""
    if codec is not None or track.source is None:
        return (codec or allowed[0]).upper(), bitrate_kbps
    ctx = src.streams.audio[track.source].codec_context
    family = _AV_SUBTYPES.get(ctx.name)
    if family in _AV_LOSSLESS_CODED and (coded := lossless_codec(family, allowed)) is not None:
        return coded, None
    if ctx.name.startswith("pcm_") or ctx.name in _LOSSLESS_CODECS:
        pcm = _PCM_BY_SAMPLE_FORMAT.get(ctx.format.name if ctx.format is not None else "", "PCM_24")
        return (pcm if pcm in allowed else allowed[0]), None
    subtype = family if family in allowed else allowed[0]
    own_kbps = (ctx.bit_rate or 0) / 1000
    kbps = max(bitrate_kbps or 0, own_kbps if subtype == family else 0) or None
    if kbps is not None and subtype in _MAX_KBPS:
        kbps = min(kbps, _MAX_KBPS[subtype])
    return subtype, kbps


def check_video_output(video_in: PathLike, video_out: PathLike) -> None:
    """Raise :class:`FormatError` unless a copy of ``video_in`` with new audio can be written to
    ``video_out`` (the writers' checks, without writing): a video container by extension that can
    hold ``video_in``'s video streams as they are, and its subtitles as they are or converted to
    its text format. For a caller with work to do before writing (a generator), so that a wrong
    output name fails first."""
    video_in, video_out = Path(video_in), Path(video_out)
    _check_file(video_in)
    ext = video_out.suffix.lower().lstrip(".")
    if ext not in _VIDEO_MUXERS:
        raise FormatError(f"cannot write video with extension {video_out.suffix!r}; supported: "
                          f"{', '.join(sorted(_VIDEO_MUXERS))}", path=video_out)
    with _wrapped(video_in, "read the video"), av.open(str(video_in)) as src:
        _stream_plan(src, _VIDEO_MUXERS[ext][0], video_in, video_out)


@dataclass(frozen=True)
class _StreamPlan:
    """What becomes of the input's streams other than its audio."""

    copied: frozenset[int]
    """Indexes of the streams copied packet for packet."""
    converted: dict[int, str]
    """Text subtitle streams the output container holds in another format: index -> encoder."""


_TEXT_SUBTITLES = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"})
"""Text subtitle codecs: converted between formats as text and timing, where a container needs it."""
_TEXT_SUBTITLE_ENCODERS = {"mp4": "mov_text", "mov": "mov_text", "webm": "webvtt", "matroska": "subrip"}
"""The text subtitle format each muxer holds."""


def _stream_plan(src: av.container.InputContainer, muxer: str, video_in: Path, video_out: Path) -> _StreamPlan:
    """The streams of ``src`` other than audio that go into a ``muxer`` file: its video streams
    and subtitles, copied as they are, text subtitles converted where the container needs another
    text format (SubRip into MP4 as MP4 text), FormatError naming the file to write instead when
    the muxer cannot hold them (bitmap subtitles, H.264 in WebM); and the data, attachment and
    cover-art streams it can hold."""
    ext = video_out.suffix.lower().lstrip(".")
    videos = [s for s in src.streams.video if _is_moving_picture(s)]
    if not videos:
        raise FormatError("contains no video stream", path=video_in)
    subtitles = list(src.streams.subtitles)
    unknown = [f"{s.type} stream {s.index}" for s in [*videos, *subtitles] if s.codec_context is None]
    if unknown:
        # a stream is copied as it is, and FFmpeg cannot name what this one holds
        verb = "is" if len(unknown) == 1 else "are"
        raise FormatError(f"{' and '.join(unknown)} {verb} in a codec FFmpeg does not know (damaged or "
                          f"unsupported data) and cannot be copied", path=video_in)
    foreign = sorted({s.codec_context.name for s in videos} - _WEBM_VIDEO_CODECS)
    if muxer == "webm" and foreign:
        # copied packets cannot change codec; say so before anything is written
        raise FormatError(f"WebM holds VP8, VP9 or AV1 video only, and {video_in.name} is "
                          f"{', '.join(foreign)}; write .mkv, .mp4 or .mov instead", path=video_out)
    _check_video_fits(videos, muxer, ext, video_in, video_out)
    converted = _subtitle_conversions(videos, subtitles, muxer, ext, video_in, video_out)
    extras = [s for s in src.streams if _is_extra(s) and not (_is_timecode(s) and muxer in _TIMECODE_MUXERS)
              and _takes(muxer, [*videos, s])]
    copied = {s.index for s in [*videos, *subtitles, *extras]} - set(converted)
    return _StreamPlan(frozenset(copied), converted)


def _is_extra(stream: av.stream.Stream) -> bool:
    """Data and attachment streams, and attached pictures (cover art): copied where the output
    container can hold them. (An MP4's chapter titles are a data stream without a codec: the
    muxer writes them again from the chapters, and the stream itself is not copied.)"""
    if stream.type in ("data", "attachment"):
        return True
    return stream.type == "video" and not _is_moving_picture(stream)


_TIMECODE_MUXERS = frozenset({"mov", "mp4"})
"""Muxers that write a QuickTime timecode track (``tmcd``) of their own from the video stream's
``timecode`` tag, and cannot take one copied (FFmpeg: "avg_frame_rate not set for tmcd track")."""


def _is_timecode(stream: av.stream.Stream) -> bool:
    """A QuickTime timecode track: a data stream FFmpeg reads with its start as a ``timecode`` tag
    (in nearly every camera's and editor's MOV)."""
    return stream.type == "data" and "timecode" in (stream.metadata or {})


def _timecode(src: av.container.InputContainer) -> str | None:
    """The start timecode of ``src``'s timecode track (``HH:MM:SS:FF``), or None without one."""
    return next((s.metadata["timecode"] for s in src.streams if _is_timecode(s)), None)


def _start_frame(src: av.container.InputContainer, track: _NewTrack) -> int:
    """Frames of silence before ``track``'s first sample on the new track's timeline."""
    start_s = track.start_s
    if start_s is None:
        stream = src.streams.audio[track.source] if track.source is not None else _main_audio(src)
        start_s = timeline_start_s(src, stream) if stream is not None else 0.0
    return round(start_s * track.sample_rate)


def _check_video_fits(videos: list[av.VideoStream], muxer: str, ext: str, video_in: Path, video_out: Path) -> None:
    """:class:`FormatError` naming the codec and the containers that take it when the ``muxer``
    cannot hold the copied video (VP9 in MOV, VP8 in MP4...), before anything is written."""
    if _takes(muxer, videos):
        return
    codecs = ", ".join(sorted({s.codec_context.name for s in videos}))
    raise FormatError(f"a .{ext} file cannot hold {video_in.name}'s {codecs} video (it is copied, not "
                      f"re-encoded){_write_instead(ext, videos)}", path=video_out)


def _subtitle_conversions(videos: list[av.VideoStream], subtitles: list[av.stream.Stream], muxer: str,
                          ext: str, video_in: Path, video_out: Path) -> dict[int, str]:
    """The text subtitle streams that ``muxer`` holds only in another text format (index ->
    encoder); :class:`FormatError` when it cannot hold the others as they are (bitmap subtitles
    in MP4): subtitles are never dropped."""
    misfits = [s for s in subtitles if not _takes(muxer, [*videos, s])]
    encoder = _TEXT_SUBTITLE_ENCODERS.get(muxer)
    converted = {s.index: encoder for s in misfits if encoder and s.codec_context.name in _TEXT_SUBTITLES}
    refused = [s for s in misfits if s.index not in converted]
    if not refused:
        return converted
    codecs = ", ".join(sorted({s.codec_context.name for s in refused}))
    raise FormatError(f"a .{ext} file cannot hold {video_in.name}'s {codecs} subtitles (they are copied "
                      f"as they are){_write_instead(ext, [*videos, *refused])}", path=video_out)


def _write_instead(ext: str, streams: list[av.stream.Stream]) -> str:
    """``"; write .mkv instead"``, naming the other video extensions whose containers hold
    ``streams`` as they are; empty when none does."""
    takers = [e for e, (m, _) in sorted(_VIDEO_MUXERS.items()) if e != ext and _takes(m, streams)]
    return f"; write {', '.join('.' + e for e in takers)} instead" if takers else ""


def _takes(muxer: str, streams: list[av.stream.Stream]) -> bool:
    """Whether ``muxer`` can hold ``streams`` as they are: their header is written to memory (no
    table of codecs per container to keep in step with FFmpeg's)."""
    try:
        with av.open(io.BytesIO(), "w", format=muxer) as trial:
            for s in streams:
                trial.add_stream_from_template(s)
            trial.start_encoding()
    except (av.FFmpegError, ValueError, TypeError, NotImplementedError, AttributeError):
        return False
    return True


def _timeline_blocks(blocks: Iterable[np.ndarray], channels: int, start_frame: int,
                     chunk: int) -> Iterator[np.ndarray]:
    """The new audio track from time 0 in blocks of ``chunk`` frames (the last ones may be
    shorter): ``start_frame`` frames of silence, then the samples of ``blocks`` regrouped."""
    for i in range(0, start_frame, chunk):
        yield np.zeros((channels, min(chunk, start_frame - i)), np.float32)
    yield from _rechunk(blocks, chunk)


def _main_audio(container: av.container.InputContainer) -> av.AudioStream | None:
    """The audio stream read when none is named (as :func:`~provenance.core.io.read_audio` reads)."""
    if not container.streams.audio:
        return None
    return main_audio_stream(container)


def video_start_s(path: PathLike) -> float:
    """Where the first picture of the video ``path`` plays on its timeline, seconds after its
    earliest stream's start (:func:`~provenance.core.io.timeline_start_s`; 0.0 for most files,
    and when the container does not say): the ``start_s`` of a soundtrack made for the picture."""
    path = Path(path)
    _check_file(path)
    with _wrapped(path, "read the video"), av.open(str(path)) as src:
        videos = [s for s in src.streams.video if _is_moving_picture(s)]
        return timeline_start_s(src, videos[0]) if videos else 0.0


def _origin(src: av.container.InputContainer) -> Fraction:
    """The input's timeline start (s) that becomes the output's time 0: its earliest stream's
    start, never below 0 (a negative start is the codec's priming, which the muxer keeps)."""
    if src.start_time is None or src.start_time <= 0:
        return Fraction(0)
    return Fraction(src.start_time, av.time_base)


_CONTAINER_TAGS_NOT_COPIED = frozenset({"encoder", "major_brand", "minor_version", "compatible_brands",
                                        "duration"})
"""Tags that describe the file as written (its muxer, brands, length), which the writer sets."""
_STREAM_TAGS_NOT_COPIED = frozenset({"duration", "encoder", "number_of_frames", "number_of_bytes", "bps"})
"""Tags that describe a stream's encoding or length (FFmpeg's and mkvmerge's statistics)."""


def _copy_tags(source: dict[str, str], target: dict[str, str], skipped: frozenset[str]) -> None:
    """Copy ``source``'s tags to ``target`` except those in ``skipped`` (any case) and mkvmerge's
    ``_STATISTICS_*`` tags, which would be stale."""
    for key, value in source.items():
        low = key.lower()
        if low in skipped or low.startswith("_statistics"):
            continue
        target[key] = value


def _adopt(source: av.stream.Stream, target: av.stream.Stream) -> None:
    """``target`` takes ``source``'s tags and flags (language, title, default, forced)."""
    _copy_tags(source.metadata, target.metadata, _STREAM_TAGS_NOT_COPIED)
    if "name" in source.metadata and "title" not in source.metadata:
        # MP4/MOV read a track's title back as "name" but write it from "title"
        target.metadata["title"] = source.metadata["name"]
    target.disposition = source.disposition


class _AudioFeed:
    """One new audio track being encoded alongside the copied packets."""

    def __init__(self, encoder: _AvAudioEncoder, blocks: Iterator[np.ndarray]) -> None:
        self.encoder = encoder
        self.blocks = blocks
        self.pending = next(blocks, None)
        self.position = 0  # frames of the track encoded so far, from time 0

    def until(self, dst: av.container.OutputContainer, t_s: float) -> None:
        """Encode and mux blocks until the track reaches ``t_s`` seconds (all of it: ``inf``)."""
        rate = self.encoder.sample_rate
        while self.pending is not None and self.position < t_s * rate:
            for packet in self.encoder.encode(self.pending):
                dst.mux(packet)
            self.position += self.pending.shape[1]
            self.pending = next(self.blocks, None)

    def finish(self, dst: av.container.OutputContainer) -> None:
        self.until(dst, math.inf)
        for packet in self.encoder.flush():
            dst.mux(packet)


def _remux(src: av.container.InputContainer, plan: _StreamPlan, dst: av.container.OutputContainer,
           tracks: list[_NewTrack], starts: list[int], codings: list[tuple[str, float | None]]) -> None:
    """Copy the packets of the ``plan``'s streams into ``dst`` (its text subtitles to convert
    decoded and encoded again) and encode the ``tracks``
    alongside, each from frame ``starts[i]`` of the timeline, interleaved: audio is pulled and
    encoded about 1 s ahead of the packets copied, so the muxer never buffers much and only a
    block or two of each track is held at a time. ``codings`` are the tracks' (subtype,
    bitrate kbps). Streams keep the input's order."""
    by_source = {t.source: (t, start, c) for t, start, c in zip(tracks, starts, codings) if t.source is not None}
    new = [(t, start, c) for t, start, c in zip(tracks, starts, codings) if t.source is None]
    audio_order = {s.index: i for i, s in enumerate(src.streams.audio)}
    copied = plan.copied
    out_streams: dict[int, av.stream.Stream] = {}
    subtitle_coders: dict[int, _SubtitleConverter] = {}
    feeds: list[_AudioFeed] = []

    def add_track(track: _NewTrack, start: int, coding: tuple[str, float | None],
                  like: av.stream.Stream | None) -> None:
        subtype, kbps = coding
        # A soundtrack for video is delivered at a generous bitrate, where FFmpeg's "fast" AAC
        # coder is transparent and three times faster than its default two-loop search.
        options = {"aac_coder": "fast"} if subtype == "AAC" else None
        encoder = _AvAudioEncoder(dst, subtype, track.sample_rate, track.channels,
                                  bitrate_kbps=kbps, options=options)
        if like is not None:
            _adopt(like, encoder.stream)
        else:  # the file's only sound
            encoder.stream.disposition = av.stream.Disposition.default
        blocks = _timeline_blocks(track.blocks, track.channels, start, _feed_frames(track.sample_rate))
        feeds.append(_AudioFeed(encoder, blocks))

    # New audio takes the place of the first audio stream it replaces, or follows the picture.
    new_at = src.streams.audio[0].index if src.streams.audio else max(
        (s.index for s in src.streams.video if s.index in copied), default=-1)
    timecode = _timecode(src)
    for s in src.streams:
        if s.index in copied:
            out_streams[s.index] = dst.add_stream_from_template(s)
            _adopt(s, out_streams[s.index])
            if timecode and _is_moving_picture(s) and "timecode" not in out_streams[s.index].metadata:
                # where the muxer writes the timecode track itself (MOV, MP4), from this tag
                out_streams[s.index].metadata["timecode"] = timecode
        elif s.index in plan.converted:
            subtitle_coders[s.index] = _SubtitleConverter(s, dst, plan.converted[s.index])
        elif s.type == "audio" and audio_order[s.index] in by_source:
            add_track(*by_source[audio_order[s.index]], s)
        if s.index == new_at:
            for track, start, coding in new:
                add_track(track, start, coding, None)
    _copy_tags(src.metadata, dst.metadata, _CONTAINER_TAGS_NOT_COPIED)
    origin = _origin(src)
    chapters = _moved_chapters(src.chapters(), origin)
    if chapters:
        dst.set_chapters(chapters)

    packet_streams = [src.streams[i] for i in sorted({*copied, *plan.converted})
                      if src.streams[i].type != "attachment"]
    for packet in src.demux(packet_streams):
        if packet.size == 0:
            continue  # demuxer flush packet, carries no data
        if origin and packet.time_base is not None:
            _move_back(packet, origin)
        # Matroska stores no DTS, so its first packets of B-frame video come without one
        stamp = packet.dts if packet.dts is not None else packet.pts
        if stamp is not None and packet.time_base is not None:
            for feed in feeds:
                feed.until(dst, float(stamp * packet.time_base) + 1.0)
        if packet.stream.index in subtitle_coders:
            subtitle_coders[packet.stream.index].convert(packet, dst)
            continue
        packet.stream = out_streams[packet.stream.index]
        dst.mux(packet)
    for feed in feeds:
        feed.finish(dst)


def _move_back(packet: av.Packet, origin: Fraction) -> None:
    """Move ``packet`` ``origin`` seconds earlier (its stream's time base)."""
    ticks = round(origin / packet.time_base)
    if packet.pts is not None:
        packet.pts -= ticks
    if packet.dts is not None:
        packet.dts -= ticks


def _moved_chapters(chapters: list[dict], origin: Fraction) -> list[dict]:
    """``chapters`` moved ``origin`` seconds earlier, as the packets are; one that would end
    before time 0 is dropped, one that would start before it starts at 0."""
    if not origin:
        return chapters
    moved = []
    for chapter in chapters:
        ticks = round(origin / chapter["time_base"])
        start, end = chapter["start"] - ticks, chapter["end"] - ticks
        if end > 0:
            moved.append({**chapter, "start": max(0, start), "end": end})
    return moved


class _SubtitleConverter:
    """A text subtitle stream written in another text format (SubRip as MP4 text ...): each
    packet decoded and encoded again, its timing kept to the millisecond."""

    _TIME_BASE = Fraction(1, 1000)

    def __init__(self, source: av.stream.Stream, dst: av.container.OutputContainer, encoder: str) -> None:
        self.decoder = source.codec_context
        if not self.decoder.is_open:
            self.decoder.open()  # its styles (an ASS header) are what the encoder starts from
        self.stream = dst.add_stream(encoder)
        self.stream.codec_context.subtitle_header = self.decoder.subtitle_header
        self.stream.codec_context.time_base = self.stream.time_base = self._TIME_BASE
        _adopt(source, self.stream)

    def convert(self, packet: av.Packet, dst: av.container.OutputContainer) -> None:
        if packet.pts is None or packet.time_base is None:
            return  # a cue with no time cannot be placed
        subtitles = self.decoder.decode2(packet)
        if subtitles is None or not len(subtitles):
            return
        out = self.stream.codec_context.encode_subtitle(subtitles)
        out.stream = self.stream
        out.time_base = self._TIME_BASE
        out.pts = out.dts = round(packet.pts * packet.time_base * 1000)
        out.duration = round((packet.duration or 0) * packet.time_base * 1000)
        dst.mux(out)
