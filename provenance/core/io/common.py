"""What the readers and writers share: the format tables, the checks on files and samples that
name the problem, and conversions of samples (integer scaling, resampling, PyAV frames)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from provenance.core.audio import Audio, check_audio_params
from provenance.core.errors import FoleySealError, FormatError, InputError


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
_AV_ENCODERS = {"MP3": "libmp3lame", "AAC": "aac", "OPUS": "libopus", "FLOAT": "pcm_f32le",
                "PCM_16": "pcm_s16le", "PCM_24": "pcm_s24le", "FLAC": "flac", "ALAC": "alac"}
_AV_PCM = frozenset({"FLOAT", "PCM_16", "PCM_24"})
"""Uncompressed PCM in FFmpeg's containers (MP4, MOV, Matroska): a lossless track stays lossless."""
_AV_LOSSLESS_CODED = {"FLAC": "s32", "ALAC": "s32p"}
"""Lossless codecs written through FFmpeg (into Matroska, MP4, MOV, M4A), always at 24 bits: the
sample format each encoder takes for that. FFmpeg reports no bit depth of a FLAC or ALAC track it
reads, and 24 bits hold a 16-bit source whole."""
_MAX_CHANNELS_BY_CODEC = {"MP3": 2}
# Default bitrates, kbps per channel at up to 48 kHz (capped for MP3, which carries at most 2
# channels). Above 48 kHz (AAC runs up to 96 kHz) the default grows with the rate: at a fixed
# bitrate an AAC encoder spreads its bits over twice the bandwidth at 96 kHz, and a 96 kHz AAC file
# re-encoded at 96 kbps per channel lost the mark of full-band content that 48 kHz files keep.
_DEFAULT_KBPS_PER_CHANNEL = {"MP3": 96, "AAC": 96, "OPUS": 64, "VORBIS": 96}
LOSSY_SUBTYPES = frozenset(_DEFAULT_KBPS_PER_CHANNEL)
"""Subtypes (as :func:`~provenance.core.io.audio_info` reports them) of the lossy codecs written here."""
_DEFAULT_KBPS_RATE_HZ = 48000
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
        _WriteFormat("aiff", "AIFF", ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_S8", "ULAW", "ALAW")),
        _WriteFormat("caf", "CAF", ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_S8", "ULAW", "ALAW")),
        _WriteFormat("w64", "W64", ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8", "ULAW", "ALAW")),
        _WriteFormat("au", "AU", ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_S8", "ULAW", "ALAW")),
        _WriteFormat("ogg", "ogg", ("VORBIS", "OPUS")),
        _WriteFormat("opus", "ogg", ("OPUS",)),
        _WriteFormat("mp3", "mp3", ("MP3",)),
        _WriteFormat("m4a", "ipod", ("AAC", "ALAC")),
        _WriteFormat("aac", "adts", ("AAC",)),
        _WriteFormat("mp4", "mp4", ("AAC", "MP3", "OPUS", "PCM_16", "PCM_24", "FLOAT", "FLAC", "ALAC")),
        _WriteFormat("mov", "mov", ("AAC", "PCM_16", "PCM_24", "FLOAT", "ALAC")),
        _WriteFormat("mkv", "matroska", ("AAC", "OPUS", "MP3", "FLOAT", "PCM_16", "PCM_24", "FLAC", "ALAC")),
        _WriteFormat("webm", "webm", ("OPUS",)),
    )
}
"""Output formats by key (the file extension without the dot)."""

_FORMAT_ALIASES = {"wave": "wav", "oga": "ogg", "mka": "mkv", "matroska": "mkv", "m4v": "mp4", "adts": "aac",
                   "aif": "aiff", "aifc": "aiff", "snd": "au"}

# Video containers that replace_audio_track can write: extension -> (muxer, WRITE_FORMATS key whose
# subtypes list the audio codecs it takes, the first being the default).
_VIDEO_MUXERS = {"mp4": ("mp4", "mp4"), "m4v": ("mp4", "mp4"), "mov": ("mov", "mov"),
                 "mkv": ("matroska", "mkv"), "webm": ("webm", "webm")}

LOSSY_CODECS = ("mp3", "aac", "opus", "vorbis", "flac")
"""Codec names accepted by :func:`encode_decode` (flac is lossless apart from 16-bit rounding)."""



# --------------------------------------------------------------------------------------------
# Errors and checks


def tagged_duration_s(stream: av.stream.Stream) -> float | None:
    """A stream's duration from its ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``), seconds: how
    Matroska and WebM declare it, where the stream itself says nothing; None without one."""
    tag = (stream.metadata or {}).get("DURATION")
    try:
        h, m, sec = tag.split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except (AttributeError, ValueError):
        return None


COUNTED_TIMESTAMPS = frozenset({"mp3", "aac"})
"""FFmpeg demuxers (MP3, raw ADTS AAC) whose timestamps are counted from the frames found, not
read from the file: a gap in them is no evidence of audio missing at that time."""

GAP_FILL_MAX_S = 10.0
"""Longest jump in an audio stream's timestamps filled with silence, seconds, and the most silence
filled in all beyond as much as the stream holds sound: a longer jump is a damaged timestamp, not
audio a recorder lost (one cluster's time off by 30 minutes turned an 8 s video into a 30-minute
marked file)."""


def gap_fillable(gap_s: float, filled_s: float, sound_s: float) -> bool:
    """Whether a jump of ``gap_s`` seconds in an audio stream's timestamps is audio lost there
    (filled with silence), after ``filled_s`` seconds of silence already filled and ``sound_s``
    seconds of audio decoded; else it is a damaged timestamp (see :data:`GAP_FILL_MAX_S`)."""
    return gap_s <= GAP_FILL_MAX_S and filled_s + gap_s <= max(GAP_FILL_MAX_S, sound_s)


def timeline_start_s(container: av.container.InputContainer, stream: av.stream.Stream) -> float:
    """Where ``stream``'s first frame plays on the file's timeline, seconds after the earliest
    stream's start (the container's); 0.0 when the container does not say. A remux that delays
    the audio against the picture (an A/V sync fix) leaves the audio's own samples unchanged and
    moves this start."""
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    start = float(stream.start_time * stream.time_base)
    first = container.start_time / av.time_base if container.start_time is not None else min(start, 0.0)
    return max(0.0, start - first)


def _check_file(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` is an existing, non-empty regular file."""
    try:
        os.stat(path)
    except FileNotFoundError:
        raise InputError("file not found", path=path) from None
    except OSError as exc:  # a loop of symbolic links, a name too long...: "not found" misleads
        raise InputError(f"cannot open: {exc.strerror or exc}", path=path) from None
    if not path.is_file():
        raise InputError("not a regular file", path=path)
    if path.stat().st_size == 0:
        raise InputError("file is empty (0 bytes)", path=path)


def library_message(exc: BaseException) -> str:
    """What a decoding library's exception says, without the file name it adds: libsndfile
    quotes a byte-string path (``Error opening b'x.wav': ...``) and FFmpeg an ``[Errno N]``, and
    the caller's message names the file already."""
    if isinstance(exc, sf.LibsndfileError) and getattr(exc, "error_string", None):
        return str(exc.error_string).strip()
    if isinstance(exc, av.FFmpegError) and getattr(exc, "strerror", None):
        return str(exc.strerror).strip()
    return str(exc).strip() or type(exc).__name__


@contextlib.contextmanager
def _wrapped(path: PathLike | None, action: str) -> Iterator[None]:
    """Turn soundfile/PyAV/OS failures inside the block into :class:`FormatError` naming ``path``."""
    try:
        yield
    except FoleySealError:
        raise
    except PermissionError as exc:  # nothing about the data: this user may not read (or write) it
        raise InputError(f"cannot {action}: permission denied", path=path) from exc
    except (av.FFmpegError, sf.LibsndfileError, RuntimeError, ValueError, OSError, EOFError) as exc:
        detail = library_message(exc)
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
    end_s = (offset_frames + block.shape[-1]) / sample_rate
    # counted in the block read so far: the rest of the file is not read to count more
    raise InputError(
        f"contains invalid samples: the first at {at_s:.3f} s; {n_nan} NaN and {n_inf} infinite values "
        f"counted up to {end_s:.3f} s, where reading stopped", path=path)


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


def _default_kbps(codec: str, channels: int, sample_rate_hz: int = _DEFAULT_KBPS_RATE_HZ) -> float:
    """Default bitrate (kbps) of a lossy codec for a channel count at the rate it encodes at (Hz)."""
    kbps = _DEFAULT_KBPS_PER_CHANNEL[codec] * channels * max(1.0, sample_rate_hz / _DEFAULT_KBPS_RATE_HZ)
    return min(kbps, _MAX_KBPS.get(codec, kbps))


