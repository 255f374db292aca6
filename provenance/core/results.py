"""Result dataclasses shared across stages (watermark detection, ...).

Reports of later stages (C2PA reading, store records, verification) live here too
when more than one package uses them.
"""

from __future__ import annotations

import dataclasses

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Segment:
    """A time span where a watermark is present."""

    start_s: float
    """Start, seconds from the beginning of the file."""
    end_s: float
    """End, seconds from the beginning of the file."""
    payload: str | None
    """Payload decoded inside this span (lower-case hex), or None if present but unreadable."""
    p_value: float
    """Probability of a presence score this high in this span without the mark (or with a wrong key)."""

    def shifted(self, dt_s: float) -> "Segment":
        """The same span ``dt_s`` seconds later (e.g. from the audio's own time to the file's
        timeline, where the audio starts ``dt_s`` s in); times rounded to the millisecond."""
        return dataclasses.replace(self, start_s=round(self.start_s + dt_s, 3), end_s=round(self.end_s + dt_s, 3))


@dataclass(frozen=True)
class Detection:
    """What :func:`provenance.watermark.detect` found in a signal for one key."""

    found: bool
    """True when the presence test passes the threshold (``p_value <= threshold``)."""
    payload: str | None
    """Decoded user payload as lower-case hex (CRC verified), or None. When the caller passed the
    issued payloads (``detect(..., known=...)``) it may instead be one of them, matched by a long
    list of decoding paths (``details["payload_source"] == "issued_payloads"``) or by correlating
    every issued codeword with the soft values (``"issued_correlation"``), with
    ``details["issued_false_match_bound"]`` (:mod:`provenance.watermark.known`)."""
    p_value: float
    """Probability of a presence score at least this high in an unmarked file or with a wrong key,
    corrected for the search over alignments, speeds and pitches; where the payload decoded at the
    best alignment (or, with the issued payloads, matched one of them), combined with the chance of
    that happening by accident (payload confirmation, docs/watermark.md)."""
    bit_confidence: float
    """Mean agreement of the soft payload bits with the decoded codeword, 0 (chance) to 1 (certain)."""
    segments: tuple[Segment, ...] = ()
    """Marked time spans, at 1 s resolution or finer."""
    threshold: float = 0.0
    """The p-value threshold used for ``found``."""
    duration_s: float = 0.0
    """Length of the analysed signal, seconds."""
    speed: float = 1.0
    """Tempo factor of the edit the mark was found under: 1.05 = played 5 % faster, by a speed
    change or a time stretch (1.0 = unchanged)."""
    pitch_semitones: float = 0.0
    """Pitch change of that edit, semitones (a speed change of 5 % is +0.84)."""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["segments"] = [asdict(s) for s in self.segments]
        return d


@dataclass(frozen=True)
class InformedReading:
    """How much a file's soft values say about one known payload
    (:func:`provenance.watermark.information.informed_reading`).

    A decoder sees, for each coded bit, the sum of the soft values of the groups that carry it.
    Read against the codeword of the payload that was embedded, those sums give an estimate of
    the information per coded bit a decoder can use when it weighs them linearly (the generalized
    mutual information of bit-metric decoding, bits). Reliable decoding needs it above ``rate``,
    the payload and CRC bits per coded bit: below it, no code decoded that way recovers the
    payload, and ``information_csi_bits`` says whether ideal per-class weights would lift it.
    """

    information_bits: float
    """Estimated information per coded bit, bits (0: none, 1: every coded bit certain), of the
    soft values the decoder reads first."""
    information_csi_bits: float
    """The same, with each class of groups (frequency region x reliability tercile) weighted by
    its own concentration measured against the known codeword: what ideal channel-state weights
    could make of these soft values (the decoder's channel-state reading estimates them)."""
    rate: float
    """Payload and CRC bits per coded bit: the least information reliable decoding needs."""
    z: float
    """Correlation of the coded-bit soft values with the codeword, over their root sum of
    squares (at most ``sqrt(coded_bits)``; N(0, 1) at one alignment for an unrelated codeword, about
    3-4 at the best of the alignments read)."""
    coded_bits: int
    """Coded bits per block."""
    phase: int
    """Fine phase of the alignment read, in quarter hops (2.5 ms) within a slot."""
    offset_slots: int
    """Block offset of the alignment read, slots."""
    block_phase: int
    """Block phase (coded-bit placement) of the first repetition read."""

    @property
    def margin_bits(self) -> float:
        """``information_bits - rate``: negative when the soft values cannot carry the payload."""
        return self.information_bits - self.rate

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "margin_bits": self.margin_bits}
