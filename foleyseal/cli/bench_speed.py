"""``foleyseal bench speed``: the pytest-benchmark speed benchmarks under ``benchmarks/``."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import typer

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def speed_cmd(
    select: str = typer.Option("", "-k", help="Only benchmarks whose function name matches this pytest -k "
                               "expression (e.g. 'embed or detect'; module and folder names are not matched)."),
    json_out: Path = typer.Option(None, "--json-out", help="Also write pytest-benchmark's JSON report here "
                                  "(replaced only when the run succeeds).", readable=False),
) -> None:
    """Run the speed benchmarks (embed, detect and their stages; mark; verify; generate) with pytest-benchmark.

    Prints pytest-benchmark's table; the same as `pytest benchmarks/ --bench-name EXPR` (needs the test extra: pip install -e '.\\[test]'). Benchmarks that need what a source checkout has beside it (../shared's videos) are skipped with the reason. Exit code: pytest's.
    """  # noqa: E501 - one line per paragraph: the help renderer re-wraps it
    from benchmarks.requirements import PYTEST, PYTEST_BENCHMARK, require_test_extra

    if not BENCH_DIR.is_dir():
        raise typer.BadParameter(f"benchmarks folder not found at {BENCH_DIR} (run from a source checkout)")
    require_test_extra(PYTEST, PYTEST_BENCHMARK)
    # -rs: a skipped benchmark says why (pyproject's -ra does not apply outside a source checkout)
    args = [sys.executable, "-m", "pytest", str(BENCH_DIR), "-p", "no:cacheprovider", "-q", "-rs",
            "--benchmark-columns=min,median,max,rounds"]
    if select:
        # not -k: it also matches the folder name, and "benchmarks" holds "mark" (benchmarks/conftest.py)
        args += ["--bench-name", select]
    with tempfile.TemporaryDirectory(prefix="foleyseal-bench-") as storage:
        # pytest-benchmark makes its storage folder (.benchmarks) in the working directory even
        # when nothing is saved; no byte-code is written into the (perhaps installed) packages
        args.append(f"--benchmark-storage=file://{storage}")
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        if json_out is None:
            raise typer.Exit(subprocess.call(args, env=env))
        raise typer.Exit(_run_writing_json(args, json_out, env))


def _run_writing_json(args: list[str], json_out: Path, env: dict[str, str]) -> int:
    """Run pytest with its JSON report going to a temporary file beside ``json_out``, renamed onto
    it only when the run succeeds: pytest-benchmark opens (empties) its file while parsing the
    arguments, so a run that fails or selects nothing would otherwise leave an empty report."""
    from provenance.core.atomic import atomic_path

    code = 0
    try:
        with atomic_path(json_out) as tmp:
            code = _call_without_temporary_name([*args, f"--benchmark-json={tmp}"], env)
            if code != 0:
                raise _RunFailed
    except _RunFailed:
        pass  # the temporary report is gone and json_out is as it was
    else:
        typer.echo(f"wrote {json_out}")
    return code


def _echo_err_bytes(line: bytes) -> None:
    """Write a child's error-output line to our standard error as it came (a stream without a
    byte buffer, as some test runners give, gets it decoded)."""
    buffer = getattr(sys.stderr, "buffer", None)
    if buffer is not None:
        buffer.write(line)
        buffer.flush()
    else:
        sys.stderr.write(line.decode("utf-8", "replace"))
        sys.stderr.flush()


_TEMPORARY_NAME_LINE = b"Wrote benchmark data in:"
"""How pytest-benchmark's line naming its JSON file starts: here, a temporary file renamed since."""


def _call_without_temporary_name(args: list[str], env: dict[str, str]) -> int:
    """Run ``args`` and return its exit code, passing its standard error on line by line but for
    pytest-benchmark's line naming the temporary report (``<_io.BufferedWriter name='/.../.speed
    .json.p23239...tmp.json'>``), which no longer exists when the user reads it; ``wrote
    json_out`` follows instead. Standard output (the table) goes straight through."""
    with subprocess.Popen(args, env=env, stderr=subprocess.PIPE) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if _TEMPORARY_NAME_LINE not in line:
                _echo_err_bytes(line)
    return proc.returncode


class _RunFailed(Exception):
    """The benchmarks did not all run and pass: their report must not replace the old one."""
