"""The coded-bit erasure diagnostic (benchmarks/diversity.py) on gated noise."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.diversity import consecutive, erased_bits, main, spread, usable_tiles
from provenance.core.audio import Audio
from provenance.watermark.keys import WatermarkKey
from provenance.watermark.layout import Layout

SR = 16_000
LAYOUT = Layout.from_key(WatermarkKey(bytes(range(32))))


def _gated_noise(on_s: float, period_s: float, seconds: float = 13.0) -> Audio:
    t = np.arange(int(seconds * SR)) / SR
    x = np.random.default_rng(0).normal(0.0, 0.1, t.size).astype(np.float32)
    if on_s < period_s:
        x *= ((t % period_s) < on_s).astype(np.float32)
    return Audio(x[np.newaxis, :], SR)


def test_dense_audio_erases_nothing() -> None:
    usable = usable_tiles(_gated_noise(1.0, 1.0))
    assert usable.all()
    p = LAYOUT.params
    assert erased_bits(usable, LAYOUT, consecutive(p)) == 0 == erased_bits(usable, LAYOUT, spread(p, 27))


def test_spreading_runs_in_time_erases_fewer_coded_bits() -> None:
    # 0.3 s of sound every 1.2 s (about 70 % digital silence): with consecutive slots a run that
    # falls in a silence is lost in every repetition; spread over 0.72 s (stride 9) it is not.
    usable = usable_tiles(_gated_noise(0.3, 1.2))
    p = LAYOUT.params
    now = erased_bits(usable, LAYOUT, consecutive(p))
    assert now > 30
    assert erased_bits(usable, LAYOUT, spread(p, 9)) < now // 5


def test_spread_slots_tile_the_block_once() -> None:
    p = LAYOUT.params
    for stride in (6, 9, 27):
        f = spread(p, stride)
        slots = sorted(f(r, k) for r in range(p.block_runs) for k in range(p.run_slots))
        assert slots == list(range(p.block_slots))
    with pytest.raises(ValueError):
        spread(p, 12)


def test_cli_prints_a_table(tmp_path, capsys) -> None:
    import soundfile as sf

    path = tmp_path / "gated.wav"
    sf.write(path, _gated_noise(0.3, 1.2).samples[0], SR)
    main([str(path), "--strides", "9"])
    out = capsys.readouterr().out
    assert "| gated.wav | 3 |" in out and "stride 9" in out
