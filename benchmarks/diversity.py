"""How many coded bits a file erases outright, under the current layout and under runs spread in time.

A coded bit is *erased* when none of its groups, in any repetition of the block, holds a tile the
embedder may mark (capacity > 0: not digital silence, not far below its slot's loudest tile).
The decoder then has nothing at all for it, whatever the attack. Silence-heavy files erase many
(the impacts clip: 68 of 172 before any edit), which is why their payloads fail first.

Today a group's four slots are consecutive (a run of 80 ms). This diagnostic also counts the
erasures if each run's slots were spread through the block with a stride of ``S`` slots (runs
interleaved in super-blocks of ``S`` runs), so that one silence no longer takes all four. It is a
design measurement for a future format, not a model of detection: it ignores the mark's
strength, the attack and the edges a crop leaves. Run::

    python -m benchmarks.diversity ../shared/corpus/foley_impacts_24bit.wav ../shared/corpus/foley_doors.flac
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from provenance.core.audio import Audio
from provenance.core.io import read_audio
from provenance.watermark.keys import WatermarkKey
from provenance.watermark.layout import DEFAULT_PARAMS, Layout, WatermarkParams
from provenance.watermark.model import capacity, frame_band_power, resample, stft

STRIDES = (6, 27)
"""Strides (slots) compared with the current layout; each divides the 54 runs of a block."""


def usable_tiles(audio: Audio, params: WatermarkParams = DEFAULT_PARAMS) -> np.ndarray:
    """``(slots, bands)``: True where the embedder may mark the tile (capacity > 0)."""
    x16 = resample(audio.mono(), audio.sample_rate, params.analysis_rate_hz)
    bp = frame_band_power(stft(x16, params), params)
    n_slots = bp.shape[0] // params.slot_hops
    tiles = bp[: n_slots * params.slot_hops].reshape(n_slots, params.slot_hops, params.n_bands).sum(axis=1)
    return capacity(tiles, params) > 0


def erased_bits(usable: np.ndarray, layout: Layout, slot_of: Callable[[int, int], int]) -> int:
    """Coded bits none of whose groups has a usable tile, over the whole blocks of the file;
    ``slot_of(run, k)`` is the block-relative slot of the ``k``-th slot of ``run``."""
    p = layout.params
    bands_per_group = 2 * p.group_band_pairs
    seen = np.zeros(p.coded_bits, dtype=bool)
    for rep in range(usable.shape[0] // p.block_slots):
        roles = layout.role[rep % p.block_phases]
        for run in range(p.block_runs):
            rows = usable[[rep * p.block_slots + slot_of(run, k) for k in range(p.run_slots)]]
            for g in range(p.groups_per_run):
                if roles[run, g] >= 0 and rows[:, g * bands_per_group : (g + 1) * bands_per_group].any():
                    seen[roles[run, g]] = True
    return int((~seen).sum())


def consecutive(params: WatermarkParams) -> Callable[[int, int], int]:
    """The current layout: a run's slots are consecutive."""
    return lambda run, k: params.run_slots * run + k


def spread(params: WatermarkParams, stride: int) -> Callable[[int, int], int]:
    """Runs interleaved in super-blocks of ``stride`` runs: slot ``k`` of a run lies ``k * stride``
    slots after its first."""
    if params.block_runs % stride:
        raise ValueError(f"stride {stride} does not divide the {params.block_runs} runs of a block")
    return lambda run, k: (run // stride) * stride * params.run_slots + run % stride + k * stride


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--strides", default=",".join(map(str, STRIDES)), help="comma-separated strides, slots")
    args = ap.parse_args(argv)
    strides = [int(s) for s in args.strides.split(",") if s]
    layout = Layout.from_key(WatermarkKey(bytes(range(32))))
    p = layout.params
    print(f"| file | whole blocks | usable tiles | erased now | {' | '.join(f'stride {s}' for s in strides)} |")
    print("|---|---|---|---|" + "---|" * len(strides))
    for path in args.files:
        usable = usable_tiles(read_audio(path))
        cells = [erased_bits(usable, layout, spread(p, s)) for s in strides]
        print(f"| {path.name} | {usable.shape[0] // p.block_slots} | {usable.mean():.2f} | "
              f"{erased_bits(usable, layout, consecutive(p))} | {' | '.join(map(str, cells))} |")


if __name__ == "__main__":
    main()
