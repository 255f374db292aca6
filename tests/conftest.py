"""Shared test fixtures: locations of the read-only shared data and a seeded test-signal factory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from provenance.core.audio import Audio

from tests._shared import shared_subdir as _shared_subdir


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """``../shared/corpus`` (audio clips and MANIFEST.tsv); skips the test when absent."""
    return _shared_subdir("corpus")


@pytest.fixture(scope="session")
def video_dir() -> Path:
    """``../shared/video`` (dev videos and EVENTS.json); skips the test when absent."""
    return _shared_subdir("video")


def make_test_audio(sample_rate: int = 44_100, channels: int = 2, duration_s: float = 1.0, *,
                    seed: int = 0, level: float = 0.4, subtype: str | None = None) -> Audio:
    """A deterministic test signal: on each channel a steady tone of its own frequency (channel c at
    ``tone_hz(c, sample_rate)``) plus band-limited noise bursts with sharp onsets, peak about ``level``.

    The tones identify channels after a codec; the bursts give cross-correlation a sharp peak.
    """
    rng = np.random.default_rng(seed)
    frames = int(round(duration_s * sample_rate))
    t = np.arange(frames) / sample_rate
    out = np.empty((channels, frames), dtype=np.float64)
    burst_period = max(1, int(0.2 * sample_rate))
    envelope = np.exp(-(np.arange(frames) % burst_period) / (0.03 * sample_rate))
    for c in range(channels):
        noise = rng.standard_normal(frames)
        kernel = np.ones(4) / 4  # gentle lowpass so every codec keeps the bursts
        noise = np.convolve(noise, kernel, mode="same")
        tone = np.sin(2 * np.pi * tone_hz(c, sample_rate) * t + rng.uniform(0, 2 * np.pi))
        out[c] = 0.5 * tone + 0.5 * noise * envelope
    out *= level / np.abs(out).max()
    return Audio(out.astype(np.float32), sample_rate, subtype=subtype)


def tone_hz(channel: int, sample_rate: int) -> float:
    """The tone frequency (Hz) that :func:`make_test_audio` puts on ``channel``."""
    top = min(sample_rate * 0.35, 3_000.0)
    return 300.0 + channel * (top - 300.0) / 8


@pytest.fixture(scope="session")
def make_audio():
    """Factory fixture: ``make_audio(sample_rate, channels, duration_s, seed=..., ...)`` -> Audio."""
    return make_test_audio
