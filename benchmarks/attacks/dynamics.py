"""Level, dynamics and channel edits: gain (with or without clipping), compression,
polarity inversion, DC offset, downmix to mono."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmarks.attacks.base import Attack, AttackContext
from provenance.core.audio import Audio


@dataclass(frozen=True, kw_only=True)
class Volume(Attack):
    """Multiply by ``gain`` (linear factor; 4.0 = +12 dB); with ``clip`` true, hard-clip to [-1, 1]
    as a fixed-point file or DAC would."""

    gain: float
    clip: bool = False

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        y = audio.samples * np.float32(self.gain)
        if self.clip:
            y = np.clip(y, -1.0, 1.0)
        return audio.with_samples(y)


@dataclass(frozen=True, kw_only=True)
class Compress(Attack):
    """Dynamic range compression (pedalboard Compressor): threshold dBFS, ratio, attack/release ms,
    then ``makeup_db`` of gain and a hard clip at full scale."""

    threshold_db: float = -30.0
    ratio: float = 6.0
    attack_ms: float = 5.0
    release_ms: float = 100.0
    makeup_db: float = 12.0
    requires: ClassVar[tuple[str, ...]] = ("pedalboard",)

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        from pedalboard import Compressor

        fx = Compressor(threshold_db=self.threshold_db, ratio=self.ratio,
                        attack_ms=self.attack_ms, release_ms=self.release_ms)
        y = fx(audio.samples, audio.sample_rate, reset=True) * 10 ** (self.makeup_db / 20)
        return audio.with_samples(np.clip(y, -1.0, 1.0))


@dataclass(frozen=True, kw_only=True)
class PolarityInversion(Attack):
    """Multiply every sample by -1."""

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        return audio.with_samples(-audio.samples)


@dataclass(frozen=True, kw_only=True)
class DcOffset(Attack):
    """Add a constant ``offset_fs`` (fraction of full scale; 0.05 = -26 dBFS), clipping at full scale."""

    offset_fs: float = 0.05

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        return audio.with_samples(np.clip(audio.samples + np.float32(self.offset_fs), -1.0, 1.0))


@dataclass(frozen=True, kw_only=True)
class StereoToMono(Attack):
    """Downmix all channels to one (their mean); the output has one channel by design."""

    changes_channels: ClassVar[bool] = True

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        return audio.with_samples(audio.mono()[np.newaxis, :].copy())
