"""The shared audio buffer type."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from provenance.core.errors import InputError

MIN_SAMPLE_RATE_HZ = 8_000
MAX_SAMPLE_RATE_HZ = 192_000
MAX_CHANNELS = 8


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, as read from its container (no samples)."""

    sample_rate: int
    """Sample rate in Hz."""
    channels: int
    frames: int
    """Length in samples per channel (may be an estimate for some compressed formats)."""
    format: str
    """Container/format name, e.g. ``wav``, ``flac``, ``mp3``, ``mp4``."""
    subtype: str | None = None
    """Sample encoding, e.g. ``PCM_16``, ``PCM_24``, ``FLOAT``, or a codec name."""
    start_s: float = 0.0
    """Where the first sample plays on the file's timeline, seconds after the file's start: a
    video's audio track may start after its picture (0 for audio files)."""

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


@dataclass
class Audio:
    """Audio samples as float32 ``(channels, frames)`` in [-1, 1] full scale, and a rate in Hz."""

    samples: np.ndarray
    sample_rate: int
    subtype: str | None = field(default=None, compare=False)
    """Sample encoding of the file it came from (kept so outputs match inputs)."""

    def __post_init__(self) -> None:
        s = np.asarray(self.samples)
        if s.ndim == 1:
            s = s[np.newaxis, :]
        if s.ndim != 2:
            raise InputError(f"audio must be (channels, frames), got shape {s.shape}")
        if s.dtype.kind in "iu":
            s = _pcm_to_float(s)
        elif s.dtype.kind != "f":
            raise InputError(f"audio samples must be float (or integer PCM) numbers, got dtype {s.dtype}")
        if s.dtype != np.float32:
            s = s.astype(np.float32)
        self.samples = s
        self.sample_rate = _whole_rate(self.sample_rate)

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    def mono(self) -> np.ndarray:
        """Mean of all channels, float32 ``(frames,)``."""
        if self.channels == 1:
            return self.samples[0]
        return self.samples.mean(axis=0, dtype=np.float32)

    def with_samples(self, samples: np.ndarray) -> "Audio":
        """A copy holding other samples at the same rate and subtype."""
        return Audio(samples, self.sample_rate, subtype=self.subtype)

    def validate(self, *, what: str = "audio") -> "Audio":
        """Raise :class:`InputError` unless rate, channels, length and values are usable."""
        if self.channels > MAX_CHANNELS and self.frames <= MAX_CHANNELS:
            raise InputError(
                f"{what} has {self.channels} channels of {self.frames} samples: the array looks like "
                "(frames, channels), as soundfile.read returns it; Audio takes (channels, frames), "
                "so pass samples.T"
            )
        check_audio_params(self.sample_rate, self.channels, what=what)
        if self.frames == 0:
            raise InputError(f"{what} has no samples (zero length)")
        # a block at a time: an hour of samples needs no hour-long mask beside it
        bad = sum(int(np.count_nonzero(~np.isfinite(self.samples[:, i : i + _CHECK_FRAMES])))
                  for i in range(0, self.frames, _CHECK_FRAMES))
        if bad:
            raise InputError(f"{what} contains {bad} NaN or infinite samples")
        return self


_CHECK_FRAMES = 1 << 20


_PCM_FULL_SCALE = {np.dtype(np.int8): 2.0**7, np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31}


def _pcm_to_float(s: np.ndarray) -> np.ndarray:
    """Integer PCM samples as float32 full scale (int16 32767 -> ~1.0; uint8 is offset by 128),
    the convention of soundfile and WAV: read as plain numbers they would be 32,767 times too loud."""
    if s.dtype == np.uint8:
        return (s.astype(np.float32) - 128.0) / 128.0
    if not s.dtype.isnative:  # big-endian int16 (">i2", as read from an AIFF's bytes) is PCM too
        s = s.astype(s.dtype.newbyteorder("="))
    scale = _PCM_FULL_SCALE.get(s.dtype)
    if scale is None:
        raise InputError(f"integer samples of type {s.dtype} are no PCM format; give int16/int32 PCM or float samples")
    return (s.astype(np.float64) / scale).astype(np.float32)


def _whole_rate(rate: object) -> int:
    """``rate`` as an int: a whole, finite number of Hz above 0 (44100.0 is fine, 44100.7 is not)."""
    ok = isinstance(rate, (int, float, np.integer, np.floating)) and not isinstance(rate, (bool, np.bool_))
    if not ok or not np.isfinite(rate) or rate != int(rate) or int(rate) <= 0:  # type: ignore[arg-type]
        raise InputError(f"sample rate must be a whole number of Hz above 0, got {rate!r}")
    return int(rate)  # type: ignore[arg-type]


def check_audio_params(sample_rate: int, channels: int, *, what: str = "audio", path: str | Path | None = None) -> None:
    """Raise :class:`InputError` (naming ``path``, the file, when given) if a rate (Hz) or channel
    count is outside what FoleySeal handles."""
    if not MIN_SAMPLE_RATE_HZ <= sample_rate <= MAX_SAMPLE_RATE_HZ:
        raise InputError(
            f"{what} has sample rate {sample_rate} Hz; supported rates are "
            f"{MIN_SAMPLE_RATE_HZ}-{MAX_SAMPLE_RATE_HZ} Hz", path=path
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise InputError(f"{what} has {channels} channels; supported: 1-{MAX_CHANNELS}", path=path)


def require_audio(audio: object, *, what: str = "audio") -> Audio:
    """``audio`` itself if it is an :class:`Audio`; else an :class:`InputError` that says how to
    make one (a bare array carries no sample rate, and the mark depends on it)."""
    if isinstance(audio, Audio):
        return audio
    t = type(audio)
    kind = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    raise InputError(
        f"{what} must be an Audio (provenance.core.audio.Audio(samples, sample_rate): float samples "
        f"(channels, frames) and their rate in Hz), got {kind}"
    )
