"""Objective quality of marked audio against the original: SNR, PESQ-WB (speech), ViSQOL (general audio).

- SNR, dB: original power over the power of (marked - original), all channels together.
- PESQ-WB (ITU-T P.862.2, the ``pesq`` package): MOS-LQO 1.0-4.64, mono mix resampled to 16 kHz;
  speech only (it is defined for speech).
- ViSQOL v3 audio mode (``visqol-python``, a pure-Python port of Google's ViSQOL 3.3.3 with its
  bundled SVR model; runs offline): MOS-LQO 1-~4.75, mono mix resampled to 48 kHz; for music and
  other non-speech audio. Install ``numba`` for its JIT kernels: ~2 s per 10 s clip instead of ~18 s.

Each measure returns None (never a made-up number) when it cannot run: package missing, signal
silent, no utterances found.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from benchmarks.attacks.base import resample
from provenance.core.audio import Audio

MEASURES = ("snr", "pesq", "visqol")


@dataclass
class QualityResult:
    """Quality of a marked signal against its original. None = not measured (see ``notes``)."""

    snr_db: float | None = None
    pesq_wb: float | None = None
    visqol_moslqo: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clip_kind(name: str) -> str:
    """``speech``, ``music`` or ``other``, from the file name (the corpus names clips by kind)."""
    low = name.lower()
    if "speech" in low:
        return "speech"
    if "music" in low:
        return "music"
    return "other"


def _aligned(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(a.shape[-1], b.shape[-1])
    return a[..., :n].astype(np.float64), b[..., :n].astype(np.float64)


def snr_db(reference: np.ndarray, test: np.ndarray) -> float | None:
    """SNR of ``test`` against ``reference`` (same shape, or trimmed to the shorter), dB.

    None when the reference is silent or the two are identical (SNR undefined or infinite).
    """
    r, t = _aligned(reference, test)
    p_sig = float(np.sum(r**2))
    p_err = float(np.sum((t - r) ** 2))
    if p_sig <= 0 or p_err <= 0:
        return None
    return 10.0 * math.log10(p_sig / p_err)


def pesq_wb(reference: Audio, test: Audio) -> float | None:
    """PESQ-WB MOS-LQO of ``test`` against ``reference`` (mono mixes, resampled to 16 kHz)."""
    try:
        from pesq import pesq
    except ImportError:
        return None
    r = resample(reference.mono(), reference.sample_rate, 16000)
    t = resample(test.mono(), test.sample_rate, 16000)
    r, t = _aligned(r, t)
    try:
        return float(pesq(16000, r, t, "wb"))
    except Exception:  # pesq raises its own errors (no utterances, buffer too short)
        return None


@lru_cache(maxsize=1)
def _visqol_api():  # noqa: ANN202 - optional dependency
    from visqol import VisqolApi

    api = VisqolApi()
    api.create(mode="audio")
    return api


def visqol_available() -> bool:
    try:
        import visqol  # noqa: F401
    except ImportError:
        return False
    return True


def visqol_audio(reference: Audio, test: Audio) -> float | None:
    """ViSQOL v3 audio-mode MOS-LQO of ``test`` against ``reference`` (mono mixes at 48 kHz)."""
    if not visqol_available():
        return None
    r = resample(reference.mono(), reference.sample_rate, 48000)
    t = resample(test.mono(), test.sample_rate, 48000)
    r, t = _aligned(r, t)
    if not np.any(r):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(_visqol_api().measure_from_arrays(r, t, 48000).moslqo)
    except Exception:  # the port raises plain ValueError/IndexError on degenerate input
        return None


def measure_quality(
    original: Audio, marked: Audio, *, kind: str, measures: tuple[str, ...] = MEASURES
) -> QualityResult:
    """SNR always (if asked); PESQ-WB on speech; ViSQOL on everything else."""
    q = QualityResult()
    if "snr" in measures:
        q.snr_db = snr_db(original.samples, marked.samples)
        if q.snr_db is None:
            q.notes.append("snr undefined (silent original or identical output)")
    if "pesq" in measures and kind == "speech":
        q.pesq_wb = pesq_wb(original, marked)
        if q.pesq_wb is None:
            q.notes.append("pesq unavailable or failed")
    if "visqol" in measures and kind != "speech":
        q.visqol_moslqo = visqol_audio(original, marked)
        if q.visqol_moslqo is None:
            q.notes.append("visqol unavailable or failed" if visqol_available() else "visqol-python not installed")
    return q
