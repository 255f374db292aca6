"""Speed of `mark` (issue 4, acceptance 5): 60 s of 48 kHz stereo WAV, watermark + sign + store.

Target: under 1 s per call on the 2-core reference machine. Run with::

    python -m pytest benchmarks/test_bench_mark.py --benchmark-only

Each round marks the same input into a fresh output name (a new payload, a new store row),
the whole public path: payload reservation, watermark (streamed), C2PA signing, SHA-256,
store record, publish. The first call (imports, key loading, store creation) is excluded
by a warm-up round.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter

from provenance.core.audio import Audio
from provenance.core.config import load_settings
from provenance.core.io import write_audio
from provenance.keys.pki import install_dev_chain
from provenance.mark import mark
from provenance.store import open_store
from provenance.watermark import new_key, save_key

SR = 48_000
SECONDS = 60.0
TARGET_S = 1.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-mark")
    s = load_settings(root / "home")
    install_dev_chain(s)
    save_key(new_key(), s.watermark_key_path)
    rng = np.random.default_rng(0)
    n = int(SR * SECONDS)
    t = np.arange(n) / SR
    x = 0.25 * lfilter([1.0], [1.0, -0.98], rng.standard_normal((2, n)), axis=1)
    x = x / np.abs(x).max() * 0.3 + 0.05 * np.sin(2 * np.pi * 220 * t)
    src = root / "in.wav"
    write_audio(src, Audio(x.astype(np.float32), SR, subtype="PCM_16"))
    return s, src, root / "out"


def test_mark_60s_stereo_wav(benchmark, setup):
    settings, src, out_dir = setup
    out_dir.mkdir(exist_ok=True)
    counter = itertools.count()

    def run():
        return mark(src, out_dir / f"marked{next(counter)}.wav", settings=settings, generated=True)

    result = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    assert result.manifest_embedded and Path(result.output).exists()
    with open_store(settings) as store:
        assert store.count() == (1 if benchmark.disabled else 6)  # warm-up + 5 rounds, every one recorded
    if benchmark.disabled:  # pytest --benchmark-disable runs the function once, untimed
        return
    median = benchmark.stats.stats.median
    assert median < TARGET_S, f"mark of {SECONDS:.0f} s stereo WAV took {median:.3f} s (target < {TARGET_S} s)"
