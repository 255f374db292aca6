"""The informed reading (provenance.watermark.information): how much a file's soft values say
about a known payload, and the rate they must exceed for a decoder that weighs them linearly."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.attacks import get_attack
from provenance.core.errors import PayloadError
from provenance.core.io import read_audio
from provenance.watermark import embed
from provenance.watermark.information import coded_bit_information, informed_reading
from provenance.watermark.layout import DEFAULT_PARAMS

KEY = bytes(range(32))
PAYLOAD = "0123456789abcdef"


@pytest.fixture(scope="module")
def clip(corpus_dir):
    a = read_audio(corpus_dir / "music_orchestral_44k_stereo.flac")
    return a.with_samples(a.samples[:, 2 * a.sample_rate : 9 * a.sample_rate])


@pytest.fixture(scope="module")
def marked(clip):
    return embed(clip, KEY, PAYLOAD)


def test_the_embedded_payload_reads_near_one_bit_per_coded_bit(marked):
    r = informed_reading(marked, KEY, PAYLOAD)
    assert r.rate == pytest.approx((64 + 16) / 172) and r.coded_bits == DEFAULT_PARAMS.coded_bits
    assert r.information_bits > 0.9 and r.margin_bits > 0.4 and r.information_csi_bits > 0.9
    # the correlation of a perfect reading approaches sqrt(coded bits)
    assert 10.0 < r.z <= np.sqrt(r.coded_bits) + 1e-9
    # the embedded alignment, to within one 2.5 ms fine phase (8 phases per 20 ms slot)
    assert (r.offset_slots, r.block_phase) == (0, 0) and r.phase in (7, 0, 1)
    assert r.to_dict()["margin_bits"] == pytest.approx(r.margin_bits)


def test_unrelated_payloads_and_unmarked_audio_read_far_below_the_rate(clip, marked):
    others = ["fedcba9876543210", "5a5a5a5a5a5a5a5a"]
    for payload in others:
        r = informed_reading(marked, KEY, payload)
        assert r.information_bits < 0.15 and r.margin_bits < -0.3, payload
        assert r.information_csi_bits < 0.2, payload
    assert informed_reading(clip, KEY, PAYLOAD).information_bits < 0.15
    assert informed_reading(marked, bytes(32), PAYLOAD).information_bits < 0.15


def test_noise_lowers_the_information(marked):
    clean = informed_reading(marked, KEY, PAYLOAD).information_bits
    noisy = get_attack("noise_white_10db").apply(marked, np.random.default_rng(3))
    assert informed_reading(noisy, KEY, PAYLOAD).information_bits < clean - 0.05


def test_audio_too_short_for_a_group_reads_nothing(clip):
    r = informed_reading(clip.with_samples(clip.samples[:, : clip.sample_rate // 100]), KEY, PAYLOAD)
    assert (r.information_bits, r.information_csi_bits, r.z) == (0.0, 0.0, 0.0)


def test_a_payload_of_the_wrong_size_is_refused(marked):
    with pytest.raises(PayloadError, match="64 bits"):
        informed_reading(marked, KEY, "abcd")


def test_coded_bit_information_of_simple_channels():
    rng = np.random.default_rng(0)
    signs = rng.choice([-1.0, 1.0], 172)
    assert coded_bit_information(3.0 * signs, signs) > 0.99
    assert coded_bit_information(np.zeros(172), signs) == 0.0
    # half the coded bits erased, the other half certain: half a bit per coded bit
    half = np.where(np.arange(172) % 2 == 0, 5.0 * signs, 0.0)
    assert coded_bit_information(half, signs) == pytest.approx(0.5, abs=1e-3)
    # soft values unrelated to the codeword carry (almost) nothing
    assert coded_bit_information(rng.standard_normal(172), signs) < 0.05
    # a binary symmetric channel with 11 % errors carries 1 - H(0.11) = 0.5 bits
    flips = np.where(rng.random(100_000) < 0.11, -1.0, 1.0)
    assert coded_bit_information(flips, np.ones(100_000)) == pytest.approx(0.5, abs=0.01)
