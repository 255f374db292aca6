"""The detector's features: tile levels, pair differences and reliabilities, and the lattice
residuals of the groups at one alignment.

The input's 16 kHz mono mix is analysed with a fine hop (``hop / FINE``, 2.5 ms), giving tiles
at every sub-slot phase. A band pair's feature is its level difference (nepers); its reliability
(0..1) is the tile capacity, discounted near each band's noise floor (one of the two readings of
:func:`provenance.watermark.detect._detect_timeline`), in clipped tiles, and in bands the source
could not contain. At one alignment the pairs are gathered into groups and each group's chipped
statistic is reduced modulo the keyed lattice (:func:`grouped`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from provenance.watermark.layout import Layout, WatermarkParams, to_groups
from provenance.watermark.model import band_power_frames, capacity, frame_offset, log_amplitude, tile_power


FINE = 4
"""Sub-hop steps of the alignment search (hop 10 ms / 4 = 2.5 ms)."""
FLOOR_PERCENTILE = 5.0
"""Per-band noise floor: this percentile of the file's tile levels, dB."""
FLOOR_MARGIN_DB = 3.0
FLOOR_RAMP_DB = 9.0
"""Reliability rises from 0 to 1 between these many dB above the noise floor (margin, margin + ramp)."""
CLIP_ERASE_SHARE = 0.05
"""A tile's reliability falls linearly to zero as the clipped share of its samples rises to
this: 5 % of a 50 ms tile is 2.5 ms of flattened peaks, whose distortion fills every band."""


@dataclass
class Features:
    """Per-slot pair differences and reliabilities at every fine phase."""

    v: np.ndarray
    """(phases, slots, pairs_per_slot) log-amplitude differences of band pairs, nepers."""
    w: np.ndarray
    """(phases, slots, pairs_per_slot) reliability 0..1."""


def signal_features(x16: np.ndarray, params: WatermarkParams, source_rate_hz: float | None = None) -> Features:
    """Features of a 16 kHz mono signal at every fine phase."""
    return timeline_features(x16, params, source_rate_hz)[1]


def clip_weights(clipped16: np.ndarray, n_frames: int, params: WatermarkParams) -> np.ndarray:
    """``(n_frames,)`` weight of the tile that starts at each fine frame: 1 without clipping,
    0 where :data:`CLIP_ERASE_SHARE` of its samples or more were clipped."""
    hop = params.hop // FINE
    start = np.arange(n_frames) * hop - frame_offset(params)
    span = (params.slot_hops - 1) * params.hop + params.frame_len  # samples one tile covers
    cum = np.concatenate(([0.0], np.cumsum(clipped16, dtype=np.float64)))
    lo = np.clip(start, 0, clipped16.size)
    hi = np.clip(start + span, 0, clipped16.size)
    share = (cum[hi] - cum[lo]) / span
    return np.clip(1.0 - share / CLIP_ERASE_SHARE, 0.0, 1.0).astype(np.float32)


def features_from_band_power(
    bp: np.ndarray, params: WatermarkParams, source_rate_hz: float | None = None, freq_scale: float = 1.0,
    phase_step: int = 1, tile_weight: np.ndarray | None = None, noise_floor: bool = True,
) -> Features:
    """Features from band power ``(frames, bands)`` at the fine hop; ``freq_scale`` is the pitch
    change the bands were measured under (see :mod:`provenance.watermark.warp`). With
    ``phase_step`` > 1 only every ``phase_step``-th fine phase is kept. ``tile_weight``
    (per fine frame) scales the reliability of the tile starting there. ``noise_floor=False``
    leaves out the discount of tiles near each band's floor (see :func:`~provenance.watermark.detect._detect_timeline`)."""
    return reading_features(bp, params, source_rate_hz, freq_scale, phase_step, tile_weight, (noise_floor,))[0]


