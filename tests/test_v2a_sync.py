"""The sync benchmark's measuring tools (onsets, matching, offset) and `foleyseal bench sync`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_v2a_video import flash_video

from benchmarks.sync import av_offset, detect_onsets, match
from foleyseal.cli import main
from provenance.core.audio import Audio
from v2a_core.types import MotionEnvelope

SR = 48_000


def _clicks(times: list[float], duration: float = 4.0, bed_db: float = -30.0, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    n = int(duration * SR)
    x = rng.standard_normal(n) * 10 ** (bed_db / 20)
    for t in times:
        i = int(round(t * SR))
        m = int(0.15 * SR)
        tt = np.arange(m) / SR
        x[i : i + m] += 0.5 * np.sin(2 * np.pi * 300 * tt) * np.exp(-tt * 40)
    return Audio(np.stack([x, x]).astype(np.float32), SR)


def test_onsets_are_found_to_the_millisecond_over_a_noise_bed():
    times = [0.5, 1.2031, 2.0, 2.6667, 3.3]
    onsets = detect_onsets(_clicks(times))
    m = match(np.array(times), onsets)
    assert m.recall == 1.0 and m.precision == 1.0
    assert max(abs(e) for e in m.errors_s) < 0.002


def test_noise_alone_has_no_onsets():
    assert len(detect_onsets(_clicks([], bed_db=-20.0))) == 0


def test_matching_is_one_to_one_within_tolerance():
    m = match(np.array([1.0, 1.05, 3.0]), np.array([1.01, 2.5]), tolerance_s=0.1)
    assert m.matched == 1 and m.errors_s == pytest.approx((0.01,))
    assert m.recall == pytest.approx(1 / 3) and m.precision == 0.5


def test_av_offset_recovers_a_known_delay():
    events = [0.6, 1.3, 1.9, 2.9, 3.4]
    frames = np.arange(0, 4.0, 1 / 25)
    accel = np.zeros(len(frames), np.float32)
    for t in events:
        accel[int(round(t * 25))] = 1.0
    motion = MotionEnvelope(frames, accel * 0, np.zeros((len(frames), 3), np.float32), accel * 0, accel * 0,
                            acceleration=accel, appear=accel * 0)
    from benchmarks.sync import visual_envelope

    for delay in (0.0, 0.06, -0.12):
        audio = _clicks([t + delay for t in events])
        assert av_offset(frames, visual_envelope(motion), audio, 4.0) == pytest.approx(delay, abs=0.015)


def test_cli_bench_sync_on_a_small_video_set(tmp_path, capsys):
    video, onsets = flash_video(tmp_path / "flash.mp4")
    (tmp_path / "EVENTS.json").write_text(json.dumps([{
        "file": "flash.mp4", "kind": "synthetic", "has_audio": False,
        "events": [{"t": t, "label": "flash"} for t in onsets],
    }]))
    with pytest.raises(SystemExit) as exc:
        main(["bench", "sync", "--videos", str(tmp_path), "--out", str(tmp_path / "out"), "--json"])
    report = json.loads(capsys.readouterr().out)
    (row,) = report["videos"]
    assert row["recall"] == 1.0 and row["precision"] == 1.0 and row["median_abs_error_ms"] < 5
    # the set has no real clip: real_recall has no data, which is not a missed target (it exited 1)
    assert "| real_recall | n/a | >= 0.8 | n/a |" in (tmp_path / "out" / "sync.md").read_text()
    assert exc.value.code == 0
    assert Path(tmp_path / "out" / "sync.json").is_file()


def test_events_on_the_files_own_timestamps_are_compared_on_the_pictures_timeline(tmp_path, capsys):
    """EVENTS.json lists frame times on the file's timestamps; a soundtrack starts with the first
    picture. A clip whose picture starts 2 s in was scored 2 s off (the real screen recording's
    33 ms start gave its one event 32.6 ms of error)."""
    video, onsets = flash_video(tmp_path / "flash.mp4", start_s=2.0)
    (tmp_path / "EVENTS.json").write_text(json.dumps([{
        "file": "flash.mp4", "kind": "synthetic", "has_audio": False,
        "events": [{"t": 2.0 + t, "label": "flash"} for t in onsets],
    }]))
    with pytest.raises(SystemExit):
        main(["bench", "sync", "--videos", str(tmp_path), "--json"])
    (row,) = json.loads(capsys.readouterr().out)["videos"]
    assert row["recall"] == 1.0 and row["median_abs_error_ms"] < 5


def _strict_json(text: str) -> dict:
    """``json.loads`` that refuses NaN and Infinity, as JSON.parse and jq do."""
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_cli_bench_sync_writes_null_for_measures_without_a_value(tmp_path, capsys):
    """With no events recall and the error statistics have no value: they were written as NaN,
    which made sync.json and the --json output invalid JSON."""
    flash_video(tmp_path / "flash.mp4")
    (tmp_path / "EVENTS.json").write_text(json.dumps([{"file": "flash.mp4", "kind": "synthetic", "events": []}]))
    with pytest.raises(SystemExit):
        main(["bench", "sync", "--videos", str(tmp_path), "--out", str(tmp_path / "out"), "--json"])
    printed = _strict_json(capsys.readouterr().out)
    written = _strict_json((tmp_path / "out" / "sync.json").read_text())
    assert printed == written
    (row,) = written["videos"]
    assert row["recall"] is None and row["median_abs_error_ms"] is None
    assert written["summary"]["synthetic_recall"] is None


@pytest.mark.parametrize("out", ["a_file", "a_file/sub"])
def test_cli_bench_sync_refuses_an_out_in_the_way_before_generating(tmp_path, capsys, monkeypatch, out):
    """An --out that was a file was refused only after every video had been generated."""
    import benchmarks.sync

    def never(*args, **kwargs):
        raise AssertionError("videos were generated before --out was checked")

    monkeypatch.setattr(benchmarks.sync, "run_sync_benchmark", never)
    (tmp_path / "EVENTS.json").write_text("[]")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(["bench", "sync", "--videos", str(tmp_path), "--out", str(tmp_path / out)])
    err = capsys.readouterr().err
    assert exc.value.code == 3 and f"{tmp_path / 'a_file'}: is not a folder" in err, err


@pytest.mark.parametrize(
    "text, message",
    [
        ("[\n", "cannot read the cue sheet"),
        ('{"file": "a.mp4"}', "non-empty list of videos"),
        ("[]", "non-empty list of videos"),
        ('[{"events": []}]', 'needs a "file" name'),
        ('[{"file": "a.mp4", "events": [{"time": 1.0}]}]', '"events" must be a list'),
        ('[{"file": "absent.mp4", "events": [{"t": 1.0}]}]', "absent.mp4 not found"),
    ],
)
def test_a_bad_cue_sheet_is_named(tmp_path, text, message):
    from benchmarks.sync import load_cue_sheet
    from provenance.core.errors import ConfigError

    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "EVENTS.json").write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_cue_sheet(tmp_path / "EVENTS.json")
    assert err.value.path == str(tmp_path / "EVENTS.json")


def test_a_measure_that_could_not_be_computed_reads_n_a_in_the_table():
    """sync.json holds null where a measure has no value; sync.md printed "nan"."""
    from benchmarks.sync import SyncReport, VideoResult

    nan = float("nan")
    v = VideoResult(file="quiet.mp4", kind="real", events=2, onsets=0, matched=0, recall=0.0, precision=nan,
                    median_abs_error_ms=nan, p95_abs_error_ms=nan, av_offset_ms=nan,
                    original_audio={"onsets": 0, "recall_vs_events": 0.0, "median_abs_error_ms_vs_events": nan,
                                    "ours_matched_to_original": 0, "median_abs_diff_ours_vs_original_ms": nan})
    md = SyncReport(videos=[v], summary={}).markdown()
    assert "nan" not in md and "| quiet.mp4 | real | 2 | 0 | 0 | 0.00 | n/a | n/a | n/a | n/a |" in md, md


def test_a_target_without_data_is_not_missed_but_a_set_with_nothing_measured_fails():
    from benchmarks.sync import TARGETS, SyncReport

    met = {"synthetic_median_abs_error_ms": 1.0, "synthetic_p95_abs_error_ms": 2.0, "synthetic_recall": 1.0,
           "synthetic_precision": 1.0, "median_abs_offset_ms": 3.0}
    report = SyncReport(videos=[], summary={**met, "real_recall": float("nan")})
    assert report.targets_met()["real_recall"] is None and report.passed()
    assert "| real_recall | n/a | >= 0.8 | n/a |" in report.markdown()
    assert not SyncReport(videos=[], summary={**met, "real_recall": 0.5}).passed()  # measured and missed
    assert not SyncReport(videos=[], summary={k: None for k in TARGETS}).passed()  # nothing measured
