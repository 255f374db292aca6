"""Stage 2: visual analysis (events with sub-frame timing, motion, rhythm, scene cues)."""

from v2a_core.analysis.analyze import AnalysisSettings, analyze

__all__ = ["AnalysisSettings", "analyze"]
