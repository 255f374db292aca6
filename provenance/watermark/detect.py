"""Detection: search the alignment, test presence against a calibrated null, decode, localise.

1. The input's mono mix is resampled to 16 kHz and analysed with a fine hop
   (``hop / FINE``), giving tiles at every 2.5 ms offset: the alignment search covers
   ``slot_hops * FINE`` sub-slot phases x ``block_slots`` block offsets.
2. For each alignment, every group's statistic is reduced modulo the keyed lattice to
   a residual ``r`` in [-1/2, 1/2). Without the mark (or with another key) ``r`` is
   uniform, because the key's dither is independent of the audio. The presence score
   sums ``cos(2 pi (r - b/2))`` over pilot groups (known bits ``b``) and
   ``cos(4 pi r)`` over payload groups (bit-blind), weighted by tile reliability;
   under the null each term has mean 0 and variance 1/2 times its weight squared.
3. The z-scores of all alignments are standardised by their own robust location and
   spread (median and MAD over the alignments away from the best one), which absorbs
   hosts whose statistics are correlated or periodic at the block length (steady tones,
   loops); the best standardised z is turned into a p-value with the law of the maximum
   of ``EFFECTIVE_ALIGNMENTS`` independent normals of spread ``NULL_Z_SCALE``, fitted by
   maximum likelihood on measured null scores (``python -m benchmarks.null_trials``).
4. The payload is decoded by soft-decision Viterbi from the soft bits summed over
   every repetition of the block, and checked with its CRC. When no path passes, it is
   decoded once more with soft values weighted by the agreement measured in each frequency
   region and reliability class (:func:`_channel_state_soft`).
5. Segments: per-slot agreement with the pilots and the decoded codeword, smoothed
   over 0.5 s, gives the marked time spans; the search then repeats on the unmarked
   rest of the file to find other marked parts (e.g. splices of other marked files).
6. Clipping: when enough of the input lies in clipped runs (:mod:`.clipping`), the test is
   also run with the clipped tiles erased (weight zero), and the better of the two is kept
   with its p-value doubled (a union bound over the two readings).
7. Echo: when the cepstrum of the marked band shows one dominant echo (:mod:`.echo`), the file
   is also read through the echo's inverse filter; the better reading is kept, again with the
   p-values doubled.
8. Issued payloads: when the caller passes the payloads it has issued (:mod:`.known`) and the
   mark is found but no path passes the CRC, the reported reading is made again with a list of
   65,536 paths per block phase and soft reading (whole file, and the pieces jointly), and the
   paths whose CRC passes are looked up among them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import special

from provenance.core.audio import Audio
from provenance.core.results import Detection, Segment
from provenance.watermark import ecc
from provenance.watermark.clipping import (
    CLIP_MIN_FRACTION,
    clipped_fraction,
    clipped_samples,
)
from provenance.watermark.echo import cancel_echo, find_echo
from provenance.watermark.embed import bits_to_hex
from provenance.watermark.keys import WatermarkKey, as_key
from provenance.watermark.known import LIST_SIZE as KNOWN_LIST_SIZE
from provenance.watermark.known import (
    MAX_FALSE_MATCH,
    IssuedList,
    KnownPayloads,
    KNOWN_READINGS,
    best_correlation,
    correlation_bound,
    false_match_bound,
    unit_rows,
)
from provenance.watermark.layout import (
    DEFAULT_PARAMS,
    Layout,
    WatermarkParams,
    to_groups,
)
from provenance.watermark.model import (
    band_power_frames,
    capacity,
    frame_offset,
    log_amplitude,
    resample,
    tile_power,
)
from provenance.watermark.warp import (
    IDENTITY,
    Warp,
    frequency_ratio,
    power_frames,
    resampled_band_power,
    warp_time,
    warped_band_power,
)

FINE = 4
"""Sub-hop steps of the alignment search (hop 10 ms / 4 = 2.5 ms)."""
DEFAULT_THRESHOLD = 1e-6
"""Default p-value threshold for ``found``."""
EFFECTIVE_ALIGNMENTS = 464.57
NULL_Z_SCALE = 1.0950
"""The law of the best standardised z over the 8 x 216 alignments without the mark is modelled as
the maximum of ``EFFECTIVE_ALIGNMENTS`` independent normals of standard deviation ``NULL_Z_SCALE``
(the extra spread comes from estimating the standardisation on the file itself). Both are
maximum-likelihood fits on 23,040 null trials (``benchmarks/null_trials.py --no-search
--trials 6000``, seeds 31-34: unmarked audio under random keys and audio marked under another
key, in equal parts). The two halves differ slightly: unmarked audio alone fits K = 450,
s = 1.092 (its p-values come out a little conservative), audio marked under another key K = 489,
s = 1.097 (a little liberal in the bulk, nominal in the tail). Held-out checks are in
docs/watermark.md."""
SEGMENT_WINDOW_S = 0.5
MIN_NULL_SCALE = 0.8
"""Floor of the spread used to standardise alignment z-scores (see step 3 above)."""
FLOOR_PERCENTILE = 5.0
"""Per-band noise floor: this percentile of the file's tile levels, dB."""
FLOOR_MARGIN_DB = 3.0
FLOOR_RAMP_DB = 9.0
"""Reliability rises from 0 to 1 between these many dB above the noise floor (margin, margin + ramp)."""
SEGMENT_Z = 3.0
SEGMENT_MIN_S = 0.5
"""Shortest segment reported, seconds (a run of significant slots shorter than this is dropped)."""
SEGMENT_EDGE_S = 0.5
"""How far a segment's end may move inwards to its change point (:func:`_trim_edges`), seconds."""
SEGMENT_TRIM_Z = 1.0
"""An end is moved only where the slots it gives up agree this many standard deviations less
than the mark does (:func:`_trim_edges`)."""
MAX_SEGMENT_SEARCHES = 4
JOINT_PIECE_P_VALUE = 0.01
JOINT_PIECE_MIN_S = 1.0
"""Once the mark is found, a further alignment whose p-value is above the threshold but at most
``JOINT_PIECE_P_VALUE``, or that was found in less than a block of remaining audio (at least
``JOINT_PIECE_MIN_S`` seconds) where the null law was not calibrated, is not reported as a
segment but joins the joint decode of the pieces."""
CONFIRM_P_VALUE = 1e-3
CONFIRM_SHARE = 0.1
"""Payload confirmation: an alignment whose presence p-value is at most ``CONFIRM_P_VALUE`` and
whose payload decodes (CRC) has p-value ``p * CRC_PASS_BOUND / CONFIRM_SHARE``; one that does not
decode, ``p / (1 - CONFIRM_SHARE)``. Without the mark the signs of the payload groups' residuals are
independent of everything the presence test reads (see :func:`_confirmed_p_value`), so a CRC passes
there with probability at most ``CRC_PASS_BOUND`` whatever the presence score: the two tests
multiply, and ``CONFIRM_SHARE`` of the false-positive budget goes to the confirmed route."""
CRC_PASS_BOUND = ecc.LIST_SIZE * DEFAULT_PARAMS.block_phases * 2 / 2.0**ecc.CRC_BITS
"""Chance that one decode of pure noise passes its CRC: list size x 2 block phases x 2 readings
(plain and channel-state), 4.9e-4 (measured through ``_decode``: 4.0e-4, docs/watermark.md)."""
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
CLIP_ERASE_SHARE = 0.05
"""A tile's reliability falls linearly to zero as the clipped share of its samples rises to
this: 5 % of a 50 ms tile is 2.5 ms of flattened peaks, whose distortion fills every band."""


@dataclass
class _Features:
    """Per-slot pair differences and reliabilities at every fine phase."""

    v: np.ndarray
    """(phases, slots, pairs_per_slot) log-amplitude differences of band pairs, nepers."""
    w: np.ndarray
    """(phases, slots, pairs_per_slot) reliability 0..1."""


def _features(x16: np.ndarray, params: WatermarkParams, source_rate_hz: float | None = None) -> _Features:
    """Features of a 16 kHz mono signal at every fine phase."""
    return _timeline_features(x16, params, source_rate_hz)[1]


def _clip_weights(clipped16: np.ndarray, n_frames: int, params: WatermarkParams) -> np.ndarray:
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


def _features_from_band_power(
    bp: np.ndarray, params: WatermarkParams, source_rate_hz: float | None = None, freq_scale: float = 1.0,
    phase_step: int = 1, tile_weight: np.ndarray | None = None, noise_floor: bool = True,
) -> _Features:
    """Features from band power ``(frames, bands)`` at the fine hop; ``freq_scale`` is the pitch
    change the bands were measured under (see :mod:`provenance.watermark.warp`). With
    ``phase_step`` > 1 only every ``phase_step``-th fine phase is kept. ``tile_weight``
    (per fine frame) scales the reliability of the tile starting there. ``noise_floor=False``
    leaves out the discount of tiles near each band's floor (see :func:`_detect_timeline`)."""
    return _reading_features(bp, params, source_rate_hz, freq_scale, phase_step, tile_weight, (noise_floor,))[0]


def _reading_features(
    bp: np.ndarray, params: WatermarkParams, source_rate_hz: float | None, freq_scale: float,
    phase_step: int, tile_weight: np.ndarray | None, noise_floors: tuple[bool, ...],
) -> list[_Features]:
    """:func:`_features_from_band_power` for each reading of ``noise_floors``; the readings share
    one array of pair values (``v``), so that :func:`_scan_readings` can scan them together."""
    phases = params.slot_hops * FINE
    tiles = tile_power(bp, params, stride=FINE)
    n_slots = tiles.shape[0] // phases
    npairs = params.pairs_per_slot
    kept = len(range(0, phases, phase_step))
    if n_slots == 0:
        v0 = np.zeros((kept, 0, npairs), np.float32)
        return [_Features(v0, np.zeros((kept, 0, npairs), np.float32)) for _ in noise_floors]
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
        out.append(_Features(v, w.astype(np.float32)))
    return out


@dataclass
class _Grouped:
    """Group statistics at one alignment, indexed ``[repetition, run_in_block, group]``."""

    r: np.ndarray
    """Lattice residual in [-0.5, 0.5)."""
    w: np.ndarray
    """Reliability (0 for groups cut by the file's ends or masked out)."""
    offset: int
    n_slots: int


