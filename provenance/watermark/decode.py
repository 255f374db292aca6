"""Decoding the payload at an alignment: soft values, block phases, the channel-state reading,
and pieces of a file decoded jointly.

Each group's soft value is ``w cos(2 pi r)`` (positive: bit 0); the soft values of every
repetition of a coded bit are summed (:func:`coded_soft`) and list-decoded by soft-decision
Viterbi with a CRC (:mod:`provenance.watermark.ecc`). When no path passes, the file is decoded
once more with each class of groups weighted by how well it agrees with the best path
(:func:`channel_state_soft`). The block phase of the first repetition is unknown, so every
assignment is tried (:func:`block_phase_options`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from provenance.watermark import ecc
from provenance.watermark.features import Features, Grouped, grouped, spread_per_slot
from provenance.watermark.layout import Layout
from provenance.watermark.presence import presence_terms


CSI_RELIABILITY_CLASSES = 3
"""Groups of one frequency region are split into this many reliability classes (equal counts)
for the channel-state reading (:func:`channel_state_soft`)."""
CSI_MIN_GROUPS = 3
"""A class with fewer usable groups than this gets soft value 0 in that reading (its agreement is
too noisy to measure a concentration from)."""
_KAPPA_GRID = np.linspace(0.0, 12.0, 241)
_MEAN_COS_OF_KAPPA = special.ive(1, _KAPPA_GRID) / special.ive(0, _KAPPA_GRID)


def codeword_agreement(g: Grouped, expected: np.ndarray) -> np.ndarray:
    """Per-group agreement ``cos(2 pi (r - b/2))`` of the residuals with the symbols ``expected``
    (1: on the lattice point of its bit, -1: on the other bit's). cos is 1-periodic in ``r``: no
    wrapping is needed."""
    return np.cos(2 * np.pi * (g.r - 0.5 * expected))


def channel_state_soft(g: Grouped, expected: np.ndarray) -> np.ndarray:
    """Soft values ``2 kappa cos(2 pi r)`` with ``kappa`` measured per class of groups.

    Codecs and band-limited noise damage some frequency regions far more than the tile
    reliabilities predict (a low-rate codec fills upper bands with synthetic content that is
    loud but carries no mark). Groups are classed by frequency region and reliability; in
    each class the agreement of the residuals with ``expected`` symbols (the pilots, and the
    re-encoded best decoding path for the payload groups) gives the mean resultant length of
    the residual error, whose von Mises concentration ``kappa`` makes ``2 kappa cos(2 pi r)``
    the log-likelihood ratio of each group's bit.
    """
    agree = codeword_agreement(g, expected)
    usable = g.w > 0
    out = np.zeros_like(g.r)
    if not usable.any():
        return out
    cuts = np.quantile(g.w[usable], np.linspace(0.0, 1.0, CSI_RELIABILITY_CLASSES + 1)[1:-1])
    klass = np.digitize(g.w, cuts) + CSI_RELIABILITY_CLASSES * np.arange(g.r.shape[-1])
    for c in np.unique(klass[usable]):
        sel = usable & (klass == c)
        if sel.sum() < CSI_MIN_GROUPS:
            continue
        mean = float(np.clip(agree[sel].mean(), 0.0, _MEAN_COS_OF_KAPPA[-1]))
        out[sel] = 2.0 * np.interp(mean, _MEAN_COS_OF_KAPPA, _KAPPA_GRID)
    return out * np.cos(2 * np.pi * g.r)


def repetition_phases(layout: Layout, reps: int, phase: int) -> np.ndarray:
    """Block phase of each of ``reps`` repetitions when repetition 0 is a block of phase ``phase``
    (see :func:`~provenance.watermark.layout.coded_bit_placement`)."""
    return (np.arange(reps) + phase) % layout.params.block_phases


def coded_soft(terms: np.ndarray, roles: np.ndarray, n: int) -> np.ndarray:
    """Per-group soft values summed into the ``n`` coded bits they carry."""
    data = roles >= 0
    return np.bincount(roles[data], weights=terms[data], minlength=n)


def agreement_score(soft_terms: np.ndarray, roles: np.ndarray, n: int) -> float:
    """How well the repetitions of each coded bit agree under ``roles``: the sum of the cross
    products of their soft values (each repetition's square left out)."""
    total = coded_soft(soft_terms, roles, n)
    own = coded_soft(soft_terms**2, roles, n)
    return float((total**2 - own).sum())


def expected_symbols(layout: Layout, bits: np.ndarray, rep_phases: np.ndarray) -> np.ndarray:
    """Symbols ``(reps, runs, groups)`` every group carries for the (scrambled) payload ``bits``
    when repetition ``i`` is a block of phase ``rep_phases[i]``."""
    return layout.symbol_bits(ecc.encode_payload(bits))[rep_phases]


def payload_bit_confidence(g: Grouped, agree: np.ndarray, layout: Layout) -> float:
    """Reliability-weighted mean agreement of the payload groups, clipped to 0..1."""
    data = ~np.broadcast_to(layout.pilot, g.r.shape)
    weights = float(g.w[data].sum())
    conf = float((g.w[data] * agree[data]).sum() / weights) if weights > 0 else 0.0
    return max(0.0, min(1.0, conf))


def decode_phase(
    g: Grouped, soft_terms: np.ndarray, layout: Layout, rep_phases: np.ndarray
) -> tuple[np.ndarray, bool, np.ndarray]:
    """List-decode the payload from the per-group ``soft_terms`` (positive: bit 0) when
    repetition ``i`` is a block of phase ``rep_phases[i]``, with the channel-state reading when
    the plain one fails its CRC. Returns (payload bits, still scrambled; CRC ok; expected
    symbols ``(reps, runs, groups)`` of the best path)."""
    p = layout.params
    roles = layout.role[rep_phases]
    soft = coded_soft(soft_terms, roles, p.coded_bits)
    bits, crc_ok = ecc.decode_payload(soft, p.payload_bits)
    expected = expected_symbols(layout, bits, rep_phases)
    if not crc_ok:
        # Second reading with each group's soft value scaled by how well its class of groups
        # agrees with the best path (channel state measured on the file itself).
        soft = coded_soft(channel_state_soft(g, expected), roles, p.coded_bits)
        bits_csi, crc_ok = ecc.decode_payload(soft, p.payload_bits)
        if crc_ok:
            bits = bits_csi
            expected = expected_symbols(layout, bits, rep_phases)
    return bits, crc_ok, expected


def covered_bits(g: Grouped, roles: np.ndarray) -> int:
    """How many distinct coded bits the groups with any reliability carry under ``roles``.

    A decode needs at least as many as the payload has bits: the codeword's other bits are
    erased, and with ``k`` of them read, ``2**(payload_bits - k)`` payloads fit them and their CRC
    equally well, so a path that passes the CRC is right no more often than one over pure noise
    (``CRC_PASS_BOUND``). Such a decode is not tried (a segment or piece of under about a third of
    a block)."""
    data = (roles >= 0) & (g.w > 0)
    return int(np.unique(roles[data]).size)


def decode_grouped(g: Grouped, layout: Layout, phase_options: list[np.ndarray] | None = None
                    ) -> tuple[np.ndarray | None, np.ndarray, float, np.ndarray | None]:
    """Decode the payload from grouped statistics under each block phase assignment in
    ``phase_options`` (default: :func:`block_phase_options` of the whole). Returns (payload bits or
    None, per-group agreement with the decoded or presence symbols, bit confidence, the decoded
    codeword's symbols ``(reps, runs, groups)`` or None).

    Every assignment is decoded, not only those before the first CRC pass, and of the paths that
    pass, the one the file agrees with best is taken. Under a wrong assignment the coded bits are
    read from the wrong groups, so its path is noise, and it passes the CRC by chance (up to
    ``CRC_PASS_BOUND``, which already counts every assignment). The assignment ranked first is the
    wrong one for about 1 reading in 17 of a 6 s file (the repetitions that rank them barely
    overlap; more after a low-rate codec), so stopping at its pass would name a payload nobody
    issued although the right assignment decodes too. Such a pass agrees with the file less than
    the right path (docs/watermark.md, decoding, has the figures)."""
    pilot = np.broadcast_to(layout.pilot, g.r.shape)
    soft_terms = g.w * np.cos(2 * np.pi * g.r)  # positive: bit 0
    best: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None  # (score, bits, expected, agree)
    for rep_phases in (phase_options if phase_options is not None else block_phase_options([soft_terms], layout)):
        if covered_bits(g, layout.role[rep_phases]) < layout.params.payload_bits:
            continue
        bits, crc_ok, expected = decode_phase(g, soft_terms, layout, rep_phases)
        if crc_ok:
            agree = codeword_agreement(g, expected)
            score = float(np.sum(g.w * agree))
            if best is None or score > best[0]:
                best = (score, bits, expected, agree)
    if best is None:
        agree = presence_terms(g.r, pilot, layout.pilot_bits)
        return None, agree, payload_bit_confidence(g, agree, layout), None
    _, bits, expected, agree = best
    return bits ^ layout.scramble, agree, payload_bit_confidence(g, agree, layout), expected


def slot_agreement(g: Grouped, agree: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Per-group agreement ``(reps, runs, groups)`` spread onto the slots, weighted by
    reliability, and the per-slot sum of squared weights (its null variance is half that)."""
    return spread_per_slot(g.w * agree, g, layout), spread_per_slot(g.w * g.w, g, layout)


def decode_at(
    feat: Features, layout: Layout, phase: int, offset: int, mask: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, float, np.ndarray | None]:
    """Soft-decode the payload at one alignment from the slots in ``mask``.

    The block phase of the first repetition is not known (a file may start anywhere), so every
    phase is decoded (:func:`decode_grouped`). Returns (payload bits or None if the CRC fails,
    per-slot agreement, per-slot weight, bit confidence, the decoded codeword's symbols or None).
    """
    g = grouped(feat, layout, phase, offset, mask)
    payload, agree, conf, expected = decode_grouped(g, layout)
    return (payload, *slot_agreement(g, agree, layout), conf, expected)


def block_phase_options(parts: list[np.ndarray], layout: Layout) -> list[np.ndarray]:
    """Block phases of the repetitions to try, the most likely first, for one or several pieces
    read at their own alignments (``parts``: each piece's per-group soft terms).

    The phase of a piece's first repetition is unknown (a file may start anywhere, and an edit
    may move a piece by any number of blocks). Pieces after the first are fixed one by one, each
    to the phase under which it agrees best with the pieces before it, so only the global choice
    is left open: the assignment found and its shifts by every phase, ordered by how well the
    repetitions of each coded bit agree under them. With one piece, phase 0 first on a tie."""
    p = layout.params
    first = repetition_phases(layout, parts[0].shape[0], 0)
    acc = coded_soft(parts[0], layout.role[first], p.coded_bits)
    chosen = [first]
    for terms in parts[1:]:
        options = [repetition_phases(layout, terms.shape[0], h) for h in range(p.block_phases)]
        softs = [coded_soft(terms, layout.role[ph], p.coded_bits) for ph in options]
        h = int(np.argmax([float(acc @ s) for s in softs]))
        chosen.append(options[h])
        acc = acc + softs[h]
    base = np.concatenate(chosen)
    ordered = [(base + k) % p.block_phases for k in range(p.block_phases)]
    terms = np.concatenate(parts)
    score = [agreement_score(terms, layout.role[ph], p.coded_bits) for ph in ordered]
    return [ordered[k] for k in sorted(range(len(ordered)), key=lambda k: -score[k])]


def presence_agreement(
    feat: Features, layout: Layout, phase: int, offset: int, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot presence agreement (pilots, and the bit-blind lattice terms) and weight at one
    alignment, without decoding."""
    g = grouped(feat, layout, phase, offset, mask)
    agree = presence_terms(g.r, np.broadcast_to(layout.pilot, g.r.shape), layout.pilot_bits)
    return slot_agreement(g, agree, layout)


@dataclass(frozen=True)
class Piece:
    """A part of the file read at its own alignment: fine ``phase``, block ``offset`` (slots) and
    the slots it covers (``mask``); ``reported``: whether its presence test alone was reported."""

    phase: int
    offset: int
    mask: np.ndarray
    reported: bool


def decode_joint(
    feat: Features, layout: Layout, pieces: list[Piece]
) -> tuple[np.ndarray | None, float, list[tuple[np.ndarray, np.ndarray]]]:
    """Decode one payload from several pieces of the file, each read at its own alignment: the
    repetitions of every piece are summed. A montage of excerpts shorter than a block, or the two
    sides of a cut, carry the whole codeword only together. Returns (payload bits or None, bit
    confidence, per piece its per-slot agreement with the decoded codeword and per-slot weight)."""
    gs, joint, options = join_pieces(feat, layout, pieces)
    payload, agree, conf, _ = decode_grouped(joint, layout, options)
    splits = np.split(agree, np.cumsum([g.r.shape[0] for g in gs])[:-1])
    per_piece = [slot_agreement(g, a, layout) for g, a in zip(gs, splits)]
    return payload, conf, per_piece


def whole_reading(feat: Features, layout: Layout, phase: int, offset: int) -> tuple[Grouped, list[np.ndarray]]:
    """The whole file grouped at one alignment, with its block-phase assignments (for :func:`~provenance.watermark.known.match_issued`)."""
    g = grouped(feat, layout, phase, offset, np.ones(feat.v.shape[1]))
    return g, block_phase_options([g.w * np.cos(2 * np.pi * g.r)], layout)


def join_pieces(
    feat: Features, layout: Layout, pieces: list[Piece]
) -> tuple[list[Grouped], Grouped, list[np.ndarray]]:
    """Pieces grouped at their own alignments, their repetitions joined into one reading, and the
    block-phase assignments to try for it (:func:`block_phase_options`), the most likely first."""
    gs = [grouped(feat, layout, pc.phase, pc.offset, pc.mask) for pc in pieces]
    joint = Grouped(np.concatenate([g.r for g in gs]), np.concatenate([g.w for g in gs]), 0, 0)
    return gs, joint, block_phase_options([g.w * np.cos(2 * np.pi * g.r) for g in gs], layout)
