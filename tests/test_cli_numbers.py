"""Numeric options of every command: NaN, infinity and out-of-range values are usage errors
(exit 2) that name the option, as typer's own range checks are."""

from __future__ import annotations

import pytest

from foleyseal.cli import main


@pytest.mark.parametrize("argv", [
    ["verify", "x.wav", "--time-limit", "inf"],
    ["serve", "--port", "0", "--max-upload-mb", "inf"],
    ["bench", "sync", "--videos", ".", "--tolerance-ms", "inf"],
    ["bench", "robustness", "--corpus", ".", "--out", "o", "--min-clip-s", "inf"],
    ["generate", "x.mp4", "--loudness", "nan"],
    ["generate", "x.mp4", "--loudness", "0"],
    ["generate", "x.mp4", "--duration", "inf"],
    ["store", "push", "http://127.0.0.1:9", "--timeout", "nan"],
])
def test_non_finite_and_out_of_range_numbers_are_usage_errors(argv, capsys, tmp_path, monkeypatch):
    """typer's min/max let infinity through where there is no max (serve --max-upload-mb inf was
    an internal error, OverflowError), and generate --loudness had no range at all."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FOLEYSEAL_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    option = next(a for a in argv if a.startswith("--") and a != "--port" and a not in ("--videos", "--corpus", "--out"))
    assert exc.value.code == 2 and f"'{option}'" in err, err


@pytest.mark.parametrize("module", ["foleyseal", "foleyseal.cli"])
def test_python_dash_m_runs_the_cli(module, tmp_path):
    """``python -m foleyseal`` (where the console script is not on PATH) said "No module named
    foleyseal.__main__"."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", module, "--version"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("foleyseal "), (done.stdout, done.stderr)
