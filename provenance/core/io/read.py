"""Reading: probing a file, decoding it in blocks through soundfile or PyAV, and whether it is a video."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from provenance.core.audio import Audio, AudioInfo
from provenance.core.errors import FormatError, InputError, NoAudioError
from provenance.core.io.headers import declared_data_shortfall, unknown_length_before_chunks
from provenance.core.io.common import (
    COUNTED_TIMESTAMPS,
    GAP_FILL_MAX_S,
    _AV_SUBTYPES,
    _VIDEO_MUXERS,
    _VORBIS_FROM_WAV,
    PathLike,
    _check_file,
    _check_finite,
    _check_params,
    _frame_samples,
    _wrapped,
    gap_fillable,
    library_message,
    timeline_start_s,
)

# A decoded stream this much shorter than its header says is reported as truncated.
_TRUNCATION_MIN_S = 0.25
_TRUNCATION_FRACTION = 0.02

_GAP_FILL_MIN_S = 0.005
"""Shortest jump in an audio stream's timestamps, seconds, decoded as silence: longer than the
rounding of millisecond timestamps (Matroska), shorter than any A/V offset one can see or hear."""

_MKV_DURATION_RE = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")
_MPEG_SUFFIXES = frozenset({".mp3", ".mp2", ".mpga"})
_OGG_DAMAGE_MARKERS = ("File ended unexpectedly", "reports a hole", "Last page lacks an end-of-stream bit",
                       "Corrupted bitstream")
"""What libsndfile's log of an Ogg file says when pages are missing or unreadable (a bad CRC:
libogg skips the page, and the rest of the file with it when every later page is bad). Not
"Junk after the last page": an ID3v1 or APE tag appended by a tagger, or a second chained
stream, follow an intact last page."""
_OGG_MAX_PAGE_BYTES = 27 + 255 + 255 * 255
_SF_UNKNOWN_FRAMES = 1 << 62
"""At or above this, libsndfile's frame count means "unknown" (it reports 2**63 - 1)."""


@dataclass(frozen=True)
class _Source:
    """An opened-and-probed input: what it holds and which backend decodes it."""

    path: Path
    info: AudioInfo
    backend: str
    """``soundfile`` or ``pyav``."""
    track: int | None = None
    """PyAV: which audio stream is decoded, as its position among the file's audio streams
    (:func:`audio_track_count`); None: the main one (:func:`main_audio_track`)."""

    def chunks(self, start_frame: int = 0) -> Iterator[np.ndarray]:
        """Decoded float32 ``(channels, n)`` chunks from ``start_frame`` on, chunk sizes arbitrary."""
        if self.backend == "soundfile":
            return _sf_chunks(self, start_frame)
        return _skip_frames(_av_chunks(self), start_frame)


def _av_format_name(container: av.container.InputContainer, path: Path) -> str:
    """A short container name (``mp4``, ``m4a``, ``mkv``, ``webm``, ``mp3`` ...) for AudioInfo."""
    names = container.format.name.split(",")
    ext = path.suffix.lower().lstrip(".")
    if "mp4" in names:
        return ext if ext in ("mp4", "m4a", "mov", "m4v", "3gp") else "mp4"
    if "matroska" in names:
        return "webm" if ext == "webm" else "mkv"
    return names[0]


def _av_declared_frames(container: av.container.InputContainer, stream: av.AudioStream) -> int | None:
    """Length in frames that the container header states for ``stream``, or None if it does not.

    Only per-stream durations, the per-track ``DURATION`` tag that FFmpeg and mkvmerge write into
    Matroska/WebM, and single-stream Matroska/Ogg durations are trusted: raw MP3/ADTS container
    durations are bitrate estimates, and a video's container duration may be its picture's.
    """
    rate = stream.codec_context.sample_rate
    if stream.duration is not None and stream.time_base is not None:
        return round(float(stream.duration * stream.time_base) * rate)
    names = container.format.name.split(",")
    if "matroska" in names:
        tagged = _matroska_track_duration_s(stream)
        if tagged is not None:
            # the tag is the track's end time; a track may start after 0 s
            start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
            return max(0, round((tagged - max(0.0, start)) * rate))
    if len(container.streams) == 1 and container.duration and ("matroska" in names or "ogg" in names):
        return round(container.duration / av.time_base * rate)
    return None


