"""Undoing tempo and pitch changes before the watermark's features are measured, for the
detector's search.

An edit that plays audio faster or slower and/or shifts its pitch maps a time-frequency
point ``(t, f)`` of the marked file to ``(time_scale * t, freq_scale * f)`` in the edited
one: a speed change (resampling) scales both (``time_scale = 1 / freq_scale``), a time
stretch only time, a pitch shift only frequency. The watermark's features are band
energies per slot, so such an edit is undone in two ways:

- cheaply, for a coarse search: measure each band between its edges times ``freq_scale``
  (:func:`warped_band_power`, one power spectrum for every hypothesis), then read the
  band-power series at times ``time_scale * t``;
- exactly, for refinement and decoding: resample the signal by ``freq_scale``, which puts
  every frequency back where the embedder's bins had it (:func:`resampled_band_power`), then
  read the band-power series at the remaining time scale ``time_scale * ratio``. Measured on a guitar clip played
  5 % faster, this restores the unedited z-score (20.0 against 20.1), where scaled band
  edges reach 9.4 (probably because a harmonic's energy sits in one or two bins, which
  fractional edge weights and an unscaled analysis window misplace).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.fft

from provenance.watermark.layout import WatermarkParams
from provenance.watermark.model import (
    _frames,
    analysis_window,
    band_power_frames,
    resample_by,
)

MAX_RATIO_DENOMINATOR = 100
"""Resampling ratios are fractions with denominators up to this (within about 1e-4 of the wanted
frequency scale; the time scale used afterwards accounts for the exact fraction)."""


@dataclass(frozen=True)
class Warp:
    """A tempo and pitch change: edited time = ``time_scale`` x original time, edited frequency =
    ``freq_scale`` x original frequency."""

    time_scale: float = 1.0
    freq_scale: float = 1.0

    @property
    def speed(self) -> float:
        """Tempo factor of the edit (1.05: 5 % faster)."""
        return 1.0 / self.time_scale

    @property
    def pitch_semitones(self) -> float:
        """Pitch change of the edit, semitones."""
        return 12.0 * math.log2(self.freq_scale)

    def scaled(self, time_factor: float, freq_factor: float) -> "Warp":
        return Warp(self.time_scale * time_factor, self.freq_scale * freq_factor)


IDENTITY = Warp()


def power_frames(x16: np.ndarray, params: WatermarkParams, hop: int) -> np.ndarray:
    """Power spectrum ``(frames, bins)`` float32 of a 1-D analysis-rate signal, frames every ``hop``
    samples (the framing of :func:`provenance.watermark.model.stft`)."""
    spec = scipy.fft.rfft(_frames(x16, params, hop) * analysis_window(params), axis=-1)
    return (spec.real**2 + spec.imag**2).astype(np.float32, copy=False)


def scaled_band_matrix(params: WatermarkParams, freq_scale: float) -> np.ndarray:
    """``(bins, bands)`` weights summing bin powers into the bands with edges ``freq_scale`` x the
    watermark's; a bin straddling an edge is shared in proportion to its overlap (in Hz)."""
    df = params.analysis_rate_hz / params.frame_len
    f = np.arange(params.frame_len // 2 + 1) * df
    lo, hi = f - 0.5 * df, f + 0.5 * df
    edges = params.band_edges_hz * freq_scale
    overlap = np.minimum(hi[:, None], edges[None, 1:]) - np.maximum(lo[:, None], edges[None, :-1])
    return (np.clip(overlap, 0.0, None) / df).astype(np.float32)


def warp_time(band_power: np.ndarray, time_scale: float) -> np.ndarray:
    """Read a ``(frames, bands)`` series at frames ``time_scale * k`` (linear interpolation):
    the series of the original, unedited timeline."""
    n = band_power.shape[0]
    if n == 0:
        return band_power
    m = int(math.floor((n - 1) / time_scale)) + 1
    pos = np.arange(m) * time_scale
    i0 = np.minimum(pos.astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    frac = (pos - i0).astype(np.float32)[:, None]
    return band_power[i0] * (1.0 - frac) + band_power[i1] * frac


def warped_band_power(power: np.ndarray, params: WatermarkParams, warp: Warp) -> np.ndarray:
    """Band power ``(frames, bands)`` on the original timeline and bands, from the power spectrum
    ``(frames, bins)`` of an edited signal."""
    bp = power @ scaled_band_matrix(params, warp.freq_scale)
    return warp_time(bp, warp.time_scale) if warp.time_scale != 1.0 else bp


def frequency_ratio(freq_scale: float) -> Fraction:
    """The resampling ratio used to undo ``freq_scale``: a fraction close to it."""
    return Fraction(freq_scale).limit_denominator(MAX_RATIO_DENOMINATOR)


def resampled_band_power(x16: np.ndarray, params: WatermarkParams, freq_scale: float, hop: int) -> np.ndarray:
    """Band power ``(frames, bands)`` every ``hop`` samples of a 1-D analysis-rate signal resampled by
    :func:`frequency_ratio` of ``freq_scale``: original bands, edited timeline stretched by the ratio."""
    ratio = frequency_ratio(freq_scale)
    return band_power_frames(resample_by(x16, ratio) if ratio != 1 else x16, params, hop)
