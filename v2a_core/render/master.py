"""Mastering: loudness normalisation (ITU-R BS.1770 via pyloudnorm) and a true-peak limiter.

The limiter computes one gain curve for the mix and applies it to every stem as well, so
the stems still add up to the mix exactly. True peak is measured on a 4x oversampled
signal (BS.1770-4 Annex 2), block by block so long soundtracks need little memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyloudnorm
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import resample_poly

from v2a_core.render.dsp import SR

_OVERSAMPLE = 4
_BLOCK = 1 << 18
_PAD = 64


@dataclass(frozen=True)
class MasterResult:
    gain: np.ndarray
    """float32 (n,) gain applied to the mix (and to each stem)."""
    loudness_lufs: float
    true_peak_dbtp: float


def integrated_loudness(x: np.ndarray) -> float:
    """Integrated loudness of (channels, n) audio at 48 kHz, LUFS (-inf for silence).

    Inputs shorter than one 400 ms gating block are measured looped to 1 s.
    """
    if x.shape[1] == 0 or not np.any(x):
        return float("-inf")
    data = x
    if x.shape[1] < int(0.4 * SR) + 1:
        reps = int(np.ceil(SR / x.shape[1]))
        data = np.tile(x, reps)
    meter = pyloudnorm.Meter(SR)
    return float(meter.integrated_loudness(np.ascontiguousarray(data.T, dtype=np.float64)))


def true_peak_envelope(x: np.ndarray) -> np.ndarray:
    """Per-sample true peak (max over channels of the 4x oversampled magnitude), linear."""
    n = x.shape[1]
    env = np.zeros(n, np.float32)
    for start in range(0, n, _BLOCK):
        a, b = max(0, start - _PAD), min(n, start + _BLOCK + _PAD)
        seg = x[:, a:b]
        up = resample_poly(seg, _OVERSAMPLE, 1, axis=1)
        mag = np.abs(up).max(axis=0)
        mag = mag[: (b - a) * _OVERSAMPLE].reshape(b - a, _OVERSAMPLE).max(axis=1)
        mag = np.maximum(mag, np.abs(seg).max(axis=0))
        env[start : min(n, start + _BLOCK)] = mag[start - a : start - a + min(_BLOCK, n - start)]
    return env


def true_peak_dbtp(x: np.ndarray) -> float:
    peak = float(true_peak_envelope(x).max()) if x.shape[1] else 0.0
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def limiter_gain(peak_env: np.ndarray, ceiling: float, *, lookahead_s: float = 0.0015, hold_s: float = 0.02) -> np.ndarray:
    """Smooth gain <= ceiling/peak at every sample: the gain starts falling ``lookahead_s``
    before a peak (no overshoot, no click) and recovers after ``hold_s``."""
    need = np.minimum(1.0, ceiling / np.maximum(peak_env, 1e-12)).astype(np.float32)
    if np.all(need >= 1.0):
        return need
    la = max(1, int(lookahead_s * SR))
    hold = max(1, int(hold_s * SR))
    if (la + hold) % 2:
        hold += 1
    # held[n] = min(need[n - hold : n + la + 1])
    centred = minimum_filter1d(need, size=la + hold + 1, mode="nearest")
    shift = (la - hold) // 2
    idx = np.clip(np.arange(len(need)) + shift, 0, len(need) - 1)
    held = centred[idx]
    # trailing mean over la samples: every term lies within [p - la, p] of a peak p, where held
    # is at most need[p], so the smoothed gain never exceeds the need at the peak
    cs = np.concatenate([np.full(la, held[0], np.float64), held.astype(np.float64)]).cumsum()
    smooth = (cs[la:] - cs[:-la]) / la
    return np.minimum(smooth, 1.0).astype(np.float32)


def master(mix: np.ndarray, *, target_lufs: float = -16.0, ceiling_dbtp: float = -1.0, iterations: int = 4) -> MasterResult:
    """Gain curve that brings ``mix`` (2, n) to ``target_lufs`` with true peak <= ``ceiling_dbtp``."""
    n = mix.shape[1]
    loud = integrated_loudness(mix)
    if not np.isfinite(loud):
        return MasterResult(np.ones(n, np.float32), loud, float("-inf"))
    ceiling = 10 ** ((ceiling_dbtp - 0.3) / 20)  # 0.3 dB margin for interpolation between checks
    static = 10 ** ((target_lufs - loud) / 20)
    peak_env = true_peak_envelope(mix)
    gain = np.full(n, static, np.float32)
    for _ in range(iterations):
        curve = gain * limiter_gain(peak_env * gain, ceiling)
        result = integrated_loudness(mix * curve)
        error = target_lufs - result
        if abs(error) < 0.2:
            gain = curve
            break
        gain = gain * 10 ** (error / 20)  # raise the static gain for what the limiter took
    else:
        gain = gain * limiter_gain(peak_env * gain, ceiling)
    tp = true_peak_dbtp(mix * gain)
    if tp > ceiling_dbtp:  # the check is on the final signal; trim if interpolation still peaks over
        gain = gain * 10 ** ((ceiling_dbtp - 0.05 - tp) / 20)
        tp = true_peak_dbtp(mix * gain)
    return MasterResult(gain.astype(np.float32), integrated_loudness(mix * gain), tp)
