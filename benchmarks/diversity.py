"""How many coded bits a file erases outright, under the current layout and under runs spread in time.

A coded bit is *erased* when none of its groups, in any repetition of the block, holds a tile the
embedder may mark (capacity > 0: not digital silence, not far below its slot's loudest tile).
The decoder then has nothing at all for it, whatever the attack. Silence-heavy files erase many
(the impacts clip: 68 of 172 before any edit), which is why their payloads fail first.

In the shipped format a group's four slots are consecutive (a run of 80 ms). This diagnostic also
counts the erasures when each run's slots are spread through the block with a stride of ``S``
slots (``WatermarkParams.run_stride``: runs interleaved in super-blocks of ``S`` runs), so that one
silence no longer takes all four. It counts erasures only: it ignores the mark's strength, the
attack and the edges a crop leaves (measured with both layouts through the robustness benchmark,
the spread one loses more than it gains: docs/robustness.md). Run::

    python -m benchmarks.diversity ../shared/corpus/foley_impacts_24bit.wav ../shared/corpus/foley_doors.flac
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from provenance.core.audio import Audio
from provenance.core.io import read_audio
from provenance.watermark.keys import WatermarkKey
from provenance.watermark.layout import DEFAULT_PARAMS, Layout, WatermarkParams, to_groups
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


def erased_bits(usable: np.ndarray, layout: Layout) -> int:
    """Coded bits none of whose groups has a usable tile, over the whole blocks of the file,
    under ``layout`` (whose ``params.run_stride`` places each run's slots)."""
    p = layout.params
    seen = np.zeros(p.coded_bits, dtype=bool)
    for rep in range(usable.shape[0] // p.block_slots):
        block = usable[rep * p.block_slots : (rep + 1) * p.block_slots]
        any_tile = to_groups(block[:, 0::2] | block[:, 1::2], p).any(axis=-1)  # (runs, groups)
        roles = layout.role[rep % p.block_phases]
        seen[roles[any_tile & (roles >= 0)]] = True
    return int((~seen).sum())


def layout_with_stride(key: WatermarkKey, stride: int) -> Layout:
    """The key's layout with runs interleaved at ``stride`` slots (1: the shipped format).
    Chips, dithers and roles are the same for every stride; only the slots of each run move."""
    return Layout.from_key(key, replace(DEFAULT_PARAMS, run_stride=stride))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--strides", default=",".join(map(str, STRIDES)), help="comma-separated strides, slots")
    args = ap.parse_args(argv)
    strides = [int(s) for s in args.strides.split(",") if s]
    key = WatermarkKey(bytes(range(32)))
    layout = layout_with_stride(key, 1)
    p = layout.params
    print(f"| file | whole blocks | usable tiles | erased now | {' | '.join(f'stride {s}' for s in strides)} |")
    print("|---|---|---|---|" + "---|" * len(strides))
    for path in args.files:
        usable = usable_tiles(read_audio(path))
        cells = [erased_bits(usable, layout_with_stride(key, s)) for s in strides]
        print(f"| {path.name} | {usable.shape[0] // p.block_slots} | {usable.mean():.2f} | "
              f"{erased_bits(usable, layout)} | {' | '.join(map(str, cells))} |")


if __name__ == "__main__":
    main()
