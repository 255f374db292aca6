"""The presence test: a z-score at every alignment, standardised on the file, and its p-value.

For each alignment (fine phase x block offset) every group's residual ``r`` is scored:
``cos(2 pi (r - b/2))`` for the pilots (known bits ``b``), the bit-blind ``cos(4 pi r)`` for the
payload groups, weighted by reliability. Without the mark (or with another key) ``r`` is uniform,
because the key's dither is independent of the audio, so each term has mean 0 and variance 1/2
times its weight squared. The z-scores of all alignments are standardised by their own median
and MAD away from the best one (:func:`null_scale`), and the best standardised z becomes a
p-value by the law of the maximum of ``EFFECTIVE_ALIGNMENTS`` normals (:func:`p_value_from_z`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from provenance.watermark.features import Features
from provenance.watermark.layout import Layout


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
MIN_NULL_SCALE = 0.8
"""Floor of the spread used to standardise alignment z-scores (see :func:`null_scale`)."""


def presence_terms(r: np.ndarray, pilot: np.ndarray, pilot_bits: np.ndarray) -> np.ndarray:
    """Presence term per group: pilot agreement, or bit-blind lattice agreement for payload groups."""
    return np.where(pilot, np.cos(2 * np.pi * (r - 0.5 * pilot_bits)), np.cos(4 * np.pi * r))


@dataclass(frozen=True)
class ScanTables:
    """Per-key constants of the alignment scan, indexed ``[i, group, c, ...]`` where run ``m``
    with ``m % block_runs == i`` sits at block run ``(i + c * run_stride) % block_runs`` under
    super-block shift ``c``."""

    coef: np.ndarray
    """(R, G, R / S, K) chips times ``f / (delta * K)``: a matmul with the pair values gives ``f * stat / delta``."""
    shift: np.ndarray
    """(R, G, R / S, 1) ``f * (dither + bit / 2)``, with ``f`` = 1 and the pilot bit for pilots, 2 and 0 otherwise."""

    @classmethod
    def for_layout(cls, layout: Layout) -> "ScanTables":
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


def scan(feat: Features, layout: Layout, mask: np.ndarray, tables: ScanTables | None = None) -> np.ndarray:
    """z-scores ``(phases, offsets)`` of the presence test over all alignments."""
    return scan_readings([feat], layout, mask, tables)[0]


def scan_readings(
    feats: list[Features], layout: Layout, mask: np.ndarray, tables: ScanTables | None = None
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
    tables = tables or ScanTables.for_layout(layout)
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


def null_scale(z: np.ndarray, best: tuple[int, int]) -> tuple[float, float]:
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


def standardised_z(feat: Features, layout: Layout, tables: ScanTables) -> float:
    """Standardised best z of the presence test on ``feat`` (-inf if shorter than a block)."""
    return standardised_z_readings([feat], layout, tables)[0]


def standardised_z_readings(feats: list[Features], layout: Layout, tables: ScanTables) -> list[float]:
    """:func:`standardised_z` for readings of one signal that share its pair values (:func:`~provenance.watermark.features.reading_features`)."""
    if feats[0].v.shape[1] < layout.params.block_slots:
        return [-np.inf] * len(feats)
    out = []
    for z in scan_readings(feats, layout, np.ones(feats[0].v.shape[1]), tables):
        ph, off = np.unravel_index(int(np.argmax(z)), z.shape)
        loc, scale = null_scale(z, (ph, off))
        out.append((float(z[ph, off]) - loc) / scale)
    return out
