"""Naming a damaged mark's payload by matching against the issued payloads (provenance.watermark.known):
the long list decoder, the bound, the detector with and without a set of issued payloads, and the
manifest store as that set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.attacks.registry import get_attack
from provenance.core.io import read_audio
from provenance.watermark import WatermarkKey, confirm, detect, ecc, embed, known
from provenance.watermark.confirm import CONFIRM_P_VALUE, CONFIRM_SHARE, CRC_PASS_BOUND, MATCH_SHARE
from provenance.watermark.known import MAX_FALSE_MATCH, KnownPayloads, PayloadSet, false_match_bound
from tests._shared import corpus_clip

KEY = WatermarkKey(bytes(range(32)))
PAYLOAD = "1032547698badcfe"
"""With this key and payload, the sparse impacts clip high-passed at 500 Hz is found (p ~ 1e-20)
but no path of the detector's short list passes the CRC; the right one is in the long list."""


def _matched(presence: float, corr_bound: float) -> float:
    """The matched route's p-value, written out: P(U * B <= q) = q (1 - ln q) for independent
    uniform U and B, over at most KNOWN_READINGS readings, in MATCH_SHARE of the budget."""
    q = presence * corr_bound
    return known.KNOWN_READINGS * q * (1.0 - np.log(q)) / MATCH_SHARE


class _FindOnly:
    """Issued payloads that can be looked up but not listed (no correlation, no matched route)."""

    def __init__(self, payloads: list[str]) -> None:
        self._payloads = set(payloads)

    def count(self) -> int:
        return len(self._payloads)

    def find(self, payloads):
        return {p for p in payloads if p in self._payloads}


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
    return embed(read_audio(corpus_clip("foley_impacts_24bit.wav")), KEY, PAYLOAD)


@pytest.fixture(scope="module")
def damaged(marked):
    """The marked impacts clip high-passed at 500 Hz."""
    return get_attack("highpass_500").run(marked, np.random.default_rng(0)).audio


def test_detector_names_the_issued_payload_of_a_found_mark(damaged) -> None:
    plain = detect(damaged, KEY, search=False)
    assert plain.found and plain.payload is None
    det = detect(damaged, KEY, search=False, known=PayloadSet([PAYLOAD], decoys=10**6))
    assert det.payload == PAYLOAD
    # The presence test is the plain detector's; the issued payload also confirms the mark, so
    # the p-value is the better of the routes open to it.
    assert det.found and det.p_value < plain.p_value
    assert det.details["presence_p_value"] == plain.details["presence_p_value"]
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


def test_vectorised_encoder_matches_the_bitwise_one() -> None:
    rows = np.random.default_rng(4).integers(0, 2, (300, 64)).astype(np.uint8)
    assert np.array_equal(ecc.encode_payloads(rows), np.stack([ecc.encode_payload(r) for r in rows]))


def _random_codeword_signs(n: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).integers(0, 2, (n, 64)).astype(np.uint8)
    return 1.0 - 2.0 * ecc.encode_payloads(rows).astype(np.float64)


def test_the_correlation_generating_function_is_the_codes() -> None:
    # The trellis pass gives E[exp(lam s.x)] over uniform 80-bit inputs; codewords of random
    # payloads (their CRC bits computed, not drawn) give the same within Monte Carlo error.
    rng = np.random.default_rng(5)
    signs = _random_codeword_signs(200_000, 6)
    own = signs[0]
    for x in (rng.normal(size=172), own + rng.normal(0.0, 1.0, 172)):
        x = x / np.linalg.norm(x)
        lams = np.array([0.5, 1.0, 2.0])
        exact = known._log_mgf(x, lams)
        sampled = np.log(np.exp(lams[None, :] * (signs[1:] @ x)[:, None]).mean(axis=0))
        assert np.allclose(exact, sampled, atol=0.02)


def test_the_correlation_tail_bounds_random_payloads() -> None:
    # For any soft vector, the share of random payloads whose codeword scores z or more stays
    # under the Chernoff bound, including a vector that is one codeword exactly (where the
    # code's own structure sets the tail).
    rng = np.random.default_rng(7)
    signs = _random_codeword_signs(400_000, 8)
    own = signs[0]
    vectors = {"noise": rng.normal(size=172), "codeword": own, "noisy codeword": own + rng.normal(0.0, 1.5, 172),
               "sparse": own * (rng.random(172) < 0.3)}
    for name, x in vectors.items():
        x = x / np.linalg.norm(x)
        z = signs[1:] @ x
        for t in (2.5, 3.0, 3.5, 4.0):
            assert float(np.mean(z >= t)) <= known.correlation_tail(x, t), (name, t)
        assert known.correlation_tail(x, 9.0) < known.correlation_tail(x, 7.0) < known.correlation_tail(x, 4.0) <= 1.0
    assert known.correlation_tail(vectors["noise"] / np.linalg.norm(vectors["noise"]), 0.0) == 1.0


