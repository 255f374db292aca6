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
