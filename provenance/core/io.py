"""Audio and video I/O: read, stream, write and lossy round trips, through soundfile and PyAV.

Backends
    * soundfile (libsndfile) reads and writes WAV (also RF64/WAVEX), FLAC and Ogg Vorbis.
    * PyAV (FFmpeg inside its wheels) reads everything else (MP3, AAC/M4A, Opus, the audio
      track of MP4/MOV/MKV/WebM) and writes MP3, AAC (M4A/MP4/MOV/MKV/ADTS) and Opus.
      No ffmpeg binary and no torchaudio are involved.

Conventions
    * Samples are float32 ``(channels, frames)`` at full scale [-1, 1]; rates are in Hz,
      positions and durations in seconds (``*_s``) or samples (``*_frames``).
    * Multichannel audio uses the WAV/FFmpeg channel order (5.1 = FL FR FC LFE BL BR).
    * Integer outputs (PCM_16/24/32) are rounded to the nearest step and clipped to the integer
      range, never wrapped; float samples beyond [-1, 1] are therefore clipped when written to an
      integer format. Float outputs (FLOAT/DOUBLE) keep such samples as they are.
    * Lossy writers resample when the codec cannot carry the rate (Opus always runs at 48 kHz;
      MP3 stops at 48 kHz, AAC at 96 kHz); the file then holds the codec's rate.
    * Every output is written to a temporary file beside the target and renamed on success.
    * Every failure is a :class:`~provenance.core.errors.InputError` or
      :class:`~provenance.core.errors.FormatError` naming the file and the problem; raw
      soundfile/PyAV exceptions never escape.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import av
import numpy as np
import soundfile as sf

from provenance.core.atomic import atomic_path
from provenance.core.audio import Audio, AudioInfo, check_audio_params
from provenance.core.errors import FoleySealError, FormatError, InputError

__all__ = [
    "AudioWriter",
    "audio_info",
    "encode_decode",
    "is_video",
    "is_video_extension",
    "iter_audio_blocks",
    "read_audio",
    "replace_audio_track",
    "write_audio",
    "WRITE_FORMATS",
    "LOSSY_CODECS",
]

PathLike = str | Path

# FFmpeg channel layouts used for 1-8 channels (WAV order within each layout).
_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}

# Vorbis fixes the speaker of each channel by position (Vorbis I spec, section 4.3.9), and
# libsndfile passes channels through untouched, so 3+ channel audio must be reordered from WAV
# order into Vorbis order on write and back on read. Index k of each list: WAV channel stored at
# Vorbis position k.
_VORBIS_FROM_WAV = {
    3: [0, 2, 1],
    5: [0, 2, 1, 3, 4],
    6: [0, 2, 1, 4, 5, 3],
    7: [0, 2, 1, 5, 6, 4, 3],
    8: [0, 2, 1, 6, 7, 4, 5, 3],
}

# PyAV encoder name per codec subtype.
_AV_ENCODERS = {"MP3": "libmp3lame", "AAC": "aac", "OPUS": "libopus", "FLOAT": "pcm_f32le"}
_MAX_CHANNELS_BY_CODEC = {"MP3": 2}
# Default bitrates, kbps per channel (capped for MP3, which carries at most 2 channels).
_DEFAULT_KBPS_PER_CHANNEL = {"MP3": 96, "AAC": 96, "OPUS": 64, "VORBIS": 96}
_MAX_KBPS = {"MP3": 320}

# Subtypes that carry more than 16 bits: a lossless integer output defaults to 24 bits for them.
_HIGH_RES_SUBTYPES = {"PCM_24", "PCM_32", "FLOAT", "DOUBLE"}
_INT_BITS = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
_INT_SCALE_DTYPE = {16: np.int16, 24: np.int32, 32: np.int32}

# PyAV codec names (decoders) mapped to the subtype reported for them.
_AV_SUBTYPES = {
    "mp3": "MP3",
    "mp3float": "MP3",
    "aac": "AAC",
    "opus": "OPUS",
    "libopus": "OPUS",
    "vorbis": "VORBIS",
    "flac": "FLAC",
    "alac": "ALAC",
    "pcm_s16le": "PCM_16",
    "pcm_s16be": "PCM_16",
    "pcm_s24le": "PCM_24",
    "pcm_s24be": "PCM_24",
    "pcm_s32le": "PCM_32",
    "pcm_s32be": "PCM_32",
    "pcm_f32le": "FLOAT",
    "pcm_f32be": "FLOAT",
    "pcm_f64le": "DOUBLE",
    "pcm_f64be": "DOUBLE",
}


@dataclass(frozen=True)
class _WriteFormat:
    """One output format: how it is written and which sample encodings it takes."""

    key: str
    container: str
    """libsndfile major format (soundfile backend) or FFmpeg muxer name (PyAV backend)."""
    subtypes: tuple[str, ...]
    """Accepted subtypes; the first is the default."""


WRITE_FORMATS: dict[str, _WriteFormat] = {
    f.key: f
    for f in (
        _WriteFormat("wav", "WAV",
                     ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8", "ULAW", "ALAW")),
        _WriteFormat("flac", "FLAC", ("PCM_16", "PCM_24", "PCM_S8")),
        _WriteFormat("ogg", "ogg", ("VORBIS", "OPUS")),
        _WriteFormat("opus", "ogg", ("OPUS",)),
        _WriteFormat("mp3", "mp3", ("MP3",)),
        _WriteFormat("m4a", "ipod", ("AAC",)),
        _WriteFormat("aac", "adts", ("AAC",)),
        _WriteFormat("mp4", "mp4", ("AAC", "MP3", "OPUS")),
        _WriteFormat("mov", "mov", ("AAC",)),
        _WriteFormat("mkv", "matroska", ("AAC", "OPUS", "MP3", "FLOAT")),
        _WriteFormat("webm", "webm", ("OPUS",)),
    )
}
"""Output formats by key (the file extension without the dot)."""

_FORMAT_ALIASES = {"wave": "wav", "oga": "ogg", "mka": "mkv", "matroska": "mkv", "m4v": "mp4", "adts": "aac"}

# Video containers that replace_audio_track can write: extension -> (muxer, WRITE_FORMATS key whose
# subtypes list the audio codecs it takes, the first being the default).
_VIDEO_MUXERS = {"mp4": ("mp4", "mp4"), "m4v": ("mp4", "mp4"), "mov": ("mov", "mov"),
                 "mkv": ("matroska", "mkv"), "webm": ("webm", "webm")}

LOSSY_CODECS = ("mp3", "aac", "opus", "vorbis", "flac")
"""Codec names accepted by :func:`encode_decode` (flac is lossless apart from 16-bit rounding)."""

# A decoded stream this much shorter than its header says is reported as truncated.
_TRUNCATION_MIN_S = 0.25
_TRUNCATION_FRACTION = 0.02

_WAV_DATA_RE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_OGG_DAMAGE_MARKERS = ("File ended unexpectedly", "reports a hole")
_OGG_MAX_PAGE_BYTES = 27 + 255 + 255 * 255


# --------------------------------------------------------------------------------------------
# Errors and checks


def _check_file(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` is an existing, non-empty regular file."""
    if not path.exists():
        raise InputError("file not found", path=path)
    if not path.is_file():
        raise InputError("not a regular file", path=path)
    if path.stat().st_size == 0:
        raise InputError("file is empty (0 bytes)", path=path)


