"""Signal building blocks for the synthesisers. All signals are float32 at ``SR`` Hz."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy.signal import butter, sosfilt

SR = 48_000
"""Output sample rate, Hz."""


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    """A generator determined by the seed and the keys (same inputs, same numbers, any platform)."""
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def samples(seconds: float) -> int:
    return max(0, int(round(seconds * SR)))


@lru_cache(maxsize=256)
def _sos(kind: str, f1: float, f2: float, order: int) -> np.ndarray:
    nyq = SR / 2
    if kind == "low":
        return butter(order, min(f1, nyq * 0.95) / nyq, btype="lowpass", output="sos")
    if kind == "high":
        return butter(order, max(f1, 5.0) / nyq, btype="highpass", output="sos")
    lo, hi = max(f1, 5.0) / nyq, min(f2, nyq * 0.95) / nyq
    return butter(order, [lo, max(hi, lo * 1.05)], btype="bandpass", output="sos")


def lowpass(x: np.ndarray, hz: float, order: int = 2) -> np.ndarray:
    return sosfilt(_sos("low", round(hz, 1), 0.0, order), x).astype(np.float32)


def lowpass_inplace(x: np.ndarray, hz: float, order: int = 2, chunk: int = 1 << 18) -> np.ndarray:
    """:func:`lowpass` of float32 ``x`` (..., n) written back into ``x``, ``chunk`` samples at a
    time with the filter state carried across, so a long signal needs no float64 copy of itself
    (the same numbers as :func:`lowpass`)."""
    sos = _sos("low", round(hz, 1), 0.0, order)
    zi = np.zeros((sos.shape[0],) + x.shape[:-1] + (2,))
    for start in range(0, x.shape[-1], chunk):
        y, zi = sosfilt(sos, x[..., start : start + chunk], zi=zi)
        x[..., start : start + chunk] = y
    return x


def highpass(x: np.ndarray, hz: float, order: int = 2) -> np.ndarray:
    return sosfilt(_sos("high", round(hz, 1), 0.0, order), x).astype(np.float32)


def bandpass(x: np.ndarray, lo_hz: float, hi_hz: float, order: int = 2) -> np.ndarray:
    return sosfilt(_sos("band", round(lo_hz, 1), round(hi_hz, 1), order), x).astype(np.float32)


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n, dtype=np.float32)


def coloured(n: int, rng: np.random.Generator, slope: float = 1.0) -> np.ndarray:
    """Noise with power falling as 1/f**slope (1 pink, 2 brown), unit RMS."""
    if n == 0:
        return np.zeros(0, np.float32)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec /= f ** (slope / 2)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def slow_curve(n: int, rate_hz: float, rng: np.random.Generator, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """A smooth random curve between lo and hi, changing about ``rate_hz`` times per second."""
    if n == 0:
        return np.zeros(0, np.float32)
    k = max(2, int(np.ceil(n / SR * rate_hz)) + 2)
    points = rng.uniform(lo, hi, k)
    x = np.linspace(0, k - 1, n)
    i = np.minimum(x.astype(int), k - 2)
    frac = x - i
    frac = frac * frac * (3 - 2 * frac)  # smoothstep: no corners, no clicks
    return (points[i] * (1 - frac) + points[i + 1] * frac).astype(np.float32)


def automation(points: tuple[tuple[float, float], ...], start_s: float, n: int,
               default: float = 1.0) -> Callable[[int, int], np.ndarray]:
    """Level automation (absolute time, level) for ``n`` samples starting at ``start_s``, as a
    function ``level(pos, m)`` of any piece ``[pos, pos + m)`` of them (pieces give the same
    values as the whole), so a long bed needs no full-length curve. The level is read every 64
    samples and interpolated in between."""
    if not points or n == 0:
        return lambda pos, m: np.full(m, default, np.float32)
    times, levels = [p[0] for p in points], [p[1] for p in points]

    def level(pos: int, m: int) -> np.ndarray:
        if m <= 0:
            return np.zeros(0, np.float32)
        # the grid points around the piece: every 64th sample of the whole curve, none past its end
        first = pos // 64 * 64
        grid = np.arange(first, min(n, pos + m + 64), 64)
        coarse = np.interp(start_s + grid / SR, times, levels)
        return np.interp(np.arange(pos, pos + m), grid, coarse).astype(np.float32)

    return level


def decay(n: int, seconds: float) -> np.ndarray:
    """exp decay reaching -60 dB after ``seconds``."""
    return np.exp(-6.9078 * np.arange(n, dtype=np.float32) / max(1.0, seconds * SR)).astype(np.float32)


def fade(x: np.ndarray, in_s: float, out_s: float) -> np.ndarray:
    """Raised-cosine fades at both ends (in place on a copy); the ends reach exactly zero."""
    return fade_ends(np.array(x, dtype=np.float32, copy=True), in_s, out_s)


def fade_ends(x: np.ndarray, in_s: float, out_s: float) -> np.ndarray:
    """Like :func:`fade` but in place, touching only the faded ends (no copy of long signals)."""
    n = x.shape[-1]
    a, b = min(n, samples(in_s)), min(n, samples(out_s))
    if a > 0:
        x[..., :a] *= (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, a, dtype=np.float32)))
    if b > 0:
        x[..., n - b :] *= (0.5 + 0.5 * np.cos(np.linspace(0, np.pi, b, dtype=np.float32)))
    return x


def sine(freq_hz: float | np.ndarray, n: int, phase: float = 0.0) -> np.ndarray:
    """Sine of a fixed or per-sample frequency (phase-continuous), starting at ``phase``."""
    if np.isscalar(freq_hz):
        return np.sin(phase + 2 * np.pi * float(freq_hz) * np.arange(n) / SR).astype(np.float32)
    ph = phase + 2 * np.pi * np.cumsum(np.asarray(freq_hz, dtype=np.float64)) / SR
    return np.sin(ph).astype(np.float32)


def add_at(buf: np.ndarray, x: np.ndarray, start: int) -> None:
    """buf[..., start:start+len(x)] += x, clipped to the buffer."""
    n = buf.shape[-1]
    m = x.shape[-1]
    a, b = max(0, start), min(n, start + m)
    if b > a:
        buf[..., a:b] += x[..., a - start : b - start]


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power gains for pan in [-1, 1]."""
    angle = (float(np.clip(pan, -1, 1)) + 1) * np.pi / 4
    return float(np.cos(angle)), float(np.sin(angle))


def db(gain_db: float) -> float:
    return float(10 ** (gain_db / 20))


def resample_pitch(x: np.ndarray, ratio: float) -> np.ndarray:
    """Play ``x`` ``ratio`` times faster (pitch up by ratio), linear interpolation; start kept at 0."""
    if abs(ratio - 1.0) < 1e-4:
        return x
    n = int(len(x) / ratio)
    pos = np.arange(n) * ratio
    return np.interp(pos, np.arange(len(x)), x).astype(np.float32)


def grains(n: int, times_s: np.ndarray, grain: callable, rng: np.random.Generator) -> np.ndarray:
    """Sum of short sounds ``grain(rng) -> array`` started at ``times_s`` (seconds)."""
    out = np.zeros(n, np.float32)
    for t in times_s:
        add_at(out, grain(rng), int(t * SR))
    return out


def poisson_times(duration_s: float, rate_hz: float, rng: np.random.Generator) -> np.ndarray:
    if rate_hz <= 0 or duration_s <= 0:
        return np.zeros(0)
    count = rng.poisson(rate_hz * duration_s)
    return np.sort(rng.uniform(0, duration_s, count))
