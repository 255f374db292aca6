"""FoleySeal's own watermark behind the plugin protocol (imported lazily: the harness loads
without it, and the package may be newer than the benchmark)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from benchmarks.watermarkers.base import WatermarkerBase, WatermarkerResult, bits_to_hex, hex_to_bits
from provenance.core.audio import Audio

BENCH_KEY_SEED = "foleyseal-bench/test-key/v1"
"""The fixed, public test key of the benchmark (never a production key)."""


def _key_bytes(seed: str) -> bytes:
    return hashlib.sha256(seed.encode()).digest()


STORE_RECORDS = 1_000_000
"""Issued payloads the ``foleyseal+store`` variant's simulated manifest store is said to hold."""
SPREAD_STRIDE = 9
"""Run stride, slots, of the ``foleyseal-spread`` format variant (runs interleaved in 0.72 s
super-blocks; ``WatermarkParams.run_stride``)."""


@dataclass(frozen=True)
class FoleySealWatermarker(WatermarkerBase):
    """``provenance.watermark.embed/detect`` under a fixed test key at ``strength``.

    Score = -log10(p_value) of the detection (p-values below 1e-300 count as 1e-300).
    With ``store_records`` set, it is the verifier's reading instead of the bare detector's: every
    payload it embeds is recorded as issued, in a simulated manifest store of that many records,
    and the detector may name a mark's payload by matching against them, and so confirm a mark
    the presence test missed (:mod:`provenance.watermark.known`). Same marks, same presence
    test; payloads that do not decode on their own, and p-values (the presence test alone keeps
    a smaller share of the budget, the store's routes take the rest), can differ.
    With ``run_stride`` > 1 it embeds and reads a variant of the format whose runs are interleaved
    in time (``WatermarkParams.run_stride``), to compare that layout with the shipped one on the
    same trials. Its p-values use the shipped format's null law (not refitted for the variant);
    the benchmark's own null trials measure its false positives.
    """

    name: str = "foleyseal"
    strength: float = 1.0
    key_seed: str = BENCH_KEY_SEED
    payload_bits: int = 64
    store_records: int | None = None
    run_stride: int = 1
    issued: Any = field(default=None, compare=False, repr=False)
    """The simulated store (a PayloadSet), shared by the copies ``with_wrong_key`` makes."""

    def __post_init__(self) -> None:
        if self.store_records is not None and self.issued is None:
            from provenance.watermark.known import PayloadSet

            # The listed payloads are those embedded; the rest of the store's records are random
            # 64-bit numbers that a wrong decoding path matches with probability 2**-64 each,
            # counted in the false-match bound without being held in memory.
            object.__setattr__(self, "issued", PayloadSet(decoys=self.store_records))

    @property
    def params(self) -> Any:
        """The watermark format's parameters (``WatermarkParams``) with this ``run_stride``."""
        from provenance.watermark.layout import DEFAULT_PARAMS

        return replace(DEFAULT_PARAMS, run_stride=self.run_stride) if self.run_stride != 1 else DEFAULT_PARAMS

    @property
    def block_s(self) -> float:  # type: ignore[override]
        try:
            from provenance.watermark.layout import DEFAULT_PARAMS

            return float(DEFAULT_PARAMS.block_s)
        except (ImportError, AttributeError):
            return 1.0

    @property
    def min_duration_s(self) -> float:  # type: ignore[override]
        try:
            from provenance.watermark import min_duration_s

            return float(min_duration_s())
        except (ImportError, AttributeError, TypeError):
            return 3.5

    def embed(self, audio: Audio, payload_bits: np.ndarray) -> Audio:
        from provenance.watermark import embed

        payload = bits_to_hex(payload_bits)
        if self.issued is not None:
            self.issued.add(payload)
        return embed(audio, _key_bytes(self.key_seed), payload, strength=self.strength, params=self.params)

    def detect(self, audio: Audio) -> WatermarkerResult:
        from provenance.watermark import detect

        d = detect(audio, _key_bytes(self.key_seed), known=self.issued, params=self.params)
        p = float(d.p_value)
        score = -math.log10(max(p, 1e-300)) if p == p else 0.0
        bits = hex_to_bits(d.payload, self.payload_bits) if d.payload else None
        return WatermarkerResult(
            found=bool(d.found), score=score, payload_bits=bits, segments=tuple(d.segments), p_value=p,
            details={"bit_confidence": float(d.bit_confidence), "speed": float(d.speed),
                     "pitch_semitones": float(d.pitch_semitones), "threshold": float(d.threshold),
                     **({"payload_source": d.details["payload_source"],
                         "issued_false_match_bound": d.details["issued_false_match_bound"]}
                        if "payload_source" in d.details else {})},
        )

    def informed_reading(self, audio: Audio, payload_bits: np.ndarray) -> dict[str, Any]:
        from provenance.watermark.information import informed_reading

        r = informed_reading(audio, _key_bytes(self.key_seed), bits_to_hex(payload_bits), params=self.params)
        return r.to_dict()

    def with_wrong_key(self, index: int) -> "FoleySealWatermarker":
        return replace(self, key_seed=f"foleyseal-bench/wrong-key/{index}")

    def with_strength(self, strength: float) -> "FoleySealWatermarker":
        return replace(self, strength=float(strength))

    def describe(self) -> dict[str, Any]:
        try:
            from provenance import __version__ as version
        except ImportError:
            version = "unknown"
        return {"name": self.name, "payload_bits": self.payload_bits, "strength": self.strength,
                "key_seed": self.key_seed, "version": version, "block_s": self.block_s,
                **({"store_records": self.store_records} if self.store_records is not None else {}),
                **({"run_stride": self.run_stride} if self.run_stride != 1 else {})}