@contextlib.contextmanager
def _wrapped(path: PathLike | None, action: str) -> Iterator[None]:
    """Turn soundfile/PyAV/OS failures inside the block into :class:`FormatError` naming ``path``."""
    try:
        yield
    except FoleySealError:
        raise
    except (av.FFmpegError, sf.LibsndfileError, RuntimeError, ValueError, OSError, EOFError) as exc:
        detail = str(exc).strip() or type(exc).__name__
        raise FormatError(f"cannot {action} (corrupt, truncated or unsupported data): {detail}",
                          path=path) from exc


def _output_mode() -> int:
    """Permission bits for a new output file under the process umask (a bare temporary file
    from :func:`atomic_path` would keep mode 0600)."""
    try:
        with open("/proc/self/status") as fh:  # reading it here does not disturb other threads
            umask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def _check_params(sample_rate: int, channels: int, path: PathLike) -> None:
    """:func:`check_audio_params` with the file named in the error."""
    try:
        check_audio_params(sample_rate, channels)
    except InputError as exc:
        raise InputError(exc.message, path=path) from None


def _check_finite(block: np.ndarray, path: PathLike, offset_frames: int, sample_rate: int) -> None:
    """Raise :class:`InputError` naming NaN/Inf if ``block`` holds non-finite samples."""
    finite = np.isfinite(block)
    if finite.all():
        return
    n_nan = int(np.isnan(block).sum())
    n_inf = int((~finite).sum()) - n_nan
    first = int(np.argmin(finite.all(axis=0)))
    at_s = (offset_frames + first) / sample_rate
    raise InputError(
        f"contains invalid samples: {n_nan} NaN and {n_inf} infinite values "
        f"(first at {at_s:.3f} s)", path=path)


# --------------------------------------------------------------------------------------------
# Sample conversions


def _float_to_int(block: np.ndarray, bits: int) -> np.ndarray:
    """Round float samples to ``bits``-bit integers, clipping (never wrapping) at full scale.

    The scale is 2**(bits-1), the inverse of what libsndfile and FFmpeg use when reading, so
    samples read from an integer file are written back bit-exactly. 24-bit values are returned
    left-justified in int32 (the layout libsndfile expects for PCM_24).
    """
    scale = float(2 ** (bits - 1))
    q = np.rint(block.astype(np.float64) * scale)
    np.clip(q, -scale, scale - 1, out=q)
    if bits == 24:
        return (q.astype(np.int32) << 8)
    return q.astype(_INT_SCALE_DTYPE[bits])


def _fit_length(samples: np.ndarray, frames: int) -> np.ndarray:
    """Trim or zero-pad ``(channels, n)`` samples to exactly ``frames`` frames."""
    n = samples.shape[1]
    if n >= frames:
        return samples[:, :frames]
    return np.pad(samples, ((0, 0), (0, frames - n)))


def _as_block(data: Audio | np.ndarray, channels: int, sample_rate: int, path: PathLike) -> np.ndarray:
    """Validate one block given to a writer and return it as float32 ``(channels, frames)``."""
    if isinstance(data, Audio):
        if data.sample_rate != sample_rate:
            raise InputError(f"block has sample rate {data.sample_rate} Hz, writer expects "
                             f"{sample_rate} Hz", path=path)
        block = data.samples
    else:
        block = np.asarray(data)
        if not np.issubdtype(block.dtype, np.floating):
            raise InputError(f"samples must be floating point, got {block.dtype}", path=path)
        if block.ndim == 1:
            block = block[np.newaxis, :]
    if block.ndim != 2 or block.shape[0] != channels:
        raise InputError(f"block of shape {block.shape} does not match {channels} channels "
                         "(expected (channels, frames))", path=path)
    return np.ascontiguousarray(block, dtype=np.float32)


def _pick_rate(sample_rate: int, supported: Iterable[int] | None) -> int:
    """The rate (Hz) an encoder runs at: ``sample_rate`` if supported, else the nearest higher one
    it supports, else its highest."""
    rates = sorted(supported or ())
    if not rates or sample_rate in rates:
        return sample_rate
    higher = [r for r in rates if r > sample_rate]
    return higher[0] if higher else rates[-1]


