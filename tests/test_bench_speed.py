"""``foleyseal bench speed``: which benchmarks -k selects, and an atomic --json-out."""

from __future__ import annotations

import json
import subprocess

import pytest

import foleyseal.cli.bench_speed as bench_speed
from foleyseal.cli import main


def _command(monkeypatch, argv: list[str]) -> list[str]:
    """The pytest command line ``foleyseal bench speed ARGV`` runs (without running it)."""
    seen: list[list[str]] = []
    monkeypatch.setattr(bench_speed.subprocess, "call", lambda args, **_: seen.append(args) or 0)
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


def test_a_run_that_passes_names_the_report_it_wrote(tmp_path, capfd, monkeypatch):
    """pytest-benchmark's own line named the temporary file, renamed away by then; and it left its
    storage folder, .benchmarks, in the working directory."""
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "speed.json"
    with pytest.raises(SystemExit) as exc:
        main(["bench", "speed", "-k", "stft", "--json-out", str(report)])
    assert exc.value.code == 0
    out, err = capfd.readouterr()
    assert f"wrote {report}" in out and json.loads(report.read_text())["benchmarks"]
    assert "Wrote benchmark data in" not in out + err and ".tmp.json" not in out + err, err
    assert [p.name for p in tmp_path.iterdir()] == ["speed.json"]


def test_the_help_shows_the_install_command_whole(capsys):
    """The help's markup renderer swallowed ``[test]``: it said ``pip install -e '.'``."""
    with pytest.raises(SystemExit):
        main(["bench", "speed", "--help"])
    assert "pip install -e '.[test]'" in capsys.readouterr().out


def test_every_data_file_of_the_packages_is_packaged():
    """A wheel leaves out the data files that no package-data pattern names: the external
    watermarker example (a .toml that docs/robustness.md and its module point to) was missing."""
    import fnmatch
    from pathlib import Path

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["*"]
    packages = ("provenance", "detectors", "v2a_core", "benchmarks", "foleyseal")
    tracked = subprocess.run(["git", "ls-files", *packages], cwd=root, capture_output=True, text=True)
    if tracked.returncode == 0 and tracked.stdout:
        files = [Path(p) for p in tracked.stdout.split()]
    else:  # an sdist or a download, not a git checkout: what is on disk is what was shipped
        files = [p.relative_to(root) for pkg in packages for p in (root / pkg).rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts]
    data = [p for p in files if p.suffix not in (".py", ".pyc")]
    assert data, "no data files found in the packages"
    missing = [str(p) for p in data if not any(fnmatch.fnmatch(p.name, pat) for pat in patterns)]
    assert missing == []


@pytest.mark.parametrize("argv, module, dist", [
    (["bench", "speed", "-k", "embed"], "pytest_benchmark", "pytest-benchmark"),
    (["bench", "load", "--clients", "1", "--duration", "1"], "httpx", "httpx"),
])
def test_without_the_test_extra_the_benchmark_names_what_to_install(monkeypatch, capsys, argv, module, dist):
    """Without httpx, `bench load` ended in "internal error: ModuleNotFoundError" (exit 4);
    without pytest, `bench speed` in Python's own message (exit 1)."""
    import sys

    from benchmarks import requirements

    requirements.importable.cache_clear()
    monkeypatch.setitem(sys.modules, module, None)  # an import of it now fails
    try:
        with pytest.raises(SystemExit) as exc:
            main(argv)
    finally:
        requirements.importable.cache_clear()
    err = capsys.readouterr().err
    assert exc.value.code == 3
    assert f"not installed: {dist}" in err and "pip install 'foleyseal[test]'" in err
