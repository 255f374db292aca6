"""Stage 4: render a cue sheet (bank samples + synthesis) into a mastered 48 kHz stereo soundtrack."""

from v2a_core.render.master import integrated_loudness, true_peak_dbtp
from v2a_core.render.mixer import render

__all__ = ["integrated_loudness", "render", "true_peak_dbtp"]