def _packed_frame(block: np.ndarray, sample_rate: int, pts: int) -> av.AudioFrame:
    """An interleaved float32 PyAV frame from ``(channels, n)`` samples.

    Packed frames are used throughout because PyAV mishandles planar frames with 8 channels.
    """
    channels = block.shape[0]
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block.T).reshape(1, -1),
                                       format="flt", layout=_LAYOUTS[channels])
    frame.sample_rate = sample_rate
    frame.pts = pts
    frame.time_base = Fraction(1, sample_rate)
    return frame


def _frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """float32 ``(channels, n)`` from a packed float32 PyAV frame."""
    return frame.to_ndarray().reshape(-1, frame.layout.nb_channels).T


def _resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Resample ``(channels, n)`` float32 samples with FFmpeg's swresample (time-aligned)."""
    if from_hz == to_hz:
        return samples
    channels = samples.shape[0]
    resampler = av.AudioResampler(format="flt", layout=_LAYOUTS[channels], rate=to_hz)
    out: list[np.ndarray] = []
    step = 1 << 16
    for i in range(0, samples.shape[1], step):
        for frame in resampler.resample(_packed_frame(samples[:, i:i + step], from_hz, i)):
            out.append(_frame_samples(frame))
    for frame in resampler.resample(None):
        out.append(_frame_samples(frame))
    expected = round(samples.shape[1] * to_hz / from_hz)
    joined = np.concatenate(out, axis=1) if out else np.zeros((channels, 0), np.float32)
    return _fit_length(joined, expected)


def _vorbis_quality(bitrate_kbps: float, channels: int) -> float:
    """Vorbis quality level (0-10) whose nominal bitrate is closest to ``bitrate_kbps`` (approximate:
    Vorbis is variable-bitrate; the table is libvorbis' nominal rates for 44.1 kHz stereo)."""
    per_channel = bitrate_kbps / channels
    nominal = [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 250]  # kbps per channel, q0..q10
    return float(np.interp(per_channel, nominal, np.arange(11)))


def _default_kbps(codec: str, channels: int) -> float:
    """Default bitrate (kbps) of a lossy codec for a channel count."""
    kbps = _DEFAULT_KBPS_PER_CHANNEL[codec] * channels
    return min(kbps, _MAX_KBPS.get(codec, kbps))


# --------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class _Source:
    """An opened-and-probed input: what it holds and which backend decodes it."""

    path: Path
    info: AudioInfo
    backend: str
    """``soundfile`` or ``pyav``."""

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

    Only per-stream durations and single-stream Matroska/Ogg durations are trusted: raw MP3/ADTS
    container durations are bitrate estimates.
    """
    rate = stream.codec_context.sample_rate
    if stream.duration is not None and stream.time_base is not None:
        return round(float(stream.duration * stream.time_base) * rate)
    names = container.format.name.split(",")
    if len(container.streams) == 1 and container.duration and ("matroska" in names or "ogg" in names):
        return round(container.duration / av.time_base * rate)
    return None


def _probe_pyav(path: Path, frames_hint: int | None = None) -> _Source:
    """Probe ``path`` with PyAV; raise FormatError if it holds no decodable audio stream."""
    with _wrapped(path, "open the file as audio or video"), av.open(str(path)) as container:
        if not container.streams.audio:
            kinds = ", ".join(f"{s.type}/{s.codec_context.name}" for s in container.streams) or "nothing"
            raise FormatError(f"not an audio file: contains no audio stream (it holds: {kinds})",
                              path=path)
        if "ogg" in container.format.name.split(","):
            _check_ogg_complete(path)
        stream = container.streams.best("audio") or container.streams.audio[0]
        ctx = stream.codec_context
        rate, channels = ctx.sample_rate, ctx.channels
        if not rate or not channels:
            raise FormatError("audio stream has no sample rate or channel count", path=path)
        frames = frames_hint
        if frames is None:
            frames = _av_declared_frames(container, stream)
        if frames is None and container.duration:
            frames = round(container.duration / av.time_base * rate)
        info = AudioInfo(sample_rate=rate, channels=channels, frames=int(frames or 0),
                         format=_av_format_name(container, path),
                         subtype=_AV_SUBTYPES.get(ctx.name, ctx.name.upper()))
    return _Source(path, info, "pyav")


def _check_sf_log(path: Path, log: str, major: str) -> None:
    """Raise FormatError if libsndfile's parse log shows a truncated or damaged file."""
    if major in ("WAV", "WAVEX"):
        for declared, actual in _WAV_DATA_RE.findall(log):
            declared_n, actual_n = int(declared), int(actual)
            # 0 and 0xFFFFFFFF mark streamed WAVs of unknown length, not truncation.
            if declared_n > actual_n + 1 and 0 < declared_n < 0xFFFFFF00:
                raise FormatError(f"file is truncated: header declares {declared_n} bytes of audio "
                                  f"data, the file holds {actual_n}", path=path)
    if major == "OGG":
        for marker in _OGG_DAMAGE_MARKERS:
            if marker in log:
                raise FormatError(f"Ogg stream is truncated or damaged ({marker.lower()})", path=path)
        _check_ogg_complete(path)


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


def _open_source(path: PathLike) -> _Source:
    """Probe ``path`` and choose its backend; raise InputError/FormatError for unusable files."""
    path = Path(path)
    _check_file(path)
    try:
        with sf.SoundFile(str(path)) as f:
            major, subtype, rate, channels, frames = f.format, f.subtype, f.samplerate, f.channels, f.frames
            log = f.extra_info
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError):
        major = None
    if major is None or major == "MP3":
        # MP3 goes through FFmpeg for the same decoder (and encoder delay handling) as the writer.
        return _probe_pyav(path)
    _check_sf_log(path, log, major)
    if subtype == "OPUS":
        # libsndfile returns multichannel Opus in a wrong channel order; FFmpeg maps it correctly
        # and always decodes Opus at 48 kHz.
        return _probe_pyav(path, frames_hint=round(frames * 48_000 / rate))
    fmt = {"WAV": "wav", "WAVEX": "wav", "RF64": "wav"}.get(major, major.lower())
    info = AudioInfo(sample_rate=rate, channels=channels, frames=frames, format=fmt, subtype=subtype)
    return _Source(path, info, "soundfile")


