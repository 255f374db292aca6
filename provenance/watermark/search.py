"""The tempo and pitch search: which speed changes, time stretches and pitch shifts are tried,
and the search over them (a coarse grid on a short window, then hill climbing over fine steps).

Its p-values carry a union bound over every warp it could end on (:func:`search_hypotheses`);
the detection at the warp found is made by :mod:`provenance.watermark.detect`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from provenance.watermark.features import FINE, Features, reading_features
from provenance.watermark.layout import Layout, WatermarkParams
from provenance.watermark.presence import ScanTables, standardised_z, standardised_z_readings
from provenance.watermark.warp import (
    IDENTITY,
    Warp,
    frequency_ratio,
    power_frames,
    resampled_band_power,
    warp_time,
    warped_band_power,
)


TEMPO_RANGE = (0.88, 1.12)
TEMPO_STEP = 0.005
"""Coarse grid of tempo factors searched (speed changes and time stretches), +-12 % in 0.5 % steps."""
PITCH_RANGE_ST = 2.5
PITCH_STEP_ST = 0.25
"""Coarse grid of pitch shifts searched, semitones."""
PITCH_TIME_SCALES = (0.995, 1.0, 1.005)
"""Time scales tried with each coarse pitch shift. A pitch shifter's output can drift in time
beyond the fine steps' +-0.3 %: Rubber Band (pedalboard's offline ``time_stretch``) shifting a
guitar clip sampled at 8 kHz by +1 semitone stretched it by 0.75 % (best presence z 10.2 there,
3.5 at the unstretched timeline), by -0.25 % at -1 and by -0.5 % at -2 semitones."""
FINE_TIME_STEP = 0.001
FINE_TIME_STEPS = 3
FINE_FREQ_STEP = 0.005
FINE_FREQ_STEPS = 3
"""Refinement around a coarse warp: time scale +-0.3 % in 0.1 % steps, frequency scale +-1.5 % in
0.5 % steps."""
COARSE_BLOCKS = 2
"""Length of the coarse search window, blocks at the slowest tempo searched (9.7 s)."""
SEARCH_WINDOW_S = 30.0
"""Length of the window the search refines and decodes on, seconds."""
SEARCH_CANDIDATES = 2
"""Coarse warps refined."""
COARSE_PHASE_STEP = 2
"""The coarse search tries every second fine phase (5 ms apart)."""


def coarse_pitch_warps() -> list[Warp]:
    """The pitch shifts tried first, each at the time scales of :data:`PITCH_TIME_SCALES`."""
    semis = np.arange(-PITCH_RANGE_ST, PITCH_RANGE_ST + 1e-9, PITCH_STEP_ST)
    semis = semis[np.abs(semis) > 1e-9]
    return [Warp(t, 2.0 ** (st / 12.0)) for st in semis for t in PITCH_TIME_SCALES]


def coarse_warps() -> list[Warp]:
    """The tempo and pitch changes tried first, on a short window: speed changes (tempo and
    pitch together), time stretches (tempo only) and pitch shifts (pitch only)."""
    tempos = np.round(np.arange(TEMPO_RANGE[0], TEMPO_RANGE[1] + 1e-9, TEMPO_STEP), 6)
    tempos = tempos[np.abs(tempos - 1.0) > 1e-9]
    return [Warp(1.0 / s, s) for s in tempos] + [Warp(1.0 / s, 1.0) for s in tempos] + coarse_pitch_warps()


def fine_steps() -> tuple[np.ndarray, np.ndarray]:
    """Relative refinements of a coarse warp: (time factors, frequency factors)."""
    k = FINE_TIME_STEPS
    time_f = 1.0 + FINE_TIME_STEP * np.arange(-k, k + 1)
    j = FINE_FREQ_STEPS
    freq_f = 1.0 + FINE_FREQ_STEP * np.arange(-j, j + 1)
    return time_f, freq_f


def search_hypotheses() -> int:
    """How many warps a search can end on (the union bound applied to its p-value): every fine
    refinement of every coarse warp, plus the unedited timeline, each read with and without the
    noise-floor discount (:func:`~provenance.watermark.detect._search_readings`)."""
    time_f, freq_f = fine_steps()
    return 2 * (1 + len(coarse_warps()) * time_f.size * freq_f.size)


def best_window(feat: Features, length_slots: int, within: tuple[int, int]) -> tuple[int, int]:
    """The ``length_slots`` slots inside ``within`` with the most reliable tiles."""
    lo, hi = within
    if hi - lo <= length_slots:
        return lo, hi
    per_slot = feat.w[0, lo:hi].sum(axis=-1)
    sums = np.convolve(per_slot, np.ones(length_slots), mode="valid")
    a = lo + int(np.argmax(sums))
    return a, a + length_slots


def search_warp(
    x16: np.ndarray, feat: Features, layout: Layout, tables: ScanTables, params: WatermarkParams,
    source_rate_hz: float | None, noise_floors: tuple[bool, ...],
    checkpoint: Callable[[], None] | None = None,
) -> list[tuple[Warp, np.ndarray, int, int]] | None:
    """Search tempo and pitch changes: every coarse warp on a window of ``COARSE_BLOCKS`` blocks
    (scaled band edges, one power spectrum), then hill climbing over fine steps around the best
    ``SEARCH_CANDIDATES`` on a window of up to ``SEARCH_WINDOW_S`` (the signal resampled for each
    frequency scale). The search runs once per reliability reading of ``noise_floors`` (with and
    without the noise-floor discount, :func:`~provenance.watermark.detect._detect_timeline`), sharing the band power; ``feat``
    (the unedited features with the discount) chooses the windows. Returns, per reading, the best
    warp, the band power of the window resampled for its frequency scale (see
    :func:`unwarped_features`) and the window's first and end sample at 16 kHz; None when the
    signal is too short to hold a block at every tempo. ``checkpoint`` is called before each
    warp is scored (whatever it raises ends the search: a caller's time limit)."""
    check = checkpoint or (lambda: None)
    n_slots = feat.v.shape[1]
    slot = params.slot_len
    need = min_search_slots(params)
    if n_slots < need:
        return None
    fine_hop = params.hop // FINE
    win = best_window(feat, int(SEARCH_WINDOW_S / params.slot_s), (0, n_slots))
    cwin = best_window(feat, max(need, int(COARSE_BLOCKS * params.block_slots * TEMPO_RANGE[1])), win)
    xc = x16[cwin[0] * slot : cwin[1] * slot]
    power = power_frames(xc, params, fine_hop)
    unscaled = warped_band_power(power, params, IDENTITY)  # shared by every time stretch

    pitch_shifts = set(coarse_pitch_warps())
    resampled_coarse: dict[float, np.ndarray] = {}

    def coarse_scores(w: Warp) -> list[float]:
        check()
        if w in pitch_shifts:
            # Pitch shifts: scaled band edges rank them poorly on tonal music (a harmonic's
            # energy sits in one bin, which fractional edge weights misplace); resample (once
            # per pitch, for all its time scales).
            if w.freq_scale not in resampled_coarse:
                resampled_coarse[w.freq_scale] = resampled_band_power(xc, params, w.freq_scale, fine_hop)
            feats = unwarped_readings(resampled_coarse[w.freq_scale], w, params, source_rate_hz,
                                       COARSE_PHASE_STEP, noise_floors)
        else:
            banded = unscaled if w.freq_scale == 1.0 else warped_band_power(power, params, Warp(1.0, w.freq_scale))
            feats = reading_features(warp_time(banded, w.time_scale), params, source_rate_hz, w.freq_scale,
                                      COARSE_PHASE_STEP, None, noise_floors)
        return standardised_z_readings(feats, layout, tables)

    coarse = [coarse_scores(w) for w in coarse_warps()]
    xw = x16[win[0] * slot : win[1] * slot]
    time_f, freq_f = fine_steps()
    resampled: dict[float, np.ndarray] = {}  # band power of the window resampled, per frequency scale
    results = []
    for r, noise_floor in enumerate(noise_floors):
        scored = sorted(((zs[r], i, w) for i, (zs, w) in enumerate(zip(coarse, coarse_warps()))), reverse=True)
        best: tuple[float, Warp, np.ndarray] | None = None
        for _score, _i, start in scored[:SEARCH_CANDIDATES]:
            cache: dict[tuple[int, int], float] = {}

            def banded(fi: int) -> np.ndarray:
                fs = start.scaled(1.0, freq_f[fi]).freq_scale
                if fs not in resampled:
                    resampled[fs] = resampled_band_power(xw, params, fs, fine_hop)
                return resampled[fs]

            def score(ti: int, fi: int) -> float:
                if (ti, fi) not in cache:
                    check()
                    w = start.scaled(time_f[ti], freq_f[fi])
                    cache[(ti, fi)] = standardised_z(unwarped_features(banded(fi), w, params, source_rate_hz,
                                                               noise_floor=noise_floor), layout, tables)
                return cache[(ti, fi)]

            # Hill climbing on the (time, frequency) lattice: z is unimodal within a coarse cell.
            ti, fi = len(time_f) // 2, len(freq_f) // 2
            while True:
                steps = [(ti + dt, fi + df) for dt, df in ((-1, 0), (1, 0), (0, -1), (0, 1))
                         if 0 <= ti + dt < len(time_f) and 0 <= fi + df < len(freq_f)]
                nxt = max(steps, key=lambda tf: score(*tf))
                if score(*nxt) <= score(ti, fi):
                    break
                ti, fi = nxt
            if best is None or score(ti, fi) > best[0]:
                best = (score(ti, fi), start.scaled(time_f[ti], freq_f[fi]), banded(fi))
        assert best is not None
        results.append((best[1], best[2], win[0] * slot, win[1] * slot))
    return results


def min_search_slots(params: WatermarkParams) -> int:
    """Slots a warped window must hold: one block at the slowest tempo searched."""
    return int(math.ceil(params.block_slots * TEMPO_RANGE[1]))


def unwarped_features(
    resampled: np.ndarray, warp: Warp, params: WatermarkParams, source_rate_hz: float | None,
    phase_step: int = 1, noise_floor: bool = True,
) -> Features:
    """Features on the original timeline from the band power of a signal already resampled by
    ``frequency_ratio(warp.freq_scale)`` (:func:`~provenance.watermark.warp.resampled_band_power`):
    read at the remaining time scale. The source's band limit moves with the resampling
    (frequencies, its Nyquist frequency too, are divided by the ratio). ``noise_floor``: which
    of the two reliability readings (:func:`~provenance.watermark.detect._detect_timeline`)."""
    return unwarped_readings(resampled, warp, params, source_rate_hz, phase_step, (noise_floor,))[0]


def unwarped_readings(
    resampled: np.ndarray, warp: Warp, params: WatermarkParams, source_rate_hz: float | None,
    phase_step: int, noise_floors: tuple[bool, ...],
) -> list[Features]:
    """:func:`unwarped_features` for each reading of ``noise_floors`` (:func:`~provenance.watermark.features.reading_features`)."""
    ratio = float(frequency_ratio(warp.freq_scale))
    rest = warp.time_scale * ratio
    bp = warp_time(resampled, rest) if rest != 1.0 else resampled
    rate = None if source_rate_hz is None else source_rate_hz / ratio
    return reading_features(bp, params, rate, 1.0, phase_step, None, noise_floors)
