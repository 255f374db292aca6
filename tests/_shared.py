"""Where the read-only shared data lives (``../shared`` beside the checkout), and the skip that
every test needing it takes when it is absent (the README: such tests skip without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DIR = Path(__file__).resolve().parents[1] / ".." / "shared"
"""The shared data folder (corpus/, video/, docs/) beside the checkout; tests skip without it."""


def shared_subdir(name: str) -> Path:
    """``../shared/<name>``; skips the calling test when it is absent."""
    path = (SHARED_DIR / name).resolve()
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent")
    return path


def corpus_clip(name: str) -> Path:
    """The corpus clip ``name`` (``../shared/corpus/<name>``); skips the calling test (or the
    fixture, and so the tests that use it) when it is absent."""
    path = shared_subdir("corpus") / name
    if not path.is_file():
        pytest.skip(f"corpus clip {path} is absent")
    return path


def audio_with_a_timestamp_jump(src: Path, dst: Path, *, at_s: float, by_s: float) -> Path:
    """``dst``: the first audio stream of ``src`` remuxed, its packets from ``at_s`` on moved
    ``by_s`` seconds later (a damaged timestamp, or audio a recorder lost), the samples unchanged."""
    import av

    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        out = o.add_stream_from_template(i.streams.audio[0])
        for packet in i.demux(i.streams.audio[0]):
            if packet.size:
                if float(packet.pts * packet.time_base) >= at_s:
                    shift = round(by_s / packet.time_base)
                    packet.pts, packet.dts = packet.pts + shift, packet.dts + shift
                packet.stream = out
                o.mux(packet)
    return dst