def _matroska_track_duration_s(stream: av.AudioStream) -> float | None:
    """Seconds in a Matroska track's ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``: the end time of the
    track's last frame on the file's timeline), or None."""
    tags = {key.upper(): value for key, value in stream.metadata.items()}
    match = _MKV_DURATION_RE.match(tags.get("DURATION", "").strip())
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _audio_stream(container: av.container.InputContainer, track: int | None, path: Path) -> av.AudioStream:
    """Audio stream number ``track`` of ``container`` (None: the main one, FFmpeg's best)."""
    streams = container.streams.audio
    if not streams:
        kinds = ", ".join(f"{s.type}/{s.codec_context.name if s.codec_context else 'none'}"
                          for s in container.streams) or "nothing"
        if _holds_video(container):
            raise NoAudioError(f"is a video with no audio track (it holds: {kinds}): there is no sound to read",
                               path=path)
        raise FormatError(f"not an audio file: contains no audio stream (it holds: {kinds})", path=path)
    if track is None:
        return main_audio_stream(container)
    if not 0 <= track < len(streams):
        raise InputError(f"has {len(streams)} audio track(s); there is no track {track} "
                         f"(tracks count from 0)", path=path)
    return streams[track]


def main_audio_stream(container: av.container.InputContainer) -> av.AudioStream:
    """The audio stream read when none is named: FFmpeg's best (a default-flagged, then the
    first), unless FFmpeg does not know its codec and another's it does (a damaged header)."""
    best = container.streams.best("audio") or container.streams.audio[0]
    if best.codec_context is None:
        return next((s for s in container.streams.audio if s.codec_context is not None), best)
    return best


def _probe_pyav(path: Path, frames_hint: int | None = None, track: int | None = None) -> _Source:
    """Probe ``path`` with PyAV; raise FormatError if it holds no decodable audio stream."""
    with _wrapped(path, "open the file as audio or video"), av.open(str(path)) as container:
        stream = _audio_stream(container, track, path)
        if "ogg" in container.format.name.split(","):
            _check_ogg_complete(path)
        ctx = stream.codec_context
        if ctx is None:
            which = "its audio stream" if track is None else f"audio track {track}"
            raise FormatError(f"{which} is in a codec FFmpeg does not know (damaged or unsupported data)",
                              path=path)
        rate, channels = ctx.sample_rate, ctx.channels
        if not rate or not channels:
            raise FormatError("audio stream has no sample rate or channel count", path=path)
        frames = frames_hint
        if frames is None:
            frames = _av_declared_frames(container, stream)
        if frames is None and container.duration:
            frames = round(container.duration / av.time_base * rate)
        if frames is None:
            frames = _counted_frames(container, stream)
        info = AudioInfo(sample_rate=rate, channels=channels, frames=int(frames or 0),
                         format=_av_format_name(container, path),
                         subtype=_AV_SUBTYPES.get(ctx.name, ctx.name.upper()),
                         start_s=timeline_start_s(container, stream))
    return _Source(path, info, "pyav", track)


def _counted_frames(container: av.container.InputContainer, stream: av.AudioStream) -> int | None:
    """The length in frames of ``stream`` whose header states none (a FLAC written to a pipe
    leaves STREAMINFO's length 0: "unknown"), from its packets' durations: a pass over the file
    without decoding. None when the packets do not say. Without it such a file read as "no
    samples (zero length)"."""
    if stream.time_base is None:
        return None
    ticks = 0
    for packet in container.demux(stream):
        if packet.size and not packet.duration:
            return None
        ticks += packet.duration or 0
    return round(float(ticks * stream.time_base) * stream.codec_context.sample_rate) or None


def structure_damage(path: str | Path, major: str, log: str = "") -> str | None:
    """What the structure of the file at ``path`` (container ``major``, libsndfile's name: ``WAV``,
    ``OGG`` ...) and libsndfile's parse ``log`` of it show of a file cut short or damaged, in one
    sentence (a data chunk that declares more than the file holds, an Ogg stream without its
    last page); None when nothing. Readers refuse such a file; the verifier reads what decodes
    and says this in a note."""
    try:
        _check_declared_length(Path(path))
        _check_sf_log(Path(path), log, major)
    except FormatError as exc:
        return exc.message
    return None


