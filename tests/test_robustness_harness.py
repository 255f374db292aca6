"""The robustness harness: the weak baseline fails where it should, the external-command adapter
works against a fake CLI, and a tiny run writes JSON, markdown and plots, and resumes."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from shutil import which as shutil_which
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from benchmarks.attacks import MarkedSpan, get_attack
from benchmarks.report import empirical_tpr, information_cell, summarize
from benchmarks.robustness import BenchConfig, read_rows, run_benchmark
from benchmarks.trials import localization, payload_for
from benchmarks.watermarkers import (
    ExternalCommandWatermarker,
    ExternalToolError,
    LSBWatermarker,
    bits_to_hex,
    build_watermarkers,
    load_external_config,
)
from provenance.core.audio import Audio
from provenance.core.errors import ConfigError, InputError
from provenance.core.results import Segment
from tests._shared import corpus_clip

FAKE = Path(__file__).with_name("fake_watermarker.py")
SR = 44100


def _music(seconds: float, seed: int, channels: int = 2, rate: int = SR) -> Audio:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = np.zeros((channels, t.size))
    for c in range(channels):
        for f0 in rng.uniform(150, 600, 3):
            for h in range(1, 5):
                x[c] += 0.05 / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.28))
        x[c] += 0.01 * rng.standard_normal(t.size)
    return Audio(x.astype(np.float32), rate)


def _payload(n: int = 64, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, n).astype(np.uint8)


def _fake_config(tmp_path: Path, **extra: str) -> Path:
    py, fake = shlex.quote(sys.executable), shlex.quote(str(FAKE))
    lines = [
        "[[watermarker]]",
        'name = "fake"',
        f"embed = '{py} {fake} add {{input}} {{output}} {{payload_hex}}'",
        f"detect = '{py} {fake} get {{input}}'",
        r"""payload_regex = '^payload (?P<payload>[0-9a-f]+) score (?P<score>[-0-9.]+)'""",
        r"""segment_regex = 'at (?P<start>[0-9.]+)-(?P<end>[0-9.]+)'""",
        "min_score = 0.5",
        *[f"{k} = {v}" for k, v in extra.items()],
    ]
    p = tmp_path / "external.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"payload_bits": '"64"'}, "payload_bits must be a whole number"),
        ({"payload_bits": "-8"}, "payload_bits must be a whole number"),
        ({"timeout_s": '"ten"'}, "timeout_s must be a number of seconds"),
        ({"wav_subtype": '"BOGUS"'}, "not a WAV encoding"),
        ({"block_s": "0"}, "block_s must be a number of seconds above 0"),
        ({"ok_exit_codes": '["0"]'}, "ok_exit_codes must be a list of whole numbers"),
    ],
)
def test_an_external_config_mistake_is_refused_before_the_run(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        load_external_config(_fake_config(tmp_path, **extra))


def test_external_templates_are_checked(tmp_path):
    def make(**kw):
        base = dict(name="t", embed_cmd="tool add {input} {output} {payload_hex}", detect_cmd="tool get {input}",
                    payload_regex="(?P<payload>[0-9a-f]+)")
        return ExternalCommandWatermarker(**{**base, **kw})

    with pytest.raises(ConfigError, match=r"embed template uses \['bogus'\]"):
        make(embed_cmd="tool add {input} {output} {bogus}")
    with pytest.raises(ConfigError, match="does not parse: No closing quotation"):
        make(detect_cmd='tool get {input} "open')
    with pytest.raises(ConfigError, match="must contain {input} and {output}"):
        make(embed_cmd="tool add {input}")
    for placeholder in ("output", "payload_hex"):  # they were run as '': a confusing failure in every trial
        with pytest.raises(ConfigError, match=r"detect template uses \['%s'\].*detection is blind" % placeholder):
            make(detect_cmd="tool get {input} {%s}" % placeholder)
    with pytest.raises(ConfigError, match="embed must be a non-empty command template"):
        make(embed_cmd="")
    with pytest.raises(ConfigError, match="without commas or bars"):
        make(name="a|b")
    shadow = _fake_config(tmp_path)
    shadow.write_text(shadow.read_text().replace('name = "fake"', 'name = "lsb"'))
    with pytest.raises(ConfigError, match="name of a built-in one"):  # it would be run as the built-in lsb
        build_watermarkers(["lsb"], external_config=shadow)
    (tmp_path / "w.toml").write_text("watermarker = 5\n")
    with pytest.raises(ConfigError, match="double brackets"):
        load_external_config(tmp_path / "w.toml")


def _script(tmp_path: Path, name: str, body: str) -> str:
    p = tmp_path / f"{name}.py"
    p.write_text("import shutil, sys\n" + body)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(p))}"


def test_an_external_tool_that_fails_or_returns_other_audio_is_an_error(tmp_path):
    audio = _music(2.0, seed=4)
    copy = _script(tmp_path, "copy", "shutil.copy(sys.argv[1], sys.argv[2])\n")
    crash = _script(tmp_path, "crash", "print('payload 00ff score 1.0'); raise SystemExit('Traceback: boom')\n")
    wm = ExternalCommandWatermarker(name="c", embed_cmd=copy + " {input} {output}", detect_cmd=crash + " {input}",
                                    payload_regex="payload (?P<payload>[0-9a-f]+)")
    assert wm.embed(audio, _payload()).frames == audio.frames
    with pytest.raises(ExternalToolError, match="exited 1: Traceback: boom"):
        wm.detect(audio)  # what it printed before failing is not a result
    long = _script(tmp_path, "long", "sys.stderr.write(''.join(f'  File line {i} in channels\\n' for i in range(60)))\n"
                                    "raise SystemExit('ValueError: bad input')\n")
    with pytest.raises(ExternalToolError) as err:  # its last whole lines, not 500 characters from mid-word
        replace(wm, detect_cmd=long + " {input}").detect(audio)
    told = str(err.value).split("exited 1: ", 1)[1]
    assert told.startswith("  File line ") and told.endswith("ValueError: bad input") and len(told) <= 520
    tolerant = replace(wm, ok_exit_codes=(0, 1))  # a tool documented to exit 1 for "no mark"
    assert tolerant.detect(audio).found
    half = _script(tmp_path, "half", "import soundfile as sf\nx, r = sf.read(sys.argv[1])\n"
                                    "sf.write(sys.argv[2], x[: len(x) // 3], r)\n")
    short = replace(wm, embed_cmd=half + " {input} {output}")
    with pytest.raises(ExternalToolError, match="embed output is 0.667 s of 2 channel"):
        short.embed(audio, _payload())


def test_an_external_tools_odd_output_is_an_error_that_names_it(tmp_path):
    """NaN samples from embed were scored (quality quietly n/a); a NaN score counted as found; a
    score of "-" or a start of "1:xx" raised a bare ValueError; non-UTF-8 bytes a
    UnicodeDecodeError."""
    audio = _music(2.0, seed=4)
    nan = _script(tmp_path, "nan", "import numpy as np, soundfile as sf\nx, r = sf.read(sys.argv[1])\n"
                                  "x[100] = np.nan\nsf.write(sys.argv[2], x, r, subtype='FLOAT')\n")
    printing = lambda text: _script(tmp_path, f"p{abs(hash(text))}", f"sys.stdout.buffer.write({text!r})\n")
    wm = ExternalCommandWatermarker(name="odd", embed_cmd=nan + " {input} {output}", detect_cmd="true {input}",
                                    payload_regex="payload (?P<payload>[0-9a-f]+) score (?P<score>[-0-9.na]+)",
                                    segment_regex="at (?P<start>[0-9:x.]+)")
    with pytest.raises(ExternalToolError, match="'odd': embed output holds NaN or infinite samples"):
        wm.embed(audio, _payload())
    for out, message in ((b"payload 00ff score nan", "payload_regex's score captured 'nan'"),
                         (b"payload 00ff score -", "payload_regex's score captured '-'"),
                         (b"payload 00ff score 1 at 1:xx", "segment_regex's start captured '1:xx', which is no time")):
        with pytest.raises(ExternalToolError, match=re.escape(message)):
            replace(wm, detect_cmd=printing(out) + " {input}").detect(audio)
    garbled = replace(wm, detect_cmd=printing(b"\xff\xfe payload 00ff score 0.9\n") + " {input}")
    assert garbled.detect(audio).found
    # a payload of another length than the one embedded is found but unread, not padded or cut
    for printed in ("00ff", "0123456789abcdef00"):
        result = wm.parse(f"payload {printed} score 0.9")
        assert result.found and result.payload_bits is None, printed
    assert wm.parse("payload 0123456789abcdef score 0.9").payload_bits is not None


def test_an_external_tool_that_times_out_is_stopped_with_its_children(tmp_path):
    """The tool was killed, but what it had started (a shell's sleep) ran on after the benchmark."""
    marker = tmp_path / "child.pid"
    hang = _script(tmp_path, "hang", "import subprocess, time\n"
                                   f"p = subprocess.Popen(['sleep', '30'])\nopen({str(marker)!r}, 'w').write(str(p.pid))\n"
                                   "time.sleep(30)\n")
    wm = ExternalCommandWatermarker(name="slow", embed_cmd="true {input} {output}", detect_cmd=hang + " {input}",
                                    payload_regex="(?P<payload>[0-9a-f]+)", timeout_s=2.0)
    with pytest.raises(ExternalToolError, match="timed out after 2.0 s"):
        wm.detect(_music(1.0, seed=1))
    child = int(marker.read_text())
    for _ in range(50):  # reaped by init once killed
        if not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the tool's child is still running")


def test_every_setting_of_an_external_watermarker_is_in_its_description(tmp_path):
    """Resuming reused rows made with another payload_regex or min_score: they were not part of
    what a trial's digest covers."""
    (wm,) = load_external_config(_fake_config(tmp_path))
    described = wm.describe()
    for setting in ("payload_regex", "score_regex", "segment_regex", "min_score", "sample_rate_hz",
                    "wav_subtype", "block_s", "ok_exit_codes"):
        assert setting in described
    assert replace(wm, min_score=0.9).describe() != described
    twice = tmp_path / "twice.toml"
    body = _fake_config(tmp_path).read_text()
    twice.write_text(body + "\n" + body)
    with pytest.raises(ConfigError, match=r"watermarker name\(s\) \['fake'\] are given to more than one table"):
        load_external_config(twice)


def test_run_files_hold_no_nan_or_infinity(tmp_path):
    from benchmarks.jsonout import dumps

    text = dumps({"score": float("inf"), "rows": [{"snr": float("nan"), "ok": 1.5}], "a": np.float32("nan")})
    assert json.loads(text) == {"score": None, "rows": [{"snr": None, "ok": 1.5}], "a": None}


# --- the weak baseline ----------------------------------------------------------------------


def test_lsb_recovers_exactly_without_attack_and_fails_after_lossy_attacks():
    wm, clip, bits = LSBWatermarker(), _music(3.0, seed=3), _payload()
    marked = wm.embed(clip, bits)
    assert np.max(np.abs(marked.samples - clip.samples)) <= 1.5 / 32768  # one LSB (plus rounding)
    res = wm.detect(marked)
    assert res.found and res.score == pytest.approx(1.0)
    np.testing.assert_array_equal(res.payload_bits, bits)
    for name in ("mp3_64k", "aac_96k", "noise_white_30db", "volume_x0.25", "resample_22k"):
        attacked = get_attack(name).apply(marked, np.random.default_rng(0))
        res = wm.detect(attacked)
        assert not res.found, name
        assert not np.array_equal(res.payload_bits, bits)
        if name != "volume_x0.25":  # x0.25 is exact in binary: rounding keeps a trace of the LSB
            assert abs(res.score) < 0.1, (name, res.score)
    assert abs(wm.detect(clip).score) < 0.1


# --- the external-command adapter -----------------------------------------------------------


def test_external_adapter_against_fake_cli(tmp_path):
    (wm,) = load_external_config(_fake_config(tmp_path))
    clip, bits = _music(4.0, seed=4), _payload(seed=9)
    marked = wm.embed(clip, bits)
    assert (marked.channels, marked.sample_rate, marked.frames) == (clip.channels, clip.sample_rate, clip.frames)
    res = wm.detect(marked)
    assert res.found and res.score == pytest.approx(1.0)
    np.testing.assert_array_equal(res.payload_bits, bits)
    assert res.segments and res.segments[0].end_s == pytest.approx(4.0, abs=0.01)
    unmarked = wm.detect(clip)
    assert not unmarked.found and unmarked.details["payload_regex_matched"]
    # what it read below min_score is still what bit accuracy is measured on, as for lsb and
    # foleyseal (scoring it 0.5 made the tools' bit accuracies two different measures)
    assert unmarked.payload_bits is not None and unmarked.payload_bits.size == 64


def test_a_payload_regex_that_never_matches_is_warned_about(tmp_path, capsys):
    """It read exactly like a watermark never found: exit 0, 0 errors, 0.00 / 0.500 even on the
    unattacked marked files, and nothing in the rows to tell the two apart."""
    from foleyseal.cli import main

    cfg = _fake_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("'^payload (?P<payload>", "'^PAYLOAD=(?P<payload>"))
    corpus = _corpus(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["bench", "robustness", "--corpus", str(corpus), "--out", str(tmp_path / "o"), "--watermarkers",
              "fake", "--external-config", str(cfg), "--attacks", "polarity_invert", "--null-per-clip", "0",
              "--workers", "1", "--no-progress", "--allow-missing", "--min-clip-s", "4"])
    err = capsys.readouterr().err
    assert exc.value.code == 0
    assert "warning: watermarker 'fake': its payload_regex matched nothing" in err and "payload " in err, err
    assert "## Warnings" in (tmp_path / "o" / "summary.md").read_text()
    rows = [r for r in read_rows(tmp_path / "o" / "results.jsonl") if r.get("attack") == "none"]
    assert rows and all(r["details"]["output_tail"].startswith("payload ") for r in rows)
    assert summarize([{**r, "details": {"payload_regex_matched": True}} for r in rows])["warnings"] == []


