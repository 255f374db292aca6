"""Signal model of the watermark: the 16 kHz analysis signal, STFT, tile levels, capacity.

The *capacity* of a tile (0..1) is how much of the mark it may carry: a spectral-envelope
masking rule that gives the mark only to tiles within ``rel_floor_db`` of the loudest
tile of their slot and above an absolute floor, so digital silence and near-silent
regions get nothing and the mark's spectrum follows the host's envelope.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np
import scipy.fft
from scipy import signal

from provenance.watermark.layout import WatermarkParams
from provenance.watermark.polyphase import PolyphasePlan, plan

_EPS = 1e-12


PASS_EDGE_HZ = 5_600.0
"""Top of the band the watermark uses (plus margin); resampling must keep it intact."""
STOP_ATTEN_DB = 60.0
"""Analysis resampling: aliases folding into the band are >= 60 dB down (they would move tile
levels by < 1e-6 relative)."""
MARK_ATTEN_DB = 50.0
"""Resampling the mark back to the file's rate: its images above 10.4 kHz are >= 50 dB below
the mark, itself about 30 dB below the host."""


@lru_cache(maxsize=32)
def _resampling_filter(up: int, down: int, rate_from: int, atten_db: float = STOP_ATTEN_DB) -> np.ndarray:
    """Kaiser FIR for ``resample_poly``: flat to 5.6 kHz, ``atten_db`` down where images or aliases
    would land inside the watermark band. Much shorter than scipy's default, which keeps the
    whole band up to Nyquist."""
    rate_hi = rate_from * up
    rate_to = rate_from * up // down
    stop = min(rate_from, rate_to) - PASS_EDGE_HZ
    if stop <= PASS_EDGE_HZ:  # low target rate: keep up to just below its Nyquist
        stop = min(rate_from, rate_to) / 2.0
        passe = 0.9 * stop
    else:
        passe = PASS_EDGE_HZ
    width = (stop - passe) / (rate_hi / 2.0)
    numtaps, beta = signal.kaiserord(atten_db, width)
    numtaps |= 1
    h = signal.firwin(numtaps, (passe + stop) / 2.0, window=("kaiser", beta), fs=rate_hi)
    return h.astype(np.float32)  # resample_poly multiplies by `up` itself


@lru_cache(maxsize=32)
def _resampling_plan(up: int, down: int, rate_from: int, atten_db: float = STOP_ATTEN_DB) -> PolyphasePlan | None:
    return plan(up, down, _resampling_filter(up, down, rate_from, atten_db))


def _resample_ratio(x: np.ndarray, ratio: Fraction, rate_from: int, atten_db: float) -> np.ndarray:
    up, down = ratio.numerator, ratio.denominator
    x = np.asarray(x, dtype=np.float32)
    fast = _resampling_plan(up, down, rate_from, atten_db)
    if fast is not None:
        return fast.apply(x)
    h = _resampling_filter(up, down, rate_from, atten_db)
    return signal.resample_poly(x, up, down, axis=-1, window=h).astype(np.float32, copy=False)


def resample(x: np.ndarray, rate_from: int, rate_to: int, *, atten_db: float = STOP_ATTEN_DB) -> np.ndarray:
    """Polyphase resampling along the last axis (float32), exact in the watermark band (<= 5.6 kHz)."""
    if rate_from == rate_to:
        return np.asarray(x, dtype=np.float32)
    return _resample_ratio(x, Fraction(rate_to, rate_from), rate_from, atten_db)


def resample_by(x: np.ndarray, ratio: Fraction, rate_hz: int = 16_000) -> np.ndarray:
    """Resample ``x`` (at ``rate_hz``) by ``ratio`` = output / input length along the last axis,
    exact in the watermark band: time stretched and frequencies divided by ``ratio``."""
    return _resample_ratio(x, ratio, rate_hz, STOP_ATTEN_DB)


@lru_cache(maxsize=8)
def analysis_window(params: WatermarkParams) -> np.ndarray:
    """Periodic Hann window of ``frame_len`` samples, float32, read-only (cached: every STFT
    and overlap-add of a 9.6 s chunk uses it)."""
    win = signal.windows.hann(params.frame_len, sym=False).astype(np.float32)
    win.flags.writeable = False
    return win


def frame_offset(params: WatermarkParams) -> int:
    """Samples by which frame k starts before ``k * hop``: centres frame k on its hop interval."""
    return (params.frame_len - params.hop) // 2


def _frames(x: np.ndarray, params: WatermarkParams, hop: int) -> np.ndarray:
    """Read-only view ``(..., frames, frame_len)`` of ``x``: frame k starts at ``k*hop - offset``,
    ``frames = ceil(n / hop)``, zeros outside the signal."""
    n = x.shape[-1]
    n_frames = -(-n // hop)
    off = frame_offset(params)
    pad_right = n_frames * hop + params.frame_len - off - n
    xp = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(off, max(pad_right, 0))])
    return np.lib.stride_tricks.sliding_window_view(xp, params.frame_len, axis=-1)[..., ::hop, :][..., :n_frames, :]


def stft(x: np.ndarray, params: WatermarkParams, hop: int | None = None) -> np.ndarray:
    """STFT of ``x`` (analysis rate, 1-D or (channels, n)) with frames starting at ``k*hop - offset``.

    Returns complex64 ``(..., frames, bins)`` with ``frames = ceil(n / hop)``.
    """
    frames = _frames(x, params, params.hop if hop is None else hop) * analysis_window(params)
    return scipy.fft.rfft(frames, axis=-1).astype(np.complex64, copy=False)


def band_power_frames(
    x: np.ndarray, params: WatermarkParams, hop: int, chunk_frames: int = 16384
) -> np.ndarray:
    """Band power of every STFT frame of a 1-D signal, ``(frames, bands)`` float32, computed in
    chunks of frames so memory stays proportional to the output, not to the spectrogram."""
    view = _frames(x, params, hop)
    n_frames = view.shape[0]
    win = analysis_window(params)
    out = np.empty((n_frames, params.n_bands), dtype=np.float32)
    for a in range(0, n_frames, chunk_frames):
        out[a : a + chunk_frames] = frame_band_power(scipy.fft.rfft(view[a : a + chunk_frames] * win, axis=-1), params)
    return out


def istft(spec: np.ndarray, n: int, params: WatermarkParams, *, overwrite: bool = False) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`stft` (hop = params.hop), 1-D or batched;
    ``overwrite`` lets it use ``spec`` as scratch space."""
    hop, flen = params.hop, params.frame_len
    if flen % hop:
        raise ValueError("frame length must be a multiple of the hop")
    k = flen // hop
    frames = scipy.fft.irfft(spec, n=flen, axis=-1, overwrite_x=overwrite).astype(np.float32, copy=False)
    frames *= analysis_window(params)
    n_frames = frames.shape[-2]
    lead = frames.shape[:-2]
    # Frame i's j-th hop-long piece lands on output row i + j.
    rows = np.zeros(lead + (n_frames + k - 1, hop), dtype=np.float32)
    pieces = frames.reshape(lead + (n_frames, k, hop))
    for j in range(k):
        rows[..., j : j + n_frames, :] += pieces[..., :, j, :]
    off = frame_offset(params)
    out = rows.reshape(lead + ((n_frames + k - 1) * hop,))[..., off : off + n]
    out *= _inverse_window_sum(n_frames, params)[off : off + n]
    return out