def _check_sf_log(path: Path, log: str, major: str) -> None:
    """Raise FormatError if libsndfile's parse ``log`` of an Ogg file (``major``) shows it
    truncated or damaged (a data chunk's declared length is :func:`_check_declared_length`'s)."""
    if major == "OGG":
        for marker in _OGG_DAMAGE_MARKERS:
            if marker in log:
                raise FormatError(f"Ogg stream is truncated or damaged ({marker.lower()})", path=path)
        _check_ogg_complete(path)


def _check_declared_length(path: Path) -> None:
    """FormatError when a WAV, AIFF, CAF, W64, RF64 or AU header declares more audio data than
    the file holds (libsndfile and FFmpeg read what is there without a word), or a WAV whose audio
    of "unknown" length is followed by chunks (they would read those as audio)."""
    try:
        shortfall = declared_data_shortfall(path)
        unknown = unknown_length_before_chunks(path)
    except OSError:
        return  # said by the backend that opens it
    if shortfall is not None:
        declared, held = shortfall
        raise FormatError(f"file is truncated: header declares {declared} bytes of audio data, the file holds "
                          f"{held}", path=path)
    if unknown is not None:
        raise FormatError(f"the WAV header is damaged: its data chunk's size reads {unknown:#x} (a stream's "
                          "\"length unknown\", read to the end of the file), but chunks follow the audio, which "
                          "would be read as samples", path=path)


def _check_ogg_complete(path: Path) -> None:
    """Raise FormatError unless the last Ogg page carries the end-of-stream flag (a file cut
    short ends on a page without it; the granule positions alone cannot tell)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - _OGG_MAX_PAGE_BYTES))
        tail = fh.read()
    last = tail.rfind(b"OggS")
    if last < 0 or last + 5 >= len(tail) or not tail[last + 5] & 0x04:
        raise FormatError("Ogg stream is truncated: its last page has no end-of-stream flag", path=path)


def _open_source(path: PathLike, track: int | None = None) -> _Source:
    """Probe ``path`` and choose its backend; raise InputError/FormatError for unusable files.
    ``track`` (a position among the audio streams) reads that stream through PyAV."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"audio is read from a file path, not {type(path).__name__}")
    path = Path(path)
    _check_file(path)
    _check_declared_length(path)
    if track is not None:
        if isinstance(track, bool) or not isinstance(track, int):
            raise InputError(f"an audio track is a number (0 is the first), not {track!r}", path=path)
        return _probe_pyav(path, track=track)
    if _looks_like_mpeg_audio(path) or path.suffix.lower() in _MPEG_SUFFIXES:
        # MP3 goes through FFmpeg (below), and libsndfile's libmpg123 prints warnings of its own
        # on the process's stderr for a damaged one ("Xing stream size off by more than 1%"), or
        # for anything named .mp3 that it cannot identify ("Illegal Audio-MPEG-Header")
        return _probe_pyav(path)
    try:
        with sf.SoundFile(os.fsencode(path)) as f:
            major, subtype, rate, channels, frames = f.format, f.subtype, f.samplerate, f.channels, f.frames
            log = f.extra_info
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError):
        major = None
    if major is None or major == "MP3" or frames >= _SF_UNKNOWN_FRAMES:
        # MP3 goes through FFmpeg for the same decoder (and encoder delay handling) as the writer;
        # so does a FLAC whose length is unknown (written to a pipe), which libsndfile reports as
        # 2**63 - 1 frames and fails to read to its end.
        return _probe_pyav(path)
    _check_sf_log(path, log, major)
    if subtype == "OPUS":
        # libsndfile returns multichannel Opus in a wrong channel order; FFmpeg maps it correctly
        # and always decodes Opus at 48 kHz.
        return _probe_pyav(path, frames_hint=round(frames * 48_000 / rate))
    fmt = {"WAV": "wav", "WAVEX": "wav", "RF64": "wav"}.get(major, major.lower())
    info = AudioInfo(sample_rate=rate, channels=channels, frames=frames, format=fmt, subtype=subtype)
    return _Source(path, info, "soundfile")