def test_audiowmark_example_config_parses_its_output_format():
    cfg = Path(__file__).resolve().parents[1] / "benchmarks" / "watermarkers" / "audiowmark.example.toml"
    (wm,) = load_external_config(cfg)
    marked_out = (
        "pattern  0:07 00112233445566778899aabbccddeeff 1.402 0.061 A\n"
        "pattern   all 00112233445566778899aabbccddeeff 1.420 0.040\n"
        "pattern  1:40 f0e1d2c3b4a5968778695a4b3c2d1e0f 0.171 0.395 A\n"
    )
    res = wm.parse(marked_out)
    assert res.found and res.score == pytest.approx(1.42)
    assert bits_to_hex(res.payload_bits) == "00112233445566778899aabbccddeeff"
    assert [(s.start_s, s.payload[:4]) for s in res.segments] == [(7.0, "0011"), (100.0, "f0e1")]
    noise_out = "pattern  0:40 f0e1d2c3b4a5968778695a4b3c2d1e0f 0.171 0.395 A\n"
    assert not wm.parse(noise_out).found and wm.parse("").score == 0.0


def test_external_adapter_errors(tmp_path):
    with pytest.raises(ConfigError, match="payload"):
        ExternalCommandWatermarker(name="x", embed_cmd="true", detect_cmd="true", payload_regex="(?P<hex>..)")
    missing = ExternalCommandWatermarker(name="x", embed_cmd="no-such-tool-xyz {input} {output}",
                                         detect_cmd="no-such-tool-xyz {input}", payload_regex="(?P<payload>.+)")
    with pytest.raises(ExternalToolError, match="command not found"):
        missing.detect(_music(1.0, seed=1))
    silent = ExternalCommandWatermarker(name="y", embed_cmd="true {input} {output}", detect_cmd="true",
                                        payload_regex="(?P<payload>[0-9a-f]+)")
    with pytest.raises(ExternalToolError, match="no output file"):
        silent.embed(_music(1.0, seed=1), _payload())
    bad = tmp_path / "bad.toml"
    bad.write_text('[[watermarker]]\nname = "z"\nembed = "a"\n')
    with pytest.raises(ConfigError, match="missing keys"):
        load_external_config(bad)
    with pytest.raises(ConfigError, match="external-config"):
        build_watermarkers(["external"])


