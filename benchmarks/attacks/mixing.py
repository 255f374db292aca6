"""Mixing with other audio, and a re-recording (loudspeaker -> room -> microphone) simulation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.signal import butter, sosfiltfilt

from benchmarks.attacks.base import SILENCE_POWER_FLOOR, Attack, AttackContext, other_audio, power
from benchmarks.attacks.filters import RoomReverb
from benchmarks.attacks.noise import WhiteNoise
from provenance.core.audio import Audio


@dataclass(frozen=True, kw_only=True)
class MixOther(Attack):
    """Add another clip (``AttackContext.other_clip``, else a generated one) at ``level_db``
    relative to this clip's mean power (0 dB: equally loud; -10 dB: 10 dB quieter)."""

    level_db: float
    kind: ClassVar[str] = "mixing"

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        other = other_audio(ctx, audio, audio.frames, rng).astype(np.float64)
        p_self = max(power(audio.samples), SILENCE_POWER_FLOOR)
        p_other = power(other)
        if p_other <= 0:
            return audio.with_samples(audio.samples.copy())
        g = np.sqrt(p_self / p_other * 10 ** (self.level_db / 10))
        return audio.with_samples(audio.samples + g * other)


@dataclass(frozen=True, kw_only=True)
class ReRecording(Attack):
    """Play through a small loudspeaker into a room and a microphone: band limit ``low_hz``-``high_hz``
    (4th-order Butterworth, zero phase), room reverb, then white noise at ``snr_db``."""

    low_hz: float = 150.0
    high_hz: float = 7000.0
    room_size: float = 0.4
    wet_db: float = -12.0
    snr_db: float = 30.0
    kind: ClassVar[str] = "mixing"
    requires: ClassVar[tuple[str, ...]] = ("pedalboard",)

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        sr = audio.sample_rate
        high = min(self.high_hz, 0.45 * sr)
        sos = butter(4, [self.low_hz, high], btype="bandpass", fs=sr, output="sos")
        y = audio.with_samples(sosfiltfilt(sos, audio.samples, axis=-1))
        y = RoomReverb(name="_room", room_size=self.room_size, wet_db=self.wet_db, dry_db=-1.0).transform(y, rng, ctx)
        return WhiteNoise(name="_noise", snr_db=self.snr_db).transform(y, rng, ctx)
