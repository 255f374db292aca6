"""Speed of the watermark (pytest-benchmark): embed and detect on 60 s of 48 kHz stereo, and stages.

Run with ``pytest benchmarks/test_bench_watermark.py`` (or ``foleyseal bench speed``). The
targets of issue 2 (one core: embed >= 300x realtime, detect >= 50x realtime) are printed as
realtime factors in ``extra_info``; they are measurements, not unit-test assertions.
"""

from __future__ import annotations

import numpy as np
import pytest

from provenance.core.audio import Audio
from provenance.watermark import WatermarkKey, detect, embed
from provenance.watermark.features import signal_features
from provenance.watermark.presence import scan
from provenance.watermark.layout import DEFAULT_PARAMS, Layout
from provenance.watermark.model import resample, stft

DURATION_S = 60.0
RATE = 48_000
KEY = WatermarkKey(bytes(range(32)))
ROUNDS = 9
"""Timed rounds of the 60 s embed and detect (after one untimed warm-up): their median is the
realtime factor, and a single round disturbed by another process must not decide it."""


@pytest.fixture(scope="module")
def audio() -> Audio:
    """60 s of band-limited noise with a slow envelope, stereo, 48 kHz (deterministic)."""
    rng = np.random.default_rng(0)
    n = int(DURATION_S * RATE)
    env = 0.5 + 0.4 * np.sin(2 * np.pi * 0.7 * np.arange(n) / RATE)
    x = rng.normal(0, 0.1, size=(2, n)).astype(np.float32) * env.astype(np.float32)
    return Audio(x, RATE)


@pytest.fixture(scope="module")
def marked(audio) -> Audio:
    return embed(audio, KEY, "0123456789abcdef")


def _realtime(benchmark) -> None:
    if benchmark.disabled:  # pytest --benchmark-disable runs each function once, untimed
        return
    benchmark.extra_info["realtime_factor"] = DURATION_S / benchmark.stats["median"]


def test_embed_60s_stereo_48k(benchmark, audio):
    benchmark.pedantic(embed, args=(audio, KEY, "0123456789abcdef"), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    _realtime(benchmark)


def test_detect_60s_stereo_48k(benchmark, marked):
    det = benchmark.pedantic(detect, args=(marked, KEY), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert det.payload == "0123456789abcdef"
    _realtime(benchmark)


def test_stage_resample_to_16k(benchmark, audio):
    benchmark(resample, audio.mono(), RATE, DEFAULT_PARAMS.analysis_rate_hz)


def test_stage_stft_16k(benchmark, audio):
    x16 = resample(audio.mono(), RATE, DEFAULT_PARAMS.analysis_rate_hz)
    benchmark(stft, x16, DEFAULT_PARAMS)


def test_stage_alignment_scan(benchmark, marked):
    x16 = resample(marked.mono(), RATE, DEFAULT_PARAMS.analysis_rate_hz)
    feat = signal_features(x16, DEFAULT_PARAMS)
    layout = Layout.from_key(KEY)
    benchmark.pedantic(scan, args=(feat, layout, np.ones(feat.v.shape[1])), rounds=3, iterations=1)


def test_stage_long_list_decode(benchmark):
    """The 65,536-path list of one reading when matching against issued payloads
    (``provenance.watermark.known``): a damaged codeword, 35 % of its coded bits erased."""
    from provenance.watermark import ecc
    from provenance.watermark.known import LIST_SIZE

    rng = np.random.default_rng(5)
    msg = rng.integers(0, 2, 64).astype(np.uint8)
    soft = (1.0 - 2.0 * ecc.encode_payload(msg)) + rng.normal(0.0, 1.1, ecc.coded_length(64))
    soft[rng.random(soft.size) < 0.35] = 0.0
    found, examined = benchmark.pedantic(ecc.crc_candidates, args=(soft, 64, LIST_SIZE), rounds=3, iterations=1)
    assert examined == LIST_SIZE