def test_best_correlation_finds_the_issued_codeword() -> None:
    rng = np.random.default_rng(9)
    scramble = rng.integers(0, 2, 64).astype(np.uint8)
    issued = [rng.bytes(8).hex() for _ in range(500)]
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(issued[77]), dtype=np.uint8)) ^ scramble
    soft = 0.5 * (1.0 - 2.0 * ecc.encode_payload(bits)) + rng.normal(0.0, 1.0, 172)
    softs = np.stack([rng.normal(size=172), soft, np.zeros(172)])
    match, z = known.best_correlation(PayloadSet(issued + ["00ff"]), softs, scramble)  # a 16-bit payload is skipped
    assert match == issued[77]
    assert z == pytest.approx(float((1.0 - 2.0 * ecc.encode_payload(bits)) @ soft) / np.linalg.norm(soft), rel=1e-5)
    assert known.best_correlation(PayloadSet(), softs, scramble) == (None, 0.0)
    assert known.best_correlation(PayloadSet(issued), np.zeros((2, 172)), scramble) == (None, 0.0)


@pytest.fixture(scope="module")
def noisy_speech():
    """13 s of speech, marked, under white noise at 20 dB SNR: the presence test misses the mark
    (p ~ 2e-6) and no list decoding path is an issued payload, but the payload's codeword
    correlates with the soft values at z ~ 7.8 (key and payload drawn from seed 101)."""
    rng = np.random.default_rng(101)
    key, payload = WatermarkKey(rng.bytes(32)), rng.bytes(8).hex()
    marked = embed(read_audio(corpus_clip("speech_female_48k_mono_channel_names.flac")), key, payload)
    return key, payload, get_attack("noise_white_20db").run(marked, np.random.default_rng(7)).audio


def test_correlation_with_the_issued_codewords_confirms_and_names_a_weak_mark(noisy_speech) -> None:
    key, payload, audio = noisy_speech
    plain = detect(audio, key, search=False)
    assert not plain.found and plain.payload is None
    presence = plain.details["presence_p_value"]
    assert 1e-6 < presence <= 1e-3
    decoys = [f"{i:016x}" for i in range(1, 1000)]
    det = detect(audio, key, search=False, known=PayloadSet([payload, *decoys], decoys=10**6))
    assert det.found and det.payload == payload
    assert det.details["payload_source"] == "issued_correlation"
    assert det.details["store_confirmed"] and det.details["issued_correlation_z"] > 7.0
    bound = det.details["issued_false_match_bound"]
    assert bound <= MAX_FALSE_MATCH / known.KNOWN_READINGS
    # The better of two routes: the confirmed one, presence x (a CRC passing by chance, or a false
    # match); and the matched one, presence x the correlation's bound (the law of a product).
    confirmed = presence * (CRC_PASS_BOUND + MAX_FALSE_MATCH) / CONFIRM_SHARE
    assert det.p_value == pytest.approx(min(confirmed, _matched(presence, det.details["issued_correlation_bound"])))
    assert det.p_value <= 1e-6
    assert det.segments and all(s.payload == payload for s in det.segments)


@pytest.mark.parametrize("clip, attack", [("foley_impacts_24bit.wav", "opus_16k"),
                                          ("music_ambient_piano_choir.flac", "noise_pink_20db")])
