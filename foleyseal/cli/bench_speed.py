"""``foleyseal bench speed``: the pytest-benchmark speed benchmarks under ``benchmarks/``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def speed_cmd(
    select: str = typer.Option("", "-k", help="Only benchmarks whose function name matches this pytest -k "
                               "expression (e.g. 'embed or detect'; module and folder names are not matched)."),
    json_out: Path = typer.Option(None, "--json-out", help="Also write pytest-benchmark's JSON report here."),
) -> None:
    """Run the speed benchmarks (embed, detect and their stages; mark; verify; generate) with
    pytest-benchmark and print its table. Same as ``pytest benchmarks/ --bench-name EXPR``.
    Exit code: pytest's."""
    if not BENCH_DIR.is_dir():
        raise typer.BadParameter(f"benchmarks folder not found at {BENCH_DIR} (run from a source checkout)")
    args = [sys.executable, "-m", "pytest", str(BENCH_DIR), "-p", "no:cacheprovider", "-q",
            "--benchmark-columns=min,median,max,rounds"]
    if select:
        # not -k: it also matches the folder name, and "benchmarks" holds "mark" (benchmarks/conftest.py)
        args += ["--bench-name", select]
    if json_out:
        args += [f"--benchmark-json={json_out}"]
    raise typer.Exit(subprocess.call(args))
