"""One-shot sounds placed on events: modal impacts, footsteps, splashes, whooshes, samples.

Every function returns float32 mono at 48 kHz whose attack starts at index 0 (so a cue at
time t sounds at t), peak-normalised to 1; ``rng`` varies each instance (pitch, decay,
mode balance) so repeated events never sound identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from v2a_core.assets import load_sample
from v2a_core.render.dsp import (
    SR,
    bandpass,
    decay,
    fade,
    grains,
    highpass,
    lowpass,
    poisson_times,
    resample_pitch,
    samples,
    sine,
    white,
)


@dataclass(frozen=True)
class Material:
    """Modal model: mode frequency ratios, -60 dB decay times (s), base pitch and noise."""

    ratios: tuple[float, ...]
    decays_s: tuple[float, ...]
    base_hz: float
    """Lowest mode for a medium-sized object (size 0.5)."""
    noise: float
    """Share of the broadband contact noise."""
    noise_decay_s: float
    noise_band: tuple[float, float]


MATERIALS: dict[str, Material] = {
    "wood": Material((1.0, 2.32, 4.25, 6.63), (0.09, 0.05, 0.03, 0.02), 520.0, 0.35, 0.012, (400, 6000)),
    "metal": Material((1.0, 2.76, 5.40, 8.93, 13.34), (1.2, 0.9, 0.6, 0.4, 0.25), 820.0, 0.15, 0.006, (1500, 12000)),
    "glass": Material((1.0, 2.61, 4.87, 7.57), (0.6, 0.4, 0.25, 0.15), 1900.0, 0.12, 0.004, (3000, 14000)),
    "stone": Material((1.0, 2.2, 3.7), (0.05, 0.03, 0.02), 380.0, 0.6, 0.02, (300, 5000)),
    "plastic": Material((1.0, 2.5, 4.2), (0.05, 0.03, 0.02), 1100.0, 0.3, 0.006, (1000, 9000)),
    "rubber": Material((1.0, 1.5, 2.9), (0.07, 0.04, 0.02), 160.0, 0.25, 0.006, (800, 5000)),
    "soft": Material((1.0, 1.7), (0.12, 0.06), 85.0, 0.55, 0.03, (80, 1200)),
    "drum": Material((1.0, 1.59, 2.14, 2.30, 2.65), (0.35, 0.25, 0.2, 0.18, 0.15), 120.0, 0.3, 0.02, (200, 6000)),
}


def modal(material: str, size: float, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Struck object: damped modes + contact noise. ``size`` 0..1 lowers the pitch; ``strength`` 0..1
    brightens (more high modes) and lengthens."""
    m = MATERIALS[material]
    size = float(np.clip(size, 0.05, 1.0))
    f0 = m.base_hz * (0.5 / size) ** 0.5 * rng.uniform(0.94, 1.06)
    longest = max(m.decays_s) * rng.uniform(0.85, 1.15) * (0.7 + 0.6 * strength)
    n = samples(min(3.0, longest * 1.1 + 0.02))
    out = np.zeros(n, np.float32)
    for k, (ratio, dec) in enumerate(zip(m.ratios, m.decays_s)):
        f = f0 * ratio * rng.uniform(0.98, 1.02)
        if f > SR * 0.45:
            continue
        amp = (1.0 / (k + 1)) * (strength ** (0.3 * k)) * rng.uniform(0.7, 1.3)
        out += amp * sine(f, n) * decay(n, dec * rng.uniform(0.85, 1.15) * (0.7 + 0.6 * strength))
    if material == "rubber":  # a ball's pitch drops as the contact ends: the 'thup'
        drop = f0 * (1.0 + 0.8 * np.exp(-np.arange(n) / (0.01 * SR)))
        out += 0.8 * sine(drop, n) * decay(n, 0.06)
    contact = bandpass(white(n, rng), *m.noise_band) * decay(n, m.noise_decay_s * (0.8 + 0.4 * strength))
    out = (1 - m.noise) * out / (np.max(np.abs(out)) + 1e-9) + m.noise * contact / (np.max(np.abs(contact)) + 1e-9)
    out = fade(out, 0.0005, 0.01)
    return out / (np.max(np.abs(out)) + 1e-9)


