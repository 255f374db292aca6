"""The watermarker plugin protocol the robustness harness drives, and its result type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from provenance.core.audio import Audio
from provenance.core.results import Segment


@dataclass
class WatermarkerResult:
    """What one detection found.

    ``score``: higher = more confident the mark is present (the ROC curves threshold it).
    ``p_value``: the watermarker's own calibrated false-positive probability, where it has one.
    ``segments``: marked time spans, seconds, with the payload read in each (hex) where reported.
    """

    found: bool
    score: float
    payload_bits: np.ndarray | None = None
    segments: tuple[Segment, ...] = ()
    p_value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Watermarker(Protocol):
    """A watermarking scheme under test: embeds ``payload_bits`` bits and detects them."""

    name: str
    payload_bits: int

    def embed(self, audio: Audio, payload_bits: np.ndarray) -> Audio:
        """Return ``audio`` marked with ``payload_bits`` (uint8 0/1 array of length ``payload_bits``)."""
        ...

    def detect(self, audio: Audio) -> WatermarkerResult:
        """Look for the mark in ``audio``."""
        ...


class WatermarkerBase:
    """Optional capabilities with neutral defaults; implementations override what they support.

    - ``block_s``: length of the scheme's repeating block, seconds (offset attacks use fractions of it)
    - ``min_duration_s``: shortest audio it can mark, seconds
    - ``with_wrong_key(i)``: the same scheme under the ``i``-th wrong key (null trials), or None
    - ``with_strength(s)``: the same scheme at embedding strength ``s``, or None if it has none
    - ``describe()``: parameters and version, recorded with every trial
    - ``informed_reading(audio, payload_bits)``: what the file's soft values say about the
      embedded payload (``InformedReading.to_dict()``), for benchmark runs with ``--information``,
      or None where the scheme cannot say
    """

    name: str
    payload_bits: int
    block_s: float = 1.0
    min_duration_s: float = 0.0

    def with_wrong_key(self, index: int) -> "Watermarker | None":
        return None

    def with_strength(self, strength: float) -> "Watermarker | None":
        return None

    def informed_reading(self, audio: Audio, payload_bits: np.ndarray) -> dict[str, Any] | None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "payload_bits": self.payload_bits}


def bits_to_hex(bits: np.ndarray) -> str:
    """Pack 0/1 bits (MSB first, zero-padded to whole bytes) into lower-case hex."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def hex_to_bits(hex_str: str, n_bits: int) -> np.ndarray:
    """Unpack hex into ``n_bits`` 0/1 bits (MSB first); missing bits are zero."""
    data = bytes.fromhex(hex_str.strip())
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    if bits.size < n_bits:
        bits = np.concatenate([bits, np.zeros(n_bits - bits.size, np.uint8)])
    return bits[:n_bits].astype(np.uint8)
