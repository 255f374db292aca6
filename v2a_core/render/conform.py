"""Bring any generator's audio to the soundtrack format: 48 kHz stereo, video length, mastered."""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import resample_poly

from provenance.core.audio import Audio
from v2a_core.render.dsp import SR, fade, samples
from v2a_core.render.master import master
from v2a_core.types import Soundtrack


def conform(audio: Audio, duration_s: float, *, target_lufs: float = -16.0, generator: str = "external", seed: int = 0) -> Soundtrack:
    """Resample to 48 kHz, make stereo, trim or pad to ``duration_s`` (with short fades), master."""
    x = audio.samples.astype(np.float32)
    if audio.sample_rate != SR:
        g = gcd(SR, audio.sample_rate)
        x = resample_poly(x, SR // g, audio.sample_rate // g, axis=1).astype(np.float32)
    if x.shape[0] == 1:
        x = np.repeat(x, 2, axis=0)
    elif x.shape[0] > 2:
        x = x[:2]  # front left/right of a surround file
    n = samples(duration_s)
    if x.shape[1] >= n:
        x = fade(x[:, :n], 0.0, 0.02)
    else:
        x = np.pad(fade(x, 0.0, 0.02), ((0, 0), (0, n - x.shape[1])))
    result = master(x, target_lufs=target_lufs)
    return Soundtrack(
        mix=Audio(x * result.gain, SR),
        stems={},
        loudness_lufs=result.loudness_lufs,
        true_peak_dbtp=result.true_peak_dbtp,
        cue_sheet=None,
        generator=generator,
        seed=seed,
    )