# --- metrics --------------------------------------------------------------------------------


def test_localization_and_empirical_tpr():
    exp = (MarkedSpan(0.0, 5.0),)
    worst, mis = localization(exp, [Segment(0.2, 5.1, "ab", 1e-9)], "ab", 10.0)
    assert worst == pytest.approx(0.2) and mis == pytest.approx(0.3, abs=0.011)
    assert localization(exp, [], "ab", 10.0) == (None, None)
    # a segment with another payload does not count as the primary mark
    worst, mis = localization(exp, [Segment(5.0, 10.0, "cd", 1e-9)], "ab", 10.0)
    assert worst is None and mis == pytest.approx(5.0, abs=0.011)
    null = list(np.linspace(0, 1, 1000))
    tpr, why = empirical_tpr([0.5, 2.0, 3.0, 0.99], null, 1e-3)
    assert tpr == pytest.approx(0.5) and "1000 nulls" in why
    assert empirical_tpr([2.0], null, 1e-6)[0] is None


# --- a tiny run -----------------------------------------------------------------------------


def _corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    sf.write(d / "music_a.flac", _music(6.0, seed=1).samples.T, SR, subtype="PCM_16")
    sf.write(d / "speech_b.wav", _music(5.0, seed=2, channels=1, rate=16000).samples.T, 16000, subtype="PCM_16")
    (d / "notes.txt").write_text("not audio")
    return d


def test_tiny_run_writes_outputs_and_resumes(tmp_path):
    corpus, out = _corpus(tmp_path), tmp_path / "out"
    wms = build_watermarkers(["lsb", "fake"], external_config=_fake_config(tmp_path))
    cfg = BenchConfig(
        corpus=corpus, out=out, watermarkers=wms,
        attacks=[get_attack(n) for n in ("mp3_64k", "crop_5s")],
        workers=1, null_per_clip=2, quality_measures=("snr",), quality_strengths=(1.0,),
    )
    res = run_benchmark(cfg, show_progress=False)
    # 2 clips x 2 watermarkers x (3 attacks incl. "none" + 2 nulls + 1 quality)
    assert res.ran_trials == 24 and len(res.rows) == 24
    for name in ("results.json", "results.jsonl", "summary.md", "bit_accuracy.png", "roc.png", "quality_vs_strength.png"):
        assert (out / name).stat().st_size > 0, name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "results.json").read_text())
    rows = data["rows"]
    assert data["meta"]["versions"]["numpy"] and data["meta"]["config"]["attacks"][0]["name"] == "none"
    assert not [r for r in rows if r["error"]]
    by = {(r["watermarker"], r["clip"], r.get("attack")): r for r in rows if r["kind"] == "attack"}
    lsb_none = by[("lsb", "music_a.flac", "none")]
    assert lsb_none["exact"] and lsb_none["bit_accuracy"] == 1.0 and lsb_none["attack_params"] == {"type": "NoAttack"}
    assert lsb_none["payload_hex"] == bits_to_hex(payload_for(0, "music_a.flac", 64))
    assert not by[("lsb", "music_a.flac", "mp3_64k")]["exact"]
    assert by[("fake", "music_a.flac", "none")]["exact"]
    crop = by[("fake", "music_a.flac", "crop_5s")]
    assert crop["attacked_duration_s"] == pytest.approx(5.0) and crop["expected_spans"][0]["end_s"] == pytest.approx(5.0)
    assert crop["seed"][0] == 0 and crop["attack_params"]["duration_s"] == 5.0
    nulls = [r for r in rows if r["kind"] == "null"]
    assert len(nulls) == 8 and all(r["null_type"] == "unmarked" for r in nulls)
    q = [r for r in rows if r["kind"] == "quality" and r["watermarker"] == "lsb"]
    assert len(q) == 2 and all(r["snr_db"] > 60 for r in q)

    md = (out / "summary.md").read_text()
    assert "| attack | kind | lsb | fake |" in md and "| mp3_64k | codec |" in md
    assert "null trials" in md and "< 1/FPR" in md
    assert "Information per coded bit" not in md  # measured only with information=True
    s = summarize(rows)
    assert s["cells"]["none"]["lsb"]["exact"] == 1.0 and s["cells"]["mp3_64k"]["lsb"]["exact"] == 0.0

    # resume: nothing left to do
    again = run_benchmark(cfg, show_progress=False, write_report=False)
    assert again.ran_trials == 0 and again.skipped_trials == 24 and len(again.rows) == 24

    # interrupted run: drop the last rows (and tear the last line); only those are run again
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:-5]) + "\n" + lines[-5][:40])
    third = run_benchmark(cfg, show_progress=False, write_report=False)
    assert third.ran_trials == 5 and len(third.rows) == 24
    assert len({r["trial_id"] for r in read_rows(out / "results.jsonl")}) == 24

    # lines that are JSON but no row, or not text at all, are skipped like a torn line
    with open(out / "results.jsonl", "ab") as fh:
        fh.write(b'null\n[1, 2, 3]\n{"a": 1}\n\xff\xfe garbage\n')
    assert run_benchmark(cfg, show_progress=False, write_report=False).ran_trials == 0

    # Same trial ids, other inputs: the rows stored for them are not reused.
    from benchmarks.attacks.filters import Lowpass

    sf.write(corpus / "speech_b.wav", _music(5.0, seed=9, channels=1, rate=16000).samples.T, 16000, subtype="PCM_16")
    changed = replace(cfg, attacks=[Lowpass(name="mp3_64k_like", cutoff_hz=300.0), get_attack("crop_5s")])
    first = run_benchmark(changed, show_progress=False, write_report=False)
    changed = replace(changed, attacks=[Lowpass(name="mp3_64k_like", cutoff_hz=5000.0), get_attack("crop_5s")])
    fourth = run_benchmark(changed, show_progress=False, write_report=False)
    # the new clip's 12 trials and the lowpass on the other clip: measured again, the rest resumed
    assert first.ran_trials == 12 + 2 and first.remeasured_trials == 10
    assert fourth.ran_trials == 4 and fourth.remeasured_trials == 4
    low = [r for r in fourth.rows if r.get("attack") == "mp3_64k_like"]
    assert len(low) == 4 and {r["attack_params"]["cutoff_hz"] for r in low} == {5000.0}
    # More null trials extend the run: null j is the same trial whatever their count.
    more = run_benchmark(replace(changed, null_per_clip=3), show_progress=False, write_report=False)
    assert more.ran_trials == 4 and more.remeasured_trials == 0


