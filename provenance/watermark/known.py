"""Decoding against the payloads that were issued: a long list, checked by membership.

On its own the detector reports a payload only when one of a few list-decoding paths passes
its 16-bit CRC, because each further path tried is one more chance of a wrong payload passing
by accident. A verifier that holds the manifest store knows more: every payload FoleySeal
issues is a fresh random 64-bit number recorded there (``ManifestStore.reserve_payload``). A
wrong path then names an issued payload only by a coincidence of 64 + 16 bits, so tens of
thousands of paths can be tried. When the mark is found but its payload does not decode (a
sparse file whose silences erase many coded bits, then a codec or a crop), the right path is
often within the first few thousand (measured on the impacts clip: paths 29, 51 and 780).

Bound on a false match. Whatever paths the decoder lists for a file, the issued payloads other
than those embedded in it are independent uniform 64-bit numbers (the store draws them with
``secrets``), so each candidate looked up equals one of ``records`` of them with probability at
most ``records * 2**-64``: ``P(false match) <= candidates * records * 2**-64``, with
``candidates`` the number of distinct payloads looked up. The CRC is what keeps ``candidates``
small: a wrong path passes it once in 65,536, so a list of :data:`LIST_SIZE` = 65,536 paths
yields about one wrong candidate (the bound for one candidate and a million records is 5.4e-14).
Payloads that were not drawn at random (chosen by hand, or sequential) void the bound.

Correlation with every issued codeword. A list decoder finds the right path only while it
ranks among the best ``LIST_SIZE`` of 2**80; a verifier that can enumerate the issued payloads
(:class:`IssuedList`) can instead score each issued payload's codeword against the file's soft
values directly, which needs far less information per coded bit. For a soft vector ``x`` (172
coded bits, unit norm) the score of a codeword with signs ``s`` (+1 for a 0 bit) is
``z = s . x``. An issued payload other than the file's own is a uniform random 64-bit number
drawn independently of the file, so its codeword is a uniform random codeword whatever the file
holds (unmarked, or marked with another payload), and Chernoff's bound
``P(z >= t) <= min over lam of E[exp(lam z)] exp(-lam t)`` holds with the generating function
computed exactly on the code's trellis (:func:`correlation_tail`). That takes the code's structure
into account: where ``x`` lies along one codeword, the distances of the other codewords to it set
the tail, which is then heavier than for independent signs (Hoeffding's ``exp(-t**2 / 2)``:
3.7e-13 against 2.0e-13 at ``t`` = 7.65 for the code's distance spectrum). The trellis counts the
16 CRC bits as uniform, where a payload's CRC bits are a function of it; the generating function
of the codewords of 200,000 random payloads agrees with the trellis's within Monte Carlo error (a
test), and the tail frequencies stay under the bound (a test).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from provenance.watermark import ecc
from provenance.watermark.decode import (
    Grouped,
    channel_state_soft,
    codeword_agreement,
    coded_soft,
    expected_symbols,
    payload_bit_confidence,
)
from provenance.watermark.embed import bits_to_hex, codeword_for, payload_to_bits
from provenance.watermark.layout import PAYLOAD_BITS, Layout

LIST_SIZE = 65536
"""Paths examined per soft reading when matching against issued payloads (about 0.5 s each;
a wrong one passes the CRC once in 65,536, so each list adds about one candidate)."""
KNOWN_READINGS = 2
"""Readings of one file matched against the issued payloads at most (the reported reading, and
for a clipped file the same with the clipped tiles erased); each gets this share of
:data:`MAX_FALSE_MATCH` for the correlation route, whose bound is computed per reading."""
MAX_FALSE_MATCH = 1e-6
"""A match is reported only when :func:`false_match_bound` is at most this: a wrong payload
no more likely than a false detection at the default threshold."""


@runtime_checkable
class KnownPayloads(Protocol):
    """The set of payloads an operator has issued (under one watermark algorithm)."""

    def count(self) -> int:
        """How many payloads have been issued (the ``records`` of the false-match bound)."""
        ...

    def find(self, payloads: Sequence[str]) -> set[str]:
        """The members of ``payloads`` (lower-case hex) that were issued."""
        ...


@runtime_checkable
class IssuedList(KnownPayloads, Protocol):
    """Issued payloads that can also be listed, for correlation with every issued codeword."""

    def payloads(self) -> Iterator[str]:
        """Every issued payload that is held (lower-case hex), in any order."""
        ...


class PayloadSet:
    """Issued payloads held in memory (tests, benchmarks, small deployments).

    ``decoys`` counts further issued payloads that are not listed, for the bound: a benchmark
    can say "a store of a million records" without holding a million random numbers that a
    random path would match with probability 2**-64 each anyway.
    """

    def __init__(self, payloads: Iterable[str] = (), *, decoys: int = 0) -> None:
        self._payloads = {p.lower() for p in payloads}
        self._decoys = int(decoys)

    def add(self, payload: str) -> None:
        self._payloads.add(payload.lower())

    def count(self) -> int:
        return len(self._payloads) + self._decoys

    def find(self, payloads: Sequence[str]) -> set[str]:
        return {p for p in payloads if p.lower() in self._payloads}

    def payloads(self) -> Iterator[str]:
        """The listed payloads (the decoys are counted, not held: the correlation bound, which
        counts every record, covers them)."""
        return iter(sorted(self._payloads))


def false_match_bound(candidates: int, records: int) -> float:
    """Upper bound on the probability that any of ``candidates`` payloads looked up equals one of
    ``records`` random issued payloads other than the file's own."""
    return float(candidates) * float(max(records, 1)) * 2.0**-PAYLOAD_BITS


