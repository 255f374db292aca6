"""Throwaway FoleySeal homes for the benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def init_home(home: Path) -> Any:
    """Create a FoleySeal home with fresh keys at ``home`` through ``foleyseal keys init`` (the
    path a user takes) and return its settings; RuntimeError with the command's output if it fails."""
    from typer.testing import CliRunner

    from foleyseal.cli import app
    from provenance.core.config import load_settings

    r = CliRunner().invoke(app, ["keys", "init", "--home", str(home)])
    if r.exit_code != 0:
        raise RuntimeError(f"keys init failed: {r.output}")
    return load_settings(home)
