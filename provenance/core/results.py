"""Result dataclasses shared across stages (watermark detection, ...).

Reports of later stages (C2PA reading, store records, verification) live here too
when more than one package uses them.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Detection:
    """What :func:`provenance.watermark.detect` found in a signal for one key."""

    found: bool
    """True when the presence test passes the threshold (``p_value <= threshold``)."""
    payload: str | None
    """Decoded user payload as lower-case hex (CRC verified), or None. When the caller passed the
    issued payloads (``detect(..., known=...)``) it may instead be one of them, matched by a long
    list of decoding paths: ``details["payload_source"] == "issued_payloads"``, with
    ``details["issued_false_match_bound"]`` (:mod:`provenance.watermark.known`)."""
    p_value: float
    """Probability of a presence score at least this high in an unmarked file or with a wrong key,
    corrected for the search over alignments, speeds and pitches; where the payload decoded at the
    best alignment, combined with the chance of its CRC passing by accident (payload confirmation,
    docs/watermark.md)."""
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