def footstep(surface: str, rng: np.random.Generator) -> np.ndarray:
    """Heel then toe on a surface (concrete, wood, gravel, grass, snow, sand)."""
    n = samples(0.35)
    out = np.zeros(n, np.float32)
    toe_at = samples(rng.uniform(0.05, 0.09))
    for start, level in ((0, 1.0), (toe_at, rng.uniform(0.35, 0.6))):
        m = n - start
        if surface == "concrete":
            part = highpass(white(m, rng), 700) * decay(m, 0.03)
            part += 0.6 * lowpass(white(m, rng), 180) * decay(m, 0.05)
        elif surface == "wood":
            knock = modal("wood", 0.8, 0.6, rng)
            part = np.zeros(m, np.float32)
            part[: min(m, len(knock))] = 0.7 * knock[:m]
            part += 0.4 * bandpass(white(m, rng), 200, 3000) * decay(m, 0.03)
        elif surface in ("gravel", "snow"):
            band = (1500, 7000) if surface == "gravel" else (900, 4000)
            times = poisson_times(0.09, 450 if surface == "gravel" else 300, rng)
            grain = lambda r, band=band: bandpass(white(samples(0.004), r), *band) * decay(samples(0.004), 0.004)  # noqa: E731
            part = grains(m, times, grain, rng) * np.linspace(1, 0.3, m, dtype=np.float32)
            part += 0.3 * lowpass(white(m, rng), 300) * decay(m, 0.06)
        elif surface == "grass":
            part = bandpass(white(m, rng), 500, 4000) * decay(m, 0.12) * np.minimum(1, np.arange(m) / (0.01 * SR))
        else:  # sand
            part = lowpass(white(m, rng), 1200) * decay(m, 0.1) * np.minimum(1, np.arange(m) / (0.005 * SR))
        part = part.astype(np.float32)
        out[start:] += level * part / (np.max(np.abs(part)) + 1e-9)
    out = fade(out, 0.0005, 0.02)
    return out / (np.max(np.abs(out)) + 1e-9)


#: one-shot category -> categories of the parts it adds besides its own sound.
PARTS: dict[str, tuple[str, ...]] = {"water.splash": ("water.bubbles",)}


def splash(rng: np.random.Generator, *, bubbles: bool = True) -> np.ndarray:
    """A splash: a decaying noise burst and, unless ``bubbles`` is False (``water.bubbles``
    excluded), the bubble chirps that follow it."""
    n = samples(0.8)
    body = bandpass(white(n, rng), 300, 6000) * decay(n, 0.35)
    out = body / (np.max(np.abs(body)) + 1e-9)
    if bubbles:
        out = out + 0.4 * grains(n, 0.05 + poisson_times(0.5, 30, rng), lambda r: bubble(r, r.uniform(400, 1600)), rng)
    out = fade(out, 0.001, 0.05)
    return out / (np.max(np.abs(out)) + 1e-9)


def bubble(rng: np.random.Generator, f0: float) -> np.ndarray:
    """A rising-pitch bubble chirp (Minnaert resonance of a shrinking bubble)."""
    n = samples(rng.uniform(0.02, 0.06))
    t = np.arange(n) / SR
    f = f0 * (1 + 3.0 * t / max(t[-1], 1e-3) * 0.3)
    return (sine(f, n) * decay(n, n / SR) * np.minimum(1, np.arange(n) / 24)).astype(np.float32)


def thunder(rng: np.random.Generator) -> np.ndarray:
    n = samples(4.0)
    crack = highpass(white(n, rng), 400) * decay(n, 0.25)
    rumble = lowpass(white(n, rng), 120, order=4) * decay(n, 3.5) * (0.6 + 0.4 * np.sin(np.arange(n) / SR * 3.0))
    out = 0.5 * crack / (np.max(np.abs(crack)) + 1e-9) + rumble / (np.max(np.abs(rumble)) + 1e-9)
    out = fade(out, 0.001, 0.5)
    return out / (np.max(np.abs(out)) + 1e-9)


def whoosh(duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Noise sweep rising to a peak at 2/3 of its length and falling away."""
    n = samples(duration_s)
    t = np.linspace(0, 1, n, dtype=np.float32)
    env = np.where(t < 0.66, (t / 0.66) ** 2, np.exp(-(t - 0.66) * 12)).astype(np.float32)
    lo = bandpass(white(n, rng), 200, 1500)
    hi = bandpass(white(n, rng), 1500, 8000)
    out = (lo * (1 - t) + hi * t) * env
    out = fade(out, 0.01, 0.03)
    return out / (np.max(np.abs(out)) + 1e-9)


def riser(duration_s: float, rng: np.random.Generator) -> np.ndarray:
    n = samples(duration_s)
    t = np.linspace(0, 1, n, dtype=np.float32)
    tone = sine(200 * 2 ** (2 * t), n) * 0.4
    noise = highpass(white(n, rng), 1000) * t
    out = fade((tone + noise) * t**2, 0.05, 0.02)
    return out / (np.max(np.abs(out)) + 1e-9)


def bank_oneshot(name: str, rng: np.random.Generator, *, semitones: float = 1.0) -> np.ndarray:
    """A bank sample, pitched by up to +-``semitones`` at random (attack stays at index 0)."""
    s = load_sample(name)
    ratio = 2 ** (rng.uniform(-semitones, semitones) / 12)
    x = resample_pitch(s.samples, ratio)
    return x / (np.max(np.abs(x)) + 1e-9)


def cinematic_hit(name: str, rng: np.random.Generator) -> np.ndarray:
    """Bank impact layered with a sub-bass boom."""
    x = bank_oneshot(name, rng, semitones=1.5)
    n = max(len(x), samples(1.2))
    boom = sine(45 * (1 + np.exp(-np.arange(n) / (0.05 * SR))), n) * decay(n, 1.0)
    out = np.pad(x, (0, n - len(x))) + 0.6 * boom
    return fade(out / (np.max(np.abs(out)) + 1e-9), 0.0005, 0.05)
