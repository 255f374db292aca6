"""How much information a file's soft values carry about a known payload.

A failed decode has two possible causes, and they call for different remedies: the soft values
may hold enough information about the coded bits for some better code or decoder to recover the
payload, or they may not, and then only a stronger mark or more audio can. This module tells the
two apart for a file whose payload is known (a benchmark trial).

At the alignment where the coded-bit soft values agree best with the payload's codeword (every
fine phase, block offset and block phase is tried, as the detector's scan does), each coded bit
``j`` gets the soft value ``X_j`` the decoder sees: the sum, over the groups that carry it, of
``reliability * cos(2 pi r)``. With ``s_j = +1`` for a codeword bit 0 and ``-1`` for a 1, the
generalized mutual information of decoding with the metric ``a * X_j`` is

    I(a) = 1 - mean_j log2(1 + exp(-a * s_j * X_j)),

maximised over the scale ``a`` (a concave problem). For any ``a`` this is a rate at which codes
can be decoded reliably with that metric; the code needs ``rate`` = (payload + CRC bits) / coded
bits = 80 / 172 = 0.465 bits per coded bit. It is an estimate from one block's coded bits (172
samples), made at the best of the alignments for the known codeword, so a file without the mark
also reads a little above 0 (0.03-0.07 in the tests).

The detector's channel-state reading weights each class of groups (frequency region x
reliability) by its own concentration, estimated from the pilots and the best decoding path. The
reading also reports what those weights make of the soft values when they are measured against
the true codeword (``information_csi_bits``): the most that per-class weighting could recover.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from provenance.core.audio import Audio
from provenance.core.results import InformedReading
from provenance.watermark import ecc
from provenance.watermark.decode import channel_state_soft, coded_soft, expected_symbols, repetition_phases
from provenance.watermark.features import features_from_band_power, grouped, timeline_features
from provenance.watermark.embed import payload_to_bits
from provenance.watermark.keys import WatermarkKey, as_key
from provenance.watermark.layout import DEFAULT_PARAMS, Layout, WatermarkParams
from provenance.watermark.model import resample

MAX_METRIC_SCALE = 50.0
"""Upper end of the metric scale ``a`` searched, for soft values scaled to a mean magnitude of 1
(at 50, a coded bit read right costs below 1e-21 bits: the bound never binds in practice)."""


def coded_bit_information(soft: np.ndarray, signs: np.ndarray) -> float:
    """Generalized mutual information per coded bit, bits, of decoding the soft values ``soft``
    (positive: bit 0) with a linear metric, when the true bits are ``signs`` (+1 for 0, -1 for 1).
    0 when the soft values are all zero (every coded bit erased)."""
    y = np.asarray(signs, dtype=np.float64) * np.asarray(soft, dtype=np.float64)
    scale = float(np.abs(y).mean()) if y.size else 0.0
    if scale == 0.0:
        return 0.0
    y = y / scale
    res = optimize.minimize_scalar(lambda a: float(np.logaddexp(0.0, -a * y).mean()),
                                   bounds=(0.0, MAX_METRIC_SCALE), method="bounded")
    return max(0.0, 1.0 - float(res.fun) / math.log(2.0))


def informed_reading(
    audio: Audio,
    key: WatermarkKey | bytes,
    payload: str | bytes,
    *,
    params: WatermarkParams = DEFAULT_PARAMS,
) -> InformedReading:
    """Read ``audio`` against the codeword of ``payload`` (hex or bytes) under ``key`` on the
    file's own timeline (no speed or pitch search): the information per coded bit its soft
    values carry at the alignment, and in the reliability reading (with or without the
    noise-floor discount), that agree best with that codeword.

    Raises the audio's validation errors, and :class:`~provenance.core.errors.PayloadError` for a
    payload of the wrong size.
    """
    audio.validate()
    layout = Layout.from_key(as_key(key), params)
    bits = payload_to_bits(payload, params.payload_bits) ^ layout.scramble
    signs = 1.0 - 2.0 * ecc.encode_payload(bits).astype(np.float64)
    rate = (params.payload_bits + ecc.CRC_BITS) / params.coded_bits
    x16 = resample(audio.mono(), audio.sample_rate, params.analysis_rate_hz)
    bp, feat = timeline_features(x16, params, audio.sample_rate)
    n = params.coded_bits
    best: tuple = (-math.inf, np.zeros(n), None, 0, 0, 0)
    # Both reliability readings of the detector (with and without the noise-floor discount).
    readings: tuple = ()
    if feat.v.shape[1] >= 2:
        readings = (feat, features_from_band_power(bp, params, audio.sample_rate, noise_floor=False))
    for reading in readings:
        mask = np.ones(reading.v.shape[1])
        for phase in range(reading.v.shape[0]):
            for offset in range(params.block_slots):
                g = grouped(reading, layout, phase, offset, mask)
                terms = g.w * np.cos(2 * np.pi * g.r)
                for h in range(params.block_phases):
                    soft = coded_soft(terms, layout.role[repetition_phases(layout, terms.shape[0], h)], n)
                    norm = float(np.sqrt(soft @ soft))
                    z = float(signs @ soft) / norm if norm > 0 else 0.0
                    if z > best[0]:
                        best = (z, soft, g, phase, offset, h)
    z, soft, g, phase, offset, h = best
    info_csi = 0.0
    if g is not None:
        phases = repetition_phases(layout, g.r.shape[0], h)
        weighted = channel_state_soft(g, expected_symbols(layout, bits, phases))
        info_csi = coded_bit_information(coded_soft(weighted, layout.role[phases], n), signs)
    return InformedReading(
        information_bits=coded_bit_information(soft, signs), information_csi_bits=info_csi, rate=rate,
        z=z if math.isfinite(z) else 0.0, coded_bits=n, phase=phase, offset_slots=offset, block_phase=h,
    )