def reading_features(
    bp: np.ndarray, params: WatermarkParams, source_rate_hz: float | None, freq_scale: float,
    phase_step: int, tile_weight: np.ndarray | None, noise_floors: tuple[bool, ...],
) -> list[Features]:
    """:func:`features_from_band_power` for each reading of ``noise_floors``; the readings share
    one array of pair values (``v``), so that :func:`~provenance.watermark.presence.scan_readings` can scan them together."""
    phases = params.slot_hops * FINE
    tiles = tile_power(bp, params, stride=FINE)
    n_slots = tiles.shape[0] // phases
    npairs = params.pairs_per_slot
    kept = len(range(0, phases, phase_step))
    if n_slots == 0:
        v0 = np.zeros((kept, 0, npairs), np.float32)
        return [Features(v0, np.zeros((kept, 0, npairs), np.float32)) for _ in noise_floors]
    tiles = tiles[: n_slots * phases].reshape(n_slots, phases, params.n_bands)[:, ::phase_step].transpose(1, 0, 2)
    y = log_amplitude(tiles)
    cap = capacity(tiles.reshape(-1, params.n_bands), params).reshape(tiles.shape)
    v = (y[..., 0::2] - y[..., 1::2]).astype(np.float32)
    tw = None if tile_weight is None else tile_weight[: n_slots * phases].reshape(n_slots, phases)[:, ::phase_step].T
    # Bands the source could not contain (above 90 % of its Nyquist) hold only resampler
    # leakage, whose levels are not random: they must not take part in the test.
    in_band = None if source_rate_hz is None else params.band_edges_hz[1:] * freq_scale <= 0.45 * source_rate_hz
    out = []
    for noise_floor in noise_floors:
        rel = cap
        if noise_floor:
            # Reliability also falls where a tile is near the file's floor in its band: added
            # noise, unless the floor is steady content (the second reading of _detect_timeline).
            level = 20.0 * y / np.log(10.0)
            floor = np.percentile(level.reshape(-1, params.n_bands), FLOOR_PERCENTILE, axis=0)
            rel = cap * np.clip((level - floor - FLOOR_MARGIN_DB) / FLOOR_RAMP_DB, 0.0, 1.0)
        if tw is not None:
            rel = rel * tw[..., None]
        if in_band is not None:
            rel = rel * in_band
        w = np.minimum(rel[..., 0::2], rel[..., 1::2])
        out.append(Features(v, w.astype(np.float32)))
    return out


@dataclass
class Grouped:
    """Group statistics at one alignment, indexed ``[repetition, run_in_block, group]``."""

    r: np.ndarray
    """Lattice residual in [-0.5, 0.5)."""
    w: np.ndarray
    """Reliability (0 for groups cut by the file's ends or masked out)."""
    offset: int
    n_slots: int


def grouped(feat: Features, layout: Layout, phase: int, offset: int, slot_mask: np.ndarray) -> Grouped:
    """Lattice residuals of every group when block-relative slot of slot ``t`` is ``(t + offset) % B``."""
    p = layout.params
    v, w = feat.v[phase], feat.w[phase] * slot_mask[:, None]
    n = v.shape[0]
    blk = p.block_slots
    total = -(-(n + offset) // blk) * blk
    pad = ((offset, total - n - offset), (0, 0))
    vg = to_groups(np.pad(v, pad).reshape(-1, blk, v.shape[1]), p)
    wg = to_groups(np.pad(w, pad).reshape(-1, blk, w.shape[1]), p)
    real = np.zeros(total, dtype=bool)
    real[offset : offset + n] = True
    sb = p.block_runs // p.run_stride
    whole = real.reshape(-1, sb, p.run_slots, p.run_stride).all(axis=-2).reshape(-1, p.block_runs)  # (reps, runs)
    stat = (layout.chips[None] * vg).mean(axis=-1)
    r = residual(stat, layout.dither[None], p.delta)
    gw = wg.mean(axis=-1) * whole[..., None]
    return Grouped(r, gw, offset, n)


def residual(stat: np.ndarray, dither: np.ndarray, delta: float) -> np.ndarray:
    """Distance of each statistic from the keyed lattice, in lattice steps, in [-0.5, 0.5)."""
    u = stat / delta - dither
    return u - np.round(u)


def spread_per_slot(values: np.ndarray, g: Grouped, layout: Layout) -> np.ndarray:
    """Spread per-group values ``(reps, runs, groups)`` onto the slots they cover: ``(slots,)``."""
    p = layout.params
    per_run = (values.sum(axis=-1) / p.run_slots).reshape(-1, 1, p.run_stride)  # (super-blocks, 1, S)
    rows = np.broadcast_to(per_run, (per_run.shape[0], p.run_slots, p.run_stride)).reshape(-1)
    return rows[g.offset : g.offset + g.n_slots]


def timeline_features(
    x16: np.ndarray, params: WatermarkParams, source_rate_hz: float | None
) -> tuple[np.ndarray, Features]:
    """Band power at the fine hop ``(frames, bands)`` and the features of a 16 kHz signal on its
    own (unwarped) timeline."""
    bp = band_power_frames(x16, params, params.hop // FINE)
    return bp, features_from_band_power(bp, params, source_rate_hz)