def test_a_roc_plot_without_attacked_trials_draws_no_empty_legend(tmp_path):
    """Only the unattacked row and nulls: matplotlib warned "No artists with labels found to
    put in legend" on every such run."""
    import warnings

    from benchmarks.report import plot_roc

    rows = [{"kind": "null", "watermarker": "x", "score": s} for s in (0.1, 0.2, 0.3)]
    rows.append({"kind": "attack", "watermarker": "x", "attack": "none", "attack_kind": "none", "score": 9.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plot_roc(rows, {"watermarkers": ["x"], "attack_kinds": {"none": "none"}}, tmp_path / "roc.png").exists()


def test_an_out_that_is_a_file_is_named_as_such(tmp_path):
    taken = tmp_path / "results"
    taken.write_text("someone's notes")
    cfg = BenchConfig(corpus=_corpus(tmp_path), out=taken, watermarkers=build_watermarkers(["lsb"]),
                      attacks=[get_attack("none")], workers=1, null_per_clip=0, quality_measures=(),
                      quality_strengths=(1.0,))
    with pytest.raises(InputError, match="--out is a file, not a folder"):
        run_benchmark(cfg, show_progress=False)
    assert taken.read_text() == "someone's notes"
    # a folder inside that file: mkdir said only "results/sub: Not a directory"
    with pytest.raises(InputError, match=re.escape(f"{taken}: is a file, not a folder: --out {taken / 'sub' / 'x'} "
                                                   "cannot be a folder for the results")):
        run_benchmark(replace(cfg, out=taken / "sub" / "x"), show_progress=False)
    assert taken.read_text() == "someone's notes"


def test_information_readings_are_recorded_and_summarized(tmp_path):
    corpus, out = _corpus(tmp_path), tmp_path / "out"
    cfg = BenchConfig(
        corpus=corpus, out=out, watermarkers=build_watermarkers(["foleyseal", "lsb"]),
        attacks=[get_attack(n) for n in ("noise_white_10db", "speed_+5%")], min_clip_s=6.0,
        workers=1, null_per_clip=0, quality_measures=("snr",), quality_strengths=(1.0,), information=True,
    )
    rows = run_benchmark(cfg, show_progress=False).rows
    by = {(r["watermarker"], r["attack"]): r for r in rows if r["kind"] == "attack"}
    clean = by[("foleyseal", "none")]
    # steady synthetic tones over 6 s (one and a half blocks) read well above the rate, if not at 1 bit
    assert clean["exact"] and clean["information"]["information_bits"] > 0.6
    assert clean["information"]["margin_bits"] > 0.1 and clean["information"]["rate"] == pytest.approx(80 / 172)
    noisy = by[("foleyseal", "noise_white_10db")]["information"]
    assert noisy["information_bits"] < clean["information"]["information_bits"]
    # not read after a speed change (the mark is off the file's own timeline), nor for lsb
    assert "information" not in by[("foleyseal", "speed_+5%")]
    assert by[("lsb", "none")]["information"] is None
    cell = summarize(rows)["cells"]["none"]["foleyseal"]
    counts = ("info_n", "info_failed", "info_failed_below_rate", "info_failed_below_rate_csi")
    assert tuple(cell[k] for k in counts) == (1, 0, 0, 0)
    md = (out / "summary.md").read_text()
    section = md.split("## Information per coded bit")[1].split("\n## ")[0]
    assert re.search(r"\| none \| [01]\.\d\d \|", section) and "| noise_white_10db |" in section
    assert "speed_+5%" not in section
    # no null trials: the summary said "no p-values" of a watermarker that gives them
    line = next(x for x in md.splitlines() if x.startswith("- **foleyseal**"))
    assert "no p-values" not in line and "without null trials no empirical threshold" in line, line


class _LsbWithBrokenReading(LSBWatermarker):
    def informed_reading(self, audio, payload_bits):
        raise ValueError("no reading")


def test_a_failing_informed_reading_leaves_the_trial_standing(tmp_path):
    cfg = BenchConfig(
        corpus=_corpus(tmp_path), out=tmp_path / "out", watermarkers=[_LsbWithBrokenReading()],
        attacks=[get_attack("none")],
        min_clip_s=6.0, workers=1, null_per_clip=0, quality_measures=("snr",), quality_strengths=(1.0,),
        information=True,
    )
    (row,) = [r for r in run_benchmark(cfg, show_progress=False, write_report=False).rows if r["kind"] == "attack"]
    assert row["exact"] and not row["error"]
    assert row["information"] is None and row["information_error"] == "ValueError: no reading"


def test_information_cell_counts_failures_below_the_rate():
    def row(exact, margin, csi_margin):
        return {"exact": exact, "information": {"information_bits": 0.465 + margin, "margin_bits": margin,
                                                "information_csi_bits": 0.465 + csi_margin, "rate": 0.465}}

    rs = [row(True, 0.4, 0.4), row(False, -0.2, 0.1), row(False, 0.05, 0.05), row(False, -0.01, -0.01),
          {"exact": False}]
    c = information_cell(rs)
    assert (c["info_n"], c["info_failed"], c["info_failed_below_rate"], c["info_failed_below_rate_csi"]) == (4, 3, 2, 1)
    assert c["info_median_bits"] == pytest.approx(0.465 + 0.02)
    assert information_cell([{"exact": True, "information": None}]) == {}


def test_cli_bench_robustness(tmp_path):
    """The CLI, with a process pool of two workers (spawned) and --quick."""
    from typer.testing import CliRunner

    from foleyseal.cli import app

    corpus, out = _corpus(tmp_path), tmp_path / "cli-out"
    result = CliRunner().invoke(app, [
        "bench", "robustness", "--corpus", str(corpus), "--out", str(out), "--watermarkers", "lsb",
        "--attacks", "none,volume_x0.25", "--workers", "2", "--null-per-clip", "2", "--quick", "--json",
        "--allow-missing",  # PESQ (quick mode) is in the bench extra, which CI does not install
    ])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)  # stderr holds --allow-missing's warning where pesq is not installed
    # --quick keeps clips of 6 s or more: here only music_a.flac (2 attacks + 2 nulls + 1 quality)
    assert info["trials"] == 5 and info["errors"] == 0
    assert (out / "summary.md").exists()
    # --min-clip-s overrides the length filter: the 5 s speech clip joins (5 more trials)
    result = CliRunner().invoke(app, [
        "bench", "robustness", "--corpus", str(corpus), "--out", str(tmp_path / "all"), "--watermarkers", "lsb",
        "--attacks", "none,volume_x0.25", "--workers", "1", "--null-per-clip", "2", "--quick", "--json",
        "--min-clip-s", "4", "--allow-missing",
    ])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["trials"] == 10
    from foleyseal.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "robustness", "--corpus", str(corpus), "--out", str(out), "--attacks", "nope_attack"])
    assert exc.value.code == 3


def _pretend_missing(monkeypatch, *modules, present=()):
    """Make ``modules`` look uninstalled and ``present`` installed, whatever this machine has
    (CI installs the test extra, not the bench extra with pesq, ViSQOL and numba)."""
    import benchmarks.requirements as req

    real = req.importable
    monkeypatch.setattr(req, "importable", lambda m: m in present or (m not in modules and real(m)))


def test_a_run_missing_an_optional_package_stops_before_its_first_trial(tmp_path, monkeypatch, capsys):
    """Without pesq, a run that measures PESQ stops at once (exit 3), names the package and how
    to install it, and writes nothing."""
    from foleyseal.cli import main

    _pretend_missing(monkeypatch, "pesq")
    corpus, out = _corpus(tmp_path), tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["bench", "robustness", "--corpus", str(corpus), "--out", str(out), "--watermarkers", "lsb",
              "--attacks", "none", "--workers", "1", "--quick"])
    assert exc.value.code == 3
    err = capsys.readouterr().err
    assert "pesq (PESQ-WB quality" in err and "foleyseal[bench]" in err and "--allow-missing" in err
    assert not out.exists()


