"""The built-in analysis-synthesis generator: decode -> analyze -> plan -> render."""

from __future__ import annotations

from v2a_core.analysis import AnalysisSettings, analyze
from v2a_core.generators.base import GenerationRequest, StageProgress
from v2a_core.plan import plan
from v2a_core.render import render
from v2a_core.render.buffers import Buffers
from v2a_core.types import Soundtrack

VERSION = "1.0"


class BuiltinGenerator:
    """Offline, CPU-only, no model weights: visual events + a sound taxonomy + synthesis."""

    name = "builtin"
    version = VERSION

    def generate(self, request: GenerationRequest, *, progress: StageProgress | None = None) -> Soundtrack:
        def analysed(done_s: float, total_s: float) -> None:
            if progress and total_s > 0:
                progress("analyze", min(1.0, done_s / total_s))

        analysis = analyze(request.video, settings=AnalysisSettings(max_duration_s=request.duration_s), progress=analysed)
        if progress:
            progress("analyze", 1.0)
        sheet = plan(
            analysis,
            request.prompt,
            request.negative_prompt,
            seed=request.seed,
            loudness_lufs=request.loudness_lufs,
        )
        if progress:
            progress("plan", 1.0)
        track = render(sheet, progress=(lambda f, _what: progress("render", f)) if progress else None,
                       stems=request.stems, buffers=Buffers(request.work_dir))
        if progress:
            progress("render", 1.0)
        track.generator = self.name
        return track
