"""The shared audio buffer type."""

from __future__ import annotations

from dataclasses import dataclass, field

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
        if s.dtype != np.float32:
            s = s.astype(np.float32)
        self.samples = s
        self.sample_rate = int(self.sample_rate)

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
        check_audio_params(self.sample_rate, self.channels, what=what)
        if self.frames == 0:
            raise InputError(f"{what} has no samples (zero length)")
        if not np.isfinite(self.samples).all():
            bad = int((~np.isfinite(self.samples)).sum())
            raise InputError(f"{what} contains {bad} NaN or infinite samples")
        return self


def check_audio_params(sample_rate: int, channels: int, *, what: str = "audio") -> None:
    """Raise :class:`InputError` if a rate (Hz) or channel count is outside what FoleySeal handles."""
    if not MIN_SAMPLE_RATE_HZ <= sample_rate <= MAX_SAMPLE_RATE_HZ:
        raise InputError(
            f"{what} has sample rate {sample_rate} Hz; supported rates are "
            f"{MIN_SAMPLE_RATE_HZ}-{MAX_SAMPLE_RATE_HZ} Hz"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise InputError(f"{what} has {channels} channels; supported: 1-{MAX_CHANNELS}")
