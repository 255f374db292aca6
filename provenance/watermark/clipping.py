"""Where a signal was clipped, on the detector's 16 kHz timeline.

Hard clipping (a loudness push past full scale, a limiter without look-ahead) flattens the
loudest stretches into runs of identical samples. Tiles that contain such runs hold broadband
distortion instead of the mark: read as usual, they are confident *errors* for the decoder.
Knowing where they are lets the detector treat them as *erasures* (weight zero), which a
convolutional code absorbs far better. A run is what marks clipping: a natural waveform
repeats a loud sample value three times in a row only in rare coincidences (a steady tone below
about 60 Hz stored as 16-bit integers is one: it then also gets the erased reading, which costs
one more scan and doubles its p-value, no more).
"""

from __future__ import annotations

import numpy as np

CLIP_MIN_LEVEL = 0.1
"""Smallest magnitude (full scale = 1) of a clipped run; quieter repeats are ignored."""
CLIP_MIN_RUN = 3
"""Identical consecutive samples that make a run."""
CLIP_MIN_FRACTION = 5e-3
"""Share of a file's samples that must lie in runs before the detector considers clipping.
Unclipped corpus clips stay below 0.13 % (quiet rumble stored as integers repeats values now
and then); pushed 4x into clipping they reach 1.2-56 %."""


def clipped_samples(x: np.ndarray) -> np.ndarray:
    """``(frames,)`` bool: the samples of ``x`` ``(channels, frames)`` that lie, in any channel,
    in a run of :data:`CLIP_MIN_RUN` or more identical values of magnitude at least
    :data:`CLIP_MIN_LEVEL`."""
    n = x.shape[-1]
    flags = np.zeros(n, dtype=bool)
    if n < CLIP_MIN_RUN or max(float(x.max(initial=0.0)), -float(x.min(initial=0.0))) < CLIP_MIN_LEVEL:
        return flags
    k = CLIP_MIN_RUN - 2
    for ch in np.atleast_2d(x):
        # equal neighbours are rare outside clipping, so work on their indices only
        pairs = np.flatnonzero(ch[1:] == ch[:-1])  # x[i + 1] == x[i]
        pairs = pairs[np.abs(ch[pairs]) >= CLIP_MIN_LEVEL]
        starts = pairs[:-k][pairs[k:] - pairs[:-k] == k] if k else pairs  # x[i] == ... == x[i + run - 1]
        for offset in range(CLIP_MIN_RUN):
            flags[starts + offset] = True
    return flags


def clipped_fraction(flags: np.ndarray, rate_hz: int, analysis_rate_hz: int, n_analysis: int) -> np.ndarray:
    """``(n_analysis,)`` float32: the share of each analysis-rate sample's span that was clipped,
    from per-sample ``flags`` at ``rate_hz`` (sample ``i`` lies in analysis sample
    ``i * analysis_rate_hz // rate_hz``)."""
    idx = np.flatnonzero(flags) * analysis_rate_hz // rate_hz
    idx = idx[idx < n_analysis]
    counts = np.bincount(idx, minlength=n_analysis)[:n_analysis]
    return (counts * (analysis_rate_hz / rate_hz)).astype(np.float32)