CHERNOFF_LAMBDAS = np.linspace(0.25, 16.0, 64)
"""Exponents tried in the Chernoff bound (:func:`correlation_tail`), for unit-norm soft vectors."""


def _log_mgf(x: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """``log E[exp(lam * s . x)]`` for each ``lam`` in ``lambdas``, over the codeword signs ``s``
    of uniform random inputs (payload and CRC bits) of the terminated convolutional code: a
    forward pass over the trellis, exact for that code."""
    n_info = PAYLOAD_BITS + ecc.CRC_BITS
    pred_state, pred_input, pred_signs = ecc.trellis()
    log_alpha = np.full((lambdas.size, ecc.N_STATES), -np.inf)
    log_alpha[:, 0] = 0.0
    for t in range(n_info + ecc.TAIL_BITS):
        branch = pred_signs @ x[2 * t : 2 * t + 2]  # (states, 2): the branches into each state
        # Every state is reached from two (state, input) branches; the tail admits input 0 only.
        terms = log_alpha[:, pred_state] + lambdas[:, None, None] * branch[None]
        if t < n_info:
            terms = terms - math.log(2.0)
        else:
            terms = np.where((pred_input == 0)[None], terms, -np.inf)
        log_alpha = np.logaddexp(terms[:, :, 0], terms[:, :, 1])
    return log_alpha[:, 0]


def correlation_tail(x: np.ndarray, z: float) -> float:
    """Bound on ``P(s . x >= z)`` for the codeword signs ``s`` of a uniform random payload and a
    soft vector ``x`` of unit norm: Chernoff's ``min over lam of E[exp(lam s . x)] exp(-lam z)``
    with the exact generating function over the code (:func:`_log_mgf`; the CRC bits are taken
    as uniform, see the module's docstring)."""
    if z <= 0:
        return 1.0
    log_bound = _log_mgf(np.asarray(x, dtype=np.float64), CHERNOFF_LAMBDAS) - CHERNOFF_LAMBDAS * z
    return float(min(1.0, math.exp(float(log_bound.min()))))


def unit_rows(softs: np.ndarray) -> np.ndarray:
    """The rows of ``softs`` ``(tests, coded bits)`` scaled to unit norm (zero rows stay zero,
    and score 0 against any codeword)."""
    norms = np.linalg.norm(softs, axis=1, keepdims=True)
    return np.divide(softs, norms, out=np.zeros(softs.shape), where=norms > 0)


def correlation_bound(softs: np.ndarray, z: float, records: int) -> float:
    """Upper bound on the probability that any of ``records`` random issued payloads other than
    the file's own scores ``z`` or more against any row of ``softs`` ``(tests, coded bits)``
    (each row scaled to unit norm, :func:`unit_rows`)."""
    total = sum(correlation_tail(x, z) for x in unit_rows(softs) if x.any())
    return min(1.0, total * float(max(records, 1)))


CHUNK = 65536
"""Issued payloads scored per batch (bounds the memory of a large store's enumeration)."""


def best_correlation(known: IssuedList, softs: np.ndarray, scramble: np.ndarray) -> tuple[str | None, float]:
    """The issued payload whose codeword correlates best with any of the soft vectors ``softs``
    ``(tests, coded bits)`` (positive: bit 0), and its score ``z`` (each vector scaled to unit
    norm). ``scramble``: the key's scrambling bits, XORed onto a payload before encoding.
    ``(None, 0.0)`` when nothing is issued or every vector is zero."""
    unit = unit_rows(softs)
    keep = unit.any(axis=1)
    if not keep.any():
        return None, 0.0
    x = unit[keep].T.astype(np.float32)  # (coded bits, tests)
    best_hex, best_z = None, -math.inf
    listed = iter(known.payloads())
    while True:
        batch = [h for _, h in zip(range(CHUNK), listed)]
        if not batch:
            break
        batch = [h for h in batch if len(h) == PAYLOAD_BITS // 4]  # another format's payloads
        if not batch:
            continue
        raw = np.frombuffer(bytes.fromhex("".join(batch)), dtype=np.uint8).reshape(len(batch), -1)
        bits = np.unpackbits(raw, axis=1)[:, :PAYLOAD_BITS] ^ scramble[None, :]
        signs = 1.0 - 2.0 * ecc.encode_payloads(bits).astype(np.float32)
        z = (signs @ x).max(axis=1)
        i = int(np.argmax(z))
        if z[i] > best_z:
            best_hex, best_z = batch[i].lower(), float(z[i])
    return best_hex, (best_z if best_hex is not None else 0.0)


def match_issued(
    readings: list[tuple[Grouped, list[np.ndarray]]], layout: Layout, known: KnownPayloads, *, lists: bool = True
) -> tuple[np.ndarray | None, float, dict, np.ndarray | None]:
    """Match a file against the issued payloads, from one or more readings of it (grouped
    statistics, with the block-phase assignments to try, the most likely first).

    The soft vectors are the plain and the channel-state soft values of each reading under each
    assignment. First (when ``lists``: about 0.5 s per soft vector), for each assignment rank and
    each reading, the ``LIST_SIZE`` best paths of those soft vectors, whose CRC passes are
    looked up in ``known``; the first issued payload ends the search. Then, when ``known`` can
    list its payloads (:class:`IssuedList`), every issued codeword is scored against all the soft
    vectors (:func:`best_correlation`), and the best is taken if the bound on its being a false
    match is small enough. With such a ``known``, a match from the lists also gets its codeword's
    correlation and bound (over all the soft vectors: at most the best issued codeword's, so the
    bound is conservative) for the matched route
    (:func:`~provenance.watermark.confirm.matched_p_value`). Returns (payload bits or None, bit
    confidence, details with the number of candidates looked up and, for a match, its route and
    the bound on its being false, the matched codeword's symbols or None)."""
    p = layout.params
    records = known.count()
    looked_up: set[str] = set()
    listing = isinstance(known, IssuedList)
    softs: list[tuple[np.ndarray, Grouped, np.ndarray]] = []  # (soft vector, reading, assignment)
    for rank in range(p.block_phases):
        for g, phase_options in readings:
            if rank >= len(phase_options):
                continue
            rep_phases = phase_options[rank]
            roles = layout.role[rep_phases]
            plain = coded_soft(g.w * np.cos(2 * np.pi * g.r), roles, p.coded_bits)
            best = ecc.viterbi_decode(plain, p.payload_bits + ecc.CRC_BITS)[0][: p.payload_bits]
            csi = coded_soft(channel_state_soft(g, expected_symbols(layout, best, rep_phases)), roles, p.coded_bits)
            softs += [(plain, g, rep_phases), (csi, g, rep_phases)]
    stacked = np.stack([s for s, _, _ in softs]) if softs else np.zeros((0, p.coded_bits))
    unit = unit_rows(stacked)

    def matched(hex_payload: str, info: dict) -> tuple:
        payload = payload_to_bits(hex_payload, p.payload_bits)
        signs = 1.0 - 2.0 * codeword_for(payload, layout).astype(np.float64)
        scores = unit @ signs
        # The reading and assignment the match agrees with best name its symbols and confidence.
        _, g, rep_phases = softs[int(np.argmax(scores))]
        if listing and "issued_correlation_z" not in info:
            z = float(scores.max())
            info = {**info, "issued_correlation_z": z, "issued_correlation_bound": correlation_bound(stacked, z, records)}
        expected = expected_symbols(layout, payload ^ layout.scramble, rep_phases)
        conf = payload_bit_confidence(g, codeword_agreement(g, expected), layout)
        return payload, conf, {"issued_candidates": len(looked_up), "issued_records": records,
                               "issued_correlation_tests": len(softs), **info}, expected

    for soft, _, _ in softs if lists else ():
        listed, _ = ecc.crc_candidates(soft, p.payload_bits, LIST_SIZE)
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
