"""The p-values of the routes by which a payload confirms a mark.

The presence test alone reports its p-value (``p_value_from_z``). A payload whose CRC passes, or
an issued payload that names the file (:mod:`provenance.watermark.known`), is independent
evidence: without the mark it happens with a probability bounded whatever the presence test
read, so the two multiply. Each route gets a fixed share of the false-positive budget, so that
the reported value stays a p-value (``P(result <= x) <= x``); docs/watermark.md, "Payload
confirmation" and "The matched route", has the argument and the measured checks.
"""

from __future__ import annotations

import math

from provenance.watermark import ecc
from provenance.watermark.known import KNOWN_READINGS, MAX_FALSE_MATCH
from provenance.watermark.layout import DEFAULT_PARAMS


CONFIRM_P_VALUE = 1e-3
CONFIRM_SHARE = 0.1
"""Payload confirmation: an alignment whose presence p-value is at most ``CONFIRM_P_VALUE`` and
whose payload decodes (CRC) has p-value ``p * CRC_PASS_BOUND / CONFIRM_SHARE``; one that does not
decode, ``p / (1 - CONFIRM_SHARE)``. Without the mark the signs of the payload groups' residuals are
independent of everything the presence test reads (see :func:`confirmed_p_value`), so a CRC passes
there with probability at most ``CRC_PASS_BOUND`` whatever the presence score: the two tests
multiply, and ``CONFIRM_SHARE`` of the false-positive budget goes to the confirmed route."""
CRC_PASS_BOUND = ecc.LIST_SIZE * DEFAULT_PARAMS.block_phases * 2 / 2.0**ecc.CRC_BITS
"""Chance that one decode of pure noise passes its CRC: list size x 2 block phases x 2 readings
(plain and channel-state), 4.9e-4 (measured through ``decode_at``: 4.0e-4, docs/watermark.md)."""


def confirmed_p_value(p: float, decoded: bool) -> float:
    """The presence p-value ``p`` of the best alignment combined with whether its payload decoded.

    Without the mark, each group's lattice residual is uniform, so its sign (the bit it reads)
    is independent of its magnitude (all the presence test reads of a payload group: the
    bit-blind ``cos(4 pi r)``), and the residuals of the other alignments use other dithers. A
    CRC then passes with probability at most ``CRC_PASS_BOUND`` whatever ``p`` is, so
    ``P(decoded and p <= y) <= CRC_PASS_BOUND * y``. Splitting the false-positive budget between
    the route with a payload (``CONFIRM_SHARE``) and the one without keeps the result a p-value:
    ``P(result <= x) <= x``. Above ``CONFIRM_P_VALUE`` nothing changes.
    """
    if decoded and p <= CONFIRM_P_VALUE:
        return p * CRC_PASS_BOUND / CONFIRM_SHARE
    return presence_p_value(p, listing=False)


MATCH_SHARE = 0.05
"""With issued payloads that can be listed (:class:`~provenance.watermark.known.IssuedList`),
the share of the false-positive budget that goes to the matched route (:func:`matched_p_value`).
It is taken from the presence test alone (:func:`presence_p_value`)."""


def presence_p_value(p: float, *, listing: bool) -> float:
    """The p-value of a mark with presence p-value ``p`` and no payload that confirms it: the
    presence test's share of the budget is what the confirmed routes leave, ``CONFIRM_SHARE`` where
    they can open (``p <= CONFIRM_P_VALUE``) and ``MATCH_SHARE`` when the issued payloads can be
    listed (``listing``: the matched route can open at any ``p``)."""
    share = 1.0 - (MATCH_SHARE if listing else 0.0)
    if p <= CONFIRM_P_VALUE:
        share -= CONFIRM_SHARE
    elif not listing:
        return p
    return min(1.0, p / share)


def product_tail(q: float) -> float:
    """``P(U * B <= q)`` for independent ``U`` and ``B`` that are each at least uniform
    (``P(U <= u) <= u``): ``q (1 - ln q)``, the law of the product of two uniforms."""
    if q >= 1.0:
        return 1.0
    if q <= 0.0:
        return 0.0
    return min(1.0, q * (1.0 - math.log(q)))


def matched_p_value(p: float, corr_bound: float) -> float:
    """The p-value of the matched route: presence p-value ``p``, and an issued codeword whose
    correlation with the file has false-match bound ``corr_bound``
    (:func:`~provenance.watermark.known.correlation_bound`, the bound evaluated at the best
    score).

    Without the mark, the issued payloads are random numbers drawn independently of the file, so
    given the file (which fixes ``p`` and the soft vectors) ``P(corr_bound <= b) <= b``: the
    bound is at least uniform, and independent of ``p``. Their product then has the tail of
    :func:`product_tail`; a file is matched from at most ``KNOWN_READINGS`` readings (a union
    bound), and the route has ``MATCH_SHARE`` of the budget. A strong match thus confirms a mark
    the presence test missed by far (a codec or a reverb can leave the pilots weak and the
    codeword readable); a weak one still needs a presence p-value close to the threshold."""
    return min(1.0, KNOWN_READINGS * product_tail(p * corr_bound) / MATCH_SHARE)


STORE_CONFIRM_BOUND = CRC_PASS_BOUND + MAX_FALSE_MATCH
"""With the issued payloads, the chance that the confirmed route opens without the mark: a CRC
passing by accident, or an issued payload matching although it is not the file's own (at most
``MAX_FALSE_MATCH`` over every reading matched)."""


def store_confirmed_p_value(p: float) -> float:
    """The p-value of a mark with presence p-value ``p`` whose payload decoded or matched an issued
    payload, when the detector was given the issued payloads.

    Without the mark, the issued payloads are random numbers drawn independently of the file, so
    one matches with probability at most ``MAX_FALSE_MATCH`` whatever the presence test read; the
    confirmed route (a CRC that passed, or an issued payload) then opens with probability at most
    ``p * STORE_CONFIRM_BOUND``, and it keeps its ``CONFIRM_SHARE`` of the budget. (A CRC-decoded
    payload's p-value is therefore 0.2 % larger with the issued payloads than without.)"""
    return min(1.0, p * STORE_CONFIRM_BOUND / CONFIRM_SHARE)


def issued_p_value(p: float, corr_bound: float | None) -> float:
    """The p-value of a mark with presence p-value ``p`` whose payload an issued payload names:
    the better of the confirmed route (:func:`store_confirmed_p_value`, open up to
    ``CONFIRM_P_VALUE``) and, for a match by correlation (``corr_bound``, its bound; None for a
    match from the decoder's list), the matched route (:func:`matched_p_value`)."""
    routes = [store_confirmed_p_value(p)] if p <= CONFIRM_P_VALUE else []
    if corr_bound is not None:
        routes.append(matched_p_value(p, corr_bound))
    return min(routes, default=1.0)
