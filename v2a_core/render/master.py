"""Mastering: loudness normalisation (ITU-R BS.1770 via pyloudnorm) and a true-peak limiter.

The limiter computes one gain curve for the mix and applies it to every stem as well, so
the stems still add up to the mix exactly. True peak is measured on a 4x oversampled
signal (BS.1770-4 Annex 2), block by block so long soundtracks need little memory.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyloudnorm
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import lfilter, lfilter_zi, resample_poly

from v2a_core.render.buffers import IN_MEMORY, Buffers
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

    ITU-R BS.1770-4 K-weighting and gating with pyloudnorm's filters and constants. Signals
    are filtered in chunks (filter state carried across), so long soundtracks need little
    memory; inputs shorter than one 400 ms gating block are measured looped to 1 s.
    """
    if x.shape[1] == 0 or not np.any(x):
        return float("-inf")
    if x.shape[1] < _BLOCK_SAMPLES + 1:
        reps = int(np.ceil(SR / x.shape[1]))
        x = np.tile(x, reps)
    return gated_loudness(k_weighted_energy(x, resolution=_HOP), x.shape[1])


_METER = pyloudnorm.Meter(SR)
_HOP = round(_METER.block_size * (1 - _METER.overlap) * SR)
"""Gating hop, samples (100 ms): blocks of 400 ms start every hop."""
_BLOCK_SAMPLES = round(_METER.block_size * SR)
_FINE = 16
"""Resolution, samples, of the energy kept for the limiter's gain search (1/3 ms)."""