@lru_cache(maxsize=4)
def _inverse_window_sum(n_frames: int, params: WatermarkParams) -> np.ndarray:
    """1 / (sum of squared windows over the frames covering each sample) of an overlap-add of
    ``n_frames`` frames; constant away from the ends, where fewer frames overlap."""
    hop, k = params.hop, params.frame_len // params.hop
    wsq = (analysis_window(params) ** 2).reshape(k, hop)
    norm = np.empty((n_frames + k - 1, hop), dtype=np.float32)
    if n_frames >= k:
        norm[:] = wsq.sum(axis=0)
        for r in range(k - 1):
            norm[r] = wsq[: r + 1].sum(axis=0)
            norm[n_frames + k - 2 - r] = wsq[k - 1 - r :].sum(axis=0)
    else:
        norm[:] = 0.0
        for j in range(k):
            norm[j : j + n_frames] += wsq[j]
    inv = 1.0 / np.maximum(norm.reshape(-1), 1e-3)
    inv.flags.writeable = False  # cached and shared
    return inv


def band_matrix(params: WatermarkParams) -> np.ndarray:
    """(bins, bands) 0/1 matrix summing bin powers into bands."""
    bob = params.band_of_bin
    m = np.zeros((bob.size, params.n_bands), dtype=np.float32)
    valid = bob >= 0
    m[np.nonzero(valid)[0], bob[valid]] = 1.0
    return m


