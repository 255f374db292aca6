"""``foleyseal bench speed``: which benchmarks -k selects, and an atomic --json-out."""

from __future__ import annotations

import subprocess

import pytest

import foleyseal.cli.bench_speed as bench_speed
from foleyseal.cli import main


def _command(monkeypatch, argv: list[str]) -> list[str]:
    """The pytest command line ``foleyseal bench speed ARGV`` runs (without running it)."""
    seen: list[list[str]] = []
    monkeypatch.setattr(bench_speed.subprocess, "call", lambda args: seen.append(args) or 0)
    with pytest.raises(SystemExit):
        main(["bench", "speed", *argv])
    (args,) = seen
    return args


def _collected(args: list[str]) -> list[str]:
    """The test ids pytest would run for ``args``."""
    done = subprocess.run([*args, "--collect-only"], capture_output=True, text=True, timeout=120)
    return [line.split("::")[-1] for line in done.stdout.splitlines() if "::" in line]


def test_k_matches_benchmark_names_not_the_folder_name(monkeypatch):
    """-k went to pytest as is, which matches module and folder names too: 'benchmarks' holds
    'mark', so -k mark selected all 12 benchmarks."""
    args = _command(monkeypatch, ["-k", "mark or stft"])
    assert _collected(args) == ["test_mark_60s_stereo_wav", "test_stage_stft_16k"]


def test_a_run_that_fails_leaves_the_previous_json_report_alone(tmp_path):
    """pytest-benchmark empties its --benchmark-json file while parsing its arguments: a run that
    ran nothing left the previous report at 0 bytes."""
    report = tmp_path / "speed.json"
    report.write_text('{"previous": "report"}')
    with pytest.raises(SystemExit) as exc:
        main(["bench", "speed", "-k", "no_such_benchmark", "--json-out", str(report)])
    assert exc.value.code == 5  # pytest: no tests collected
    assert report.read_text() == '{"previous": "report"}'
    assert [p.name for p in tmp_path.iterdir()] == ["speed.json"]