def _grouped(feat: _Features, layout: Layout, phase: int, offset: int, slot_mask: np.ndarray) -> _Grouped:
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
    r = _residual(stat, layout.dither[None], p.delta)
    gw = wg.mean(axis=-1) * whole[..., None]
    return _Grouped(r, gw, offset, n)


def _residual(stat: np.ndarray, dither: np.ndarray, delta: float) -> np.ndarray:
    """Distance of each statistic from the keyed lattice, in lattice steps, in [-0.5, 0.5)."""
    u = stat / delta - dither
    return u - np.round(u)


def _presence_terms(r: np.ndarray, pilot: np.ndarray, pilot_bits: np.ndarray) -> np.ndarray:
    """Presence term per group: pilot agreement, or bit-blind lattice agreement for payload groups."""
    return np.where(pilot, np.cos(2 * np.pi * (r - 0.5 * pilot_bits)), np.cos(4 * np.pi * r))


@dataclass(frozen=True)
class _ScanTables:
    """Per-key constants of the alignment scan, indexed ``[i, group, c, ...]`` where run ``m``
    with ``m % block_runs == i`` sits at block run ``(i + c * run_stride) % block_runs`` under
    super-block shift ``c``."""

    coef: np.ndarray
    """(R, G, R / S, K) chips times ``f / (delta * K)``: a matmul with the pair values gives ``f * stat / delta``."""
    shift: np.ndarray
    """(R, G, R / S, 1) ``f * (dither + bit / 2)``, with ``f`` = 1 and the pilot bit for pilots, 2 and 0 otherwise."""

    @classmethod
    def for_layout(cls, layout: Layout) -> "_ScanTables":
        p = layout.params
        r, k = p.block_runs, p.pairs_per_group
        pos = (np.arange(r)[:, None] + p.run_stride * np.arange(r // p.run_stride)[None, :]) % r
        pilot = layout.pilot
        # With u = stat/delta - dither and r = u - round(u), the pilot term cos(2 pi (r - b/2))
        # and the payload term cos(4 pi r) are both cos(2 pi f (u - b/2)) for an integer f
        # (1 or 2), so the scan never needs to round u.
        freq = np.where(pilot, 1.0, 2.0)
        shift = freq * (layout.dither + 0.5 * np.where(pilot, layout.pilot_bits, 0))
        coef = layout.chips[pos] * (freq[pos] / (p.delta * k))[..., None]
        return cls(
            np.ascontiguousarray(coef.transpose(0, 2, 1, 3), dtype=np.float32),
            np.ascontiguousarray(shift[pos].transpose(0, 2, 1), dtype=np.float32)[..., None],
        )


def _scan(feat: _Features, layout: Layout, mask: np.ndarray, tables: _ScanTables | None = None) -> np.ndarray:
    """z-scores ``(phases, offsets)`` of the presence test over all alignments."""
    return _scan_readings([feat], layout, mask, tables)[0]


def _scan_readings(
    feats: list[_Features], layout: Layout, mask: np.ndarray, tables: _ScanTables | None = None
) -> list[np.ndarray]:
    """z-scores ``(phases, offsets)`` of the presence test over all alignments, for readings of
    one signal that differ only in their reliabilities (the same ``v``: the lattice terms are
    computed once and weighted once per reading).

    Slots are cut into super-blocks in each of the ``superblock_slots`` ways (``rho``) at each
    fine phase, which fixes every run's slots; for every run ``m`` and super-block shift ``c``
    the group statistics are one batched matmul of the runs' pair values with the chips of
    block run ``(m + c * run_stride) % block_runs``.
    """
    p = layout.params
    tables = tables or _ScanTables.for_layout(layout)
    feat = feats[0]
    assert all(f.v is feat.v for f in feats), "readings of one signal share its pair values"
    phases, n = feat.v.shape[:2]
    L, S, R, G, K = p.run_slots, p.run_stride, p.block_runs, p.groups_per_run, p.pairs_per_group
    cut = p.superblock_slots
    zs = [np.zeros((phases, p.block_slots)) for _ in feats]
    if n < cut:
        return zs
    J = -(-(n // cut + 1) * S // R)  # blocks of runs that can be whole at some cut
    npairs = feat.v.shape[2]
    # Gather indices: pair k = (slot s, pair b) of group g of run m = j*R + i, with slots cut
    # into super-blocks at rho, is feature pair g*group_band_pairs + b of slot
    # rho + (m // S) * cut + m % S + s * S. Runs not whole inside the signal point at an
    # appended zero.
    s_k = np.repeat(np.arange(L), p.group_band_pairs) * S
    b_k = np.tile(np.arange(p.group_band_pairs), L)
    pair = np.arange(G)[:, None] * p.group_band_pairs + b_k[None, :]  # (G, K)
    zero = np.zeros((phases, 1), np.float32)
    v_flat = np.concatenate([feat.v.reshape(phases, -1), zero], axis=1)
    w_flats = [np.concatenate([(f.w * mask[None, :, None]).astype(np.float32).reshape(phases, -1), zero], axis=1)
               for f in feats]
    var = np.zeros((len(feats), phases, cut))
    num = np.zeros((len(feats), R // S, phases * cut))
    j_chunk = max(1, 8 // S)  # blocks per step: temporaries of (R, G, R / S, phases * cut * j_chunk) float32, ~12 MB
    for j0 in range(0, J, j_chunk):
        j1 = min(J, j0 + j_chunk)
        m = np.arange(j0 * R, j1 * R).reshape(j1 - j0, R)  # [j, i]
        first = np.arange(cut)[:, None, None] + (m // S * cut + m % S)[None]  # (cut, nj, R)
        whole = first + (L - 1) * S < n
        slot = first[..., None] + s_k  # (cut, nj, R, K)
        flat = slot[:, :, :, None, :] * npairs + pair  # (cut, nj, R, G, K)
        flat = np.where(whole[..., None, None], flat, n * npairs).transpose(2, 3, 4, 0, 1)  # (R, G, K, cut, nj)
        # gathered (phases, R, G, K, cut, nj) -> columns ordered (phase, rho, j)
        x = np.moveaxis(v_flat[:, flat], 0, 3).reshape(R, G, K, -1)
        u = np.matmul(tables.coef, x)
        u -= tables.shift
        terms = np.cos(u * np.float32(2.0 * np.pi))
        for i, w_flat in enumerate(w_flats):
            wg = np.moveaxis(w_flat[:, flat].mean(axis=3), 0, 2)  # (R, G, phases, cut, nj)
            var[i] += 0.5 * (wg.astype(np.float64) ** 2).sum(axis=(0, 1, 4))
            last = i + 1 == len(w_flats)  # the terms are not needed after the last reading
            weighted = np.multiply(terms, wg.reshape(R, G, 1, -1), out=terms if last else None)
            num[i] += weighted.sum(axis=(0, 1), dtype=np.float64).reshape(R // S, phases * cut, j1 - j0).sum(axis=-1)
    for i, z in enumerate(zs):
        numi = num[i].reshape(R // S, phases, cut)
        for rho in range(cut):
            offsets = (np.arange(R // S) * cut - rho) % p.block_slots
            ok = var[i, :, rho] > 0
            z[np.ix_(ok, offsets)] = (numi[:, ok, rho] / np.sqrt(var[i, ok, rho])).T
    return zs


def p_value_from_z(z: float) -> float:
    """P(best standardised z >= ``z``) without the mark: see ``EFFECTIVE_ALIGNMENTS``."""
    log_cdf = special.log_ndtr(z / NULL_Z_SCALE)
    return float(-np.expm1(EFFECTIVE_ALIGNMENTS * log_cdf))


def _confirmed_p_value(p: float, decoded: bool) -> float:
    """The presence p-value ``p`` of the best alignment combined with whether its payload decoded.

    Without the mark, each group's lattice residual is uniform, so its sign (the bit it reads)
    is independent of its magnitude (all the presence test reads of a payload group: the
    bit-blind ``cos(4 pi r)``), and the residuals of the other alignments use other dithers. A
    CRC then passes with probability at most ``CRC_PASS_BOUND`` whatever ``p`` is, so
    ``P(decoded and p <= y) <= CRC_PASS_BOUND * y``. Splitting the false-positive budget between
    the route with a payload (``CONFIRM_SHARE``) and the one without keeps the result a p-value:
    ``P(result <= x) <= x``. Above ``CONFIRM_P_VALUE`` nothing changes.
    """
    if decoded and p <= CONFIRM_P_VALUE:
        return p * CRC_PASS_BOUND / CONFIRM_SHARE
    return _presence_p_value(p, listing=False)


MATCH_SHARE = 0.05
"""With issued payloads that can be listed (:class:`~provenance.watermark.known.IssuedList`),
the share of the false-positive budget that goes to the matched route (:func:`_matched_p_value`).
It is taken from the presence test alone (:func:`_presence_p_value`)."""


def _presence_p_value(p: float, *, listing: bool) -> float:
    """The p-value of a mark with presence p-value ``p`` and no payload that confirms it: the
    presence test's share of the budget is what the confirmed routes leave, ``CONFIRM_SHARE`` where
    they can open (``p <= CONFIRM_P_VALUE``) and ``MATCH_SHARE`` when the issued payloads can be
    listed (``listing``: the matched route can open at any ``p``)."""
    share = 1.0 - (MATCH_SHARE if listing else 0.0)
    if p <= CONFIRM_P_VALUE:
        share -= CONFIRM_SHARE
    elif not listing:
        return p
    return min(1.0, p / share)


def _product_tail(q: float) -> float:
    """``P(U * B <= q)`` for independent ``U`` and ``B`` that are each at least uniform
    (``P(U <= u) <= u``): ``q (1 - ln q)``, the law of the product of two uniforms."""
    if q >= 1.0:
        return 1.0
    if q <= 0.0:
        return 0.0
    return min(1.0, q * (1.0 - math.log(q)))


def _matched_p_value(p: float, corr_bound: float) -> float:
    """The p-value of the matched route: presence p-value ``p``, and an issued codeword whose
    correlation with the file has false-match bound ``corr_bound``
    (:func:`~provenance.watermark.known.correlation_bound`, the bound evaluated at the best
    score).

    Without the mark, the issued payloads are random numbers drawn independently of the file, so
    given the file (which fixes ``p`` and the soft vectors) ``P(corr_bound <= b) <= b``: the
    bound is at least uniform, and independent of ``p``. Their product then has the tail of
    :func:`_product_tail`; a file is matched from at most ``KNOWN_READINGS`` readings (a union
    bound), and the route has ``MATCH_SHARE`` of the budget. A strong match thus confirms a mark
    the presence test missed by far (a codec or a reverb can leave the pilots weak and the
    codeword readable); a weak one still needs a presence p-value close to the threshold."""
    return min(1.0, KNOWN_READINGS * _product_tail(p * corr_bound) / MATCH_SHARE)


STORE_CONFIRM_BOUND = CRC_PASS_BOUND + MAX_FALSE_MATCH
"""With the issued payloads, the chance that the confirmed route opens without the mark: a CRC
passing by accident, or an issued payload matching although it is not the file's own (at most
``MAX_FALSE_MATCH`` over every reading matched)."""


def _store_confirmed_p_value(p: float) -> float:
    """The p-value of a mark with presence p-value ``p`` whose payload decoded or matched an issued
    payload, when the detector was given the issued payloads.

    Without the mark, the issued payloads are random numbers drawn independently of the file, so
    one matches with probability at most ``MAX_FALSE_MATCH`` whatever the presence test read; the
    confirmed route (a CRC that passed, or an issued payload) then opens with probability at most
    ``p * STORE_CONFIRM_BOUND``, and it keeps its ``CONFIRM_SHARE`` of the budget. (A CRC-decoded
    payload's p-value is therefore 0.2 % larger with the issued payloads than without.)"""
    return min(1.0, p * STORE_CONFIRM_BOUND / CONFIRM_SHARE)


def _issued_p_value(p: float, corr_bound: float | None) -> float:
    """The p-value of a mark with presence p-value ``p`` whose payload an issued payload names:
    the better of the confirmed route (:func:`_store_confirmed_p_value`, open up to
    ``CONFIRM_P_VALUE``) and, for a match by correlation (``corr_bound``, its bound; None for a
    match from the decoder's list), the matched route (:func:`_matched_p_value`)."""
    routes = [_store_confirmed_p_value(p)] if p <= CONFIRM_P_VALUE else []
    if corr_bound is not None:
        routes.append(_matched_p_value(p, corr_bound))
    return min(routes, default=1.0)


def _null_scale(z: np.ndarray, best: tuple[int, int]) -> tuple[float, float]:
    """Robust (location, spread) of z over alignments away from the best one."""
    ph, off = best
    keep = np.ones_like(z, dtype=bool)
    blk = z.shape[1]
    for d in range(-3, 4):
        keep[:, (off + d) % blk] = False
    vals = z[keep]
    if vals.size < 16:
        return 0.0, 1.0
    med = float(np.median(vals))
    mad = float(np.median(np.abs(vals - med))) * 1.4826
    # The floor keeps near-degenerate surfaces (almost no usable groups, e.g. a constant
    # signal whose only energy is at its edges) from inflating z; real null spreads are ~1.
    return med, max(mad, MIN_NULL_SCALE)


def _per_slot(values: np.ndarray, g: _Grouped, layout: Layout) -> np.ndarray:
    """Spread per-group values ``(reps, runs, groups)`` onto the slots they cover: ``(slots,)``."""
    p = layout.params
    per_run = (values.sum(axis=-1) / p.run_slots).reshape(-1, 1, p.run_stride)  # (super-blocks, 1, S)
    rows = np.broadcast_to(per_run, (per_run.shape[0], p.run_slots, p.run_stride)).reshape(-1)
    return rows[g.offset : g.offset + g.n_slots]


CSI_RELIABILITY_CLASSES = 3
"""Groups of one frequency region are split into this many reliability classes (equal counts)
for the channel-state reading (:func:`_channel_state_soft`)."""
CSI_MIN_GROUPS = 3
_KAPPA_GRID = np.linspace(0.0, 12.0, 241)
_MEAN_COS_OF_KAPPA = special.ive(1, _KAPPA_GRID) / special.ive(0, _KAPPA_GRID)


def _codeword_agreement(g: _Grouped, expected: np.ndarray) -> np.ndarray:
    """Per-group agreement ``cos(2 pi (r - b/2))`` of the residuals with the symbols ``expected``
    (1: on the lattice point of its bit, -1: on the other bit's). cos is 1-periodic in ``r``: no
    wrapping is needed."""
    return np.cos(2 * np.pi * (g.r - 0.5 * expected))


def _channel_state_soft(g: _Grouped, expected: np.ndarray) -> np.ndarray:
    """Soft values ``2 kappa cos(2 pi r)`` with ``kappa`` measured per class of groups.

    Codecs and band-limited noise damage some frequency regions far more than the tile
    reliabilities predict (a low-rate codec fills upper bands with synthetic content that is
    loud but carries no mark). Groups are classed by frequency region and reliability; in
    each class the agreement of the residuals with ``expected`` symbols (the pilots, and the
    re-encoded best decoding path for the payload groups) gives the mean resultant length of
    the residual error, whose von Mises concentration ``kappa`` makes ``2 kappa cos(2 pi r)``
    the log-likelihood ratio of each group's bit.
    """
    agree = _codeword_agreement(g, expected)
    usable = g.w > 0
    out = np.zeros_like(g.r)
    if not usable.any():
        return out
    cuts = np.quantile(g.w[usable], np.linspace(0.0, 1.0, CSI_RELIABILITY_CLASSES + 1)[1:-1])
    klass = np.digitize(g.w, cuts) + CSI_RELIABILITY_CLASSES * np.arange(g.r.shape[-1])
    for c in np.unique(klass[usable]):
        sel = usable & (klass == c)
        if sel.sum() < CSI_MIN_GROUPS:
            continue
        mean = float(np.clip(agree[sel].mean(), 0.0, _MEAN_COS_OF_KAPPA[-1]))
        out[sel] = 2.0 * np.interp(mean, _MEAN_COS_OF_KAPPA, _KAPPA_GRID)
    return out * np.cos(2 * np.pi * g.r)


def _rep_phases(layout: Layout, reps: int, phase: int) -> np.ndarray:
    """Block phase of each of ``reps`` repetitions when repetition 0 is a block of phase ``phase``
    (see :func:`~provenance.watermark.layout.coded_bit_placement`)."""
    return (np.arange(reps) + phase) % layout.params.block_phases


def _coded_soft(terms: np.ndarray, roles: np.ndarray, n: int) -> np.ndarray:
    """Per-group soft values summed into the ``n`` coded bits they carry."""
    data = roles >= 0
    return np.bincount(roles[data], weights=terms[data], minlength=n)


def _agreement_score(soft_terms: np.ndarray, roles: np.ndarray, n: int) -> float:
    """How well the repetitions of each coded bit agree under ``roles``: the sum of the cross
    products of their soft values (each repetition's square left out)."""
    total = _coded_soft(soft_terms, roles, n)
    own = _coded_soft(soft_terms**2, roles, n)
    return float((total**2 - own).sum())


def _expected_symbols(layout: Layout, bits: np.ndarray, rep_phases: np.ndarray) -> np.ndarray:
    """Symbols ``(reps, runs, groups)`` every group carries for the (scrambled) payload ``bits``
    when repetition ``i`` is a block of phase ``rep_phases[i]``."""
    return layout.symbol_bits(ecc.encode_payload(bits))[rep_phases]


def _bit_confidence(g: _Grouped, agree: np.ndarray, layout: Layout) -> float:
    """Reliability-weighted mean agreement of the payload groups, clipped to 0..1."""
    data = ~np.broadcast_to(layout.pilot, g.r.shape)
    weights = float(g.w[data].sum())
    conf = float((g.w[data] * agree[data]).sum() / weights) if weights > 0 else 0.0
    return max(0.0, min(1.0, conf))


def _decode_phase(
    g: _Grouped, soft_terms: np.ndarray, layout: Layout, rep_phases: np.ndarray
) -> tuple[np.ndarray, bool, np.ndarray]:
    """List-decode the payload from the per-group ``soft_terms`` (positive: bit 0) when
    repetition ``i`` is a block of phase ``rep_phases[i]``, with the channel-state reading when
    the plain one fails its CRC. Returns (payload bits, still scrambled; CRC ok; expected
    symbols ``(reps, runs, groups)`` of the best path)."""
    p = layout.params
    roles = layout.role[rep_phases]
    soft = _coded_soft(soft_terms, roles, p.coded_bits)
    bits, crc_ok = ecc.decode_payload(soft, p.payload_bits)
    expected = _expected_symbols(layout, bits, rep_phases)
    if not crc_ok:
        # Second reading with each group's soft value scaled by how well its class of groups
        # agrees with the best path (channel state measured on the file itself).
        soft = _coded_soft(_channel_state_soft(g, expected), roles, p.coded_bits)
        bits_csi, crc_ok = ecc.decode_payload(soft, p.payload_bits)
        if crc_ok:
            bits = bits_csi
            expected = _expected_symbols(layout, bits, rep_phases)
    return bits, crc_ok, expected


def _covered_bits(g: _Grouped, roles: np.ndarray) -> int:
    """How many distinct coded bits the groups with any reliability carry under ``roles``.

    A decode needs at least as many as the payload has bits: the codeword's other bits are
    erased, and with ``k`` of them read, ``2**(payload_bits - k)`` payloads fit them and their CRC
    equally well, so a path that passes the CRC is right no more often than one over pure noise
    (``CRC_PASS_BOUND``). Such a decode is not tried (a segment or piece of under about a third of
    a block)."""
    data = (roles >= 0) & (g.w > 0)
    return int(np.unique(roles[data]).size)


def _decode_grouped(g: _Grouped, layout: Layout, phase_options: list[np.ndarray] | None = None
                    ) -> tuple[np.ndarray | None, np.ndarray, float, np.ndarray | None]:
    """Decode the payload from grouped statistics under each block phase assignment in
    ``phase_options`` (default: :func:`_phase_options` of the whole). Returns (payload bits or
    None, per-group agreement with the decoded or presence symbols, bit confidence, the decoded
    codeword's symbols ``(reps, runs, groups)`` or None).

    Every assignment is decoded, not only those before the first CRC pass, and of the paths that
    pass, the one the file agrees with best is taken. Under a wrong assignment the coded bits are
    read from the wrong groups, so its path is noise, and it passes the CRC by chance (up to
    ``CRC_PASS_BOUND``, which already counts every assignment). The assignment ranked first is the
    wrong one for about 1 reading in 17 of a 6 s file (the repetitions that rank them barely
    overlap; more after a low-rate codec), so stopping at its pass would name a payload nobody
    issued although the right assignment decodes too. Such a pass agrees with the file less than
    the right path (docs/watermark.md, decoding, has the figures)."""
    pilot = np.broadcast_to(layout.pilot, g.r.shape)
    soft_terms = g.w * np.cos(2 * np.pi * g.r)  # positive: bit 0
    best: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None  # (score, bits, expected, agree)
    for rep_phases in (phase_options if phase_options is not None else _phase_options([soft_terms], layout)):
        if _covered_bits(g, layout.role[rep_phases]) < layout.params.payload_bits:
            continue
        bits, crc_ok, expected = _decode_phase(g, soft_terms, layout, rep_phases)
        if crc_ok:
            agree = _codeword_agreement(g, expected)
            score = float(np.sum(g.w * agree))
            if best is None or score > best[0]:
                best = (score, bits, expected, agree)
    if best is None:
        agree = _presence_terms(g.r, pilot, layout.pilot_bits)
        return None, agree, _bit_confidence(g, agree, layout), None
    _, bits, expected, agree = best
    return bits ^ layout.scramble, agree, _bit_confidence(g, agree, layout), expected


def _slot_agreement(g: _Grouped, agree: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Per-group agreement ``(reps, runs, groups)`` spread onto the slots, weighted by
    reliability, and the per-slot sum of squared weights (its null variance is half that)."""
    return _per_slot(g.w * agree, g, layout), _per_slot(g.w * g.w, g, layout)


def _decode(
    feat: _Features, layout: Layout, phase: int, offset: int, mask: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, float, np.ndarray | None]:
    """Soft-decode the payload at one alignment from the slots in ``mask``.

    The block phase of the first repetition is not known (a file may start anywhere), so every
    phase is decoded (:func:`_decode_grouped`). Returns (payload bits or None if the CRC fails,
    per-slot agreement, per-slot weight, bit confidence, the decoded codeword's symbols or None).
    """
    g = _grouped(feat, layout, phase, offset, mask)
    payload, agree, conf, expected = _decode_grouped(g, layout)
    return (payload, *_slot_agreement(g, agree, layout), conf, expected)


def _decode_known(
    readings: list[tuple[_Grouped, list[np.ndarray]]], layout: Layout, known: KnownPayloads, *, lists: bool = True
) -> tuple[np.ndarray | None, float, dict, np.ndarray | None]:
    """Match a file against the issued payloads (:mod:`.known`), from one or more readings of it
    (grouped statistics, with the block-phase assignments to try, the most likely first).

    The soft vectors are the plain and the channel-state soft values of each reading under each
    assignment. First (when ``lists``: about 0.5 s per soft vector), for each assignment rank and
    each reading, the ``KNOWN_LIST_SIZE`` best paths of those soft vectors, whose CRC passes are
    looked up in ``known``; the first issued payload ends the search. Then, when ``known`` can
    list its payloads (:class:`~provenance.watermark.known.IssuedList`), every issued codeword is
    scored against all the soft vectors (:func:`~provenance.watermark.known.best_correlation`),
    and the best is taken if the bound on its being a false match is small enough. With such a
    ``known``, a match from the lists also gets its codeword's correlation and bound (over all the
    soft vectors: at most the best issued codeword's, so the bound is conservative) for the
    matched route (:func:`_matched_p_value`). Returns (payload bits or None, bit confidence,
    details with the number of candidates looked up and, for a match, its route and the bound on
    its being false, the matched codeword's symbols or None)."""
    p = layout.params
    records = known.count()
    looked_up: set[str] = set()
    listing = isinstance(known, IssuedList)
    softs: list[tuple[np.ndarray, _Grouped, np.ndarray]] = []  # (soft vector, reading, assignment)
    for rank in range(p.block_phases):
        for g, phase_options in readings:
            if rank >= len(phase_options):
                continue
            rep_phases = phase_options[rank]
            roles = layout.role[rep_phases]
            plain = _coded_soft(g.w * np.cos(2 * np.pi * g.r), roles, p.coded_bits)
            best = ecc.viterbi_decode(plain, p.payload_bits + ecc.CRC_BITS)[0][: p.payload_bits]
            csi = _coded_soft(_channel_state_soft(g, _expected_symbols(layout, best, rep_phases)), roles, p.coded_bits)
            softs += [(plain, g, rep_phases), (csi, g, rep_phases)]
    stacked = np.stack([s for s, _, _ in softs]) if softs else np.zeros((0, p.coded_bits))
    unit = unit_rows(stacked)

    def matched(hex_payload: str, info: dict) -> tuple:
        payload = np.unpackbits(np.frombuffer(bytes.fromhex(hex_payload), dtype=np.uint8))
        signs = 1.0 - 2.0 * ecc.encode_payload(payload ^ layout.scramble).astype(np.float64)
        scores = unit @ signs
        # The reading and assignment the match agrees with best name its symbols and confidence.
        _, g, rep_phases = softs[int(np.argmax(scores))]
        if listing and "issued_correlation_z" not in info:
            z = float(scores.max())
            info = {**info, "issued_correlation_z": z, "issued_correlation_bound": correlation_bound(stacked, z, records)}
        expected = _expected_symbols(layout, payload ^ layout.scramble, rep_phases)
        conf = _bit_confidence(g, _codeword_agreement(g, expected), layout)
        return payload, conf, {"issued_candidates": len(looked_up), "issued_records": records,
                               "issued_correlation_tests": len(softs), **info}, expected

    for soft, _, _ in softs if lists else ():
        listed, _ = ecc.crc_candidates(soft, p.payload_bits, KNOWN_LIST_SIZE)
        hexes = [h for h in dict.fromkeys(bits_to_hex(b ^ layout.scramble) for b in listed) if h not in looked_up]
        if not hexes:
            continue
        # Each candidate looked up adds to the chance of a false match: stop before the bound
        # would pass the limit.
        if false_match_bound(len(looked_up) + len(hexes), records) > MAX_FALSE_MATCH:
            return None, 0.0, {"issued_candidates": len(looked_up)}, None
        looked_up.update(hexes)
        issued = known.find(hexes)
        match = next((h for h in hexes if h in issued), None)
        if match is not None:
            return matched(match, {"payload_source": "issued_payloads",
                                   "issued_false_match_bound": false_match_bound(len(looked_up), records)})
    info: dict = {"issued_candidates": len(looked_up), "issued_correlation_tests": 0}
    if not listing or not softs:
        return None, 0.0, info, None
    match, z = best_correlation(known, stacked, layout.scramble)
    info["issued_correlation_tests"] = len(softs)
    corr_bound = correlation_bound(stacked, z, records)
    bound = false_match_bound(len(looked_up), records) + corr_bound
    # A file is matched from at most KNOWN_READINGS readings (_readings_of), each with this
    # share of the limit, so the whole detection keeps to MAX_FALSE_MATCH.
    if match is None or bound > MAX_FALSE_MATCH / KNOWN_READINGS:
        return None, 0.0, {**info, "issued_correlation_z": z}, None
    return matched(match, {"payload_source": "issued_correlation", "issued_correlation_z": z,
                           "issued_correlation_bound": corr_bound, "issued_false_match_bound": bound})


def _phase_options(parts: list[np.ndarray], layout: Layout) -> list[np.ndarray]:
    """Block phases of the repetitions to try, the most likely first, for one or several pieces
    read at their own alignments (``parts``: each piece's per-group soft terms).

    The phase of a piece's first repetition is unknown (a file may start anywhere, and an edit
    may move a piece by any number of blocks). Pieces after the first are fixed one by one, each
    to the phase under which it agrees best with the pieces before it, so only the global choice
    is left open: the assignment found and its shifts by every phase, ordered by how well the
    repetitions of each coded bit agree under them. With one piece, phase 0 first on a tie."""
    p = layout.params
    first = _rep_phases(layout, parts[0].shape[0], 0)
    acc = _coded_soft(parts[0], layout.role[first], p.coded_bits)
    chosen = [first]
    for terms in parts[1:]:
        options = [_rep_phases(layout, terms.shape[0], h) for h in range(p.block_phases)]
        softs = [_coded_soft(terms, layout.role[ph], p.coded_bits) for ph in options]
        h = int(np.argmax([float(acc @ s) for s in softs]))
        chosen.append(options[h])
        acc = acc + softs[h]
    base = np.concatenate(chosen)
    ordered = [(base + k) % p.block_phases for k in range(p.block_phases)]
    terms = np.concatenate(parts)
    score = [_agreement_score(terms, layout.role[ph], p.coded_bits) for ph in ordered]
    return [ordered[k] for k in sorted(range(len(ordered)), key=lambda k: -score[k])]


def _presence_agreement(
    feat: _Features, layout: Layout, phase: int, offset: int, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot presence agreement (pilots, and the bit-blind lattice terms) and weight at one
    alignment, without decoding."""
    g = _grouped(feat, layout, phase, offset, mask)
    agree = _presence_terms(g.r, np.broadcast_to(layout.pilot, g.r.shape), layout.pilot_bits)
    return _slot_agreement(g, agree, layout)


@dataclass(frozen=True)
class _Piece:
    """A part of the file read at its own alignment: fine ``phase``, block ``offset`` (slots) and
    the slots it covers (``mask``); ``reported``: whether its presence test alone was reported."""

    phase: int
    offset: int
    mask: np.ndarray
    reported: bool


def _decode_joint(
    feat: _Features, layout: Layout, pieces: list[_Piece]
) -> tuple[np.ndarray | None, float, list[tuple[np.ndarray, np.ndarray]]]:
    """Decode one payload from several pieces of the file, each read at its own alignment: the
    repetitions of every piece are summed. A montage of excerpts shorter than a block, or the two
    sides of a cut, carry the whole codeword only together. Returns (payload bits or None, bit
    confidence, per piece its per-slot agreement with the decoded codeword and per-slot weight)."""
    gs, joint, options = _join_pieces(feat, layout, pieces)
    payload, agree, conf, _ = _decode_grouped(joint, layout, options)
    splits = np.split(agree, np.cumsum([g.r.shape[0] for g in gs])[:-1])
    per_piece = [_slot_agreement(g, a, layout) for g, a in zip(gs, splits)]
    return payload, conf, per_piece


def _whole_reading(feat: _Features, layout: Layout, phase: int, offset: int) -> tuple[_Grouped, list[np.ndarray]]:
    """The whole file grouped at one alignment, with its block-phase assignments (for :func:`_decode_known`)."""
    g = _grouped(feat, layout, phase, offset, np.ones(feat.v.shape[1]))
    return g, _phase_options([g.w * np.cos(2 * np.pi * g.r)], layout)


def _join_pieces(
    feat: _Features, layout: Layout, pieces: list[_Piece]
) -> tuple[list[_Grouped], _Grouped, list[np.ndarray]]:
    """Pieces grouped at their own alignments, their repetitions joined into one reading, and the
    block-phase assignments to try for it (:func:`_phase_options`), the most likely first."""
    gs = [_grouped(feat, layout, pc.phase, pc.offset, pc.mask) for pc in pieces]
    joint = _Grouped(np.concatenate([g.r for g in gs]), np.concatenate([g.w for g in gs]), 0, 0)
    return gs, joint, _phase_options([g.w * np.cos(2 * np.pi * g.r) for g in gs], layout)


def _segments_from_agreement(
    agree: np.ndarray, w2: np.ndarray, mask: np.ndarray, slot_s: float
) -> list[tuple[int, int]]:
    """Runs of slots whose smoothed agreement is significant: list of (start_slot, end_slot)."""
    n = agree.shape[0]
    half = max(1, int(round(SEGMENT_WINDOW_S / slot_s / 2)))
    kernel = np.ones(2 * half + 1)
    s = np.convolve(agree, kernel, mode="full")[half : half + n]
    v = np.convolve(0.5 * w2, kernel, mode="full")[half : half + n]
    z = np.divide(s, np.sqrt(v), out=np.zeros(n), where=v > 0)
    on = (z > SEGMENT_Z) & (mask > 0)
    runs: list[tuple[int, int]] = []
    i = 0
    while i < n:
        if on[i]:
            j = i
            while j < n and on[j]:
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    merged: list[tuple[int, int]] = []
    gap = int(round(0.5 / slot_s))
    for a, b in runs:
        if merged and a - merged[-1][1] <= gap:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    min_len = int(round(SEGMENT_MIN_S / slot_s))
    return [(a, b) for a, b in merged if b - a >= min_len]


def _trim_edges(agree: np.ndarray, w2: np.ndarray, a: int, b: int, edge: int, min_len: int) -> tuple[int, int]:
    """The run ``[a, b)`` with an end moved inwards to its change point where the mark
    demonstrably stops before the run does.

    The smoothed agreement stays significant for a few slots past a mark's edge, and a chance
    fluke in the unmarked audio just beyond can join the run through the gap merge, so a run
    can overhang its mark by up to ~0.6 s. Inside the mark a slot's agreement has mean
    ``theta * w2`` (``theta`` estimated over the run), outside it zero: the sum of
    ``agree - theta * w2 / 2`` (a CUSUM) rises inside and falls outside, so its maximum within
    ``edge`` slots of the end places the end (mirrored for the start). An end is only moved when
    the slots it gives up fall short of a continuing mark by ``SEGMENT_TRIM_Z`` standard
    deviations, so that a mark that only weakens a little towards its end (quieter audio, the
    end of the file) keeps its extent. Gates of 2 and 3 kept chance flukes that the verifier's
    edge search then trusted; 1 trims those and costs the bare detector's benchmark at most
    0.05 s of mislabelled time per clip (docs/watermark.md, Segments).
    """
    total_w2 = float(w2[a:b].sum())
    theta = float(agree[a:b].sum()) / total_w2 if total_w2 > 0 else 0.0
    n = b - a
    reach = min(edge, n - min_len)
    if theta <= 0 or reach <= 0:
        return a, b
    g = agree[a:b] - 0.5 * theta * w2[a:b]
    head = np.cumsum(g)  # head[k]: sum of g over slots a .. a + k
    end = n - reach + int(np.argmax(head[n - reach - 1 : n]))  # exclusive, relative to a
    tail = np.cumsum(g[::-1])[::-1]  # tail[k]: sum of g over slots a + k .. b - 1
    start = int(np.argmax(tail[: reach + 1]))

    def short_of_mark(lo: int, hi: int) -> bool:
        """Whether slots ``lo .. hi - 1`` (relative to a) agree significantly less than a mark."""
        wt = float(w2[a + lo : a + hi].sum())
        if hi <= lo or wt <= 0:
            return False
        shortfall = theta * wt - float(agree[a + lo : a + hi].sum())
        return shortfall / math.sqrt(0.5 * wt) > SEGMENT_TRIM_Z

    end = end if short_of_mark(end, n) else n
    start = start if short_of_mark(0, start) else 0
    if end - start < min_len:
        return a, b
    return a + start, a + end


def detect_features(
    x16: np.ndarray,
    key: WatermarkKey | bytes,
    *,
    duration_s: float,
    threshold: float = DEFAULT_THRESHOLD,
    params: WatermarkParams = DEFAULT_PARAMS,
    source_rate_hz: float | None = None,
    search: bool = True,
    clipped16: np.ndarray | None = None,
    known: KnownPayloads | None = None,
) -> Detection:
    """Detect in a 16 kHz mono signal (see :func:`detect`); ``source_rate_hz`` is the rate of the
    file it came from (bands above its Nyquist frequency are ignored); ``clipped16`` is the
    clipped share of each 16 kHz sample (:func:`~provenance.watermark.clipping.clipped_fraction`)
    or None; ``known``: the issued payloads, if the caller has them (:mod:`.known`)."""
    layout = Layout.from_key(as_key(key), params)
    tables = _ScanTables.for_layout(layout)
    bp, feat = _timeline_features(x16, params, source_rate_hz)
    if feat.v.shape[1] < 2:
        return Detection(False, None, 1.0, 0.0, (), threshold, duration_s)
    echo = find_echo(x16, params)
    readings = 1 if echo is None else 2
    det = _detect_timeline(bp, feat, layout, tables, params, source_rate_hz, clipped16,
                           threshold=threshold, duration_s=duration_s, readings=readings)
    # The features the reported reading was made from (for the issued-payload step).
    chosen = (bp, feat)
    if echo is not None:
        # The file holds one strong echo: read it a second time with the echo undone, and keep
        # the better reading (both p-values carry the union bound over the two).
        bp_e, feat_e = _timeline_features(cancel_echo(x16, echo), params, source_rate_hz)
        det_e = _detect_timeline(bp_e, feat_e, layout, tables, params, source_rate_hz, clipped16,
                                 threshold=threshold, duration_s=duration_s, readings=readings)
        best = _better_reading([det, det_e])
        echo_info = {"echo_delay_s": round(echo.delay_s, 4), "echo_gain": round(echo.gain, 3),
                     "echo_cancelled": best is det_e}
        det = dataclasses.replace(best, details={**best.details, **echo_info})
        if best is det_e:
            chosen = (bp_e, feat_e)
    def unedited(d: Detection) -> Detection:
        return _with_issued_payload(d, lambda kn: (
            _detect_in(f, layout, tables, threshold=threshold, duration_s=duration_s,
                       hypotheses=int(det.details["hypotheses"]), known=kn)
            for f in _readings_of(det, *chosen, clipped16, params, source_rate_hz)), known)

    if not search or (det.found and det.payload is not None):
        return unedited(det)
    # Not found, or found without its payload: a pitch shift of a semitone or a small time
    # stretch can leave enough of the mark in place to be found, but not to be decoded.
    searched = _search_readings(x16, feat, layout, tables, params, source_rate_hz,
                                threshold=threshold, duration_s=duration_s)
    if searched is None:
        return unedited(det)
    wdet, warped_feat, warp, start = searched
    if det.found:
        warped = wdet.found and wdet.payload is not None
    else:
        warped = wdet.p_value < det.p_value
    best = wdet if warped else det
    details = {**best.details,
               "unedited_z": det.details["z"], "unedited_p_value": det.p_value,
               "search_z": wdet.details["z"], "search_p_value": wdet.p_value,
               "search_speed": wdet.speed, "search_pitch_semitones": wdet.pitch_semitones,
               "search_noise_floor": wdet.details["noise_floor"]}
    best = dataclasses.replace(best, details=details)
    if not warped:
        # The unedited reading: found without its payload, or not found (the issued payloads may
        # name it, and confirm a mark that nearly passed the presence test).
        return unedited(best)
    return _with_issued_payload(best, lambda kn: iter([
        _detect_in(warped_feat, layout, tables, threshold=threshold, duration_s=duration_s,
                   hypotheses=search_hypotheses(), warp=warp, start_s=start / params.analysis_rate_hz, known=kn)]),
        known)


def _search_readings(
    x16: np.ndarray, feat: _Features, layout: Layout, tables: _ScanTables, params: WatermarkParams,
    source_rate_hz: float | None, *, threshold: float, duration_s: float,
) -> tuple[Detection, _Features, Warp, int] | None:
    """The tempo and pitch search (:func:`_search_warp`) with both reliability readings, with and
    without the noise-floor discount (see :func:`_detect_timeline`: steady content ranks the
    warps poorly with the discount). Returns the better warped detection (one whose payload
    decodes, then the smaller p-value; ``details["noise_floor"]`` says which reading), the
    features it was read from, its warp and the first sample of its window (16 kHz); None when
    the signal is too short to search. The p-values carry the union bound over both readings'
    warps, :func:`search_hypotheses`."""
    searched = _search_warp(x16, feat, layout, tables, params, source_rate_hz, (True, False))
    if searched is None:
        return None
    readings: list[tuple[Detection, _Features, Warp, int]] = []
    for noise_floor, (warp, resampled, start, end) in zip((True, False), searched):
        wfeat = _unwarped_features(resampled, warp, params, source_rate_hz, noise_floor=noise_floor)
        wdet = _detect_in(wfeat, layout, tables, threshold=threshold, duration_s=duration_s,
                          hypotheses=search_hypotheses(), warp=warp, start_s=start / params.analysis_rate_hz)
        if wdet.found:
            wdet = _extend_warped(wdet, x16, warp, (start, end), layout, tables, params, source_rate_hz,
                                  threshold=threshold, duration_s=duration_s, noise_floor=noise_floor)
        wdet = dataclasses.replace(wdet, details={**wdet.details, "noise_floor": noise_floor})
        readings.append((wdet, wfeat, warp, start))
        if wdet.found and wdet.payload is not None:
            break
    best = _better_reading([item[0] for item in readings])
    return next(item for item in readings if item[0] is best)


def _readings_of(
    det: Detection, bp: np.ndarray, feat: _Features, clipped16: np.ndarray | None, params: WatermarkParams,
    source_rate_hz: float | None,
) -> list[_Features]:
    """The features of the timeline reading ``det`` reports (with or without the noise-floor
    discount, :func:`_detect_timeline`), then those of the other reading of a clipped file
    (:func:`_detect_clipped`: as is, and with the clipped tiles erased)."""
    noise_floor = bool(det.details.get("noise_floor", True))
    if not noise_floor:
        feat = _features_from_band_power(bp, params, source_rate_hz, noise_floor=False)
    if clipped16 is None or "clipping_erased" not in det.details:
        return [feat]
    erased = _features_from_band_power(bp, params, source_rate_hz, noise_floor=noise_floor,
                                       tile_weight=_clip_weights(clipped16, bp.shape[0], params))
    return [erased, feat] if det.details["clipping_erased"] else [feat, erased]


def _with_issued_payload(
    det: Detection, rereads: Callable[[KnownPayloads], Iterator[Detection]], known: KnownPayloads | None
) -> Detection:
    """``det``, with the payload named by matching against the issued payloads when its payload
    did not decode (:mod:`provenance.watermark.known`). ``rereads`` runs the reading ``det``
    reports again with ``known`` (the detector is deterministic, so it finds the same alignment
    and pieces), then any other reading worth trying. For a found mark only the payload, its
    confidence, the segments' payloads, the p-value (the better of the routes open to it) and
    ``details`` change. A mark the presence test missed is found when an issued payload
    confirms it (:func:`_issued_p_value`, with the false-match bound over every reading tried).
    When the issued payloads can be listed, the presence test alone keeps a smaller share of the
    false-positive budget (:func:`_presence_p_value`), so a mark found only just, that no payload
    confirms, can end up missed."""
    if known is None:
        return det
    listing = isinstance(known, IssuedList)
    presence = float(det.details.get("presence_p_value", 1.0))
    if det.details.get("crc_confirmed"):
        # Its payload decoded (CRC): with the issued payloads the confirmed route is wider. If that
        # is not enough, only the matched route is left to try.
        det = _with_p_value(det, _store_confirmed_p_value(presence))
        if det.found or not listing:
            return det
    else:
        det = _with_p_value(det, _presence_p_value(presence, listing=listing))
        if det.payload is not None or (not det.found and presence > CONFIRM_P_VALUE and not listing):
            return det
    candidates = tests = 0
    best_z = 0.0
    for again in rereads(known):
        candidates += int(again.details.get("issued_candidates", 0))
        tests += int(again.details.get("issued_correlation_tests", 0))
        best_z = max(best_z, float(again.details.get("issued_correlation_z", 0.0)))
        source = again.details.get("payload_source")
        if source not in ("issued_payloads", "issued_correlation") or again.payload is None:
            continue
        records = int(again.details["issued_records"])
        bound = false_match_bound(candidates, records)  # over all the readings tried
        corr_bound = again.details.get("issued_correlation_bound")  # with a store that lists its payloads
        if source == "issued_correlation":
            bound += float(corr_bound)
        if bound > MAX_FALSE_MATCH:
            break
        info = {"payload_source": source, "issued_candidates": candidates, "issued_correlation_tests": tests,
                "issued_records": records, "issued_false_match_bound": bound}
        if corr_bound is not None:
            info["issued_correlation_z"] = again.details["issued_correlation_z"]
            info["issued_correlation_bound"] = corr_bound = float(corr_bound)
        pval = _issued_p_value(float(again.details.get("presence_p_value", presence)), corr_bound)
        if det.found:
            segments = tuple(seg if seg.payload is not None else dataclasses.replace(seg, payload=again.payload)
                             for seg in det.segments)
            return dataclasses.replace(det, payload=again.payload, bit_confidence=again.bit_confidence,
                                       p_value=min(det.p_value, pval), segments=segments,
                                       details={**det.details, **info})
        if pval > det.threshold or not again.found:
            break
        info["store_confirmed"] = True
        return dataclasses.replace(again, p_value=pval, details={**det.details, **again.details, **info})
    return dataclasses.replace(det, details={**det.details, "issued_candidates": candidates,
                                             "issued_correlation_tests": tests, "issued_correlation_z": best_z})


def _with_p_value(det: Detection, pval: float) -> Detection:
    """``det`` with p-value ``pval``, no longer found (nor reporting a payload or segments) when
    that is above its threshold."""
    if pval <= det.threshold or not det.found:
        return dataclasses.replace(det, p_value=pval)
    return dataclasses.replace(det, found=False, payload=None, p_value=pval, bit_confidence=0.0, segments=())


def _timeline_features(
    x16: np.ndarray, params: WatermarkParams, source_rate_hz: float | None
) -> tuple[np.ndarray, _Features]:
    """Band power at the fine hop ``(frames, bands)`` and the features of a 16 kHz signal on its
    own (unwarped) timeline."""
    bp = band_power_frames(x16, params, params.hop // FINE)
    return bp, _features_from_band_power(bp, params, source_rate_hz)


def _better_reading(readings: list[Detection]) -> Detection:
    """Of several readings of one file, the one whose payload decodes among those found, then
    the one with the smaller p-value. When only one of several found readings decodes, that many
    decodes were tried, which multiplies the chance of a CRC passing by accident as much."""
    return min(readings, key=lambda d: (not (d.found and d.payload is not None), d.p_value))


def _detect_timeline(
    bp: np.ndarray, feat: _Features, layout: Layout, tables: _ScanTables, params: WatermarkParams,
    source_rate_hz: float | None, clipped16: np.ndarray | None, *, threshold: float, duration_s: float,
    readings: int = 1,
) -> Detection:
    """Presence test and decoding on the unedited timeline, read with two sets of reliabilities.

    The first (``feat``) discounts the tiles near each band's floor, the 5th percentile of the
    file's tile levels: added noise fills the quiet tiles of speech pauses and sparse sounds, and
    there the floor is that noise. In steady content (rain, an ambience bed, a drone: most of a
    generated soundtrack) the floor is the content itself, every tile carries the mark, and the
    discount throws most of them away, so unless the first reading finds the mark and decodes
    its payload, the file is read again without it. Both p-values are doubled (a union bound over
    the two readings; the first is reported as soon as it decodes) and multiplied by
    ``readings``, the number of readings of the file tried otherwise (2 when an echo is also
    undone). ``details["noise_floor"]`` says which reading is reported."""
    first = _detect_weighted(bp, feat, layout, tables, params, source_rate_hz, clipped16,
                             threshold=threshold, duration_s=duration_s, readings=2 * readings, noise_floor=True)
    if first.found and first.payload is not None:
        return dataclasses.replace(first, details={**first.details, "noise_floor": True})
    flat = _features_from_band_power(bp, params, source_rate_hz, noise_floor=False)
    second = _detect_weighted(bp, flat, layout, tables, params, source_rate_hz, clipped16,
                              threshold=threshold, duration_s=duration_s, readings=2 * readings, noise_floor=False)
    best = _better_reading([first, second])
    return dataclasses.replace(best, details={**best.details, "noise_floor": best is first})


def _detect_weighted(
    bp: np.ndarray, feat: _Features, layout: Layout, tables: _ScanTables, params: WatermarkParams,
    source_rate_hz: float | None, clipped16: np.ndarray | None, *, threshold: float, duration_s: float,
    readings: int, noise_floor: bool,
) -> Detection:
    """One reading of :func:`_detect_timeline`, with clipped tiles read as erasures when enough
    of the file is clipped; ``readings`` multiplies the p-value."""
    if clipped16 is not None and float(clipped16.mean()) >= CLIP_MIN_FRACTION:
        erased = _features_from_band_power(bp, params, source_rate_hz, noise_floor=noise_floor,
                                           tile_weight=_clip_weights(clipped16, bp.shape[0], params))
        return _detect_clipped(feat, erased, layout, tables, threshold=threshold, duration_s=duration_s,
                               readings=readings)
    return _detect_in(feat, layout, tables, threshold=threshold, duration_s=duration_s, hypotheses=readings)


def _detect_clipped(
    feat: _Features, erased: _Features, layout: Layout, tables: _ScanTables, *, threshold: float,
    duration_s: float, readings: int = 1,
) -> Detection:
    """The presence test read twice, as is and with the clipped tiles erased; the p-values are
    doubled (a union bound over the two readings), and multiplied by ``readings`` as well (see
    :func:`_detect_timeline`). The better reading is kept (:func:`_better_reading`)."""
    both = [
        _detect_in(f, layout, tables, threshold=threshold, duration_s=duration_s, hypotheses=2 * readings)
        for f in (feat, erased)
    ]
    best = _better_reading(both)
    return dataclasses.replace(best, details={**best.details, "clipping_erased": best is both[1]})


def _weak_piece(
    feat: _Features, layout: Layout, phase: int, offset: int, mask: np.ndarray
) -> tuple[_Piece, bool]:
    """A piece not reported on its own, at one alignment, and whether it could be placed: the
    slots of ``mask`` where its presence agreement (pilots and lattice) is significant, or all
    of ``mask`` when there are none (not placed)."""
    agree, w2 = _presence_agreement(feat, layout, phase, offset, mask)
    runs = _segments_from_agreement(agree, w2, mask, layout.params.slot_s)
    piece = np.zeros_like(mask) if runs else mask.copy()
    for a, b in runs:
        piece[a:b] = 1.0
    return _Piece(phase, offset, piece, reported=False), bool(runs)


def _segments_of_joint(
    payload: str, pieces: list[_Piece], agreements: list[tuple[np.ndarray, np.ndarray]],
    segments: list[Segment], seg_slots: list[tuple[int, int, int]],
    make_segment: Callable[[int, int, int, np.ndarray, np.ndarray, str | None], Segment], slot_s: float,
) -> list[Segment]:
    """Segments after a joint decode of ``pieces`` gave ``payload``: a reported segment
    (``seg_slots``: its piece, first and end slot) takes the payload where it agrees with its
    codeword (the other side of a splice of two marks does not), and the pieces not reported on
    their own, which the CRC now vouches for, become segments where they agree with it."""
    out = list(segments)
    for i, (k, a, b) in enumerate(seg_slots):
        agree, w2 = agreements[k]
        if make_segment(a, b, pieces[k].phase, agree, w2, None).p_value < special.ndtr(-SEGMENT_Z):
            out[i] = dataclasses.replace(out[i], payload=payload)
    for pc, (agree, w2) in zip(pieces, agreements):
        if not pc.reported:
            runs = _segments_from_agreement(agree, w2, pc.mask, slot_s)
            out += [make_segment(a, b, pc.phase, agree, w2, payload) for a, b in runs]
    return out


def _detect_in(
    feat: _Features,
    layout: Layout,
    tables: _ScanTables,
    *,
    threshold: float,
    duration_s: float,
    hypotheses: int = 1,
    warp: Warp = IDENTITY,
    start_s: float = 0.0,
    known: KnownPayloads | None = None,
) -> Detection:
    """Presence test, decoding and segments on features of the unedited timeline.

    ``hypotheses`` is the number of tempo/pitch hypotheses the features were chosen from
    (the p-value is multiplied by it: a union bound); ``warp`` and ``start_s`` map feature
    time ``t`` back to file time ``start_s + warp.time_scale * t``. ``known``: issued payloads
    to match a found but undecoded mark against (:func:`_with_issued_payload` passes them).
    """
    params = layout.params
    n_slots = feat.v.shape[1]
    mask = np.ones(n_slots)
    slot_s = params.slot_s
    fine_s = slot_s / (params.slot_hops * FINE)
    edge_slots, min_slots = int(round(SEGMENT_EDGE_S / slot_s)), int(round(SEGMENT_MIN_S / slot_s))

    def file_time(t: float) -> float:
        return round(float(min(duration_s, max(0.0, start_s + warp.time_scale * t))), 3)

    def segment(a: int, b: int, ph: int, agree: np.ndarray, w2: np.ndarray, payload: str | None) -> Segment:
        # Runs keep their full extent for masking and decoding; only the reported span is trimmed.
        a, b = _trim_edges(agree, w2, a, b, edge_slots, min_slots)
        var = 0.5 * float(w2[a:b].sum())
        seg_z = float(agree[a:b].sum()) / math.sqrt(var) if var > 0 else 0.0
        t0 = ph * fine_s
        return Segment(start_s=file_time(t0 + a * slot_s), end_s=file_time(t0 + b * slot_s + 2 * fine_s),
                       payload=payload, p_value=float(special.ndtr(-seg_z)))

    segments: list[Segment] = []
    seg_slots: list[tuple[int, int, int]] = []  # (piece index, first slot, end slot) of each segment
    pieces: list[_Piece] = []
    best_overall: tuple[float, str | None, float, dict] | None = None
    for _search in range(MAX_SEGMENT_SEARCHES):
        z = _scan(feat, layout, mask, tables)
        ph, off = (int(i) for i in np.unravel_index(int(np.argmax(z)), z.shape))
        loc, scale = _null_scale(z, (ph, off))
        z_eff = (float(z[ph, off]) - loc) / scale
        pval = min(1.0, p_value_from_z(z_eff) * hypotheses)
        if best_overall is not None and (pval > threshold or mask.sum() < params.block_slots):
            if pval > JOINT_PIECE_P_VALUE:
                break
            # Not reported on its own (too weak, or found in less audio than the null law was
            # calibrated on), but it may complete the codeword (see _decode_joint).
            weak, placed = _weak_piece(feat, layout, ph, off, mask)
            pieces.append(weak)
            if not placed:  # it stands for the whole rest: nothing is left to search
                break
            mask = mask * (1.0 - weak.mask)
            if mask.sum() < JOINT_PIECE_MIN_S / slot_s:
                break
            continue
        payload_bits, agree, w2, conf, expected = _decode(feat, layout, ph, off, mask)
        payload = bits_to_hex(payload_bits) if payload_bits is not None else None
        info = {"z": z_eff, "z_raw": float(z[ph, off]), "null_scale": scale,
                "phase": ph, "offset_slots": off,
                "alignment_s": file_time(off * slot_s + ph * fine_s),
                "hypotheses": hypotheses}
        if best_overall is None:
            info["presence_p_value"] = pval
            if payload is not None and pval <= CONFIRM_P_VALUE:
                info["crc_confirmed"] = True  # the p-value below is the confirmed route's
            pval = _confirmed_p_value(pval, payload is not None)
            best_overall = (pval, payload, conf, info)
        if pval > threshold:
            break
        runs = _segments_from_agreement(agree, w2, mask, slot_s)
        if not runs:
            break
        piece = np.zeros(n_slots)
        for a, b in runs:
            seg_mask = np.zeros(n_slots)
            seg_mask[a:b] = 1.0
            if expected is not None:
                # The runs are where the decoded codeword itself agrees (a splice of another
                # payload at this alignment agrees through its pilots alone, a fifth of the
                # groups, and stays below SEGMENT_Z), so they carry this payload. Decoding a run
                # again, too short to hold the codeword, would pass the CRC by chance with
                # probability up to CRC_PASS_BOUND and name a payload nobody issued.
                g = _grouped(feat, layout, ph, off, seg_mask)
                seg_agree, seg_w2 = _slot_agreement(g, _codeword_agreement(g, expected), layout)
                seg_pay = payload
            else:
                seg_payload_bits, seg_agree, seg_w2, _, _ = _decode(feat, layout, ph, off, seg_mask)
                seg_pay = bits_to_hex(seg_payload_bits) if seg_payload_bits is not None else None
            segments.append(segment(a, b, ph, seg_agree, seg_w2, seg_pay))
            seg_slots.append((len(pieces), a, b))
            piece[a:b] = 1.0
            mask[a:b] = 0.0
        pieces.append(_Piece(ph, off, piece, reported=True))
        if mask.sum() < JOINT_PIECE_MIN_S / slot_s:
            break
    assert best_overall is not None
    pval, payload, conf, info = best_overall
    found = pval <= threshold
    if found and payload is None and segments:
        # The whole-file decode mixes in unmarked audio (e.g. a marked excerpt spliced into
        # other audio); the longest segment that decodes on its own then names the payload.
        decoded = [s for s in segments if s.payload is not None]
        if decoded:
            payload = max(decoded, key=lambda s: s.end_s - s.start_s).payload
        elif len(pieces) > 1:
            # Pieces at different alignments (the two sides of a cut, a montage of excerpts
            # shorter than a block) may carry the whole codeword only together.
            joint_bits, joint_conf, agreements = _decode_joint(feat, layout, pieces)
            if joint_bits is not None:
                payload = bits_to_hex(joint_bits)
                conf = joint_conf
                segments = _segments_of_joint(payload, pieces, agreements, segments, seg_slots, segment, slot_s)
                info = {**info, "joint_pieces": len(pieces)}
    near = found or info["presence_p_value"] <= CONFIRM_P_VALUE
    listing = isinstance(known, IssuedList)
    # A payload that decoded without reaching the threshold can still be confirmed by the matched
    # route (_matched_p_value), when the issued payloads can be listed.
    unconfirmed = payload is None or (not found and listing)
    if unconfirmed and known is not None and (near or listing):
        readings = [_whole_reading(feat, layout, info["phase"], info["offset_slots"])]
        if len(pieces) > 1:
            _, joint, options = _join_pieces(feat, layout, pieces)
            readings.append((joint, options))
        # Far from the threshold only a strong correlation can confirm the mark: the decoder's
        # long lists (seconds) are left out there.
        payload_bits, known_conf, known_info, expected = _decode_known(readings, layout, known, lists=near)
        if not found and payload_bits is not None:
            # An issued payload confirms presence as a passed CRC does (see _confirmed_p_value):
            # its codeword is independent of everything the presence test reads.
            pval = _issued_p_value(info["presence_p_value"], known_info.get("issued_correlation_bound"))
            found = pval <= threshold
            if found:
                ph, off = info["phase"], info["offset_slots"]
                whole = np.ones(n_slots)  # nothing was masked: the first alignment missed
                g = _grouped(feat, layout, ph, off, whole)
                agree, w2 = _slot_agreement(g, _codeword_agreement(g, expected), layout)
                segments = [segment(a, b, ph, agree, w2, bits_to_hex(payload_bits))
                            for a, b in _segments_from_agreement(agree, w2, whole, slot_s)]
                info = {**info, "store_confirmed": True}
        counts = ("issued_candidates", "issued_correlation_tests", "issued_correlation_z")
        info = {**info, **(known_info if found else {k: v for k, v in known_info.items() if k in counts})}
        if found and payload_bits is not None:
            payload, conf = bits_to_hex(payload_bits), known_conf
            # Like a decoded whole-file payload, it names the segments that did not decode alone.
            segments = [seg if seg.payload is not None else dataclasses.replace(seg, payload=payload)
                        for seg in segments]
    segments.sort(key=lambda s: s.start_s)
    return Detection(
        found=found,
        payload=payload if found else None,
        p_value=pval,
        bit_confidence=conf if found else 0.0,
        segments=tuple(segments) if found else (),
        threshold=threshold,
        duration_s=duration_s,
        speed=round(warp.speed, 5),
        pitch_semitones=round(warp.pitch_semitones, 4),
        details=info,
    )


def _coarse_pitch_warps() -> list[Warp]:
    """The pitch shifts tried first, each at the time scales of :data:`PITCH_TIME_SCALES`."""
    semis = np.arange(-PITCH_RANGE_ST, PITCH_RANGE_ST + 1e-9, PITCH_STEP_ST)
    semis = semis[np.abs(semis) > 1e-9]
    return [Warp(t, 2.0 ** (st / 12.0)) for st in semis for t in PITCH_TIME_SCALES]


def _coarse_warps() -> list[Warp]:
    """The tempo and pitch changes tried first, on a short window: speed changes (tempo and
    pitch together), time stretches (tempo only) and pitch shifts (pitch only)."""
    tempos = np.round(np.arange(TEMPO_RANGE[0], TEMPO_RANGE[1] + 1e-9, TEMPO_STEP), 6)
    tempos = tempos[np.abs(tempos - 1.0) > 1e-9]
    return [Warp(1.0 / s, s) for s in tempos] + [Warp(1.0 / s, 1.0) for s in tempos] + _coarse_pitch_warps()


def _fine_steps() -> tuple[np.ndarray, np.ndarray]:
    """Relative refinements of a coarse warp: (time factors, frequency factors)."""
    k = FINE_TIME_STEPS
    time_f = 1.0 + FINE_TIME_STEP * np.arange(-k, k + 1)
    j = FINE_FREQ_STEPS
    freq_f = 1.0 + FINE_FREQ_STEP * np.arange(-j, j + 1)
    return time_f, freq_f


def search_hypotheses() -> int:
    """How many warps a search can end on (the union bound applied to its p-value): every fine
    refinement of every coarse warp, plus the unedited timeline, each read with and without the
    noise-floor discount (:func:`_search_readings`)."""
    time_f, freq_f = _fine_steps()
    return 2 * (1 + len(_coarse_warps()) * time_f.size * freq_f.size)


def _best_window(feat: _Features, length_slots: int, within: tuple[int, int]) -> tuple[int, int]:
    """The ``length_slots`` slots inside ``within`` with the most reliable tiles."""
    lo, hi = within
    if hi - lo <= length_slots:
        return lo, hi
    per_slot = feat.w[0, lo:hi].sum(axis=-1)
    sums = np.convolve(per_slot, np.ones(length_slots), mode="valid")
    a = lo + int(np.argmax(sums))
    return a, a + length_slots


def _z_of(feat: _Features, layout: Layout, tables: _ScanTables) -> float:
    """Standardised best z of the presence test on ``feat`` (-inf if shorter than a block)."""
    return _z_of_readings([feat], layout, tables)[0]


def _z_of_readings(feats: list[_Features], layout: Layout, tables: _ScanTables) -> list[float]:
    """:func:`_z_of` for readings of one signal that share its pair values (:func:`_reading_features`)."""
    if feats[0].v.shape[1] < layout.params.block_slots:
        return [-np.inf] * len(feats)
    out = []
    for z in _scan_readings(feats, layout, np.ones(feats[0].v.shape[1]), tables):
        ph, off = np.unravel_index(int(np.argmax(z)), z.shape)
        loc, scale = _null_scale(z, (ph, off))
        out.append((float(z[ph, off]) - loc) / scale)
    return out


def _search_warp(
    x16: np.ndarray, feat: _Features, layout: Layout, tables: _ScanTables, params: WatermarkParams,
    source_rate_hz: float | None, noise_floors: tuple[bool, ...],
) -> list[tuple[Warp, np.ndarray, int, int]] | None:
    """Search tempo and pitch changes: every coarse warp on a window of ``COARSE_BLOCKS`` blocks
    (scaled band edges, one power spectrum), then hill climbing over fine steps around the best
    ``SEARCH_CANDIDATES`` on a window of up to ``SEARCH_WINDOW_S`` (the signal resampled for each
    frequency scale). The search runs once per reliability reading of ``noise_floors`` (with and
    without the noise-floor discount, :func:`_detect_timeline`), sharing the band power; ``feat``
    (the unedited features with the discount) chooses the windows. Returns, per reading, the best
    warp, the band power of the window resampled for its frequency scale (see
    :func:`_unwarped_features`) and the window's first and end sample at 16 kHz; None when the
    signal is too short to hold a block at every tempo."""
    n_slots = feat.v.shape[1]
    slot = params.slot_len
    need = _min_search_slots(params)
    if n_slots < need:
        return None
    fine_hop = params.hop // FINE
    win = _best_window(feat, int(SEARCH_WINDOW_S / params.slot_s), (0, n_slots))
    cwin = _best_window(feat, max(need, int(COARSE_BLOCKS * params.block_slots * TEMPO_RANGE[1])), win)
    xc = x16[cwin[0] * slot : cwin[1] * slot]
    power = power_frames(xc, params, fine_hop)
    unscaled = warped_band_power(power, params, IDENTITY)  # shared by every time stretch

    pitch_shifts = set(_coarse_pitch_warps())
    resampled_coarse: dict[float, np.ndarray] = {}

    def coarse_scores(w: Warp) -> list[float]:
        if w in pitch_shifts:
            # Pitch shifts: scaled band edges rank them poorly on tonal music (a harmonic's
            # energy sits in one bin, which fractional edge weights misplace); resample (once
            # per pitch, for all its time scales).
            if w.freq_scale not in resampled_coarse:
                resampled_coarse[w.freq_scale] = resampled_band_power(xc, params, w.freq_scale, fine_hop)
            feats = _unwarped_readings(resampled_coarse[w.freq_scale], w, params, source_rate_hz,
                                       COARSE_PHASE_STEP, noise_floors)
        else:
            banded = unscaled if w.freq_scale == 1.0 else warped_band_power(power, params, Warp(1.0, w.freq_scale))
            feats = _reading_features(warp_time(banded, w.time_scale), params, source_rate_hz, w.freq_scale,
                                      COARSE_PHASE_STEP, None, noise_floors)
        return _z_of_readings(feats, layout, tables)

    coarse = [coarse_scores(w) for w in _coarse_warps()]
    xw = x16[win[0] * slot : win[1] * slot]
    time_f, freq_f = _fine_steps()
    resampled: dict[float, np.ndarray] = {}  # band power of the window resampled, per frequency scale
    results = []
    for r, noise_floor in enumerate(noise_floors):
        scored = sorted(((zs[r], i, w) for i, (zs, w) in enumerate(zip(coarse, _coarse_warps()))), reverse=True)
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
                    w = start.scaled(time_f[ti], freq_f[fi])
                    cache[(ti, fi)] = _z_of(_unwarped_features(banded(fi), w, params, source_rate_hz,
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


def _min_search_slots(params: WatermarkParams) -> int:
    """Slots a warped window must hold: one block at the slowest tempo searched."""
    return int(math.ceil(params.block_slots * TEMPO_RANGE[1]))


def _extend_warped(
    det: Detection, x16: np.ndarray, warp: Warp, done: tuple[int, int], layout: Layout,
    tables: _ScanTables, params: WatermarkParams, source_rate_hz: float | None, *, threshold: float,
    duration_s: float, noise_floor: bool = True,
) -> Detection:
    """Segments of a warped mark outside the window the search chose (``done``, 16 kHz samples).

    The search aligns one window of up to ``SEARCH_WINDOW_S``; a tempo estimate good to 0.05 %
    drifts by a slot every 40 s, so the rest of a long file is read window by window, each with
    the warp found and its own alignment search. A window's segments count when its own test
    passes ``threshold`` after a union bound over the windows read; the payload and p-value
    stay those of the chosen window. ``noise_floor``: the reliability reading the warp was
    found with."""
    rate = params.analysis_rate_hz
    win = int(SEARCH_WINDOW_S * rate)
    shortest = _min_search_slots(params) * params.slot_len
    starts = list(range(done[0] - win, -win, -win)) + list(range(done[1], x16.shape[-1], win))
    spans = [(max(0, a), min(x16.shape[-1], a + win)) for a in starts]
    spans = [(a, b) for a, b in spans if b - a >= shortest]
    if not spans:
        return det
    segments = list(det.segments)
    for a, b in spans:
        bp = resampled_band_power(x16[a:b], params, warp.freq_scale, params.hop // FINE)
        feat = _unwarped_features(bp, warp, params, source_rate_hz, noise_floor=noise_floor)
        part = _detect_in(feat, layout, tables, threshold=threshold, duration_s=duration_s,
                          hypotheses=len(spans), warp=warp, start_s=a / rate)
        if part.found:
            segments.extend(part.segments)
    segments.sort(key=lambda seg: seg.start_s)
    return dataclasses.replace(det, segments=tuple(segments))


def _unwarped_features(
    resampled: np.ndarray, warp: Warp, params: WatermarkParams, source_rate_hz: float | None,
    phase_step: int = 1, noise_floor: bool = True,
) -> _Features:
    """Features on the original timeline from the band power of a signal already resampled by
    ``frequency_ratio(warp.freq_scale)`` (:func:`~provenance.watermark.warp.resampled_band_power`):
    read at the remaining time scale. The source's band limit moves with the resampling
    (frequencies, its Nyquist frequency too, are divided by the ratio). ``noise_floor``: which
    of the two reliability readings (:func:`_detect_timeline`)."""
    return _unwarped_readings(resampled, warp, params, source_rate_hz, phase_step, (noise_floor,))[0]


def _unwarped_readings(
    resampled: np.ndarray, warp: Warp, params: WatermarkParams, source_rate_hz: float | None,
    phase_step: int, noise_floors: tuple[bool, ...],
) -> list[_Features]:
    """:func:`_unwarped_features` for each reading of ``noise_floors`` (:func:`_reading_features`)."""
    ratio = float(frequency_ratio(warp.freq_scale))
    rest = warp.time_scale * ratio
    bp = warp_time(resampled, rest) if rest != 1.0 else resampled
    rate = None if source_rate_hz is None else source_rate_hz / ratio
    return _reading_features(bp, params, rate, 1.0, phase_step, None, noise_floors)


def detect(
    audio: Audio,
    key: WatermarkKey | bytes,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    params: WatermarkParams = DEFAULT_PARAMS,
    search: bool = True,
    known: KnownPayloads | None = None,
) -> Detection:
    """Look for the watermark of ``key`` in ``audio``.

    ``found`` is True when the presence p-value is at most ``threshold`` (default 1e-6).
    The payload is reported only when its CRC verifies. When the mark is not found as it
    was embedded, the detector searches speed changes, time stretches and pitch shifts
    (``search=False`` skips that); ``speed`` and ``pitch_semitones`` of the result say
    where it was found. ``known``, the payloads the operator has issued (a manifest store,
    :class:`~provenance.watermark.known.PayloadSet`), lets the detector name the payload of a
    mark that is found but too damaged to decode on its own, by matching a long list of
    decoding paths against them (:mod:`provenance.watermark.known`; ``details`` then holds
    ``payload_source`` and the bound on a false match). An issued payload also confirms the
    mark: one the presence test missed can then be found (``details["store_confirmed"]``), and a
    found one reports the better p-value of the routes open to it. When ``known`` can list its
    payloads (:class:`~provenance.watermark.known.IssuedList`), their codewords are correlated
    with the file's soft values, and the presence test alone keeps a smaller share of the
    false-positive budget (:func:`_presence_p_value`, :func:`_matched_p_value`).
    """
    audio.validate()
    x16 = resample(audio.mono(), audio.sample_rate, params.analysis_rate_hz)
    clipped16 = clipped_fraction(clipped_samples(audio.samples), audio.sample_rate,
                                 params.analysis_rate_hz, x16.shape[-1])
    return detect_features(
        x16, key, duration_s=audio.duration_s, threshold=threshold, params=params,
        source_rate_hz=audio.sample_rate, search=search, clipped16=clipped16, known=known,
    )
