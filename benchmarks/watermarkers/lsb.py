"""A deliberately weak baseline: the payload written into the least significant bit of 16-bit samples.

Frames of a fixed 32-bit sync word plus the payload repeat from the first sample, in every
channel; detection reads channel 0 at offset 0 only, takes a majority vote per payload bit over
the repetitions, and scores the sync agreement (2 * fraction matching - 1: 1 when marked, ~0 on
anything else). Any lossy edit, gain change, resampling or shift destroys it; it exists to prove
that the harness reports failure when a mark does not survive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.watermarkers.base import WatermarkerBase, WatermarkerResult
from provenance.core.audio import Audio

_SCALE = 32768.0
SYNC_BITS = np.array([int(c) for c in "10110010011100011010110001001110"], dtype=np.uint8)
"""Public sync word: 16 ones and 16 zeros, so silence (all-zero LSBs) scores exactly 0."""


@dataclass(frozen=True)
class LSBWatermarker(WatermarkerBase):
    """LSB replacement in 16-bit samples; ``threshold`` on the sync score decides ``found``."""

    name: str = "lsb"
    payload_bits: int = 64
    threshold: float = 0.5

    @property
    def block_s(self) -> float:  # type: ignore[override]
        return (SYNC_BITS.size + self.payload_bits) / 44100.0

    def _frame(self, payload_bits: np.ndarray) -> np.ndarray:
        return np.concatenate([SYNC_BITS, np.asarray(payload_bits, dtype=np.uint8)[: self.payload_bits]])

    def embed(self, audio: Audio, payload_bits: np.ndarray) -> Audio:
        frame = self._frame(payload_bits)
        reps = int(np.ceil(audio.frames / frame.size))
        bits = np.tile(frame, reps)[: audio.frames].astype(np.int32)
        q = np.clip(np.round(audio.samples.astype(np.float64) * _SCALE), -32768, 32767).astype(np.int32)
        q = (q & ~1) | bits[np.newaxis, :]
        return audio.with_samples(q.astype(np.float32) / np.float32(_SCALE))

    def detect(self, audio: Audio) -> WatermarkerResult:
        flen = SYNC_BITS.size + self.payload_bits
        reps = audio.frames // flen
        if reps == 0:
            return WatermarkerResult(found=False, score=0.0)
        q = np.round(audio.samples[0, : reps * flen].astype(np.float64) * _SCALE).astype(np.int64)
        bits = (q & 1).reshape(reps, flen).astype(np.uint8)
        score = float(2.0 * np.mean(bits[:, : SYNC_BITS.size] == SYNC_BITS) - 1.0)
        payload = (bits[:, SYNC_BITS.size :].mean(axis=0) > 0.5).astype(np.uint8)
        found = score >= self.threshold
        # The vote is returned even when the sync fails, so bit accuracy shows chance level honestly.
        return WatermarkerResult(found=found, score=score, payload_bits=payload, details={"repetitions": reps})

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "payload_bits": self.payload_bits, "threshold": self.threshold,
                "version": "builtin-lsb-1"}