def _looks_like_mpeg_audio(path: Path) -> bool:
    """Whether ``path`` starts as an MP3 (or ADTS AAC) does: an MPEG audio frame sync (11 set
    bits), or an ID3v2 tag that a libsndfile format does not follow (C2PA signs a FLAC file
    with an ID3 tag in front of it)."""
    try:
        with open(path, "rb") as f:
            head = f.read(10)
            if head[:3] == b"ID3" and len(head) == 10:
                size = 0
                for byte in head[6:10]:  # "syncsafe": 7 bits a byte
                    size = (size << 7) | (byte & 0x7F)
                f.seek(10 + size + (10 if head[5] & 0x10 else 0))  # the footer flag adds 10 bytes
                return f.read(4) not in (b"fLaC", b"RIFF", b"RF64", b"OggS", b"FORM")
    except OSError:
        return False
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0


def _sf_chunks(source: _Source, start_frame: int, block_frames: int = 1 << 16) -> Iterator[np.ndarray]:
    """Decode a libsndfile-readable file in blocks of ``block_frames``."""
    path = source.path
    with _wrapped(path, "decode the audio"), sf.SoundFile(os.fsencode(path)) as f:
        if start_frame:
            f.seek(start_frame)
        perm = _VORBIS_FROM_WAV.get(f.channels) if f.format == "OGG" else None
        decoded = start_frame
        while True:
            try:
                block = f.read(block_frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                if 0 < f.frames and cut_short(f.frames, decoded, f.samplerate):
                    # libsndfile's own words ("Internal psf_fseek() failed.") do not say what is wrong
                    raise FormatError(f"file is truncated or damaged: decoded {decoded / f.samplerate:.3f} s of "
                                      f"the {f.frames / f.samplerate:.3f} s its header declares "
                                      f"({library_message(exc)})", path=path) from exc
                raise
            if block.shape[0] == 0:
                break
            decoded += block.shape[0]
            block = block.T
            if perm is not None:
                wav = np.empty_like(block)
                wav[perm] = block
                block = wav
            yield np.ascontiguousarray(block)
        _check_sf_log(path, f.extra_info, f.format)


def _av_chunks(source: _Source) -> Iterator[np.ndarray]:
    """Decode the audio stream of a PyAV-readable file from its start, frame by frame.

    The decoded length is checked against the header (a much shorter stream is reported as
    truncated) and, for MP4/MOV, trimmed to the edit-list length so AAC end padding is dropped.
    """
    path = source.path
    with _wrapped(path, "decode the audio"), av.open(str(path)) as container:
        stream = _audio_stream(container, source.track, path)
        declared = _av_declared_frames(container, stream)
        limit = declared if "mp4" in container.format.name.split(",") else None
        decoded = 0
        # An Ogg page lost leaves a jump in the granule positions too: there it is damage (refused
        # as a stream cut short, as libsndfile's "reports a hole"), never a recorder's gap.
        timed = container.format.name not in COUNTED_TIMESTAMPS | {"ogg"}
        for block in _decode_stream(container, stream, fill_gaps=timed, path=path):
            if limit is not None:
                block = block[:, : max(0, limit - decoded)]
            decoded += block.shape[1]
            if block.shape[1]:
                yield block
        rate = stream.codec_context.sample_rate
        if declared:
            if cut_short(declared, decoded, rate):
                raise FormatError(f"file is truncated or damaged: decoded {decoded / rate:.3f} s of "
                                  f"the {declared / rate:.3f} s its header declares", path=path)


def cut_short(declared_frames: float, decoded_frames: float, sample_rate: int) -> bool:
    """Whether a stream that decodes to ``decoded_frames`` samples falls short of the
    ``declared_frames`` its header states by more than 0.25 s or 2 % of it: the file is truncated
    or damaged (less is codec priming and padding)."""
    missing = declared_frames - decoded_frames
    return missing > max(_TRUNCATION_MIN_S * sample_rate, _TRUNCATION_FRACTION * declared_frames)


def _decode_stream(container: av.container.InputContainer, stream: av.AudioStream, *,
                   fill_gaps: bool = False, path: PathLike | None = None) -> Iterator[np.ndarray]:
    """Every decoded frame of ``stream`` as float32 ``(channels, n)`` samples (via packed float
    frames, see :func:`_packed_frame`).

    With ``fill_gaps``, a jump in the frames' timestamps (packets a recorder dropped, or the
    delay of a stream muxed without an edit list) is decoded as the silence players play there,
    so every sample keeps its time: joined end to end, the audio after a 0.2 s gap was re-encoded
    0.2 s early against the picture. ``path`` names the file in the error for a jump too long to
    be lost audio."""
    resampler: av.AudioResampler | None = None
    first_s: float | None = None  # the first frame's time on the stream's timeline
    given = 0  # samples handed on since, silence included
    filled = 0  # of which silence
    for frame in container.decode(stream):
        if resampler is None:
            resampler = av.AudioResampler(format="flt", layout=frame.layout, rate=frame.sample_rate)
        if fill_gaps and frame.time is not None and frame.sample_rate:
            if first_s is None:
                first_s = float(frame.time)
            gap = round((float(frame.time) - first_s) * frame.sample_rate) - given
            if gap >= _GAP_FILL_MIN_S * frame.sample_rate:
                rate = frame.sample_rate
                if not gap_fillable(gap / rate, filled / rate, (given - filled) / rate):
                    raise FormatError(
                        f"the audio's timestamps jump by {gap / rate:.1f} s at {given / rate:.3f} s: the file is "
                        f"damaged (gaps are filled with silence up to {GAP_FILL_MAX_S:g} s, and in all up to as "
                        "long as the audio)", path=path)
                for start in range(0, gap, frame.sample_rate):  # a second at a time: bounded memory
                    yield np.zeros((resampler.layout.nb_channels, min(frame.sample_rate, gap - start)), np.float32)
                given += gap
                filled += gap
            given += frame.samples
        for packed in resampler.resample(frame):
            yield _frame_samples(packed)
    if resampler is not None:
        for packed in resampler.resample(None):
            yield _frame_samples(packed)


def _skip_frames(chunks: Iterator[np.ndarray], skip: int) -> Iterator[np.ndarray]:
    """Drop the first ``skip`` frames of a chunk stream (decoding from the start keeps positions
    sample-exact, which seeking in compressed streams does not)."""
    for chunk in chunks:
        if skip >= chunk.shape[1]:
            skip -= chunk.shape[1]
            continue
        yield chunk[:, skip:] if skip else chunk
        skip = 0


def _rechunk(chunks: Iterable[np.ndarray], block_frames: int) -> Iterator[np.ndarray]:
    """Regroup chunks of any size into blocks of exactly ``block_frames`` (the last may be shorter)."""
    pending: list[np.ndarray] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += chunk.shape[1]
        if held < block_frames:
            continue
        joined = np.concatenate(pending, axis=1)
        start = 0
        while held - start >= block_frames:
            yield joined[:, start:start + block_frames]
            start += block_frames
        pending = [joined[:, start:]]
        held -= start
    if held:
        yield np.concatenate(pending, axis=1)


def _checked_chunks(source: _Source, start_frame: int = 0, max_frames: int | None = None
                    ) -> Iterator[np.ndarray]:
    """Decoded chunks from ``start_frame`` for at most ``max_frames``, each checked for NaN/Inf."""
    info = source.info
    position = start_frame
    remaining = max_frames
    for chunk in source.chunks(start_frame):
        if remaining is not None:
            chunk = chunk[:, :remaining]
            remaining -= chunk.shape[1]
        _check_finite(chunk, source.path, position, info.sample_rate)
        position += chunk.shape[1]
        if chunk.shape[1]:
            yield chunk
        if remaining == 0:
            return


def audio_info(path: PathLike, *, track: int | None = None) -> AudioInfo:
    """What ``path`` holds (rate in Hz, channels, frames, container format, subtype), without
    decoding it. ``track`` picks one of several audio streams (:func:`audio_track_count`; the
    default is the main one, :func:`main_audio_track`).

    ``frames`` is exact for WAV/FLAC/Ogg and taken from the header for compressed formats (an
    estimate when the header has no length). Rate and channel limits are not enforced here; the
    readers enforce them. Raises InputError/FormatError for missing, empty or unreadable files.
    """
    return _open_source(path, track).info


def audio_track_count(path: PathLike) -> int:
    """How many audio streams ``path`` holds (a video may carry several: languages, commentary);
    0 for a video without sound. InputError/FormatError for missing or unreadable files."""
    return _audio_streams(path)[0]


def main_audio_track(path: PathLike) -> int:
    """The position, among ``path``'s audio streams, of the one read when no track is named
    (:func:`main_audio_stream`: FFmpeg's choice of the best, a default-flagged then the first)."""
    _, main = _audio_streams(path)
    if main is None:
        raise FormatError("contains no audio stream", path=Path(path))
    return main


def _audio_streams(path: PathLike) -> tuple[int, int | None]:
    """How many audio streams ``path`` holds, and the position of the main one among them."""
    path = Path(path)
    _check_file(path)
    with _wrapped(path, "open the file as audio or video"), av.open(str(path)) as container:
        streams = container.streams.audio
        if not streams:
            return 0, None
        return len(streams), streams.index(main_audio_stream(container))


def read_audio(path: PathLike, *, start_s: float | None = None,
               duration_s: float | None = None, track: int | None = None) -> Audio:
    """Decode ``path`` (an audio file or the audio track of a video) into float32 samples.

    ``start_s`` and ``duration_s`` (seconds) select a window; compressed formats are decoded from
    the start so the window is sample-exact. The returned :class:`Audio` keeps the source's
    ``subtype`` (``PCM_16``, ``PCM_24``, ``FLOAT``, ``MP3``, ``AAC``, ``OPUS``, ``VORBIS``, ...).
    Raises InputError for missing/empty files, zero-length audio, NaN/Inf samples and unsupported
    rates/channels; FormatError for corrupt, truncated or non-audio files.

    For a video, sample 0 is the first sample of its audio track, which may start after time 0 of
    the video's timeline; :func:`replace_audio_track` keeps that offset by default. ``track``
    picks one of several audio streams, as in :func:`audio_info`.
    """
    source = _open_source(path, track)
    info = source.info
    _check_params(info.sample_rate, info.channels, source.path)
    start_frame, max_frames = _window_frames(info, start_s, duration_s, source.path)
    if source.backend == "soundfile" and start_frame and start_frame >= info.frames:
        raise InputError(f"start_s={start_s} s is at or beyond the end of the audio "
                         f"({info.duration_s:.3f} s)", path=source.path)
    expected = None
    if source.backend == "soundfile":  # libsndfile lengths are exact: fill one array in place
        expected = info.frames - start_frame
        if max_frames is not None:
            expected = min(expected, max_frames)
    samples = _collect(_checked_chunks(source, start_frame, max_frames), info.channels, expected)
    if samples.shape[1] == 0:
        if start_frame:
            raise InputError(f"start_s={start_s} s is at or beyond the end of the audio", path=source.path)
        raise InputError("contains no audio samples (zero length)", path=source.path)
    return Audio(samples, info.sample_rate, subtype=info.subtype)


def _collect(chunks: Iterable[np.ndarray], channels: int, expected: int | None) -> np.ndarray:
    """Join chunks into one float32 ``(channels, frames)`` array. With the length ``expected``
    known, chunks are copied into a preallocated array so peak memory stays near one copy."""
    if expected is None:
        parts = list(chunks)
        return np.concatenate(parts, axis=1) if parts else np.zeros((channels, 0), np.float32)
    out = np.empty((channels, expected), np.float32)
    filled = 0
    extra: list[np.ndarray] = []
    for chunk in chunks:
        n = min(chunk.shape[1], expected - filled)
        out[:, filled:filled + n] = chunk[:, :n]
        filled += n
        if n < chunk.shape[1]:
            extra.append(chunk[:, n:])
    if extra:  # the header under-stated the length; keep every decoded sample
        return np.concatenate([out, *extra], axis=1)
    return out[:, :filled]


def _window_frames(info: AudioInfo, start_s: float | None, duration_s: float | None,
                   path: Path) -> tuple[int, int | None]:
    """Convert a window in seconds into (start frame, frame count or None for "to the end")."""
    start_frame = 0
    max_frames = None
    if start_s is not None:
        if not math.isfinite(start_s) or start_s < 0:
            raise InputError(f"start_s must be a finite time >= 0 s, got {start_s}", path=path)
        start_frame = round(start_s * info.sample_rate)
    if duration_s is not None:
        if not math.isfinite(duration_s) or duration_s <= 0:
            raise InputError(f"duration_s must be a finite time > 0 s, got {duration_s}", path=path)
        max_frames = max(1, round(duration_s * info.sample_rate))
    return start_frame, max_frames


def iter_audio_blocks(path: PathLike, block_frames: int, *, track: int | None = None) -> Iterator[Audio]:
    """Stream ``path`` as consecutive :class:`Audio` blocks of ``block_frames`` frames (the last
    may be shorter), holding only about one block in memory, for files of any length.
    ``track`` picks one of several audio streams, as in :func:`audio_info`.

    The same checks as :func:`read_audio` apply; NaN/Inf or damage found mid-stream raise when
    reached.
    """
    if int(block_frames) != block_frames or block_frames < 1:
        raise InputError(f"block_frames must be a positive integer, got {block_frames}", path=path)
    source = _open_source(path, track)
    info = source.info
    _check_params(info.sample_rate, info.channels, source.path)
    return _audio_blocks(source, int(block_frames))


def _audio_blocks(source: _Source, block_frames: int) -> Iterator[Audio]:
    info = source.info
    produced = 0
    for block in _rechunk(_checked_chunks(source), block_frames):
        produced += block.shape[1]
        yield Audio(block, info.sample_rate, subtype=info.subtype)
    if produced == 0:
        raise InputError("contains no audio samples (zero length)", path=source.path)


def check_decodes(path: PathLike) -> None:
    """Raise unless ``path`` is intact audio or video: its audio decodes to the length its header
    declares, and a video's every packet demuxes.

    For signing files that the watermark never reads: unlike :func:`read_audio` it applies no
    limit on rate, channels or length and accepts NaN/Inf samples (they are the file's data, not
    damage), and a video need not have audio. Raises :class:`InputError` for a missing, empty or
    non-regular file and :class:`FormatError`, naming ``path``, for corrupt, truncated or
    non-media data.
    """
    path = Path(path)
    _check_file(path)
    if is_video(path):
        with _wrapped(path, "read the video"), av.open(str(path)) as container:
            has_audio = bool(container.streams.audio)
            for _ in container.demux():
                pass
        if not has_audio:
            return
    source = _open_source(path)
    decoded = sum(chunk.shape[1] for chunk in source.chunks())
    if decoded == 0:
        raise FormatError("contains no audio samples (zero length)", path=path)


def is_video(path: PathLike) -> bool:
    """True if ``path`` holds a video stream (not just cover art or a still image).

    Raises InputError for a missing or empty file; other unreadable files return False.
    """
    path = Path(path)
    _check_file(path)
    try:
        with av.open(str(path)) as container:
            return _holds_video(container)
    except (av.FFmpegError, OSError, ValueError):
        return False


def not_a_video_container(container: av.container.InputContainer) -> str | None:
    """What ``container`` is when FFmpeg opened it as a "video" that is none (a still image, or
    text, which FFmpeg's tty reader renders as ANSI art), else None."""
    names = container.format.name
    if names == "tty":
        return "text, not a video (FFmpeg would render it as ANSI art)"
    if names.endswith("_pipe") or names == "image2":
        return "a still image, not a video"
    return None


def is_video_extension(path: PathLike) -> bool:
    """Whether ``path``'s extension names a video container :func:`replace_audio_track` writes."""
    return Path(path).suffix.lower().lstrip(".") in _VIDEO_MUXERS


def _holds_video(container: av.container.InputContainer) -> bool:
    """Whether ``container`` holds moving pictures (not an image or text FFmpeg reads as video,
    not cover art)."""
    return not_a_video_container(container) is None and any(_is_moving_picture(s) for s in container.streams.video)


def _is_moving_picture(stream: av.VideoStream) -> bool:
    """False for attached pictures (cover art in MP3/M4A)."""
    return not (stream.disposition & av.stream.Disposition.attached_pic)


