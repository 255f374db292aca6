"""The coded-bit erasure diagnostic (benchmarks/diversity.py) on gated noise."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.diversity import erased_bits, layout_with_stride, main, usable_tiles
from provenance.core.audio import Audio
from provenance.watermark.keys import WatermarkKey
from provenance.watermark.layout import WatermarkParams, to_groups

SR = 16_000
KEY = WatermarkKey(bytes(range(32)))
LAYOUT = layout_with_stride(KEY, 1)


def _gated_noise(on_s: float, period_s: float, seconds: float = 13.0) -> Audio:
    t = np.arange(int(seconds * SR)) / SR
    x = np.random.default_rng(0).normal(0.0, 0.1, t.size).astype(np.float32)
    if on_s < period_s:
        x *= ((t % period_s) < on_s).astype(np.float32)
    return Audio(x[np.newaxis, :], SR)


def test_dense_audio_erases_nothing() -> None:
    usable = usable_tiles(_gated_noise(1.0, 1.0))
    assert usable.all()
    assert erased_bits(usable, LAYOUT) == 0 == erased_bits(usable, layout_with_stride(KEY, 27))


def test_spreading_runs_in_time_erases_fewer_coded_bits() -> None:
    # 0.3 s of sound every 1.2 s (about 70 % digital silence): with consecutive slots a run that
    # falls in a silence is lost in every repetition; spread over 0.72 s (stride 9) it is not.
    usable = usable_tiles(_gated_noise(0.3, 1.2))
    now = erased_bits(usable, LAYOUT)
    assert now > 30
    assert erased_bits(usable, layout_with_stride(KEY, 9)) < now // 5


def test_interleaved_runs_tile_the_block_once() -> None:
    for stride in (1, 6, 9, 27):
        p = WatermarkParams(run_stride=stride)
        slot = np.repeat(np.arange(p.block_slots, dtype=float)[:, None], p.pairs_per_slot, axis=1)
        groups = to_groups(slot, p)[:, 0, :: p.group_band_pairs]  # (runs, run_slots): each run's slots
        assert sorted(groups.reshape(-1)) == list(range(p.block_slots))
        assert (np.diff(groups, axis=1) == stride).all()
    with pytest.raises(ValueError, match="run_stride 12"):
        WatermarkParams(run_stride=12)


def test_cli_prints_a_table(tmp_path, capsys) -> None:
    import soundfile as sf

    path = tmp_path / "gated.wav"
    sf.write(path, _gated_noise(0.3, 1.2).samples[0], SR)
    main([str(path), "--strides", "9"])
    out = capsys.readouterr().out
    assert "| gated.wav | 3 |" in out and "stride 9" in out