def k_weighted_energy(x: np.ndarray, gain: np.ndarray | None = None, *, resolution: int,
                      chunk_s: float = 10.0, buffers: Buffers = IN_MEMORY) -> np.ndarray:
    """Energy of the K-weighted signal summed over channels (BS.1770-4 weights L, R and C by 1)
    and over consecutive runs of ``resolution`` samples: float64 ``(ceil(n / resolution),)``,
    of ``x * gain`` when ``gain`` (n,) is given, for (channels, n) audio at 48 kHz."""
    stages = list(_METER._filters.values())
    chunk = int(chunk_s * SR) // resolution * resolution
    n = x.shape[1]
    energy = buffers.zeros((-(-n // resolution),), np.float64)
    for ch in range(x.shape[0]):
        states = [lfilter_zi(st.b, st.a) * 0.0 for st in stages]
        for start in range(0, n, chunk):
            y = x[ch, start : start + chunk].astype(np.float64)
            if gain is not None:
                y *= gain[start : start + chunk]
            for k, st in enumerate(stages):
                y, states[k] = lfilter(st.b, st.a, y, zi=states[k])
                y = st.passband_gain * y
            energy[start // resolution : -(-(start + len(y)) // resolution)] += _run_sums(np.square(y), resolution)
    return energy


def _run_sums(v: np.ndarray, size: int) -> np.ndarray:
    """Sums of consecutive runs of ``size`` values (the last run may be shorter)."""
    full = len(v) // size * size
    sums = v[:full].reshape(-1, size).sum(axis=1)
    return np.append(sums, v[full:].sum()) if full < len(v) else sums


def gated_loudness(hop_energy: np.ndarray, n: int) -> float:
    """BS.1770-4 gated loudness (LUFS) from K-weighted energy per 100 ms hop
    (:func:`k_weighted_energy` with ``resolution`` 4800) of a signal ``n`` samples long."""
    per_block = _BLOCK_SAMPLES // _HOP  # 4 hops per 400 ms block
    n_blocks = int(np.round((n / SR - _METER.block_size) / (_METER.block_size * (1 - _METER.overlap)))) + 1
    if n_blocks <= 0:
        return float("-inf")
    cs = np.concatenate([[0.0], np.cumsum(np.concatenate([hop_energy, np.zeros(per_block)]))])
    j = np.arange(n_blocks)
    z = (cs[j + per_block] - cs[j]) / _BLOCK_SAMPLES
    with np.errstate(divide="ignore", invalid="ignore"):
        block_lufs = -0.691 + 10 * np.log10(z)
        gated = block_lufs >= -70.0
        if not gated.any():
            return float("-inf")
        rel = -0.691 + 10 * np.log10(z[gated].mean()) - 10.0
        keep = gated & (block_lufs > rel)
        return float(-0.691 + 10 * np.log10(z[keep].mean()))


def _loudness_estimate(fine_energy: np.ndarray, gain: np.ndarray) -> float:
    """Loudness of ``mix * gain`` from the mix's K-weighted energy per ``_FINE`` samples.

    Weights each 1/3 ms of K-weighted energy by the mean of ``gain**2`` there: K-weighting
    before the gain instead of after, which moves a limiter's result by hundredths of a LU.
    Used to search for the gain, which is then measured exactly."""
    n = len(gain)
    step = _HOP * 256  # in chunks of whole gating hops: no full-length temporary, the same sums
    per_hop = _HOP // _FINE
    hops = []
    for i in range(0, n, step):
        g = gain[i : i + step]
        g2 = _run_sums(np.square(g, dtype=np.float64), _FINE)
        g2[: len(g) // _FINE] /= _FINE
        if len(g) % _FINE:
            g2[-1] /= len(g) % _FINE
        hops.append(_run_sums(fine_energy[i // _FINE : i // _FINE + len(g2)] * g2, per_hop))
    return gated_loudness(np.concatenate(hops) if hops else np.zeros(0), n)


def _peak_blocks(x: np.ndarray, gain: np.ndarray | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, peaks)``: the per-sample true peak (max over channels of the 4x oversampled
    magnitude, linear) of ``x * gain`` (``x`` when ``gain`` is None), block by block."""
    n = x.shape[1]
    for start in range(0, n, _BLOCK):
        a, b = max(0, start - _PAD), min(n, start + _BLOCK + _PAD)
        seg = x[:, a:b] if gain is None else x[:, a:b] * gain[a:b]
        up = resample_poly(seg, _OVERSAMPLE, 1, axis=1)
        mag = np.abs(up).max(axis=0)
        mag = mag[: (b - a) * _OVERSAMPLE].reshape(b - a, _OVERSAMPLE).max(axis=1)
        mag = np.maximum(mag, np.abs(seg).max(axis=0))
        yield start, mag[start - a : start - a + min(_BLOCK, n - start)]


def true_peak_envelope(x: np.ndarray, *, buffers: Buffers = IN_MEMORY) -> np.ndarray:
    """Per-sample true peak (max over channels of the 4x oversampled magnitude), linear."""
    env = buffers.zeros((x.shape[1],))
    for start, mag in _peak_blocks(x):
        env[start : start + len(mag)] = mag
    return env


def true_peak_dbtp(x: np.ndarray, gain: np.ndarray | None = None) -> float:
    """True peak of ``x`` (of ``x * gain`` when ``gain`` is given), dBTP."""
    peak = max((float(mag.max()) for _, mag in _peak_blocks(x, gain) if len(mag)), default=0.0)
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def limiter_gain(
    peak_env: np.ndarray,
    ceiling: float,
    *,
    scale: float = 1.0,
    lookahead_s: float = 0.0015,
    hold_s: float = 0.02,
    chunk: int = 1 << 20,
    buffers: Buffers = IN_MEMORY,
) -> np.ndarray:
    """Smooth gain g with g * scale * peak_env <= ceiling at every sample.

    The gain starts falling ``lookahead_s`` before a peak (no overshoot, no click) and
    recovers after ``hold_s``. Computed in chunks (the filters only look a few ms around
    each sample), so a ten-minute soundtrack needs little more than the result itself.
    """
    n = len(peak_env)
    la = max(1, int(lookahead_s * SR))
    hold = max(1, int(hold_s * SR))
    if (la + hold) % 2:
        hold += 1
    margin = la + hold + 2
    out = buffers.zeros((n,))
    for start in range(0, n, chunk):
        a, b = max(0, start - margin), min(n, start + chunk + margin)
        out[start : min(n, start + chunk)] = _limiter_chunk(peak_env[a:b], ceiling, scale, la, hold)[
            start - a : start - a + min(chunk, n - start)
        ]
    return out


def _limiter_chunk(env: np.ndarray, ceiling: float, scale: float, la: int, hold: int) -> np.ndarray:
    need = np.minimum(
        np.float32(1.0), np.float32(ceiling) / np.maximum(env * np.float32(scale), np.float32(1e-12)), dtype=np.float32
    )
    if float(need.min()) >= 1.0:
        return need
    # held[n] = min(need[n - hold : n + la + 1]): a centred minimum, shifted by (la - hold) / 2
    centred = minimum_filter1d(need, size=la + hold + 1, mode="nearest")
    shift = (la - hold) // 2
    held = np.empty_like(centred)
    if shift >= 0:
        held[: len(held) - shift] = centred[shift:]
        held[len(held) - shift :] = centred[-1]
    else:
        held[-shift:] = centred[: len(centred) + shift]
        held[:-shift] = centred[0]
    # trailing mean over the last la samples (origin (la-1)//2 moves the window back): every
    # term lies within [p - la, p] of a peak p, where held <= need[p], so the smoothed gain
    # never exceeds the need at the peak itself
    smooth = uniform_filter1d(held, size=la, origin=(la - 1) // 2, mode="nearest")
    np.minimum(smooth, np.float32(1.0), out=smooth)
    return smooth


LOUDNESS_TOLERANCE_LU = 0.2
"""The mastered loudness is within this of the target, or :class:`LoudnessWarning` says why not."""
_SEARCH_TOLERANCE_LU = 0.05
"""The gain search stops this close to the target (the exact measure differs by a few hundredths)."""
_MAX_SEARCH_STEPS = 16
_MAX_LIMITING_DB = 30.0
"""The most the static gain may rise above plain normalisation to make up for what the limiter
takes, dB: beyond it the peaks would be crushed for the last tenths of a LU."""


class LoudnessWarning(UserWarning):
    """The mastered loudness misses its target by more than :data:`LOUDNESS_TOLERANCE_LU`: the
    true-peak ceiling leaves this audio no louder."""


def master(mix: np.ndarray, *, target_lufs: float = -16.0, ceiling_dbtp: float = -1.0,
           iterations: int = _MAX_SEARCH_STEPS, buffers: Buffers = IN_MEMORY) -> MasterResult:
    """Gain curve that brings ``mix`` (2, n) to ``target_lufs`` with true peak <= ``ceiling_dbtp``.

    The static gain is searched (secant steps, kept inside a bracket) until the limited result
    is within :data:`_SEARCH_TOLERANCE_LU` of the target, in at most ``iterations`` limiter
    passes (it stopped after 4 plain steps, short of the target on peaky audio). Where even :data:`_MAX_LIMITING_DB` of limiting does not get there (very peaky
    audio, a loud target), the result is as loud as that allows and a :class:`LoudnessWarning`
    says so. The envelope and gain curves (as long as ``mix``) are taken from ``buffers``.
    """
    n = mix.shape[1]
    if n < _BLOCK_SAMPLES + 1:
        fine = None
        loud = integrated_loudness(mix)
    else:
        fine = k_weighted_energy(mix, resolution=_FINE, buffers=buffers)
        loud = gated_loudness(_run_sums(fine, _HOP // _FINE), n)
    if not np.isfinite(loud):
        return MasterResult(np.ones(n, np.float32), loud, float("-inf"))
    ceiling = 10 ** ((ceiling_dbtp - 0.3) / 20)  # 0.3 dB margin for interpolation between checks
    peak_env = true_peak_envelope(mix, buffers=buffers)

    def gain_at(level_db: float) -> np.ndarray:
        """The limited gain with static part ``level_db``: the limiter adds the moving part."""
        level = 10 ** (level_db / 20)
        gain = limiter_gain(peak_env, ceiling, scale=level, buffers=buffers)
        gain *= np.float32(level)
        return gain

    def loudness_at(level_db: float) -> float:
        # measured through the K-weighted energy taken once; the result is measured exactly below
        gain = gain_at(level_db)
        return _loudness_estimate(fine, gain) if fine is not None else _loudness_with_gain(mix, gain)

    level_db = _search_level(loudness_at, target_lufs, target_lufs - loud, iterations)
    gain = gain_at(level_db)
    # the gain moves slowly next to the 4x oversampled peaks, so peak_env * gain is the true
    # peak of the result; trim if it still exceeds the ceiling anywhere
    peak = max((float(np.max(peak_env[i : i + _BLOCK] * gain[i : i + _BLOCK])) for i in range(0, n, _BLOCK)), default=0.0)
    tp = 20 * np.log10(peak) if peak > 0 else float("-inf")
    if tp > ceiling_dbtp - 0.02:
        gain *= 10 ** ((ceiling_dbtp - 0.05 - tp) / 20)
        tp = true_peak_dbtp(mix, gain)
    measured = _loudness_with_gain(mix, gain)
    if abs(measured - target_lufs) > LOUDNESS_TOLERANCE_LU:
        warnings.warn(LoudnessWarning(
            f"mastered to {measured:.1f} LUFS, not {target_lufs:g} LUFS: under the {ceiling_dbtp:g} dBTP "
            f"true-peak ceiling this audio gets no louder without more than {_MAX_LIMITING_DB:g} dB of limiting"
        ), stacklevel=2)
    return MasterResult(gain.astype(np.float32, copy=False), measured, tp)


def _search_level(loudness_at: Callable[[float], float], target: float, start_db: float, steps: int) -> float:
    """The static gain, dB, at which ``loudness_at`` (LUFS) meets ``target``, searched from
    ``start_db`` (plain normalisation) up to ``start_db + _MAX_LIMITING_DB`` in at most ``steps``
    calls; returns the gain that came closest.

    Where the limiter works hard, loudness grows much less than the gain (and gating can even
    make it fall), so a step of the remaining error creeps up on the target: secant steps are
    taken instead, and once gains on both sides of the target are known, kept between them
    (bisection when a step leaves the bracket)."""
    x, f = start_db, loudness_at(start_db)
    best = (abs(target - f), x)
    below: tuple[float, float] | None = None  # (gain dB, loudness) under the target
    above: tuple[float, float] | None = None
    prev: tuple[float, float] | None = None
    for _ in range(max(0, steps - 1)):
        if abs(target - f) <= _SEARCH_TOLERANCE_LU:
            break
        if f < target:
            below = (x, f)
        else:
            above = (x, f)
        nxt = _next_level(x, f, prev, below, above, target, start_db + _MAX_LIMITING_DB)
        if nxt is None:
            break
        prev = (x, f)
        x = nxt
        f = loudness_at(x)
        best = min(best, (abs(target - f), x))
    return best[1]


def _next_level(x: float, f: float, prev: tuple[float, float] | None, below: tuple[float, float] | None,
                above: tuple[float, float] | None, target: float, top: float) -> float | None:
    """The next gain (dB) to try after ``x`` measured ``f`` LUFS; None when the target is out of
    reach (``top`` tried and still too quiet)."""
    slope = 1.0 if prev is None or prev[0] == x else (f - prev[1]) / (x - prev[0])
    step = x + (target - f) / min(max(slope, 0.02), 1.0)  # 1 LU per dB at most: a gain cannot add more
    if below is not None and above is not None:
        lo, hi = sorted((below[0], above[0]))
        return step if lo < step < hi else 0.5 * (lo + hi)
    if f < target and x >= top:
        return None
    return min(step, top)


def _loudness_with_gain(mix: np.ndarray, gain: np.ndarray) -> float:
    """Integrated loudness of ``mix * gain`` without holding the product of a long signal."""
    if mix.shape[1] < _BLOCK_SAMPLES + 1:
        return integrated_loudness(mix * gain)
    if not np.any(mix):
        return float("-inf")
    return gated_loudness(k_weighted_energy(mix, gain, resolution=_HOP), mix.shape[1])