def test_allow_missing_leaves_out_what_the_missing_packages_measure(tmp_path, monkeypatch):
    _pretend_missing(monkeypatch, "pedalboard", "pesq")
    corpus, out = _corpus(tmp_path), tmp_path / "out"
    cfg = BenchConfig(
        corpus=corpus, out=out, watermarkers=build_watermarkers(["lsb"]),
        attacks=[get_attack(n) for n in ("volume_x0.25", "reverb_room", "rerecord")], min_clip_s=4.0,
        workers=1, null_per_clip=0, quality_measures=("snr", "pesq"), quality_strengths=(1.0,),
        allow_missing=True,
    )
    res = run_benchmark(cfg, show_progress=False)
    assert {r["attack"] for r in res.rows if r["kind"] == "attack"} == {"none", "volume_x0.25"}
    assert not [r for r in res.rows if r["error"]]
    speech = [r for r in res.rows if r["kind"] == "quality" and r["clip"] == "speech_b.wav"]
    assert speech and speech[0]["snr_db"] > 60 and speech[0]["pesq_wb"] is None
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert [m["dist"] for m in meta["config"]["missing_packages"]] == ["pedalboard", "pesq"]
    md = (out / "summary.md").read_text()
    assert "**packages missing**" in md and "pedalboard (room reverb" in md and "pesq (PESQ-WB" in md
    # without allow_missing the same run stops before writing anything
    with pytest.raises(InputError, match="pedalboard .*; pesq "):
        run_benchmark(replace(cfg, out=tmp_path / "strict", allow_missing=False), show_progress=False)
    assert not (tmp_path / "strict").exists()


def test_a_package_that_only_makes_a_measure_fast_does_not_drop_it(tmp_path, monkeypatch):
    """Without numba ViSQOL is still right, only about 8x slower: the run stops unless missing
    packages are allowed, and then measures ViSQOL all the same."""
    from benchmarks.requirements import NUMBA, VISQOL, missing_requirements
    from benchmarks.robustness import check_requirements

    _pretend_missing(monkeypatch, "numba", present=("pesq", "visqol"))
    assert missing_requirements([], ("snr", "pesq"), plots=False) == []
    assert missing_requirements([], ("snr", "visqol"), plots=False) == [NUMBA]
    _pretend_missing(monkeypatch, "numba", "visqol")
    assert missing_requirements([], ("visqol",), plots=False) == [VISQOL, NUMBA]
    monkeypatch.undo()
    _pretend_missing(monkeypatch, "numba", present=("visqol",))
    cfg = BenchConfig(corpus=tmp_path, out=tmp_path / "out", watermarkers=build_watermarkers(["lsb"]),
                      attacks=[get_attack("none")], quality_measures=("snr", "visqol"))
    with pytest.raises(InputError, match="numba"):
        check_requirements(cfg)
    allowed = check_requirements(replace(cfg, allow_missing=True))
    assert allowed.quality_measures == ("snr", "visqol") and allowed.missing == (NUMBA,)
    assert check_requirements(allowed).missing == (NUMBA,)  # checking again keeps the record


def test_foleyseal_adapter_converts_detections(monkeypatch):
    import provenance.watermark as pw
    from benchmarks.watermarkers import FoleySealWatermarker
    from provenance.core.results import Detection

    seen = {}

    def fake_embed(audio, key, payload, *, strength=1.0, params=None):
        seen.update(key=key, payload=payload, strength=strength, embed_params=params)
        return audio

    def fake_detect(audio, key, known=None, params=None):
        seen.update(known=known, detect_params=params)
        return det

    det = Detection(found=True, payload="00ff00ff00ff00ff", p_value=1e-9, bit_confidence=0.9,
                    segments=(Segment(0.0, 4.0, "00ff00ff00ff00ff", 1e-9),), threshold=1e-6)
    monkeypatch.setattr(pw, "embed", fake_embed)
    monkeypatch.setattr(pw, "detect", fake_detect)
    wm = FoleySealWatermarker(strength=1.5)
    bits = np.unpackbits(np.frombuffer(bytes.fromhex("00ff00ff00ff00ff"), np.uint8))
    wm.embed(_music(1.0, seed=1), bits)
    assert seen["payload"] == "00ff00ff00ff00ff" and seen["strength"] == 1.5 and len(seen["key"]) == 32
    res = wm.detect(_music(1.0, seed=1))
    assert res.found and res.score == pytest.approx(9.0) and res.p_value == 1e-9
    np.testing.assert_array_equal(res.payload_bits, bits)
    assert res.segments[0].end_s == 4.0
    assert wm.with_wrong_key(3).key_seed != wm.key_seed and wm.with_strength(2.0).strength == 2.0
    assert seen["known"] is None  # the bare detector: no issued payloads

    # The store variant: every payload it embeds is issued, and the detector is given them.
    (store_wm,) = build_watermarkers(["foleyseal+store"])
    assert store_wm.name == "foleyseal+store" and store_wm.describe()["store_records"] == 1_000_000
    store_wm.embed(_music(1.0, seed=1), bits)
    store_wm.detect(_music(1.0, seed=1))
    assert seen["known"] is store_wm.issued
    assert seen["known"].find(["00ff00ff00ff00ff", "0123456789abcdef"]) == {"00ff00ff00ff00ff"}
    assert seen["known"].count() == 1_000_001
    assert store_wm.with_wrong_key(2).issued is store_wm.issued

    # The shipped format unless a variant is asked for; the spread variant embeds and reads its own.
    from provenance.watermark.layout import DEFAULT_PARAMS

    assert seen["embed_params"] is DEFAULT_PARAMS and seen["detect_params"] is DEFAULT_PARAMS
    (spread_wm,) = build_watermarkers(["foleyseal-spread"])
    spread_wm.embed(_music(1.0, seed=1), bits)
    spread_wm.with_wrong_key(1).detect(_music(1.0, seed=1))
    assert seen["embed_params"].run_stride == 9 == seen["detect_params"].run_stride
    assert spread_wm.describe()["run_stride"] == 9 and "run_stride" not in wm.describe()


def test_foleyseal_watermarker_round_trip_on_a_corpus_clip():
    from provenance.core.io import read_audio
    from benchmarks.watermarkers import FoleySealWatermarker

    wm, clip, bits = FoleySealWatermarker(), read_audio(corpus_clip("music_orchestral_44k_stereo.flac")), _payload(seed=5)
    marked = wm.embed(clip, bits)
    res = wm.detect(marked)
    assert res.found and res.score > 6 and res.p_value is not None and res.p_value < 1e-6
    np.testing.assert_array_equal(res.payload_bits, bits)
    assert not wm.with_wrong_key(1).detect(marked).found


def test_a_clip_name_with_a_bar_keeps_its_failed_trials_in_the_table(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sf.write(corpus / "take|1.wav", _music(0.5, seed=3).samples.T, SR, subtype="PCM_16")  # too short to mark (under 1 s)
    cfg = BenchConfig(
        corpus=corpus, out=tmp_path / "out", watermarkers=build_watermarkers(["foleyseal"]),
        attacks=[get_attack("mp3_64k")], workers=1, null_per_clip=2, quality_measures=("snr",),
        quality_strengths=(1.0,),
    )
    rows = run_benchmark(cfg, show_progress=False).rows
    assert sorted(r["kind"] for r in rows) == ["attack", "attack", "null", "null", "quality"]
    assert all(r["error"].startswith("embed failed") for r in rows)
    assert {r["attack"] for r in rows if r["kind"] == "attack"} == {"none", "mp3_64k"}
    cell = summarize(rows)["cells"]["mp3_64k"]["foleyseal"]
    assert cell["errors"] == 1 and cell["exact"] is None  # no trial measured: no figure, not 0.0 (qa_bench F4)


@pytest.mark.parametrize("option", [["--strength", "nan"], ["--strength", "0"], ["--seed", "-1"]])
def test_bench_options_out_of_range_are_usage_errors(tmp_path, capsys, option):
    from foleyseal.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "robustness", "--corpus", str(_corpus(tmp_path)), "--out", str(tmp_path / "o"), *option])
    assert exc.value.code == 2 and option[0] in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["", " , ,"])
