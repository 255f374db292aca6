"""Stage 1: decode any video PyAV reads into timestamped frames at the analysis size."""

from v2a_core.video.decode import analysis_size, iter_frames, prefetch, probe

__all__ = ["analysis_size", "iter_frames", "prefetch", "probe"]