def _sf_chunks(source: _Source, start_frame: int, block_frames: int = 1 << 16) -> Iterator[np.ndarray]:
    """Decode a libsndfile-readable file in blocks of ``block_frames``."""
    path = source.path
    with _wrapped(path, "decode the audio"), sf.SoundFile(str(path)) as f:
        if start_frame:
            f.seek(start_frame)
        perm = _VORBIS_FROM_WAV.get(f.channels) if f.format == "OGG" else None
        while True:
            block = f.read(block_frames, dtype="float32", always_2d=True)
            if block.shape[0] == 0:
                break
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
        stream = container.streams.best("audio") or container.streams.audio[0]
        declared = _av_declared_frames(container, stream)
        limit = declared if "mp4" in container.format.name.split(",") else None
        decoded = 0
        for block in _decode_stream(container, stream):
            if limit is not None:
                block = block[:, : max(0, limit - decoded)]
            decoded += block.shape[1]
            if block.shape[1]:
                yield block
        rate = stream.codec_context.sample_rate
        if declared:
            missing = declared - decoded
            if missing > max(_TRUNCATION_MIN_S * rate, _TRUNCATION_FRACTION * declared):
                raise FormatError(f"file is truncated or damaged: decoded {decoded / rate:.3f} s of "
                                  f"the {declared / rate:.3f} s its header declares", path=path)


def _decode_stream(container: av.container.InputContainer, stream: av.AudioStream
                   ) -> Iterator[np.ndarray]:
    """Every decoded frame of ``stream`` as float32 ``(channels, n)`` samples (via packed float
    frames, see :func:`_packed_frame`)."""
    resampler: av.AudioResampler | None = None
    for frame in container.decode(stream):
        if resampler is None:
            resampler = av.AudioResampler(format="flt", layout=frame.layout, rate=frame.sample_rate)
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


def audio_info(path: PathLike) -> AudioInfo:
    """What ``path`` holds (rate in Hz, channels, frames, container format, subtype), without
    decoding it.

    ``frames`` is exact for WAV/FLAC/Ogg and taken from the header for compressed formats (an
    estimate when the header has no length). Rate and channel limits are not enforced here; the
    readers enforce them. Raises InputError/FormatError for missing, empty or unreadable files.
    """
    return _open_source(path).info


def read_audio(path: PathLike, *, start_s: float | None = None,
               duration_s: float | None = None) -> Audio:
    """Decode ``path`` (an audio file or the audio track of a video) into float32 samples.

    ``start_s`` and ``duration_s`` (seconds) select a window; compressed formats are decoded from
    the start so the window is sample-exact. The returned :class:`Audio` keeps the source's
    ``subtype`` (``PCM_16``, ``PCM_24``, ``FLOAT``, ``MP3``, ``AAC``, ``OPUS``, ``VORBIS``, ...).
    Raises InputError for missing/empty files, zero-length audio, NaN/Inf samples and unsupported
    rates/channels; FormatError for corrupt, truncated or non-audio files.

    For a video, sample 0 is the first sample of its audio track, which may start after time 0 of
    the video's timeline; :func:`replace_audio_track` keeps that offset by default.
    """
    source = _open_source(path)
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


def iter_audio_blocks(path: PathLike, block_frames: int) -> Iterator[Audio]:
    """Stream ``path`` as consecutive :class:`Audio` blocks of ``block_frames`` frames (the last
    may be shorter), holding only about one block in memory, for files of any length.

    The same checks as :func:`read_audio` apply; NaN/Inf or damage found mid-stream raise when
    reached.
    """
    if int(block_frames) != block_frames or block_frames < 1:
        raise InputError(f"block_frames must be a positive integer, got {block_frames}", path=path)
    source = _open_source(path)
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


def is_video(path: PathLike) -> bool:
    """True if ``path`` holds a video stream (not just cover art or a still image).

    Raises InputError for a missing or empty file; other unreadable files return False.
    """
    path = Path(path)
    _check_file(path)
    try:
        with av.open(str(path)) as container:
            names = container.format.name
            # still images, and text that FFmpeg renders as ANSI art, are not videos
            if names.endswith("_pipe") or names in ("image2", "tty"):
                return False
            return any(_is_moving_picture(s) for s in container.streams.video)
    except (av.FFmpegError, OSError, ValueError):
        return False


def is_video_extension(path: PathLike) -> bool:
    """Whether ``path``'s extension names a video container :func:`replace_audio_track` writes."""
    return Path(path).suffix.lower().lstrip(".") in _VIDEO_MUXERS


def _is_moving_picture(stream: av.VideoStream) -> bool:
    """False for attached pictures (cover art in MP3/M4A)."""
    return not (stream.disposition & av.stream.Disposition.attached_pic)


# --------------------------------------------------------------------------------------------
# Writing


def _resolve_format(path: Path, format: str | None) -> _WriteFormat:
    """The output format named by ``format`` or, if None, by the extension of ``path``."""
    key = (format or path.suffix.lstrip(".")).lower()
    key = _FORMAT_ALIASES.get(key, key)
    if key not in WRITE_FORMATS:
        named = f"format {format!r}" if format else f"extension {path.suffix!r}"
        raise FormatError(f"cannot write audio with {named}; supported: "
                          f"{', '.join(sorted(WRITE_FORMATS))}", path=path)
    return WRITE_FORMATS[key]