def test_an_empty_attacks_option_is_a_usage_error_not_every_attack(tmp_path, capsys, value):
    """`--attacks "$ATTACKS"` with the variable unset ran all 67 attacks (the 35-minute suite)."""
    from foleyseal.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "robustness", "--corpus", str(_corpus(tmp_path)), "--out", str(tmp_path / "o"),
              "--attacks", value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--attacks" in err and "names no attack" in err, err
    assert not (tmp_path / "o").exists()


def test_a_run_in_which_every_trial_failed_is_not_a_success(tmp_path, capsys):
    from foleyseal.cli import main

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sf.write(corpus / "short.wav", _music(0.5, seed=3).samples.T, SR, subtype="PCM_16")  # too short to mark (under 1 s)
    with pytest.raises(SystemExit) as exc:
        main(["bench", "robustness", "--corpus", str(corpus), "--out", str(tmp_path / "o"), "--watermarkers",
              "foleyseal", "--attacks", "mp3_64k", "--null-per-clip", "0", "--workers", "1", "--no-progress",
              "--allow-missing"])  # pesq and ViSQOL are in the bench extra, which CI does not install
    err = capsys.readouterr().err
    assert exc.value.code == 3 and "every trial failed; the first: embed failed" in err, err
    assert (tmp_path / "o" / "results.json").exists()  # what was tried is still written down
    # A tool that marks but cannot detect: its quality rows succeed, yet nothing was measured.
    sf.write(corpus / "long.wav", _music(6.0, seed=4).samples.T, SR, subtype="PCM_16")
    copy = _script(tmp_path, "copy", "shutil.copy(sys.argv[1], sys.argv[2])\n")
    crash = _script(tmp_path, "crash", "raise SystemExit('Traceback: boom')\n")
    cfg = tmp_path / "tool.toml"
    cfg.write_text(f"[[watermarker]]\nname = \"t\"\nembed = '{copy} {{input}} {{output}}'\n"
                   f"detect = '{crash} {{input}}'\npayload_regex = '(?P<payload>[0-9a-f]+)'\n")
    with pytest.raises(SystemExit) as exc:
        main(["bench", "robustness", "--corpus", str(corpus), "--out", str(tmp_path / "q"), "--watermarkers", "t",
              "--external-config", str(cfg), "--attacks", "mp3_64k", "--null-per-clip", "2", "--workers", "1",
              "--min-clip-s", "5", "--no-progress", "--allow-missing"])
    assert exc.value.code == 3 and "Traceback: boom" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["bench", "robustness", "--corpus", str(corpus / "short.wav"), "--out", str(tmp_path / "p")])
    assert exc.value.code == 3 and "must be a directory" in capsys.readouterr().err


def test_a_wrong_corpus_or_out_is_said_before_missing_packages(tmp_path, monkeypatch, capsys):
    """The paths are the user's mistake in this very command: installing the bench extra first,
    only to learn the corpus was a file, wastes a round trip."""
    from foleyseal.cli import main

    _pretend_missing(monkeypatch, "pesq", "visqol")
    clip = tmp_path / "clip.wav"
    sf.write(clip, _music(1.0, seed=3).samples.T, SR, subtype="PCM_16")
    for args, said in ((["--corpus", str(clip), "--out", str(tmp_path / "o")], "must be a directory"),
                       (["--corpus", str(tmp_path), "--out", str(clip)], "--out is a file")):
        with pytest.raises(SystemExit) as exc:
            main(["bench", "robustness", *args, "--watermarkers", "lsb", "--attacks", "none"])
        err = capsys.readouterr().err
        assert exc.value.code == 3 and said in err and "pesq" not in err, err


def _group_gone(pgid: int, within_s: float) -> bool:
    import os

    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _start_a_run_with_two_busy_workers(tmp_path: Path) -> subprocess.Popen[bytes]:
    """``bench robustness`` in a new session, returned once both workers are at work (a first
    row is in): the first clip's task ends while the next ones are still running."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for k, seconds in enumerate((6.0, 30.0, 30.0, 30.0)):  # the first ends while the next is at work
        sf.write(corpus / f"music_{k}.flac", _music(seconds, seed=k).samples.T, SR, subtype="PCM_16")
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "foleyseal.cli", "bench", "robustness", "--corpus", str(corpus), "--out", str(out),
         "--watermarkers", "foleyseal", "--attacks", "mp3_64k,speed_+5%,pitch_+1st,stretch_+5%",
         "--workers", "2", "--null-per-clip", "0", "--no-progress", "--allow-missing", "--min-clip-s", "4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    end = time.monotonic() + 120
    while time.monotonic() < end and proc.poll() is None:
        if (out / "results.jsonl").exists() and (out / "results.jsonl").read_text().count("\n") >= 1:
            break
        time.sleep(0.1)
    return proc


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill what a test left of a run's process group (a failed test must not leave workers)."""
    import os
    import signal

    if proc.poll() is None or not _group_gone(proc.pid, 0.5):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_stopped_run_with_two_workers_exits_and_leaves_no_worker(tmp_path, signum):
    """Ctrl-C reaches every process of the terminal's group: with two workers the run printed
    "interrupted" and then often hung for good in the pool's shutdown (a worker interrupted while
    holding the task queue's lock), or exited leaving a worker running its task as an orphan."""
    import os
    import signal

    proc = _start_a_run_with_two_busy_workers(tmp_path)
    try:
        assert proc.poll() is None, "the run ended before it could be stopped"
        os.killpg(proc.pid, getattr(signal, signum))  # what Ctrl-C (or `kill -- -PGID`) does
        stopped = time.monotonic()
        rc = proc.wait(timeout=60)
        # a worker's task is not waited for (it was, for many seconds: a 30 s clip's trials)
        assert time.monotonic() - stopped < 5, f"exited {time.monotonic() - stopped:.1f} s after the signal"
        err = proc.stderr.read().decode()
        assert rc == 128 + getattr(signal, signum), err
        # it said only "interrupted (SIGINT)": nothing on the trials kept, or how to resume
        assert f"finished trials are kept in {tmp_path / 'out' / 'results.jsonl'}; run the same command again" in err, err
        assert _group_gone(proc.pid, 15), "a worker is still running after the command exited"
    finally:
        _end_group(proc)


def test_a_killed_run_leaves_no_worker(tmp_path):
    """SIGKILL (kill -9, the OOM killer) of the main process alone: its workers were re-parented
    to init, went on computing, then waited for ever; now each notices its parent is gone."""
    import os
    import signal

    proc = _start_a_run_with_two_busy_workers(tmp_path)
    try:
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)  # the main process only: nobody tells the workers
        proc.wait(timeout=10)
        # a worker deep in a C routine (a pitch shift) sees the signal when it returns: seconds
        assert _group_gone(proc.pid, 15), "a worker is still running 15 s after its parent was killed"
    finally:
        _end_group(proc)


