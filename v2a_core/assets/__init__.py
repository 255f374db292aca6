"""Bundled, freely licensed recordings (see LICENSES.md) and their index (bank.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BankSample:
    name: str
    samples: np.ndarray
    """float32 mono at :attr:`rate`, attack at index 0."""
    rate: int
    pitch_hz: float
    """Estimated fundamental (rough; percussive samples have none worth trusting)."""


@lru_cache(maxsize=1)
def _index() -> dict:
    return json.loads((HERE / "bank.json").read_text())


def bank_categories() -> dict[str, tuple[str, ...]]:
    """Category -> names of the bank samples that can render it."""
    return {k: tuple(v) for k, v in _index()["categories"].items()}


@lru_cache(maxsize=None)
def load_sample(name: str) -> BankSample:
    """One bank sample, decoded once and cached."""
    meta = _index()["samples"][name]
    data, rate = sf.read(HERE / meta["file"], dtype="float32")
    return BankSample(name=name, samples=np.ascontiguousarray(data), rate=int(rate), pitch_hz=float(meta["pitch_hz"]))