def test_a_strong_correlation_confirms_a_mark_the_presence_test_missed_by_far(clip, attack) -> None:
    # Opus at 16 kbps on the sparse impacts (presence p ~ 0.01) and pink noise at 20 dB on the
    # piano and choir (p ~ 0.02): the pilots are weak, but the issued payload's codeword scores
    # z 8.7 and 7.3 against a million records, whose bound times the presence p-value confirms
    # the mark (key and payload drawn from seed 100).
    rng = np.random.default_rng(100)
    key, payload = WatermarkKey(rng.bytes(32)), rng.bytes(8).hex()
    audio = get_attack(attack).run(embed(read_audio(corpus_clip(clip)), key, payload), np.random.default_rng(7)).audio
    plain = detect(audio, key, search=False)
    presence = plain.details["presence_p_value"]
    assert not plain.found and CONFIRM_P_VALUE < presence < 0.1 and plain.p_value == presence
    decoys = [f"{i:016x}" for i in range(1, 1000)]
    det = detect(audio, key, search=False, known=PayloadSet([payload, *decoys], decoys=10**6))
    assert det.found and det.payload == payload and det.details["store_confirmed"]
    assert det.details["payload_source"] == "issued_correlation"
    assert det.details["issued_false_match_bound"] <= MAX_FALSE_MATCH / known.KNOWN_READINGS
    assert det.p_value == pytest.approx(_matched(presence, det.details["issued_correlation_bound"]))
    assert det.p_value <= 1e-6
    assert det.segments and all(s.payload == payload for s in det.segments)
    # Without its payload among the issued ones nothing is named, and the presence test alone
    # keeps what the matched route leaves of the budget; a store that cannot list its payloads
    # opens no matched route and takes nothing.
    others = detect(audio, key, search=False, known=PayloadSet(decoys, decoys=10**6))
    assert not others.found and others.payload is None
    assert others.p_value == pytest.approx(presence / (1.0 - MATCH_SHARE))
    find_only = detect(audio, key, search=False, known=_FindOnly([payload]))
    assert not find_only.found and find_only.payload is None and find_only.p_value == presence


def test_the_routes_with_a_listing_store_keep_p_values_valid() -> None:
    """Without the mark: presence p-value U, a CRC passing or a list match with probability
    CRC_PASS_BOUND + MAX_FALSE_MATCH, and a correlation bound B, each independent and uniform.
    The p-value the detector reports (the best route open) must satisfy P(p <= x) <= x. Taking
    the matched route's tail without its share of the budget (as a check that this test can fail)
    breaks that by 10 % or more at these levels."""
    rng = np.random.default_rng(11)
    n = 400_000
    # U and B log-uniform on [1e-12, 1] and [1e-24, 1], reweighted to the uniform law
    u = 10.0 ** rng.uniform(-12.0, 0.0, n)
    b = 10.0 ** rng.uniform(-24.0, 0.0, n)
    weight = u * np.log(1e12) * b * np.log(1e24)
    confirmed = rng.random(n) < CRC_PASS_BOUND + MAX_FALSE_MATCH
    named = b <= MAX_FALSE_MATCH / known.KNOWN_READINGS
    rates = {}
    for split in (True, False):
        p = np.ones(n)
        for i in range(n):
            x, y = float(u[i]), float(b[i])
            routes = [confirm.presence_p_value(x, listing=split)]
            if confirmed[i] and x <= CONFIRM_P_VALUE:
                routes.append(confirm.store_confirmed_p_value(x))
            if confirmed[i] or named[i]:
                q = x * y
                routes.append(confirm.issued_p_value(x, y) if split else q * (1.0 - np.log(q)))
            p[i] = min(routes)
        rates[split] = [float(np.mean(weight * (p <= x))) / x for x in (1e-8, 1e-7, 1e-6)]
    assert max(rates[True]) <= 1.02, rates
    assert min(rates[False]) > 1.1, rates


def test_correlation_names_no_payload_that_was_not_issued(noisy_speech) -> None:
    key, payload, audio = noisy_speech
    others = [np.random.default_rng(i).bytes(8).hex() for i in range(2000)]
    det = detect(audio, key, search=False, known=PayloadSet(others, decoys=10**6))
    assert not det.found and det.payload is None
    assert det.details["issued_correlation_tests"] >= 4
    assert det.details["issued_correlation_z"] < 6.0
    wrong_key = detect(audio, WatermarkKey(bytes([9]) * 32), search=False, known=PayloadSet([payload]))
    assert not wrong_key.found and wrong_key.payload is None


def test_with_the_issued_payloads_a_crc_confirmed_p_value_counts_a_false_match_too() -> None:
    # The 8 kHz speech under pink noise at 20 dB: presence p ~ 6e-6, so the payload's CRC confirms
    # the mark (key and payload drawn from seed 100). With the issued payloads the confirmed route
    # also opens on a false match, and its p-value grows by that chance (0.2 %). The attack is
    # linear on purpose: this test used MP3 at 32 kbps on the piano and choir (presence p ~ 1e-4),
    # but a low-rate encoder's choices flip with the last bits of its input, and on a CPU where
    # numpy's AVX-512 kernels round differently the same trial read 2.4e-4, outside the route.
    rng = np.random.default_rng(100)
    key, payload = WatermarkKey(rng.bytes(32)), rng.bytes(8).hex()
    marked = embed(read_audio(corpus_clip("speech_female_en_8k_mono.wav")), key, payload)
    audio = get_attack("noise_pink_20db").run(marked, np.random.default_rng(7)).audio
    plain = detect(audio, key, search=False)
    presence = plain.details["presence_p_value"]
    assert plain.found and plain.payload == payload and plain.details["crc_confirmed"]
    assert 1e-6 < presence <= CONFIRM_P_VALUE
    assert plain.p_value == pytest.approx(presence * CRC_PASS_BOUND / CONFIRM_SHARE)
    det = detect(audio, key, search=False, known=PayloadSet([payload]))
    assert det.found and det.payload == payload
    assert det.p_value == pytest.approx(presence * (CRC_PASS_BOUND + MAX_FALSE_MATCH) / CONFIRM_SHARE)
    assert det.p_value / plain.p_value == pytest.approx(1.0 + MAX_FALSE_MATCH / CRC_PASS_BOUND)


