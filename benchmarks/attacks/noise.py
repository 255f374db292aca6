"""Additive noise at a signal-to-noise ratio, and requantization to fewer bits.

SNR is measured over the whole clip, all channels together: noise power =
signal power / 10^(snr_db / 10). For (near) digital silence the signal power is taken as
-70 dBFS so that silence still receives some noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks.attacks.base import SILENCE_POWER_FLOOR, Attack, AttackContext, pink_noise, power
from provenance.core.audio import Audio


def _noise_scale(samples: np.ndarray, snr_db: float) -> float:
    p = max(power(samples), SILENCE_POWER_FLOOR)
    return float(np.sqrt(p / 10 ** (snr_db / 10)))


@dataclass(frozen=True, kw_only=True)
class WhiteNoise(Attack):
    """Gaussian white noise at ``snr_db`` below the clip's mean power (independent per channel)."""

    snr_db: float

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        n = rng.standard_normal(audio.samples.shape)
        n *= _noise_scale(audio.samples, self.snr_db) / (np.sqrt(np.mean(n**2)) + 1e-20)
        return audio.with_samples(audio.samples + n)


@dataclass(frozen=True, kw_only=True)
class PinkNoise(Attack):
    """Pink (1/f power, -3 dB/octave) noise at ``snr_db`` below the clip's mean power."""

    snr_db: float

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        n = pink_noise(rng, audio.frames, audio.channels)
        n *= _noise_scale(audio.samples, self.snr_db) / (np.sqrt(np.mean(n**2)) + 1e-20)
        return audio.with_samples(audio.samples + n)


@dataclass(frozen=True, kw_only=True)
class Requantize(Attack):
    """Round to ``bits``-bit integer samples (no dither) and back; out-of-range values clip."""

    bits: int = 8

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        scale = float(2 ** (self.bits - 1))
        q = np.clip(np.round(audio.samples * scale), -scale, scale - 1)
        return audio.with_samples(q / scale)