def test_a_resumed_run_keeps_the_first_runs_time_argv_and_versions(tmp_path):
    """Resuming a finished run rewrote its wall time (135 s became 0.11 s), argv and versions
    with the last call's; the invocations are now kept and the wall time is their sum."""
    corpus, out = _corpus(tmp_path), tmp_path / "out"
    cfg = BenchConfig(corpus=corpus, out=out, watermarkers=build_watermarkers(["lsb"]),
                      attacks=[get_attack("mp3_64k")], workers=1, null_per_clip=1, quality_measures=("snr",),
                      quality_strengths=(1.0,), min_clip_s=4.0)
    run_benchmark(cfg, show_progress=False)
    first = json.loads((out / "results.json").read_text())["meta"]
    run_benchmark(cfg, show_progress=False)  # everything resumed
    meta = json.loads((out / "results.json").read_text())["meta"]
    runs = meta["invocations"]
    assert len(runs) == 2 and runs[0]["wall_s"] == first["wall_s"] and runs[1]["ran_trials"] == 0
    assert meta["wall_s"] == pytest.approx(runs[0]["wall_s"] + runs[1]["wall_s"], abs=0.011)
    assert meta["row_versions"] == {}
    assert f"wall time {meta['wall_s']} s" in (out / "summary.md").read_text()
    assert "in 2 invocations" in (out / "summary.md").read_text()


def test_the_quality_plot_of_a_quick_run_tells_the_watermarkers_apart(tmp_path, monkeypatch):
    """--quick measures one strength: FoleySeal was labelled "(no strength)", both watermarkers
    drew the same grey dashed line, and the unmeasured panels were blank axes."""
    import benchmarks.report as report

    figs = []
    monkeypatch.setattr(report, "_savefig", lambda fig, path: figs.append(fig) or path)
    q = {"foleyseal": {1.0: {"snr_db_median": 27.8, "pesq_wb_median": None, "visqol_median_music": None}},
         "lsb": {1.0: {"snr_db_median": 71.4, "pesq_wb_median": None, "visqol_median_music": None}}}
    report.plot_quality({"quality": q}, tmp_path / "q.png")
    snr, pesq_ax, visqol_ax = figs[0].axes
    labels = snr.get_legend_handles_labels()[1]
    assert labels == ["foleyseal (strength 1 only): 27.8", "lsb (strength 1 only): 71.4"]
    assert len({line.get_color() for line in snr.get_lines()}) == 2
    assert all(any(t.get_text() == "not measured" for t in ax.texts) for ax in (pesq_ax, visqol_ax))


def test_an_unreadable_corpus_file_is_left_out_with_a_word_not_the_whole_run(tmp_path, capsys):
    """One undecodable file anywhere in the corpus folder stopped the run, even with --max-clips 1."""
    from foleyseal.cli import main

    corpus = _corpus(tmp_path)
    (corpus / "zz_garbage.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        main(["bench", "robustness", "--corpus", str(corpus), "--out", str(out), "--watermarkers", "lsb",
              "--attacks", "polarity_invert", "--null-per-clip", "0", "--workers", "1", "--no-progress",
              "--allow-missing", "--min-clip-s", "4", "--json"])
    captured = capsys.readouterr()
    assert exc.value.code == 0, captured.err
    assert "warning: zz_garbage.wav left out of the corpus" in captured.err
    assert [u["file"] for u in json.loads(captured.out)["unreadable"]] == ["zz_garbage.wav"]
    assert "corpus files left out" in (out / "summary.md").read_text()
    assert {r["clip"] for r in read_rows(out / "results.jsonl")} == {"music_a.flac", "speech_b.wav"}


def test_a_second_run_into_the_same_out_is_refused_and_a_killed_runs_lock_is_not_stale(tmp_path, capsys):
    """Two runs into one --out each measured every trial and overwrote each other's report."""
    import os
    import signal

    from foleyseal.cli import main
    from tests._processes import foleyseal, wait_for

    corpus, out = _corpus(tmp_path), tmp_path / "out"
    tool_pid = tmp_path / "tool.pid"
    hang = _script(tmp_path, "hang", f"import os, time\nopen({str(tool_pid)!r}, 'w').write(str(os.getpid()))\n"
                                     "time.sleep(60)\n")
    cfg = tmp_path / "tool.toml"
    cfg.write_text(f"[[watermarker]]\nname = \"h\"\nembed = '{hang} {{input}} {{output}}'\n"
                   "detect = 'true {input}'\npayload_regex = '(?P<payload>[0-9a-f]+)'\n")
    args = ["bench", "robustness", "--corpus", str(corpus), "--out", str(out), "--attacks", "none",
            "--null-per-clip", "0", "--workers", "1", "--no-progress", "--allow-missing", "--min-clip-s", "4"]
    first = foleyseal(*args, "--watermarkers", "h", "--external-config", str(cfg))
    try:
        wait_for(tool_pid.exists, first, "the first run's tool to start")
        with pytest.raises(SystemExit) as exc:
            main([*args, "--watermarkers", "lsb"])
        err = capsys.readouterr().err
        assert exc.value.code == 3 and f"{out}: another run is writing to this folder (pid {first.pid})" in err, err
        first.kill()  # SIGKILL: the run cannot clean up; the OS drops its lock
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        with contextlib.suppress(ProcessLookupError, ValueError, FileNotFoundError):
            os.kill(int(tool_pid.read_text()), signal.SIGKILL)
    with pytest.raises(SystemExit) as exc:
        main([*args, "--watermarkers", "lsb"])
    assert exc.value.code == 0, capsys.readouterr().err


def test_a_resume_after_a_change_of_the_detectors_code_measures_again_and_rows_name_the_code(tmp_path):
    """A resumed run after `git pull` reused every row the old detector had measured (the
    package version did not change); nothing in the results said which code made them."""
    import os
    import shutil

    from tests._processes import ROOT

    # a copy without .git, run from its folder (python -m puts the working folder first on the path)
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", "tests", "docs", "examples", "__pycache__"))
    corpus, out = _corpus(tmp_path), tmp_path / "out"

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "foleyseal.cli", "bench", "robustness", "--corpus", str(corpus), "--out", str(out),
             "--watermarkers", "lsb", "--attacks", "none", "--null-per-clip", "0", "--workers", "1",
             "--no-progress", "--allow-missing", "--min-clip-s", "4"],
            env={**os.environ, "PYTHONPATH": str(copy)}, cwd=copy, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "(4 run, 0 resumed)" in run()
    first = json.loads((out / "results.json").read_text())
    assert first["meta"]["source"]["commit"] is None and len(first["meta"]["source"]["digest"]) == 16
    assert {r["source"]["digest"] for r in first["rows"]} == {first["meta"]["source"]["digest"]}
    assert "(0 run, 4 resumed)" in run()
    report = copy / "benchmarks" / "report.py"  # not code that decides a trial: rows are kept
    report.write_text(report.read_text() + "\n# a comment\n")
    assert "(0 run, 4 resumed)" in run()
    detector = copy / "provenance" / "watermark" / "detect.py"
    detector.write_text(detector.read_text() + "\n# a change of the detector\n")
    assert "(4 run, 0 resumed; 4 of them measured again: OUT held them for other inputs)" in run()
    second = json.loads((out / "results.json").read_text())["meta"]["source"]["digest"]
    assert second != first["meta"]["source"]["digest"]
    assert f"- source: digest {second}" in (out / "summary.md").read_text()


def test_a_run_from_a_git_checkout_records_its_commit(tmp_path):
    from benchmarks.source import ROOT, source_info

    if not (ROOT / ".git").exists() or shutil_which("git") is None:
        pytest.skip("not a git checkout")
    corpus, out = _corpus(tmp_path), tmp_path / "out"
    cfg = BenchConfig(corpus=corpus, out=out, watermarkers=build_watermarkers(["lsb"]), attacks=[get_attack("none")],
                      workers=1, null_per_clip=0, quality_measures=("snr",), quality_strengths=(1.0,), min_clip_s=4.0)
    run_benchmark(cfg, show_progress=False, write_report=False)
    meta = json.loads((out / "results.json").read_text())["meta"]
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert meta["source"]["commit"] == head == source_info()["commit"]
    assert meta["invocations"][-1]["source"]["commit"] == head


