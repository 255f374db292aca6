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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from provenance.watermark.layout import PAYLOAD_BITS

LIST_SIZE = 65536
"""Paths examined per soft reading when matching against issued payloads (about 0.5 s each;
a wrong one passes the CRC once in 65,536, so each list adds about one candidate)."""
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


def false_match_bound(candidates: int, records: int) -> float:
    """Upper bound on the probability that any of ``candidates`` payloads looked up equals one of
    ``records`` random issued payloads other than the file's own."""
    return float(candidates) * float(max(records, 1)) * 2.0**-PAYLOAD_BITS
