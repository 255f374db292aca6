"""Naming a damaged mark's payload by matching against the issued payloads (provenance.watermark.known):
the long list decoder, the bound, the detector with and without a set of issued payloads, and the
manifest store as that set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.attacks.registry import get_attack
from provenance.core.io import read_audio
from provenance.watermark import WatermarkKey, detect, ecc, embed
from provenance.watermark.known import MAX_FALSE_MATCH, KnownPayloads, PayloadSet, false_match_bound

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
KEY = WatermarkKey(bytes(range(32)))
PAYLOAD = "1032547698badcfe"
"""With this key and payload, the sparse impacts clip high-passed at 500 Hz is found (p ~ 1e-20)
but no path of the detector's short list passes the CRC; the right one is in the long list."""


def _noisy_codeword(seed: int, erased: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    msg = rng.integers(0, 2, ecc.CRC_BITS * 4).astype(np.uint8)  # 64 payload bits
    soft = (1.0 - 2.0 * ecc.encode_payload(msg)) + rng.normal(0.0, sigma, ecc.coded_length(64))
    soft[rng.random(soft.size) < erased] = 0.0
    return msg, soft


def test_long_list_is_the_list_viterbi_list() -> None:
    # The beam search keeps exactly the best paths that parallel list Viterbi keeps, in order.
    for seed in range(3):
        _, soft = _noisy_codeword(seed, 0.3, 1.0)
        reference = ecc.viterbi_decode(soft, 80, 256)
        long = ecc.long_list_decode(soft, 80, 256)
        assert long.shape == (256, 80)
        assert all(np.array_equal(a, b) for a, b in zip(reference, long))
        longer = ecc.long_list_decode(soft, 80, 2048)
        assert np.array_equal(longer[:256], long)
        assert len({row.tobytes() for row in longer}) == 2048  # distinct paths


def test_crc_candidates_reach_past_the_short_list() -> None:
    # Seed 23 (found by scanning seeds 0-199): 35 % of the coded bits erased and the rest noisy;
    # the short list's paths all fail the CRC, and the message is path 3,288 of the long list.
    msg, soft = _noisy_codeword(23, 0.35, 1.1)
    assert not ecc.decode_payload(soft, 64)[1]
    found, examined = ecc.crc_candidates(soft, 64, 4096)
    assert examined == 4096
    assert any(np.array_equal(c, msg) for c in found)
    paths = ecc.long_list_decode(soft, 80, 4096)
    # Every candidate is a listed path whose last 16 bits are the CRC of its first 64.
    listed = {row.tobytes() for row in paths}
    assert all(np.concatenate([c, ecc.crc16(c)]).tobytes() in listed for c in found)
    assert len(found) < 4096 // 100  # a wrong path passes the CRC once in 65,536
    rank = np.flatnonzero((paths == np.concatenate([msg, ecc.crc16(msg)])).all(axis=1))
    assert rank.tolist() == [3288]


def test_vectorised_crc_matches_the_bitwise_one() -> None:
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 2, (50, 64)).astype(np.uint8)
    assert all(np.array_equal(ecc.crc16(r), c) for r, c in zip(rows, ecc._crc_of_rows(rows)))


def test_payload_set_and_bound() -> None:
    s = PayloadSet(["ABCDEF0123456789"], decoys=10)
    assert isinstance(s, KnownPayloads)
    assert s.count() == 11
    assert s.find(["abcdef0123456789", "0000000000000000"]) == {"abcdef0123456789"}
    s.add("0000000000000001")
    assert s.count() == 12
    assert false_match_bound(3, 10**6) == pytest.approx(3e6 * 2.0**-64)


@pytest.fixture(scope="module")
def marked():
    """The impacts clip (61 % digital silence), marked."""
    return embed(read_audio(CORPUS / "foley_impacts_24bit.wav"), KEY, PAYLOAD)


@pytest.fixture(scope="module")
def damaged(marked):
    """The marked impacts clip high-passed at 500 Hz."""
    return get_attack("highpass_500").run(marked, np.random.default_rng(0)).audio


def test_detector_names_the_issued_payload_of_a_found_mark(damaged) -> None:
    plain = detect(damaged, KEY, search=False)
    assert plain.found and plain.payload is None
    det = detect(damaged, KEY, search=False, known=PayloadSet([PAYLOAD], decoys=10**6))
    assert det.payload == PAYLOAD
    # Only the payload changes: the presence test and its p-value are the plain detector's.
    assert det.found and det.p_value == plain.p_value
    assert det.details["payload_source"] == "issued_payloads"
    assert det.details["issued_records"] == 10**6 + 1
    n = det.details["issued_candidates"]
    assert n >= 1
    assert det.details["issued_false_match_bound"] == pytest.approx(n * (10**6 + 1) * 2.0**-64)
    assert det.details["issued_false_match_bound"] <= MAX_FALSE_MATCH
    assert det.bit_confidence > 0.3
    assert det.segments and all(s.payload == PAYLOAD for s in det.segments)


def test_no_issued_match_leaves_the_payload_unnamed(damaged) -> None:
    det = detect(damaged, KEY, search=False, known=PayloadSet(["0123456789abcdef"]))
    assert det.found and det.payload is None
    assert det.details["issued_candidates"] >= 0 and "payload_source" not in det.details
    assert all(s.payload is None for s in det.segments)


def test_a_store_too_large_for_the_bound_is_not_matched(damaged) -> None:
    # 2**60 records: one candidate would already match a wrong record with probability 1/16.
    det = detect(damaged, KEY, search=False, known=PayloadSet([PAYLOAD], decoys=2**60))
    assert det.payload is None


def test_wrong_key_is_not_matched(damaged) -> None:
    det = detect(damaged, WatermarkKey(bytes([7]) * 32), search=False, known=PayloadSet([PAYLOAD]))
    assert not det.found and det.payload is None


def test_the_pieces_of_a_cut_file_are_matched_together(marked) -> None:
    # 1 s cut out of the middle: the two sides sit at different alignments, and only their joint
    # reading (as in the detector's joint decoding of pieces) holds the payload's path.
    cut = get_attack("cut_1s").run(marked, np.random.default_rng(0)).audio
    plain = detect(cut, KEY, search=False)
    assert plain.found and plain.payload is None
    det = detect(cut, KEY, search=False, known=PayloadSet([PAYLOAD]))
    assert det.payload == PAYLOAD and det.details["payload_source"] == "issued_payloads"
    assert det.segments and all(s.payload == PAYLOAD for s in det.segments)