def test_a_watermarker_whose_every_trial_failed_reads_na_and_fails_the_run(tmp_path, capsys):
    """A tool that crashed on every embed showed `0.00 / 0.500 (2 err)` and a plain 0.00 by kind,
    as if measured, and the run exited 0."""
    from foleyseal.cli import main

    corpus, out = _corpus(tmp_path), tmp_path / "out"
    crash = _script(tmp_path, "crash", "raise SystemExit('Traceback: boom')\n")
    cfg = tmp_path / "tool.toml"
    cfg.write_text(f"[[watermarker]]\nname = \"broken\"\nembed = '{crash} {{input}} {{output}}'\n"
                   f"detect = '{crash} {{input}}'\npayload_regex = '(?P<payload>[0-9a-f]+)'\n")
    with pytest.raises(SystemExit) as exc:
        main(["bench", "robustness", "--corpus", str(corpus), "--out", str(out), "--watermarkers", "lsb,broken",
              "--external-config", str(cfg), "--attacks", "mp3_64k", "--null-per-clip", "1", "--workers", "1",
              "--min-clip-s", "4", "--no-progress", "--allow-missing"])
    err = capsys.readouterr().err
    assert exc.value.code == 3 and "no trial of watermarker 'broken' was measured" in err and "boom" in err, err
    md = (out / "summary.md").read_text()
    assert re.search(r"\| mp3_64k \| codec \| 0\.00 / 0\.\d+ \| n/a \(2 err\) \|", md), md
    assert re.search(r"\| codec \| 0\.00 \| n/a \(2 err\) \|", md), md  # by kind: no 0.00 for 'broken'
    assert "watermarker 'broken': none of its 6 attack and null trials was measured" in md


def test_an_external_tools_failures_are_said_with_its_name_and_what_happened(tmp_path):
    """An empty or text embed output gave libsndfile's "Error opening '/tmp/.../output.wav'"
    (a deleted file, no watermarker named); a timeout named only the interpreter; a tool killed
    by a signal gave "exited -11: " and nothing more."""
    audio = _music(1.0, seed=4)
    empty = _script(tmp_path, "empty", "open(sys.argv[2], 'wb').close()\n")
    text = _script(tmp_path, "text", "open(sys.argv[2], 'w').write('not audio at all')\n")
    segv = _script(tmp_path, "segv", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    hang = _script(tmp_path, "hang", "import time\ntime.sleep(30)\n")
    wm = ExternalCommandWatermarker(name="bad", embed_cmd=empty + " {input} {output}", detect_cmd=segv + " {input}",
                                    payload_regex="(?P<payload>[0-9a-f]+)", timeout_s=1.0)
    for tool, said in ((empty, "embed output is not a readable audio file (0 bytes)"),
                       (text, "embed output is not a readable audio file (16 bytes; ")):
        with pytest.raises(ExternalToolError) as err:
            replace(wm, embed_cmd=tool + " {input} {output}").embed(audio, _payload())
        assert str(err.value).startswith(f"watermarker 'bad': {said}") and "/tmp" not in str(err.value), err.value
    with pytest.raises(ExternalToolError, match=r"^watermarker 'bad': .*segv\.py \S+ killed by SIGSEGV$"):
        wm.detect(audio)
    with pytest.raises(ExternalToolError, match=r"^watermarker 'bad': \S+ \S+hang\.py \S+ timed out after 1.0 s$"):
        replace(wm, detect_cmd=hang + " {input}").detect(audio)


def test_a_crop_longer_than_the_clip_is_noted_and_left_out_of_the_attacks_figures(tmp_path):
    """crop_60s on a 6 s clip changed nothing and counted as an exact recovery under a crop."""
    corpus, out = _corpus(tmp_path), tmp_path / "out"
    toml = tmp_path / "attacks.toml"
    toml.write_text('[[attack]]\ntype = "Crop"\nname = "crop_60s"\nduration_s = 60.0\n\n'
                    '[[attack]]\ntype = "Crop"\nname = "crop_5.5s"\nduration_s = 5.5\n')
    from benchmarks.attacks import load_attack_list

    cfg = BenchConfig(corpus=corpus, out=out, watermarkers=build_watermarkers(["lsb"]),
                      attacks=load_attack_list(toml), workers=1, null_per_clip=0, quality_measures=("snr",),
                      quality_strengths=(1.0,), min_clip_s=4.0)
    rows = run_benchmark(cfg, show_progress=False).rows
    by = {(r["clip"], r.get("attack")): r for r in rows if r["kind"] == "attack"}
    long = by[("music_a.flac", "crop_60s")]
    assert long["attack_details"]["unchanged"] is True and "not longer than the crop of 60 s" in long["attack_details"]["note"]
    assert by[("music_a.flac", "crop_5.5s")]["attack_details"].get("unchanged") is None  # 6 s clip: cropped
    assert by[("speech_b.wav", "crop_5.5s")]["attack_details"]["unchanged"] is True  # 5 s clip: not
    s = summarize(rows)
    assert "lsb" not in s["cells"]["crop_60s"] and s["cells"]["crop_5.5s"]["lsb"]["n"] == 1
    md = (out / "summary.md").read_text()
    assert "| crop_60s | time | n/a (2 unchanged) |" in md, md
    assert re.search(r"\| crop_5\.5s \| time \| \d\.\d\d / \d\.\d+ \(1 unchanged\) \|", md), md
    assert "left out of that attack's figures" in md


def test_a_finished_run_leaves_one_valid_row_per_line_in_its_jsonl(tmp_path):
    """Torn and duplicated lines (an interrupted write, a trial measured again) stayed in
    results.jsonl for ever, and reading it line by line (jq, pandas) failed."""
    corpus, out = _corpus(tmp_path), tmp_path / "out"
    cfg = BenchConfig(corpus=corpus, out=out, watermarkers=build_watermarkers(["lsb"]), attacks=[get_attack("none")],
                      workers=1, null_per_clip=1, quality_measures=("snr",), quality_strengths=(1.0,), min_clip_s=4.0)
    run_benchmark(cfg, show_progress=False, write_report=False)
    jsonl = out / "results.jsonl"
    lines = jsonl.read_text().splitlines()
    assert len(lines) == 6
    failed = {**json.loads(lines[0]), "error": "boom"}  # a failed row after a good one: the good one stays
    jsonl.write_text("\n".join([*lines, lines[1], json.dumps(failed), lines[2][:30]]) + "\n")
    again = run_benchmark(cfg, show_progress=False, write_report=False)
    assert again.ran_trials == 0
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]  # every line is a row
    assert [r["trial_id"] for r in rows] == [json.loads(line)["trial_id"] for line in lines]
    assert not any(r["error"] for r in rows)
    # rows of another setting stay for a run with that setting
    run_benchmark(replace(cfg, strength=0.5), show_progress=False, write_report=False)
    assert len(jsonl.read_text().splitlines()) == 12
    # rows of other code go: after a code change every trial was in the file twice
    old = json.loads(lines[0])
    old["source"] = {**old["source"], "digest": "0" * 16}
    old["inputs"] = f"{old['inputs']}-older-code"
    jsonl.write_text(jsonl.read_text() + json.dumps(old) + "\n")
    run_benchmark(cfg, show_progress=False, write_report=False)
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(rows) == 12 and not any(r["source"]["digest"] == "0" * 16 for r in rows)
