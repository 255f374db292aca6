"""Linear filtering: low/high/band-pass, parametric EQ, resampling, echo, room reverb.

IIR filters are Butterworth designs in second-order sections (scipy.signal), run forward and
backward (``sosfiltfilt``): zero phase, so the output stays time-aligned with the input, and the
magnitude response is the square of the design's (an order-``n`` design acts as order ``2n``).
A lowpass (or an EQ band) at or above the Nyquist frequency leaves the audio unchanged; a highpass
there removes everything (digital silence), as it would pass nothing the file can hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.signal import butter, sosfilt, sosfiltfilt

from benchmarks.attacks.base import Attack, AttackContext, fit_length, resample
from provenance.core.audio import Audio


def _nyquist_ok(freq_hz: float, rate_hz: int) -> bool:
    return 0.0 < freq_hz < 0.5 * rate_hz * 0.999


@dataclass(frozen=True, kw_only=True)
class Lowpass(Attack):
    """Butterworth lowpass at ``cutoff_hz`` (-3 dB per pass), ``order`` per pass, zero phase."""

    cutoff_hz: float
    order: int = 8

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        if not _nyquist_ok(self.cutoff_hz, audio.sample_rate):
            return audio.with_samples(audio.samples.copy())
        sos = butter(self.order, self.cutoff_hz, btype="lowpass", fs=audio.sample_rate, output="sos")
        return audio.with_samples(sosfiltfilt(sos, audio.samples, axis=-1))


@dataclass(frozen=True, kw_only=True)
class Highpass(Attack):
    """Butterworth highpass at ``cutoff_hz``, ``order`` per pass, zero phase."""

    cutoff_hz: float
    order: int = 4

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        if not _nyquist_ok(self.cutoff_hz, audio.sample_rate):
            return audio.with_samples(np.zeros_like(audio.samples))
        sos = butter(self.order, self.cutoff_hz, btype="highpass", fs=audio.sample_rate, output="sos")
        return audio.with_samples(sosfiltfilt(sos, audio.samples, axis=-1))


@dataclass(frozen=True, kw_only=True)
class Bandpass(Attack):
    """Butterworth bandpass ``low_hz``-``high_hz`` (e.g. the 300-3400 Hz telephone band), zero phase."""

    low_hz: float
    high_hz: float
    order: int = 4

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        sr = audio.sample_rate
        if not _nyquist_ok(self.high_hz, sr):
            sos = butter(self.order, self.low_hz, btype="highpass", fs=sr, output="sos")
        else:
            sos = butter(self.order, [self.low_hz, self.high_hz], btype="bandpass", fs=sr, output="sos")
        return audio.with_samples(sosfiltfilt(sos, audio.samples, axis=-1))


def peaking_sos(center_hz: float, gain_db: float, q: float, rate_hz: int) -> np.ndarray:
    """One peaking-EQ biquad (RBJ Audio EQ Cookbook) as a ``(1, 6)`` SOS array."""
    a_lin = 10 ** (gain_db / 40.0)
    w0 = 2 * np.pi * center_hz / rate_hz
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a_lin, -2 * np.cos(w0), 1 - alpha * a_lin])
    a = np.array([1 + alpha / a_lin, -2 * np.cos(w0), 1 - alpha / a_lin])
    return np.concatenate([b / a[0], a / a[0]])[np.newaxis, :]


@dataclass(frozen=True, kw_only=True)
class ParametricEq(Attack):
    """Peaking EQ bands at ``centers_hz`` with ``gain_db`` each and quality factor ``q`` (causal biquads)."""

    gain_db: float
    centers_hz: tuple[float, ...] = (250.0, 1000.0, 4000.0)
    q: float = 1.0

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        bands = [peaking_sos(f, self.gain_db, self.q, audio.sample_rate)
                 for f in self.centers_hz if _nyquist_ok(f, audio.sample_rate)]
        if not bands:
            return audio.with_samples(audio.samples.copy())
        y = sosfilt(np.concatenate(bands, axis=0), audio.samples.astype(np.float64), axis=-1)
        return audio.with_samples(y)


@dataclass(frozen=True, kw_only=True)
class Resample(Attack):
    """Resample to ``target_rate_hz`` and back (polyphase, Kaiser window): band limit + interpolation."""

    target_rate_hz: int

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        sr = audio.sample_rate
        if self.target_rate_hz == sr:
            return audio.with_samples(audio.samples.copy())
        down = resample(audio.samples, sr, self.target_rate_hz)
        back = resample(down, self.target_rate_hz, sr)
        return audio.with_samples(fit_length(back, audio.frames))


@dataclass(frozen=True, kw_only=True)
class Echo(Attack):
    """One echo: the signal plus a copy delayed by ``delay_s`` at ``gain_db`` relative level."""

    delay_s: float = 0.1
    gain_db: float = -6.0

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        d = int(round(self.delay_s * audio.sample_rate))
        y = audio.samples.astype(np.float64).copy()
        if 0 < d < audio.frames:
            y[:, d:] += 10 ** (self.gain_db / 20) * audio.samples[:, :-d]
        return audio.with_samples(y)


@dataclass(frozen=True, kw_only=True)
class RoomReverb(Attack):
    """Room reverb (pedalboard's Freeverb): ``room_size`` and ``damping`` in 0..1, levels in dB.

    The tail past the end of the input is cut so the output keeps the input's length. Freeverb
    takes one or two channels (it passes a third and beyond through untouched), so more channels
    go through it in pairs (FL FR, FC LFE, BL BR ...), a last odd one alone.
    """

    room_size: float = 0.5
    damping: float = 0.5
    wet_db: float = -10.0
    dry_db: float = -2.0
    width: float = 1.0
    requires: ClassVar[tuple[str, ...]] = ("pedalboard",)

    def transform(self, audio: Audio, rng: np.random.Generator, ctx: AttackContext) -> Audio:
        from pedalboard import Reverb

        fx = Reverb(
            room_size=self.room_size, damping=self.damping, width=self.width,
            wet_level=10 ** (self.wet_db / 20), dry_level=10 ** (self.dry_db / 20),
        )
        x = audio.samples
        pairs = [fx(x[c:c + 2], audio.sample_rate, reset=True) for c in range(0, x.shape[0], 2)]
        return audio.with_samples(np.concatenate(pairs, axis=0))