def frame_band_power(spec: np.ndarray, params: WatermarkParams) -> np.ndarray:
    """(..., frames, bands) power per band per frame."""
    lo, hi = band_bins(params)
    # Real and imaginary parts side by side (float view): one square and one product.
    if spec.strides[-1] != spec.itemsize:
        spec = np.ascontiguousarray(spec)
    parts = spec.view(np.float32 if spec.dtype == np.complex64 else np.float64)[..., 2 * lo : 2 * hi]
    return np.square(parts) @ np.repeat(band_matrix(params)[lo:hi], 2, axis=0)


def band_bins(params: WatermarkParams) -> tuple[int, int]:
    """The bins ``[lo, hi)`` that belong to some band (the rest carry no mark)."""
    used = np.flatnonzero(params.band_of_bin >= 0)
    lo, hi = int(used[0]), int(used[-1]) + 1
    if hi - lo != used.size:
        raise ValueError("the bands must cover one contiguous range of bins")
    return lo, hi


def tile_power(band_power: np.ndarray, params: WatermarkParams, stride: int = 1) -> np.ndarray:
    """Sum ``slot_hops`` consecutive frames (spaced ``stride`` frames apart) into tiles.

    With ``stride=1`` and frames at the embedding hop this yields one tile per slot
    (frames 3t..3t+2). With a finer detection hop (``hop/stride``) it yields tiles at
    every fine offset: row i covers frames i, i+stride, i+2*stride.
    """
    h = params.slot_hops
    n = band_power.shape[0] - (h - 1) * stride
    if n <= 0:
        return np.zeros((0, band_power.shape[1]), dtype=np.float32)
    acc = band_power[:n].copy()
    for j in range(1, h):
        acc += band_power[j * stride : j * stride + n]
    return acc


def log_amplitude(tiles: np.ndarray) -> np.ndarray:
    """Tile power -> log amplitude, nepers (0.5 * ln power)."""
    return 0.5 * np.log(tiles + _EPS)


def capacity(tiles: np.ndarray, params: WatermarkParams) -> np.ndarray:
    """(slots, bands) capacity 0..1 of each tile from its level relative to its slot.

    A tile may carry the mark when it is within ``rel_floor_db`` of the loudest tile of its
    slot and above an absolute floor, so digital silence and dither carry nothing.
    """
    level_db = 10.0 * np.log10(tiles / params.frame_len**2 * 4.0 + _EPS)
    rel = level_db - level_db.max(axis=1, keepdims=True)
    c_rel = np.clip((rel + params.rel_floor_db) / params.rel_ramp_db, 0.0, 1.0)
    c_abs = np.clip((level_db - params.abs_floor_db) / 10.0, 0.0, 1.0)
    return (c_rel * c_abs).astype(np.float32)
