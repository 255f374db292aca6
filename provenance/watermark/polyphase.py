"""Polyphase resampling as block matrix products.

``scipy.signal.resample_poly`` filters in a scalar C loop (about 1 GMAC/s on this project's
machines), which made resampling a third of the watermark's embedding time. The same FIR
filter, applied to blocks of the input as a matrix product, runs on BLAS's vectorised
kernels: for the small ratios of common rates (48 kHz <-> 16 kHz is 1:3) this is 3-5x faster
with the same output (to float32 rounding). For ratios such as 160:441 (44.1 kHz) the block
matrices are mostly zeros, and :func:`plan` declines so that callers fall back to scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_BLOCK_OUTPUTS = 8
"""Smallest output block (matrix columns): narrower products waste BLAS's kernels."""
PASS_COST = 16
"""Cost of one more matrix product per output, in multiply-adds (a pass over the output
block): it makes fewer, larger pieces win over a tight fit of many thin ones (measured)."""
MAX_WASTE = 8.0
"""Use the matrix form only while it does at most this many times the multiply-adds of a
direct polyphase filter (the zeros of the block matrices are the waste)."""


@dataclass(frozen=True)
class PolyphasePlan:
    """Block matrices that resample by ``up / down`` with one FIR filter.

    Output sample ``n`` is ``up * sum_k h[k] * u[n * down + half - k]`` where ``u`` is the input
    with ``up - 1`` zeros after every sample and ``half = (len(h) - 1) // 2``: exactly
    ``scipy.signal.resample_poly(x, up, down, window=h)``. Outputs come in blocks of
    ``block_out`` samples; block ``r`` reads ``pieces`` consecutive input rows of ``stride``
    samples starting at row ``r`` of the input, delayed by ``pre`` samples.
    """

    up: int
    down: int
    stride: int
    block_out: int
    pre: int
    matrices: tuple[np.ndarray, ...]

    @property
    def pieces(self) -> int:
        return len(self.matrices)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Resample ``x`` (float32, any leading axes) along its last axis."""
        n_in = x.shape[-1]
        n_out = -(-n_in * self.up // self.down)
        nb = -(-n_out // self.block_out)
        lead = x.shape[:-1]
        xp = np.zeros(lead + ((nb + self.pieces) * self.stride,), dtype=np.float32)
        xp[..., self.pre : self.pre + n_in] = x
        rows = xp.reshape(lead + (nb + self.pieces, self.stride))
        y = rows[..., :nb, :] @ self.matrices[0]
        for p in range(1, self.pieces):
            y += rows[..., p : p + nb, :] @ self.matrices[p]
        return y.reshape(lead + (nb * self.block_out,))[..., :n_out]


def plan(up: int, down: int, h: np.ndarray) -> PolyphasePlan | None:
    """The cheapest block-matrix plan for resampling by ``up / down`` (coprime) with filter ``h``,
    or None when the matrix form would waste more than :data:`MAX_WASTE` times the work."""
    taps = int(h.size)
    direct = taps / up  # multiply-adds per output of a direct polyphase filter
    best: tuple[int, int, int] | None = None  # (cost, multiply-adds per output, q)
    for q in range(1, 65):
        block_out, stride = up * q, down * q
        if block_out < MIN_BLOCK_OUTPUTS:
            continue
        pieces = -(-_rows_needed(up, down, taps, block_out) // stride)
        cost = pieces * (stride + PASS_COST)
        if best is None or cost < best[0]:
            best = (cost, pieces * stride, q)
    if best is None or best[1] > MAX_WASTE * direct:
        return None
    return _build(up, down, h, best[2])


def _pre(up: int, taps: int) -> int:
    """Input samples before a block's first output that its filter reaches back to."""
    return -(-(taps - 1 - (taps - 1) // 2) // up)


def _rows_needed(up: int, down: int, taps: int, block_out: int) -> int:
    """Input samples one block of ``block_out`` outputs reads, counted from ``pre`` before it."""
    half = (taps - 1) // 2
    return _pre(up, taps) + ((block_out - 1) * down + half) // up + 1


def _build(up: int, down: int, h: np.ndarray, q: int) -> PolyphasePlan:
    taps = int(h.size)
    half = (taps - 1) // 2
    block_out, stride = up * q, down * q
    pre = _pre(up, taps)
    pieces = -(-_rows_needed(up, down, taps, block_out) // stride)
    full = np.zeros((pieces * stride, block_out), dtype=np.float64)
    hk = h.astype(np.float64) * up
    for j in range(block_out):
        # upsampled index j*down + half - k must be a multiple of up
        k0 = (j * down + half) % up
        ks = np.arange(k0, taps, up)
        offsets = (j * down + half - ks) // up + pre
        full[offsets, j] += hk[ks]
    matrices = tuple(
        np.ascontiguousarray(full[p * stride : (p + 1) * stride], dtype=np.float32) for p in range(pieces)
    )
    return PolyphasePlan(up, down, stride, block_out, pre, matrices)
