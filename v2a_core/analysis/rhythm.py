"""Periodic motion: the dominant period of the motion energy and of the visual events."""

from __future__ import annotations

import numpy as np

from v2a_core.types import Rhythm

_RATE_HZ = 50.0
_MIN_PERIOD_S = 0.25
_MAX_PERIOD_S = 2.0


def _fold_bpm(bpm: float) -> float:
    while bpm > 150:
        bpm /= 2
    while bpm < 70:
        bpm *= 2
    return bpm


def _autocorr_period(x: np.ndarray) -> tuple[float, float]:
    """(period_s, strength) of the strongest autocorrelation peak of a 50 Hz series."""
    x = x - x.mean()
    if len(x) < int(2 * _MIN_PERIOD_S * _RATE_HZ) or not np.any(x):
        return 0.0, 0.0
    n = 1 << int(np.ceil(np.log2(2 * len(x))))
    spec = np.fft.rfft(x, n)
    ac = np.fft.irfft(spec * np.conj(spec), n)[: len(x)]
    ac /= ac[0] + 1e-12
    # unbiased: long lags have fewer overlapping samples
    ac = ac * len(x) / np.maximum(len(x) - np.arange(len(x)), 1)
    lo = int(_MIN_PERIOD_S * _RATE_HZ)
    hi = min(int(_MAX_PERIOD_S * _RATE_HZ), len(x) // 2)
    if hi <= lo + 2:
        return 0.0, 0.0
    seg = ac[lo:hi]
    peaks = [i for i in range(1, len(seg) - 1) if seg[i] >= seg[i - 1] and seg[i] > seg[i + 1]]
    if not peaks:
        return 0.0, 0.0
    best = max(peaks, key=lambda i: seg[i])
    return (lo + best) / _RATE_HZ, float(np.clip(seg[best], 0, 1))


def estimate_rhythm(times_s: np.ndarray, energy: np.ndarray, event_times_s: list[float], duration_s: float) -> Rhythm:
    """Dominant period of motion (energy envelope) or of the event train, whichever is clearer."""
    candidates: list[tuple[float, float]] = []
    if len(times_s) >= 8 and duration_s > 2 * _MIN_PERIOD_S:
        grid = np.arange(0.0, duration_s, 1.0 / _RATE_HZ)
        env = np.interp(grid, times_s, energy)
        # remove slow trends (2 s moving average) so only repetition remains
        k = int(2.0 * _RATE_HZ)
        if len(env) > k:
            env = env - np.convolve(env, np.ones(k) / k, mode="same")
        candidates.append(_autocorr_period(env))
    if len(event_times_s) >= 4:
        grid_n = int(duration_s * _RATE_HZ) + 1
        train = np.zeros(grid_n)
        for t in event_times_s:
            i = int(round(t * _RATE_HZ))
            if 0 <= i < grid_n:
                train[max(0, i - 1) : i + 2] += 1.0  # 60 ms wide pulses tolerate jitter
        candidates.append(_autocorr_period(train))
    period, strength = max(candidates, key=lambda c: c[1], default=(0.0, 0.0))
    if strength >= 0.3 and period > 0:
        return Rhythm(period_s=period, tempo_bpm=_fold_bpm(60.0 / period), strength=strength)
    mean_energy = float(np.mean(energy)) if len(energy) else 0.0
    calm = 72.0 if mean_energy < 0.01 else 96.0 if mean_energy < 0.04 else 120.0
    return Rhythm(period_s=0.0, tempo_bpm=calm, strength=strength)