_EXCERPT_KEY = WatermarkKey(bytes.fromhex("d5332acb9d7c09778ed02baadb027e57df81033cb2cde77b988b765297dfc198"))
_EXCERPT_PAYLOAD = "683fd99c10cea582"
_EXCERPT_CHANCE_PASS = "683fd99cdd13c9ca"
"""With this key and payload, the guitar clip's last 4 s followed by 4 s of lava ambience is found
by a CRC pass of a payload nobody issued: the codeword is barely readable there, and a path of the
list differing in its last bits passes the CRC by chance (up to CRC_PASS_BOUND per decode)."""


@pytest.fixture(scope="module")
def excerpt() -> tuple[np.ndarray, int]:
    guitar = read_audio(corpus_clip("music_acoustic_guitar_phrases.flac"))
    lava = read_audio(corpus_clip("ambience_lava_bubbling.flac"))
    sr = guitar.sample_rate
    marked = embed(guitar, _EXCERPT_KEY, _EXCERPT_PAYLOAD).samples
    tail = np.repeat(lava.samples[:, : 4 * sr], 2, axis=0)
    return np.concatenate([marked[:, 12 * sr : 16 * sr], tail], axis=1), sr


def test_a_crc_pass_that_names_no_issued_payload_gives_way_to_the_issued_one(excerpt, tmp_path: Path) -> None:
    from provenance.core.audio import Audio

    x, sr = excerpt
    bare = detect(Audio(x, sr), _EXCERPT_KEY)
    assert bare.found and bare.payload == _EXCERPT_CHANCE_PASS  # what the detector alone can say
    issued = PayloadSet([_EXCERPT_PAYLOAD, "0123456789abcdef"])
    det = detect(Audio(x, sr), _EXCERPT_KEY, known=issued)
    assert det.found and det.payload == _EXCERPT_PAYLOAD, det.details
    assert det.details["unissued_crc_pass"] == _EXCERPT_CHANCE_PASS
    assert det.details["issued_false_match_bound"] <= MAX_FALSE_MATCH
    assert [s.payload for s in det.segments] == [_EXCERPT_PAYLOAD]
    # The segment follows the issued codeword: the marked 4 s, within the detector's edge tolerance.
    assert det.segments[0].start_s <= 0.5 and det.segments[0].end_s >= 3.0
    # Issued payloads that cannot be listed have only the decoder's lists, which do not reach it:
    # the decoded payload then stays.
    assert detect(Audio(x, sr), _EXCERPT_KEY, known=_FindOnly([_EXCERPT_PAYLOAD])).payload == _EXCERPT_CHANCE_PASS


def test_the_verifier_names_the_issued_payload_instead_of_a_chance_crc_pass(excerpt, tmp_path: Path) -> None:
    import dataclasses

    import soundfile as sf

    from detectors.verify import Verifier
    from provenance.core.config import load_settings
    from provenance.store import ManifestStore

    x, sr = excerpt
    path = tmp_path / "excerpt.flac"
    sf.write(path, x.T, sr)
    settings = dataclasses.replace(load_settings(tmp_path / "home"), store_url=f"sqlite:///{tmp_path / 'm.sqlite3'}")
    with ManifestStore(settings.store_url) as store:
        store.reserve("urn:test:guitar", "org.foleyseal.audio-wm.1", _EXCERPT_PAYLOAD)
    with Verifier(settings, keyring=[_EXCERPT_KEY]) as v:
        report = v.verify(path).to_dict()
    wm = report["watermark"][0]
    assert wm["found"] and wm["payloads"] == [_EXCERPT_PAYLOAD], wm
    assert {s["payload"] for s in wm["segments"]} == {_EXCERPT_PAYLOAD}
