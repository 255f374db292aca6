"""Chains of attacks applied in order (e.g. MP3 64 kbps -> resample 22.05 kHz -> noise 30 dB)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from benchmarks.attacks.base import Attack, AttackContext, AttackOutput, MarkedSpan
from provenance.core.audio import Audio


@dataclass(frozen=True, kw_only=True)
class Cascade(Attack):
    """Apply ``steps`` one after another; marked spans are mapped through every step."""

    steps: tuple[Attack, ...]
    kind: ClassVar[str] = "cascade"

    @property
    def changes_time(self) -> bool:  # type: ignore[override]
        return any(s.changes_time for s in self.steps)

    @property
    def warps_time(self) -> bool:  # type: ignore[override]
        return any(s.warps_time for s in self.steps)

    @property
    def changes_channels(self) -> bool:  # type: ignore[override]
        return any(s.changes_channels for s in self.steps)

    @property
    def uses_other_marked(self) -> bool:  # type: ignore[override]
        return any(s.uses_other_marked for s in self.steps)

    @property
    def requires(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(dict.fromkeys(m for s in self.steps for m in s.requires))

    def _run(
        self, audio: Audio, rng: np.random.Generator, ctx: AttackContext, spans: tuple[MarkedSpan, ...]
    ) -> AttackOutput:
        details: dict = {}
        for step in self.steps:
            res = step.run(audio, rng, replace(ctx, marked_spans=spans))
            audio, spans = res.audio, res.marked_spans
            if res.details:
                details[step.name] = res.details
        return AttackOutput(audio, spans, details)
