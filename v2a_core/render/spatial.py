"""Placement in space: panning, distance (level, air absorption, reverb send), and the room."""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from v2a_core.render.dsp import SR, lowpass, pan_gains, rng_for, samples
from v2a_core.types import ReverbSpec

_BLOCK = 1 << 19


def place(mono: np.ndarray, pan: float, distance: float) -> np.ndarray:
    """(2, n): constant-power pan; farther sources lose highs (air absorption)."""
    if distance > 0.05:
        mono = lowpass(mono, 16000.0 * (1.0 - 0.75 * distance), order=1)
    gl, gr = pan_gains(pan)
    return np.stack([gl * mono, gr * mono]).astype(np.float32)


def impulse_response(spec: ReverbSpec, seed: int = 0) -> np.ndarray:
    """(2, m) stereo IR: a few early reflections, then decorrelated noise decaying to -60 dB
    at ``decay_s`` and darkened above ``damping_hz``; unit energy per channel."""
    m = samples(spec.predelay_s + spec.decay_s * 1.1) + 1
    rng = rng_for(seed, "ir", spec.label)
    t = np.arange(m) / SR
    ir = np.zeros((2, m), np.float32)
    pre = samples(spec.predelay_s)
    for ch in range(2):
        tail = rng.standard_normal(m).astype(np.float32) * np.exp(-6.9078 * np.maximum(t - spec.predelay_s, 0) / spec.decay_s)
        tail[:pre] = 0
        tail = lowpass(tail, spec.damping_hz, order=1)
        for _ in range(6):  # early reflections
            k = pre + int(rng.uniform(0.003, 0.04) * SR)
            if k < m:
                tail[k] += rng.uniform(0.3, 0.8) * rng.choice((-1.0, 1.0))
        ir[ch] = tail / (np.sqrt(np.sum(tail.astype(np.float64) ** 2)) + 1e-12)
    return ir


def reverb(send: np.ndarray, spec: ReverbSpec, seed: int = 0) -> np.ndarray:
    """Convolve a (2, n) send with the room, block by block (memory does not grow with length)."""
    out = np.zeros(send.shape, np.float32)
    add_reverb([out], send, spec, seed)
    return out


def add_reverb(targets: list[np.ndarray], send: np.ndarray, spec: ReverbSpec, seed: int = 0) -> None:
    """``buf += reverb(send, spec, seed)`` for each ``buf`` of ``targets`` (a mix and a stem)
    without a full-length result: each block of the send is convolved with the room and added as
    it is done, its tail carried into the next blocks (the same numbers as adding
    :func:`reverb`'s result)."""
    ir = impulse_response(spec, seed)
    n = send.shape[1]
    for ch in range(2):
        pending = np.zeros(0, np.float32)  # earlier blocks' tails, summed in block order
        for start in range(0, n, _BLOCK):
            m = min(_BLOCK, n - start)
            block = send[ch, start : start + m]
            if np.any(block):
                y = fftconvolve(block, ir[ch])[: n - start].astype(np.float32)
                if len(pending) > len(y):
                    y = np.concatenate([y, np.zeros(len(pending) - len(y), np.float32)])
                y[: len(pending)] = pending + y[: len(pending)]
            else:
                y = pending
            for buf in targets:
                buf[ch, start : start + min(m, len(y))] += y[:m]
            pending = y[m:]