def _resolve_subtype(fmt: _WriteFormat, subtype: str | None, hint: str | None, path: Path) -> str:
    """The subtype to write: the explicit one (must suit the format), else the source's subtype
    if the format takes it, else 24-bit for high-resolution sources, else the format default."""
    if subtype:
        chosen = subtype.upper()
        if chosen not in fmt.subtypes:
            raise FormatError(f"{fmt.key} cannot hold subtype {subtype!r}; it takes "
                              f"{', '.join(fmt.subtypes)}", path=path)
        return chosen
    hint = (hint or "").upper()
    if hint in fmt.subtypes:
        return hint
    if hint in _HIGH_RES_SUBTYPES and "PCM_24" in fmt.subtypes:
        return "PCM_24"
    return fmt.subtypes[0]


class _SoundFileSink:
    """Writes blocks through libsndfile (WAV, FLAC, Ogg Vorbis) to a path or a binary buffer."""

    def __init__(self, target: Path | BinaryIO, fmt: _WriteFormat, subtype: str, sample_rate: int,
                 channels: int, *, bitrate_kbps: float | None, quality: float | None = None,
                 frames_hint: int | None = None) -> None:
        major = fmt.container
        kwargs: dict[str, Any] = {}
        auto_rf64 = False
        if major == "ogg":
            major = "OGG"
            if quality is None:
                kbps = bitrate_kbps or _default_kbps("VORBIS", channels)
                quality = _vorbis_quality(kbps, channels)
            # libsndfile maps compression level c to Vorbis quality (1 - c) * 10.
            kwargs["compression_level"] = float(np.clip(1.0 - quality / 10.0, 0.0, 1.0))
        if major == "WAV":
            bytes_per_frame = channels * {"PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}.get(subtype, 2)
            if frames_hint is None:
                major, auto_rf64 = "RF64", True
            elif frames_hint * bytes_per_frame > 0xFFFF0000:
                major = "RF64"  # plain WAV cannot describe more than 4 GiB of data
        self._file = sf.SoundFile(target if not isinstance(target, Path) else str(target), "w",
                                  samplerate=sample_rate, channels=channels, format=major,
                                  subtype=subtype, **kwargs)
        if auto_rf64:
            # Unknown length: start as RF64 and let libsndfile rewrite the header as WAV on close
            # when the data stays under 4 GiB.
            # soundfile has no wrapper for this command; 0x1210 is SFC_RF64_AUTO_DOWNGRADE.
            sf._snd.sf_command(self._file._file, 0x1210, sf._ffi.NULL, 1)
        self._bits = _INT_BITS.get(subtype)
        self._clip = subtype not in ("FLOAT", "DOUBLE", "VORBIS")
        self._perm = _VORBIS_FROM_WAV.get(channels) if major == "OGG" else None
        self._double = subtype == "DOUBLE"

    def write(self, block: np.ndarray) -> None:
        """Write float32 ``(channels, n)`` samples."""
        if self._perm is not None:
            block = block[self._perm]
        if self._bits is not None:
            data = _float_to_int(block, self._bits)
        elif self._clip:
            data = np.clip(block, -1.0, 1.0)
        else:
            data = block.astype(np.float64) if self._double else block
        self._file.write(np.ascontiguousarray(data.T))

    def close(self) -> None:
        self._file.close()


class _AvAudioEncoder:
    """Encodes float32 blocks into one new audio stream of an open PyAV output container,
    resampling first when the codec cannot run at the input rate."""

    def __init__(self, container: av.container.OutputContainer, codec: str, sample_rate: int,
                 channels: int, *, bitrate_kbps: float | None,
                 options: dict[str, str] | None = None) -> None:
        encoder = _AV_ENCODERS[codec]
        rate = _pick_rate(sample_rate, av.Codec(encoder, "w").audio_rates)
        self.sample_rate = sample_rate
        self.codec_rate = rate
        self.stream = container.add_stream(encoder, rate=rate, layout=_LAYOUTS[channels])
        if codec != "FLOAT":  # uncompressed PCM has no bitrate to choose
            self.stream.bit_rate = int(1000 * (bitrate_kbps or _default_kbps(codec, channels)))
        if options:
            self.stream.options = options
        self._resampler = (av.AudioResampler(format="flt", layout=_LAYOUTS[channels], rate=rate)
                           if rate != sample_rate else None)
        self._pts = 0

    def encode(self, block: np.ndarray) -> list[av.Packet]:
        """Encode float32 ``(channels, n)`` samples at the input rate; return ready packets."""
        if block.shape[1] == 0:
            return []
        frame = _packed_frame(block, self.sample_rate, self._pts)
        self._pts += block.shape[1]
        frames = self._resampler.resample(frame) if self._resampler else [frame]
        return [packet for f in frames for packet in self.stream.encode(f)]

    def flush(self) -> list[av.Packet]:
        """Drain the resampler and the encoder; return the last packets."""
        packets: list[av.Packet] = []
        if self._resampler is not None:
            for f in self._resampler.resample(None):
                packets.extend(self.stream.encode(f))
        packets.extend(self.stream.encode(None))
        return packets


class _AvSink:
    """Writes blocks through PyAV (MP3, AAC, Opus) into a container file or binary buffer."""

    def __init__(self, target: Path | BinaryIO, fmt: _WriteFormat, subtype: str, sample_rate: int,
                 channels: int, *, bitrate_kbps: float | None) -> None:
        self._container = av.open(target if not isinstance(target, Path) else str(target), "w",
                                  format=fmt.container)
        try:
            self._encoder = _AvAudioEncoder(self._container, subtype, sample_rate, channels,
                                            bitrate_kbps=bitrate_kbps)
        except BaseException:
            self._container.close()
            raise

    def write(self, block: np.ndarray) -> None:
        """Encode and mux float32 ``(channels, n)`` samples."""
        for packet in self._encoder.encode(block):
            self._container.mux(packet)

    def close(self) -> None:
        try:
            for packet in self._encoder.flush():
                self._container.mux(packet)
        finally:
            self._container.close()


def _open_sink(target: Path | BinaryIO, fmt: _WriteFormat, subtype: str, sample_rate: int,
               channels: int, *, bitrate_kbps: float | None, quality: float | None = None,
               frames_hint: int | None = None) -> _SoundFileSink | _AvSink:
    """The sink that writes ``subtype`` in ``fmt``."""
    if subtype in _AV_ENCODERS:
        return _AvSink(target, fmt, subtype, sample_rate, channels, bitrate_kbps=bitrate_kbps)
    return _SoundFileSink(target, fmt, subtype, sample_rate, channels, bitrate_kbps=bitrate_kbps,
                          quality=quality, frames_hint=frames_hint)


class AudioWriter:
    """Streaming, atomic audio writer (a context manager).

    ``AudioWriter(path, sample_rate_hz, channels, format=..., subtype=..., bitrate_kbps=...)``
    writes to a temporary file beside ``path`` and renames it onto ``path`` when the ``with``
    block ends without error; on an exception (or if nothing was written) the temporary file is
    deleted and ``path`` is left as it was. ``format`` defaults to the extension of ``path``
    (see :data:`WRITE_FORMATS`); ``subtype`` to the format's default (WAV/FLAC: PCM_16).
    ``bitrate_kbps`` applies to lossy formats (for Vorbis it picks the nearest quality level) and
    is ignored by lossless ones. ``frames_hint`` (expected total frames) lets WAV output use a
    plain WAV header; without it WAV is written as RF64 that libsndfile downgrades to WAV
    (WAVE_FORMAT_EXTENSIBLE) on close when it stays under 4 GiB. See the module docstring for
    clipping and resampling rules.
    """

    def __init__(self, path: PathLike, sample_rate: int, channels: int, *, format: str | None = None,
                 subtype: str | None = None, bitrate_kbps: float | None = None,
                 frames_hint: int | None = None) -> None:
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        _check_params(self.sample_rate, self.channels, self.path)
        if bitrate_kbps is not None and not (math.isfinite(bitrate_kbps) and bitrate_kbps > 0):
            raise InputError(f"bitrate_kbps must be > 0, got {bitrate_kbps}", path=self.path)
        self.format = _resolve_format(self.path, format)
        self.subtype = _resolve_subtype(self.format, subtype, None, self.path)
        _check_codec_channels(self.subtype, self.channels, self.path)
        self.bitrate_kbps = bitrate_kbps
        self.frames_written = 0
        """Frames written so far, at ``sample_rate``."""
        self._frames_hint = frames_hint
        self._stack: contextlib.ExitStack | None = None
        self._sink: _SoundFileSink | _AvSink | None = None

    def __enter__(self) -> AudioWriter:
        if not self.path.parent.is_dir():
            raise InputError("output directory does not exist", path=self.path)
        stack = contextlib.ExitStack()
        tmp = stack.enter_context(atomic_path(self.path, mode=_output_mode()))
        try:
            with _wrapped(self.path, f"open a {self.format.key} writer"):
                self._sink = _open_sink(tmp, self.format, self.subtype, self.sample_rate,
                                        self.channels, bitrate_kbps=self.bitrate_kbps,
                                        frames_hint=self._frames_hint)
        except BaseException as exc:
            stack.__exit__(type(exc), exc, exc.__traceback__)  # deletes the temporary file
            raise
        self._stack = stack
        return self

    def write(self, data: Audio | np.ndarray) -> None:
        """Append float samples ``(channels, frames)`` (or an :class:`Audio` at the writer's rate).

        Raises InputError for a wrong shape or rate and for NaN/Inf samples.
        """
        if self._sink is None:
            raise InputError("AudioWriter.write called outside its 'with' block", path=self.path)
        block = _as_block(data, self.channels, self.sample_rate, self.path)
        _check_finite(block, self.path, self.frames_written, self.sample_rate)
        with _wrapped(self.path, f"encode {self.format.key} audio"):
            self._sink.write(block)
        self.frames_written += block.shape[1]

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        sink, stack = self._sink, self._stack
        self._sink = self._stack = None
        if stack is None or sink is None:
            return
        if exc is None and self.frames_written == 0:
            exc = InputError("no audio was written (zero length)", path=self.path)
            self._abort(sink, stack, exc)
            raise exc
        if exc is not None:
            self._abort(sink, stack, exc)
            return
        try:
            with _wrapped(self.path, f"finish the {self.format.key} file"):
                sink.close()
        except BaseException as close_exc:
            stack.__exit__(type(close_exc), close_exc, close_exc.__traceback__)
            raise
        stack.__exit__(None, None, None)  # renames the temporary file onto the target

    @staticmethod
    def _abort(sink: _SoundFileSink | _AvSink, stack: contextlib.ExitStack,
               exc: BaseException) -> None:
        """Close the sink quietly and delete the temporary file."""
        with contextlib.suppress(Exception):
            sink.close()
        stack.__exit__(type(exc), exc, exc.__traceback__)


def write_audio(path: PathLike, audio: Audio, *, format: str | None = None,
                subtype: str | None = None, bitrate_kbps: float | None = None) -> None:
    """Write ``audio`` to ``path`` atomically, in the format given by ``format`` or the extension.

    Without ``subtype``, the audio's own subtype is kept when the format can hold it (a PCM_24
    input stays PCM_24 in WAV/FLAC), so outputs match inputs. Integer outputs are rounded and
    clipped, never wrapped. Raises InputError for invalid audio (NaN/Inf, zero length,
    unsupported rate/channels) and FormatError for an unknown or unsuitable format.
    """
    path = Path(path)
    _validate_audio(audio, path)
    fmt = _resolve_format(path, format)
    chosen = _resolve_subtype(fmt, subtype, audio.subtype, path)
    with AudioWriter(path, audio.sample_rate, audio.channels, format=fmt.key, subtype=chosen,
                     bitrate_kbps=bitrate_kbps, frames_hint=audio.frames) as writer:
        writer.write(audio.samples)


def _check_codec_channels(subtype: str, channels: int, path: PathLike | None) -> None:
    """Raise FormatError if the codec cannot carry ``channels`` channels."""
    limit = _MAX_CHANNELS_BY_CODEC.get(subtype)
    if limit is not None and channels > limit:
        raise FormatError(f"{subtype} carries at most {limit} channels, got {channels}", path=path)


def _validate_audio(audio: Audio, path: PathLike | None) -> None:
    """:meth:`Audio.validate` with the file named in the error."""
    try:
        audio.validate()
    except InputError as exc:
        raise InputError(exc.message, path=path) from None


# --------------------------------------------------------------------------------------------
# Lossy round trip


_ROUND_TRIP_MUXERS = {"MP3": "mp3", "AAC": "mp4", "OPUS": "ogg"}
"""Containers that record encoder delay (LAME tag, MP4 edit list, Ogg pre-skip), so decoding
returns samples aligned with the input."""


def encode_decode(audio: Audio, codec: str, bitrate_kbps: float | None = None, *,
                  quality: float | None = None) -> Audio:
    """Encode ``audio`` with a lossy codec in memory and decode it again (an attack or a preview).

    ``codec`` is one of :data:`LOSSY_CODECS`. ``bitrate_kbps`` is the whole stream's bitrate
    (default: the writer defaults), except MP3 of more than 2 channels, which is coded as separate
    1-2 channel streams at ``bitrate_kbps`` each. ``quality`` (Vorbis only) is the Vorbis quality
    level 0..10 and overrides the bitrate. FLAC rounds to 16 bits and is otherwise lossless.

    The result has the input's rate, channel count, length and subtype, and lines up with it in
    time within a few samples: encoder delay is removed using the container's own records, rates
    the codec cannot carry are resampled (FFmpeg swresample) there and back, and the decoded
    signal is trimmed or zero-padded to the input length. Vorbis and FLAC run through libsndfile
    (libvorbis; PyAV's wheels carry only FFmpeg's experimental Vorbis encoder).
    """
    _validate_audio(audio, None)
    key = codec.lower()
    if key not in LOSSY_CODECS:
        raise FormatError(f"unknown codec {codec!r}; supported: {', '.join(LOSSY_CODECS)}")
    if quality is not None and key != "vorbis":
        raise FormatError(f"quality= applies to vorbis only; give bitrate_kbps for {key}")
    if bitrate_kbps is not None and not (math.isfinite(bitrate_kbps) and bitrate_kbps > 0):
        raise InputError(f"bitrate_kbps must be > 0, got {bitrate_kbps}")
    subtype = key.upper()
    group = _MAX_CHANNELS_BY_CODEC.get(subtype, audio.channels)
    parts = [
        _round_trip(audio.samples[c:c + group], audio.sample_rate, subtype, bitrate_kbps, quality)
        for c in range(0, audio.channels, group)
    ]
    samples = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    return Audio(_fit_length(samples, audio.frames), audio.sample_rate, subtype=audio.subtype)


def _round_trip(samples: np.ndarray, sample_rate: int, subtype: str, bitrate_kbps: float | None,
                quality: float | None) -> np.ndarray:
    """Encode then decode ``(channels, n)`` samples in memory; return the decoded samples at
    ``sample_rate`` (length not yet fitted)."""
    channels = samples.shape[0]
    buffer = io.BytesIO()
    with _wrapped(None, f"encode {subtype} in memory"):
        if subtype in _AV_ENCODERS:
            fmt = _WriteFormat(subtype.lower(), _ROUND_TRIP_MUXERS[subtype], (subtype,))
            sink: _SoundFileSink | _AvSink = _AvSink(buffer, fmt, subtype, sample_rate, channels,
                                                     bitrate_kbps=bitrate_kbps)
        else:
            fmt = WRITE_FORMATS["ogg" if subtype == "VORBIS" else "flac"]
            sink = _SoundFileSink(buffer, fmt, "VORBIS" if subtype == "VORBIS" else "PCM_16",
                                  sample_rate, channels, bitrate_kbps=bitrate_kbps, quality=quality)
        step = 1 << 16
        for i in range(0, samples.shape[1], step):
            sink.write(np.ascontiguousarray(samples[:, i:i + step]))
        sink.close()
    data = buffer.getvalue()
    with _wrapped(None, f"decode {subtype} in memory"):
        decoded, rate = _decode_bytes(data, subtype)
    return _resample(decoded, rate, sample_rate)


def _decode_bytes(data: bytes, subtype: str) -> tuple[np.ndarray, int]:
    """Decode an in-memory file; return float32 ``(channels, n)`` samples and their rate (Hz)."""
    if subtype in ("VORBIS", "FLAC"):
        block, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        block = block.T
        perm = _VORBIS_FROM_WAV.get(block.shape[0]) if subtype == "VORBIS" else None
        if perm is not None:
            wav = np.empty_like(block)
            wav[perm] = block
            block = wav
        return block, rate
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        out = list(_decode_stream(container, stream))
        return np.concatenate(out, axis=1), stream.codec_context.sample_rate


# --------------------------------------------------------------------------------------------
# Video


def replace_audio_track(video_in: PathLike, audio: Audio, video_out: PathLike, *,
                        codec: str | None = None, bitrate_kbps: float | None = 192,
                        start_s: float | None = None) -> None:
    """Write ``video_out``: the video stream(s) of ``video_in`` copied packet for packet (no
    re-encode) plus ``audio`` encoded as its only audio track; the old audio is dropped.

    The output container follows the extension of ``video_out`` (mp4, m4v, mov, mkv, webm).
    ``codec`` is ``aac`` (default for MP4/MOV/MKV; FFmpeg's fast coder), ``opus`` (default, and the
    only choice, for WebM), ``mp3``, or ``float`` (uncompressed 32-bit float PCM, MKV only: a
    lossless intermediate); ``bitrate_kbps`` is the audio bitrate.

    ``start_s`` is the time (s, on the video's timeline) at which the first sample plays. By
    default it is the start time of the audio track being replaced (0.0 if there is none), so
    audio read with :func:`read_audio` from ``video_in`` and written back stays in sync even when
    the track starts late (real files often start it tens of ms after time 0). Pass
    ``start_s=0.0`` for audio made against the video's own timeline, e.g. a generated soundtrack.
    The new track always starts at time 0, with ``start_s`` of leading silence: MP4/MOV cannot
    both delay an AAC track and trim its encoder priming, so silence is the portable way.

    Written atomically. Raises FormatError if ``video_in`` has no video stream or the container
    cannot hold the streams.
    """
    video_in, video_out = Path(video_in), Path(video_out)
    _check_file(video_in)
    _validate_audio(audio, video_out)
    ext = video_out.suffix.lower().lstrip(".")
    if ext not in _VIDEO_MUXERS:
        raise FormatError(f"cannot write video with extension {video_out.suffix!r}; supported: "
                          f"{', '.join(sorted(_VIDEO_MUXERS))}", path=video_out)
    muxer, format_key = _VIDEO_MUXERS[ext]
    allowed = WRITE_FORMATS[format_key].subtypes
    subtype = (codec or allowed[0]).upper()
    if subtype not in allowed:
        raise FormatError(f"a {ext} file cannot carry {subtype} audio; use "
                          f"{' or '.join(s.lower() for s in allowed)}", path=video_out)
    _check_codec_channels(subtype, audio.channels, video_out)
    if start_s is not None and not (math.isfinite(start_s) and start_s >= 0):
        raise InputError(f"start_s must be a finite time >= 0 s, got {start_s}", path=video_out)
    with _wrapped(video_in, "read the video"), av.open(str(video_in)) as src:
        videos = [s for s in src.streams.video if _is_moving_picture(s)]
        if not videos:
            raise FormatError("contains no video stream", path=video_in)
        if start_s is None:
            start_s = _audio_start_s(src)
        start_frame = round(start_s * audio.sample_rate)
        with atomic_path(video_out, mode=_output_mode()) as tmp, \
                _wrapped(video_out, f"write the {ext} file"), \
                av.open(str(tmp), "w", format=muxer) as dst:
            _remux_with_audio(src, videos, dst, audio, subtype, bitrate_kbps, start_frame)


def _timeline_blocks(audio: Audio, start_frame: int, chunk: int) -> Iterator[np.ndarray]:
    """The new audio track from time 0 in blocks of at most ``chunk`` frames: ``start_frame``
    frames of silence, then the samples of ``audio``."""
    for i in range(0, start_frame, chunk):
        yield np.zeros((audio.channels, min(chunk, start_frame - i)), np.float32)
    for i in range(0, audio.frames, chunk):
        yield audio.samples[:, i:i + chunk]


def _audio_start_s(container: av.container.InputContainer) -> float:
    """Start time (s) of the main audio stream on the container timeline; 0.0 without audio."""
    if not container.streams.audio:
        return 0.0
    stream = container.streams.best("audio") or container.streams.audio[0]
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return max(0.0, float(stream.start_time * stream.time_base))


def _remux_with_audio(src: av.container.InputContainer, videos: list[av.VideoStream],
                      dst: av.container.OutputContainer, audio: Audio, subtype: str,
                      bitrate_kbps: float | None, start_frame: int) -> None:
    """Copy the packets of ``videos`` into ``dst`` and encode ``audio`` alongside, starting at
    frame ``start_frame`` of the timeline, interleaved (audio runs about 1 s ahead of the video
    packets so the muxer never buffers much)."""
    out_streams = {s: dst.add_stream_from_template(s) for s in videos}
    # A soundtrack for video is delivered at a generous bitrate, where FFmpeg's "fast" AAC
    # coder is transparent and three times faster than its default two-loop search.
    options = {"aac_coder": "fast"} if subtype == "AAC" else None
    encoder = _AvAudioEncoder(dst, subtype, audio.sample_rate, audio.channels,
                              bitrate_kbps=bitrate_kbps, options=options)
    blocks = _timeline_blocks(audio, start_frame, max(1, audio.sample_rate // 4))
    pending = next(blocks, None)
    position = 0  # frames of the track encoded so far, from time 0

    def feed_audio_until(t_s: float) -> None:
        nonlocal pending, position
        while pending is not None and position < t_s * audio.sample_rate:
            for packet in encoder.encode(pending):
                dst.mux(packet)
            position += pending.shape[1]
            pending = next(blocks, None)

    for packet in src.demux(videos):
        if packet.size == 0:
            continue  # demuxer flush packet, carries no data
        # Matroska stores no DTS, so its first packets of B-frame video come without one
        stamp = packet.dts if packet.dts is not None else packet.pts
        if stamp is not None:
            feed_audio_until(float(stamp * packet.time_base) + 1.0)
        packet.stream = out_streams[packet.stream]
        dst.mux(packet)
    feed_audio_until(math.inf)
    for packet in encoder.flush():
        dst.mux(packet)
