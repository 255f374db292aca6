"""Rebuild the bundled sample bank from Debian's ``sonic-pi-samples`` (CC0).

Run once by a developer (``apt-get install sonic-pi-samples``; ``python -m
v2a_core.assets.make_bank``); the results are committed under ``v2a_core/assets/samples``.
Each sample is mixed to mono, resampled to 48 kHz, its leading silence removed so the
attack is at sample 0 (cues land exactly on visual events), its tail trimmed below
-60 dB, peak-normalised to -1 dBFS and stored as 16-bit FLAC.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SOURCE = Path("/usr/share/sonic-pi/samples")
HERE = Path(__file__).resolve().parent
RATE = 48_000

#: sample -> (max seconds kept, categories it serves)
SAMPLES: dict[str, tuple[float, tuple[str, ...]]] = {
    "perc_impact1": (1.0, ("impact.hit",)),
    "perc_impact2": (0.86, ("impact.hit",)),
    "drum_tom_lo_soft": (0.8, ("impact.drum",)),
    "drum_tom_mid_soft": (0.65, ("impact.drum",)),
    "drum_snare_soft": (0.3, ("impact.drum", "instrument.percussion")),
    "drum_bass_soft": (0.5, ("impact.drum", "instrument.percussion")),
    "drum_cymbal_closed": (0.2, ("instrument.percussion",)),
    "elec_ping": (0.2, ("ui.blip",)),
    "elec_plip": (0.2, ("ui.blip",)),
    "misc_crow": (0.48, ("animal.crow",)),
    "perc_swoosh": (0.62, ("whoosh",)),
    "ambi_choir": (1.57, ("instrument.choir",)),
}


def prepare(name: str, max_s: float) -> np.ndarray:
    x, rate = sf.read(SOURCE / f"{name}.flac", dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    if rate != RATE:
        from math import gcd

        g = gcd(RATE, rate)
        x = resample_poly(x, RATE // g, rate // g)
    peak = np.max(np.abs(x)) or 1.0
    start = int(np.argmax(np.abs(x) > 0.02 * peak))
    x = x[start : start + int(max_s * RATE)]
    env = np.maximum.accumulate(np.abs(x)[::-1])[::-1]
    end = int(np.nonzero(env > 10 ** (-60 / 20) * peak)[0][-1]) + 1
    x = x[:end]
    fade_in = min(len(x), 24)
    x[:fade_in] *= np.sin(np.linspace(0, np.pi / 2, fade_in)) ** 2
    fade_out = min(len(x), int(0.01 * RATE))
    x[-fade_out:] *= np.cos(np.linspace(0, np.pi / 2, fade_out)) ** 2
    return (x / np.max(np.abs(x)) * 10 ** (-1 / 20)).astype(np.float32)


def pitch_hz(x: np.ndarray) -> float:
    """Fundamental of a pitched sample (harmonic product spectrum over its first half second)."""
    seg = x[: int(0.5 * RATE)] * np.hanning(min(len(x), int(0.5 * RATE)))
    n = 1 << 17
    mag = np.abs(np.fft.rfft(seg, n))
    hps = mag.copy()
    for k in (2, 3):
        dec = mag[::k]
        hps[: len(dec)] *= dec
    lo, hi = int(50 * n / RATE), int(1000 * n / RATE)
    return float((lo + np.argmax(hps[lo:hi])) * RATE / n)


def main() -> None:
    out = HERE / "samples"
    out.mkdir(exist_ok=True)
    index = {"rate": RATE, "samples": {}, "categories": {}}
    for name, (max_s, cats) in SAMPLES.items():
        x = prepare(name, max_s)
        sf.write(out / f"{name}.flac", x, RATE, subtype="PCM_16")
        index["samples"][name] = {"file": f"samples/{name}.flac", "seconds": round(len(x) / RATE, 3),
                                  "pitch_hz": round(pitch_hz(x), 2),
                                  "source": f"sonic-pi-samples: {name}.flac", "license": "CC0-1.0"}
        for c in cats:
            index["categories"].setdefault(c, []).append(name)
    (HERE / "bank.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
