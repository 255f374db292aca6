"""The block-matrix polyphase resampler gives scipy's resample_poly output, faster."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy import signal

from provenance.watermark.model import MARK_ATTEN_DB, _resampling_filter, resample
from provenance.watermark.polyphase import plan


@pytest.mark.parametrize(
    "rate_from, rate_to, atten_db",
    [
        (48_000, 16_000, 60.0),
        (16_000, 48_000, MARK_ATTEN_DB),
        (96_000, 16_000, 60.0),
        (16_000, 8_000, 60.0),
        (8_000, 16_000, 60.0),
        (24_000, 16_000, 60.0),
        (16_000, 192_000, MARK_ATTEN_DB),
    ],
)
@pytest.mark.parametrize("n", [1, 2, 5, 1_000, 48_017])
def test_matches_scipy_resample_poly(rate_from, rate_to, atten_db, n):
    ratio = Fraction(rate_to, rate_from)
    up, down = ratio.numerator, ratio.denominator
    h = _resampling_filter(up, down, rate_from, atten_db)
    fast = plan(up, down, h)
    assert fast is not None
    x = np.random.default_rng(n).standard_normal((3, n)).astype(np.float32)
    want = signal.resample_poly(x, up, down, axis=-1, window=h)
    got = fast.apply(x)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * max(1.0, float(np.abs(want).max())))
    # one channel given as a 1-D array
    np.testing.assert_allclose(fast.apply(x[0]), want[0], rtol=0, atol=2e-6 * max(1.0, float(np.abs(want).max())))


def test_ratios_with_mostly_zero_block_matrices_fall_back_to_scipy():
    # 44.1 kHz -> 16 kHz is 160:441; its block matrices would be mostly zeros
    h = _resampling_filter(160, 441, 44_100)
    assert plan(160, 441, h) is None
    x = np.random.default_rng(0).standard_normal(44_100).astype(np.float32)
    want = signal.resample_poly(x, 160, 441, window=h)
    np.testing.assert_allclose(resample(x, 44_100, 16_000), want, rtol=0, atol=1e-6)


def test_resample_keeps_a_tone_in_the_watermark_band():
    t = np.arange(48_000) / 48_000
    x = np.sin(2 * np.pi * 5_000 * t).astype(np.float32)
    y = resample(x, 48_000, 16_000)
    assert y.shape == (16_000,)
    ref = np.sin(2 * np.pi * 5_000 * np.arange(16_000) / 16_000)
    assert np.abs(y[200:-200] - ref[200:-200]).max() < 1e-3
