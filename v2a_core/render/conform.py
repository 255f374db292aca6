"""Bring any generator's audio to the soundtrack format: 48 kHz stereo, video length, mastered."""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import resample_poly

from provenance.core.audio import Audio
from v2a_core.render.buffers import IN_MEMORY, Buffers
from v2a_core.render.dsp import SR, fade, samples
from v2a_core.render.master import master
from v2a_core.types import CueSheet, Soundtrack


def fit(audio: Audio, duration_s: float) -> np.ndarray:
    """``audio`` as float32 (2, n) at 48 kHz and exactly ``duration_s`` seconds long: resampled,
    mono doubled (more than two channels: the first two, front left/right of a surround file),
    trimmed or padded with silence, with a 20 ms fade where it was cut or ends early."""
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
        return fade(x[:, :n], 0.0, 0.02)
    return np.pad(fade(x, 0.0, 0.02), ((0, 0), (0, n - x.shape[1])))


def conform(
    audio: Audio,
    duration_s: float,
    *,
    target_lufs: float = -16.0,
    generator: str = "external",
    seed: int = 0,
    stems: dict[str, Audio] | None = None,
    cue_sheet: CueSheet | None = None,
    buffers: Buffers = IN_MEMORY,
) -> Soundtrack:
    """Fit ``audio`` to the video (:func:`fit`) and master it to ``target_lufs`` LUFS with true
    peak <= -1 dBTP (the limiter's curves taken from ``buffers``). ``stems``, if any, are fitted
    alike and get the mix's gain curve, so they keep their share of the mix."""
    x = fit(audio, duration_s)
    result = master(x, target_lufs=target_lufs, buffers=buffers)
    x *= result.gain  # in place: fit() made x, and a long soundtrack has no room for a second copy
    fitted = {layer: fit(a, duration_s) for layer, a in (stems or {}).items()}
    for stem in fitted.values():
        stem *= result.gain
    return Soundtrack(
        mix=Audio(x, SR),
        stems={layer: Audio(stem, SR) for layer, stem in fitted.items()},
        loudness_lufs=result.loudness_lufs,
        true_peak_dbtp=result.true_peak_dbtp,
        cue_sheet=cue_sheet,
        generator=generator,
        seed=seed,
    )
