"""`foleyseal generate` end to end: marked, signed, stored outputs; candidates, stems, cue
sheets; and clear errors (with nothing written) for inputs that cannot be scored."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from test_v2a_video import bounce_video, still_video

from foleyseal.cli import main
from provenance.c2pa import read_credentials
from provenance.core.config import load_settings, trust_anchors_pem
from provenance.core.errors import InputError
from provenance.core.io import read_audio
from provenance.keys.pki import install_dev_chain
from provenance.store import open_store
from provenance.watermark import SOFT_BINDING_ALG, load_key, new_key, save_key
from provenance.watermark.files import detect_file
from v2a_core.pipeline import GenerateOptions, generate


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("home")
    s = load_settings(root)
    install_dev_chain(s)
    save_key(new_key(), s.watermark_key_path)
    return root


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path, _ = bounce_video(tmp_path_factory.mktemp("v") / "bounce.mp4", duration_s=8.0)
    return path


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_generated_video_is_watermarked_signed_and_stored(home, video, tmp_path):
    settings = load_settings(home)
    out = tmp_path / "scored.mp4"
    opts = GenerateOptions(prompt="ball bouncing on a wooden floor", negative_prompt="music", seed=5)
    result = generate(video, out, opts, settings=settings)
    (marked,) = result.outputs
    assert marked.path == out and out.is_file()
    creds = read_credentials(out, trust_anchors_pem=trust_anchors_pem(settings))
    assert creds.present and creds.state == "Trusted", creds.error
    rec = creds.generation_record
    assert rec["prompt"] == opts.prompt and rec["negative_prompt"] == "music" and rec["seed"] == 5
    assert rec["generator"]["name"] == "builtin" and rec["source_video_sha256"]
    found = detect_file(out, load_key(settings.watermark_key_path))  # through AAC
    assert found.found and found.payload == marked.payload
    store = open_store(settings)
    try:
        assert store.find_by_payload(SOFT_BINDING_ALG, marked.payload) is not None
    finally:
        store.close()
    with av.open(str(out)) as c:  # the video is copied and now has a 48 kHz stereo soundtrack
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.sample_rate == 48_000
        assert c.streams.audio[0].codec_context.channels == 2
        assert sum(1 for _ in c.decode(video=0)) == 192


def test_private_prompts_leave_out_what_the_prompts_chose(home, video, tmp_path):
    """With the prompts left out, the signed record still listed the palette and the exclusions
    they chose: "excluded: animal.birds" spelled the negative prompt "birds" back."""
    settings = load_settings(home)
    opts = GenerateOptions(prompt="secret forest project", negative_prompt="birds", seed=5, include_prompts=False,
                           cue_sheet_path=tmp_path / "cues.json")
    (marked,) = generate(video, tmp_path / "private.wav", opts, settings=settings).outputs
    rec = read_credentials(marked.path, trust_anchors_pem=trust_anchors_pem(settings)).generation_record
    text = json.dumps(rec)
    assert "secret" not in text and "forest" not in text and "birds" not in text, text
    assert rec["prompts_included"] is False and rec["parameters"]["cues"] > 0
    sheet = json.loads((tmp_path / "cues.json").read_text())  # the user's own file keeps them
    assert sheet["negative_prompt"] == "birds" and any("birds" in c for c in sheet["excluded"])


def test_progress_bars_go_to_stderr_and_only_where_a_person_watches(home, video, tmp_path, capsys, monkeypatch):
    """Redirected, stdout held four full-width bars before the result line (mark draws its bars
    on stderr, and only for a terminal or FOLEYSEAL_PROGRESS)."""
    monkeypatch.delenv("FOLEYSEAL_PROGRESS", raising=False)
    code, out, err = _run(["generate", str(video), "-o", str(tmp_path / "a.wav"), "--home", str(home)], capsys)
    assert code == 0 and "analyze" not in out and "\u2501" not in out + err, out
    monkeypatch.setenv("FOLEYSEAL_PROGRESS", "1")
    code, out, err = _run(["generate", str(video), "-o", str(tmp_path / "b.wav"), "--home", str(home)], capsys)
    assert code == 0 and "analyze" in err and "analyze" not in out, (out, err)


def test_cli_candidates_stems_and_cue_sheets(home, video, tmp_path, capsys):
    stems = tmp_path / "stems"
    stems.mkdir()
    code, out, err = _run(
        ["generate", str(video), "-o", str(tmp_path / "track.flac"), "--prompt", "ocean, waves",
         "--negative-prompt", "music", "--candidates", "2", "--stems", str(stems),
         "--cue-sheet", str(tmp_path / "cues.json"), "--loudness", "-18", "--home", str(home), "--json"],
        capsys,
    )
    assert code == 0, err
    summary = json.loads(out)
    paths = [Path(o["path"]) for o in summary["outputs"]]
    assert [p.name for p in paths] == ["track-1.flac", "track-2.flac"]
    assert len({o["payload"] for o in summary["outputs"]}) == 2
    a, b = (read_audio(p) for p in paths)
    assert a.sample_rate == 48_000 and a.channels == 2 and abs(a.duration_s - 8.0) < 0.01
    assert a.subtype == b.subtype == "PCM_24"
    assert not np.array_equal(a.samples, b.samples)  # seeds 0 and 1
    assert all(abs(x + 18.0) <= 1.0 for x in summary["loudness_lufs"])
    layers = {s["layer"] for s in summary["stems"]}
    assert "ambience" in layers and "music" not in layers  # the negative prompt holds for stems
    assert not list(stems.glob("*music*"))
    for s in summary["stems"]:
        assert Path(s["path"]).is_file() and s["payload"]
    key = load_key(load_settings(home).watermark_key_path)
    for o in summary["outputs"]:  # lossless outputs: the watermark payload reads back exactly
        found = detect_file(Path(o["path"]), key)
        assert found.found and found.payload == o["payload"]
    sheet = json.loads((tmp_path / "cues-1.json").read_text())
    assert sheet["negative_prompt"] == "music"
    assert not [c for c in sheet["cues"] if c["layer"] == "music"]
    assert {"water.ocean"} <= {c["category"] for c in sheet["cues"]}


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: still_video(d / "short.mp4", duration_s=0.5), "at least"),
        (lambda d: still_video(d / "one.mp4", duration_s=0.04), "at least"),
        (lambda d: [sf.write(d / "a.wav", np.zeros(48_000 * 5, np.float32), 48_000), d / "a.wav"][1], "no video stream"),
        (lambda d: [(d / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(4000)), d / "bad.mp4"][1], "cannot"),
        (lambda d: d / "missing.mp4", "no such file"),
        # FFmpeg reads any text as an "ansi" video: a small file was "0.20 s long", a big one was
        # analysed and rendered before failing, and into .mp4 "cannot hold notes.txt's ansi video"
        (lambda d: [(d / "notes.txt").write_text("".join(f"log line {i}\n" for i in range(6000))),
                    d / "notes.txt"][1], "is text, not a video"),
    ],
)
def test_cli_bad_inputs_exit_3_and_write_nothing(home, tmp_path, capsys, make, message):
    src = tmp_path / "src"
    src.mkdir()
    path = make(src)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = _run(["generate", str(path), "-o", str(out_dir / "x.mp4"), "--home", str(home), "--json"], capsys)
    assert code == 3
    assert message in err and "error:" in err
    assert _leftovers(out_dir) == []


def test_portrait_video_and_audio_only_output(home, tmp_path, capsys):
    path = still_video(tmp_path / "portrait.mp4", duration_s=6.0, size=(180, 320), rgb=(30, 120, 40))
    code, out, err = _run(["generate", str(path), "-o", str(tmp_path / "p.wav"), "--home", str(home), "--json"], capsys)
    assert code == 0, err
    audio = read_audio(Path(json.loads(out)["outputs"][0]["path"]))
    assert audio.sample_rate == 48_000 and audio.channels == 2 and abs(audio.duration_s - 6.0) < 0.01


@pytest.mark.parametrize("args", [["--seed", str(2**63)], ["--seed", str(2**64 + 1)], ["--seed", str(2**32)],
                                  ["--seed", "-1"], ["--seed", str(2**32 - 1), "--candidates", "2"]])
def test_cli_seed_out_of_range_is_a_usage_error_before_any_work(home, video, tmp_path, capsys, args):
    code, out, err = _run(["generate", str(video), "-o", str(tmp_path / "s.wav"), *args, "--home", str(home)], capsys)
    assert code == 2, err
    assert "--seed" in err and "4294967295" in err
    assert _leftovers(tmp_path) == []


def test_api_seed_range_is_checked_for_every_candidate(home, video, tmp_path):
    with pytest.raises(InputError, match="seeds up to 4294967296"):
        generate(video, tmp_path / "s.wav", GenerateOptions(seed=2**32 - 2, candidates=3), settings=load_settings(home))
    assert _leftovers(tmp_path) == []


def test_the_largest_seed_is_recorded_exactly(home, video, tmp_path):
    settings = load_settings(home)
    out = tmp_path / "top.wav"
    generate(video, out, GenerateOptions(seed=2**32 - 1, duration_s=5.0), settings=settings)
    rec = read_credentials(out, trust_anchors_pem=trust_anchors_pem(settings)).generation_record
    assert rec["seed"] == 2**32 - 1 and isinstance(rec["seed"], int)


def test_cli_json_summary_is_strict_json_for_silent_or_unmeasured_loudness(home, video, tmp_path, capsys, monkeypatch):
    import v2a_core.pipeline as pipeline

    marked = pipeline.MarkedFile(tmp_path / "x.wav", "soundtrack", 0, "0123456789abcdef", "urn:c2pa:x")
    result = pipeline.GenerateResult((marked, marked), loudness_lufs=(float("-inf"), float("nan")),
                                     true_peak_dbtp=(float("-inf"), -1.234))
    monkeypatch.setattr(pipeline, "generate", lambda *a, **k: result)

    def strict(name: str):
        raise ValueError(f"not JSON: {name}")

    code, out, err = _run(["generate", str(video), "-o", str(tmp_path / "x.wav"), "--home", str(home), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out, parse_constant=strict)
    assert summary["loudness_lufs"] == [None, None] and summary["true_peak_dbtp"] == [None, -1.23]
    code, out, err = _run(["generate", str(video), "-o", str(tmp_path / "x.wav"), "--home", str(home)], capsys)
    assert code == 0, err
    assert "no LUFS measured" in out and "-1.2 dBTP" in out


@pytest.mark.parametrize("stop", ["error", "interrupt"])
def test_a_run_that_stops_midway_names_the_files_it_had_written(home, video, tmp_path, capsys, monkeypatch, stop):
    """Candidate 1 and its stems were published, then the run stopped (an interrupt during
    marking, an error in candidate 2): it said only "interrupted (SIGTERM)" or the error, and
    the user could not tell which files existed."""
    import v2a_core.pipeline as pipeline

    delivered = pipeline._deliver_mix
    calls = []

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt if stop == "interrupt" else InputError("candidate 2 failed")
        return delivered(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_deliver_mix", second_fails)
    out = tmp_path / "x.wav"
    code, _, err = _run(["generate", str(video), "-o", str(out), "--candidates", "2", "--stems", str(tmp_path / "st"),
                         "--home", str(home), "--json"], capsys)
    assert code == (130 if stop == "interrupt" else 3), err
    written = [tmp_path / "x-1.wav", *sorted((tmp_path / "st").iterdir())]
    assert all(p.is_file() for p in written) and not (tmp_path / "x-2.wav").exists()
    line = next(x for x in err.splitlines() if x.startswith("written before the run stopped"))
    assert [p for p in written if str(p) not in line] == [], line


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "args, message",
    [
        (["src.mp4", "-o", "out.wav", "--cue-sheet", "src.mp4"], "the cue sheet is the input video"),
        (["src.mp4", "-o", "out.wav", "--cue-sheet", "out.wav"], "the cue sheet and the output are the same file"),
        (["src.mp4", "-o", "out.wav", "--cue-sheet", "missing_dir/c.json"], "the folder of the cue sheet does not exist"),
        (["src.mp4", "-o", "out.wav", "--cue-sheet", "sub"], "the cue sheet is a directory"),
        (["clip-2.mp4", "-o", "clip.mp4", "--candidates", "3"], "candidate output 2 is the input video"),
        (["src.mp4", "-o", "x.wav", "--candidates", "2", "--cue-sheet", "x.wav"], "cue sheet 1 and candidate output 1"),
        (["src.mp4", "-o", "x.mkv", "--cue-sheet", "x.mkv.c2pa"], "the cue sheet and the C2PA sidecar of the output"),
        (["src.mp4", "-o", "x.wav", "--stems", ".", "--cue-sheet", "x-music.flac"], "the cue sheet and the music stem"),
        (["src.mp4", "-o", "x.wav", "--stems", "src.mp4"], "the stems folder is a file"),
        (["src.mp4", "-o", "x.wav", "--stems", "st", "--cue-sheet", "st"], "the cue sheet and the stems folder are the same path"),
        (["src.mp4", "-o", "x.wav", "--stems", "x.wav"], "the output and the stems folder are the same path"),
        (["src.mp4", "-o", "x.wav", "--stems", "x.wav/stems"], "the stems folder would be made inside the output"),
        (["src.mp4", "-o", "sub/../src.mp4"], "the output is the input video"),
    ],
)
def test_cli_every_output_path_is_checked_before_any_work(home, video, tmp_path, capsys, monkeypatch, args, message):
    work = tmp_path / "w"
    work.mkdir()
    (work / "sub").mkdir()
    (work / "src.mp4").write_bytes(video.read_bytes())
    (work / "clip-2.mp4").write_bytes(video.read_bytes())
    (work / "out.wav").write_bytes(b"the user's earlier file")
    monkeypatch.chdir(work)
    before = _snapshot(work)
    code, _, err = _run(["generate", *args, "--home", str(home), "--json"], capsys)
    assert code == 3, err
    assert message in err, err
    assert _snapshot(work) == before
    assert sorted(p.name for p in work.iterdir()) == ["clip-2.mp4", "out.wav", "src.mp4", "sub"]


@pytest.mark.parametrize(
    "source, out, message",
    [("bounce.mp4", "x.webm", "WebM holds VP8, VP9 or AV1 video only, and bounce.mp4 is h264"),
     ("film.mkv", "x.mp4", "cannot hold film.mkv's srt subtitles (they are copied as they are); write .mkv instead")],
)
def test_a_video_output_that_cannot_hold_the_picture_or_subtitles_is_refused_before_any_work(
        home, video, tmp_path, capsys, monkeypatch, source, out, message):
    """The picture is copied as it is, and subtitles too unless they are text another container
    takes in its own text format: a container that cannot hold them was found only when the
    finished soundtrack was written, after analysis and rendering. (The subtitle case takes MP4's
    text format away, standing for bitmap subtitles, which Python cannot make.)"""
    import v2a_core.pipeline as pipeline
    from provenance.core.io import video as video_io
    from tests._multitrack import multitrack_video

    if source == "film.mkv":
        monkeypatch.setattr(video_io, "_TEXT_SUBTITLE_ENCODERS", {})
        multitrack_video(tmp_path / source, [], seconds=6.0)
    else:
        (tmp_path / source).write_bytes(video.read_bytes())

    def no_work(*args, **kwargs):
        raise AssertionError("the soundtrack was made before the output was checked")

    monkeypatch.setattr(pipeline, "_generate_all", no_work)
    code, _, err = _run(["generate", str(tmp_path / source), "-o", str(tmp_path / out), "--home", str(home)], capsys)
    assert code == 3, err
    assert message in err, err
    assert not (tmp_path / out).exists()


def test_an_output_folder_that_takes_no_file_is_refused_before_any_work(home, video, tmp_path, capsys, monkeypatch):
    """A read-only output folder was found only when the finished soundtrack was written, after
    analysis and rendering. /sys takes no new file even for root (a chmod would not stop root)."""
    import tempfile

    import v2a_core.pipeline as pipeline

    try:
        fd, name = tempfile.mkstemp(dir="/sys")
    except OSError:
        pass
    else:
        os.close(fd)
        os.unlink(name)
        pytest.skip("/sys takes new files here")

    def no_work(*args, **kwargs):
        raise AssertionError("the generator was started")

    monkeypatch.setattr(pipeline, "_generator", no_work)
    code, _, err = _run(["generate", str(video), "-o", "/sys/foleyseal-out.mp4", "--home", str(home)], capsys)
    assert code == 3, err
    assert err.startswith("error: /sys/foleyseal-out.mp4: "), err


def test_a_loudness_target_too_quiet_to_carry_the_mark_says_to_raise_it(home, video, tmp_path):
    """At -65 LUFS (inside the documented -70..-5) the refusal only said to loosen the negative
    prompt or ask for a lasting sound, though the quiet target was what left too little sound."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(InputError) as caught:
        generate(video, out_dir / "x.wav", GenerateOptions(loudness_lufs=-65.0), settings=load_settings(home))
    # the user's own quiet target, the likeliest cause, comes first (it came after the prompt advice)
    assert "): raise --loudness: at -65 LUFS much of the soundtrack is quieter than -60 dBFS, which carries no " \
           "mark; or loosen --negative-prompt" in str(caught.value), caught.value
    assert _leftovers(out_dir) == []


def test_the_generator_is_told_whether_stems_are_kept_and_where_to_work(home, video, tmp_path, monkeypatch):
    """Stems are made only when asked for (``--stems``): for a long video each is a full-length
    signal, so the built-in generator renders the mix alone otherwise (the same mix). A long
    soundtrack's working files go beside the output, on the disk it is written to."""
    import v2a_core.generators.builtin as builtin

    asked: list[bool] = []
    real_render = builtin.render

    def recording_render(sheet, **kwargs):
        asked.append(kwargs["stems"])
        assert kwargs["buffers"].folder == tmp_path
        return real_render(sheet, **kwargs)

    monkeypatch.setattr(builtin, "render", recording_render)
    settings = load_settings(home)
    plain = generate(video, tmp_path / "plain.wav", GenerateOptions(prompt="rain, calm music"), settings=settings)
    kept = generate(video, tmp_path / "kept.wav", GenerateOptions(prompt="rain, calm music", stems_dir=tmp_path / "s"),
                    settings=settings)
    assert asked == [False, True] and not plain.stems and {s.layer for s in kept.stems} >= {"ambience", "music"}
    # the same soundtrack either way: only the two marks (other payloads) tell them apart
    a, b = read_audio(tmp_path / "plain.wav").samples, read_audio(tmp_path / "kept.wav").samples
    assert a.shape == b.shape and 10 * np.log10(np.sum(a.astype(np.float64) ** 2) / np.sum((a - b) ** 2.0)) > 20


def test_words_of_either_prompt_that_name_no_sound_are_said_once(home, video, tmp_path, capsys):
    """A prompt word the generator has no sound for was dropped without a word (it was only in
    the cue sheet's unmatched_terms), and a negative-prompt word that removes nothing was not
    reported at all: a user asking for "no laughter" could not tell it removed nothing."""
    code, out, err = _run(["generate", str(video), "-o", str(tmp_path / "x.wav"), "--prompt", "rain, marimba",
                           "--negative-prompt", "laughter", "--candidates", "2", "--home", str(home), "--json"], capsys)
    assert code == 0, err
    notes = json.loads(out)["notes"]
    assert len(notes) == 2, notes  # once for both candidates
    assert notes[0].startswith("the prompt's 'marimba' names no sound") and "laughter" in notes[1]
    code, out, err = _run(["generate", str(video), "-o", str(tmp_path / "y.wav"), "--prompt", "rain",
                           "--negative-prompt", "speech, hiss", "--home", str(home)], capsys)
    assert code == 0, err
    assert "note: the negative prompt's 'hiss' names no sound" in out and "speech" not in out


def test_too_little_disk_for_a_long_soundtracks_working_files_is_refused_before_any_work(home, video, tmp_path,
                                                                                       monkeypatch):
    """A long video's soundtrack is worked on in files beside the output; on a disk too full for
    them the run failed only after its analysis, minutes in."""
    import shutil
    from collections import namedtuple

    import v2a_core.render.buffers as buffers

    assert buffers.disk_needed_bytes(60.0, buffers.Buffers()) == 0  # a minute stays in memory
    assert buffers.disk_needed_bytes(7200.0, buffers.Buffers()) == 2 * 7200 * 384_000
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(buffers, "disk_needed_bytes", lambda seconds, b: 2 * 7200 * 384_000)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * 2**30, 9 * 2**30, 2**30))
    monkeypatch.setattr("v2a_core.generators.builtin.analyze", lambda *a, **k: pytest.fail("analysed"))
    with pytest.raises(InputError) as caught:
        generate(video, tmp_path / "x.mp4", GenerateOptions(), settings=load_settings(home))
    assert str(caught.value).startswith(f"{tmp_path}: scoring 8 s of video needs about 5.5 GB of free space here")
    assert "1.1 GB is free" in str(caught.value) and list(tmp_path.iterdir()) == []


def test_cli_makes_a_missing_stems_folder_with_its_parents(home, video, tmp_path, capsys):
    stems = tmp_path / "new" / "stems"
    code, out, err = _run(["generate", str(video), "-o", str(tmp_path / "x.wav"), "--stems", str(stems) + "/",
                           "--duration", "5", "--home", str(home), "--json"], capsys)
    assert code == 0, err
    layers = {s["layer"] for s in json.loads(out)["stems"]}
    assert layers and sorted(p.name for p in stems.iterdir()) == sorted(f"x-{layer}.flac" for layer in layers)


def test_cli_a_failed_run_leaves_no_stems_folder_behind(home, video, tmp_path, capsys):
    from test_v2a_generators import TEMPLATE

    work = tmp_path / "w"
    work.mkdir()
    # the generator fails after every check passed: the folder made for the stems goes again
    code, _, err = _run(["generate", str(video), "-o", str(work / "x.wav"), "--stems", str(work / "a" / "stems"),
                         "--generator-command", TEMPLATE + " --mode fail", "--home", str(home)], capsys)
    assert code == 3 and "CUDA out of memory" in err, err
    # a check fails: the folder is never made
    code, _, err = _run(["generate", str(video), "-o", str(work / "x.wav"), "--stems", str(work / "b"),
                         "--cue-sheet", str(work / "missing" / "c.json"), "--home", str(home)], capsys)
    assert code == 3 and "the folder of the cue sheet does not exist" in err, err
    assert _leftovers(work) == []


def test_cli_truncated_video_exits_3_naming_truncation(home, tmp_path, capsys):
    from test_v2a_video import _faststart_video

    full = _faststart_video(tmp_path / "full.mp4", 10.0)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = _run(["generate", str(cut), "-o", str(out_dir / "x.mp4"), "--home", str(home)], capsys)
    assert code == 3 and "truncated" in err and "the video is" not in err, err
    assert _leftovers(out_dir) == []


def test_a_soundtrack_too_short_to_read_back_is_refused_for_its_length(video, tmp_path, monkeypatch):
    """--duration 1 s: a soundtrack of sound from start to end was refused as having "too little
    sound", with the advice to loosen --negative-prompt; its length is the cause. 1.2 s reads back."""
    import hashlib

    import provenance.store.repository as repo
    from provenance.watermark import WatermarkKey

    settings = load_settings(tmp_path / "home")
    install_dev_chain(settings)
    save_key(WatermarkKey(hashlib.sha256(b"foleyseal test key").digest()), settings.watermark_key_path)
    monkeypatch.setattr(repo.secrets, "token_bytes", lambda n: bytes.fromhex("5eed0fc0ffee1234")[:n])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError) as exc:
        generate(video, out / "x.wav", GenerateOptions(duration_s=1.0), settings=settings)
    assert "the soundtrack is 1.04 s long, shorter than one 4.32 s watermark block" in exc.value.message
    assert "ask for a longer --duration, or score a longer video" in exc.value.message
    assert "negative-prompt" not in exc.value.message and list(out.iterdir()) == []
    assert generate(video, out / "y.wav", GenerateOptions(duration_s=1.2), settings=settings).outputs


def test_cli_an_unknown_generator_is_a_usage_error_naming_the_known_ones(home, video, tmp_path, capsys):
    """It was exit 3, the code of bad input, for a mistyped option value."""
    code, _, err = _run(["generate", str(video), "-o", str(tmp_path / "x.wav"), "--generator", "nosuch",
                         "--home", str(home)], capsys)
    assert code == 2 and "unknown generator 'nosuch'; available: builtin, external" in err, err
    assert _leftovers(tmp_path) == []


def test_cli_too_short_duration_is_named_and_refused_before_any_work(home, video, tmp_path, capsys, monkeypatch):
    import v2a_core.pipeline as pipeline

    def no_work(*a, **k):
        raise AssertionError("the generator was loaded: the check came after the work started")

    monkeypatch.setattr(pipeline, "_generator", no_work)
    code, _, err = _run(["generate", str(video), "-o", str(tmp_path / "x.wav"), "--duration", "0.5",
                         "--home", str(home)], capsys)
    assert code == 3, err
    assert "--duration 0.5 s is too short" in err and "at least 1.00 s" in err and "the video is" not in err
    assert _leftovers(tmp_path) == []


# ------------------------------------------------- outputs whose sound cannot carry the watermark
def test_sound_seconds_counts_frames_above_the_floor():
    from provenance.core.audio import Audio
    from v2a_core.pipeline import sound_seconds

    x = np.zeros((2, 48_000 * 4), np.float32)
    x[1, 48_000 : 48_000 + 24_000] = 0.01  # 0.5 s at -40 dBFS on one channel
    x[0, 96_000:120_000] = 1e-4  # 0.5 s at -80 dBFS: not sound
    assert sound_seconds(Audio(x, 48_000)) == pytest.approx(0.5)
    assert sound_seconds(Audio(np.zeros((2, 1000), np.float32), 48_000)) == 0.0


def _store_count(home: Path) -> int:
    store = open_store(load_settings(home))
    try:
        return store.count()
    finally:
        store.close()


@pytest.mark.parametrize(
    "kind, message",
    [("external", "the soundtrack holds 0.50 s of sound (louder than -60 dBFS) in 8.00 s; too little to read "
                  "the watermark back (it reads reliably from 4.32 s of sound): the generator 'external' made no more sound"),
     ("silent", "the soundtrack is silent (nothing louder than -60 dBFS); too little to read the "
                "watermark back (it reads reliably from 4.32 s of sound): loosen --negative-prompt"),
     ("blip", "too little to read the watermark back (it reads reliably from 4.32 s of sound): loosen "
              "--negative-prompt"),
     ("tone", "the soundtrack holds 8.00 s of sound (louder than -60 dBFS) in 8.00 s; yet the watermark cannot be "
              "read back from it: too little of its sound spreads over 250-5500 Hz"),
     ("several", "the generator 'external' made no more sound than that; check its output (external generator "
                 "'external' wrote 3 files; the soundtrack is a_take.wav (audio before video, then the first by "
                 "name), not bounce.wav and c_take.flac); nothing was written")],
)
def test_a_soundtrack_too_silent_to_carry_the_mark_is_refused_and_nothing_published(home, video, tmp_path, kind,
                                                                                     message):
    from test_v2a_generators import TEMPLATE
    from test_v2a_video import flash_video

    source = video
    opts = GenerateOptions(generator="external", generator_command=TEMPLATE + " --mode short")
    if kind in ("tone", "several"):  # a lone tone fills too few bands to hold the mark; a silent take
        opts = GenerateOptions(generator="external", generator_command=TEMPLATE + f" --mode {kind}")
    if kind == "silent":  # the negative prompt removes every sound the picture would get
        opts = GenerateOptions(negative_prompt="impacts, ambience")
    if kind == "blip":  # one flash: one interface blip, well under a second of sound
        source, _ = flash_video(tmp_path / "flash.mp4", duration_s=6.0, onsets=(40,))
        opts = GenerateOptions(negative_prompt="ambience")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    records = _store_count(home)
    with pytest.raises(InputError, match=re.escape(message)):
        generate(source, out_dir / "x.mp4", opts, settings=load_settings(home))
    assert _leftovers(out_dir) == [] and _store_count(home) == records


def test_a_soundtrack_whose_mark_the_output_codec_takes_is_refused_for_that_reason(home, video, tmp_path,
                                                                                     monkeypatch):
    """The mark is read back from the file written too. When the output's encoder takes it (here
    a writer that keeps only what lies below 200 Hz, under the mark's band), the refusal says so
    and names the output; it does not blame a soundtrack that has plenty of sound."""
    import numpy as np
    from scipy.signal import butter, sosfilt

    import provenance.core.io as audio_io

    real_write = audio_io.AudioWriter.write

    def band_limiting_write(writer, block):
        low = sosfilt(butter(8, 200, fs=writer.sample_rate, output="sos"), np.asarray(block), axis=1)
        return real_write(writer, low.astype(np.float32))

    monkeypatch.setattr(audio_io.AudioWriter, "write", band_limiting_write)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    records = _store_count(home)
    with pytest.raises(InputError) as caught:
        generate(video, out_dir / "x.flac", GenerateOptions(prompt="rain"), settings=load_settings(home))
    message = str(caught.value)
    assert message.startswith(f"{out_dir / 'x.flac'}: the mark read back from the audio before encoding, but in "
                              "the FLAC file written it is not found"), message
    assert "too little sound" not in message and message.endswith("nothing was written")
    assert _leftovers(out_dir) == [] and _store_count(home) == records


def test_a_stem_too_silent_to_carry_the_mark_is_left_out_with_a_note(home, tmp_path, capsys):
    from test_v2a_video import flash_video

    source, _ = flash_video(tmp_path / "flash.mp4", duration_s=6.0, onsets=(40,))
    stems = tmp_path / "stems"
    code, out, err = _run(["generate", str(source), "-o", str(tmp_path / "x.wav"), "--prompt", "room tone",
                           "--stems", str(stems), "--home", str(home), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert [s["layer"] for s in summary["stems"]] == ["ambience"]
    (note,) = summary["notes"]
    assert note.startswith("x-events.flac not written: the events stem holds") and "4.32 s of sound" in note
    assert sorted(p.name for p in stems.iterdir()) == ["x-ambience.flac"]
    key = load_key(load_settings(home).watermark_key_path)
    for path in [tmp_path / "x.wav", stems / "x-ambience.flac"]:  # what was written carries its payload
        assert detect_file(path, key).found


def test_a_hard_link_to_the_input_is_the_input(home, video, tmp_path):
    import os

    link = tmp_path / "also-the-video.json"
    os.link(video, link)
    with pytest.raises(InputError, match="the cue sheet is the input video"):
        generate(video, tmp_path / "x.wav", GenerateOptions(cue_sheet_path=link), settings=load_settings(home))
    assert link.read_bytes() == video.read_bytes() and not (tmp_path / "x.wav").exists()


def test_a_clip_whose_timestamps_start_an_hour_in_gets_a_soundtrack_as_long_as_the_clip(home, tmp_path, capsys):
    """A clip cut from a recording keeps its timestamps (3600 s on): the soundtrack starts with
    its first picture, the video output starts at time 0 (not after an hour of silence), and
    the hits are heard where they are seen."""
    path, hits = bounce_video(tmp_path / "late.mp4", duration_s=6.0, start_s=3600.0)
    code, out, err = _run(["generate", str(path), "-o", str(tmp_path / "late_scored.mp4"), "--home", str(home),
                           "--cue-sheet", str(tmp_path / "cues.json"), "--json"], capsys)
    assert code == 0, err
    with av.open(str(tmp_path / "late_scored.mp4")) as c:
        starts = {s.type: float(s.start_time * s.time_base) for s in c.streams}
        assert starts == pytest.approx({"video": 0.0, "audio": 0.0}, abs=1e-3)
        assert c.duration / 1e6 == pytest.approx(6.0, abs=0.05)
    assert read_audio(tmp_path / "late_scored.mp4").duration_s == pytest.approx(6.0, abs=0.05)
    sheet = json.loads((tmp_path / "cues.json").read_text())
    assert sheet["video_start_s"] == pytest.approx(3600.0)  # to find a cue on the file's timestamps
    impacts = [c["time_s"] for c in sheet["cues"] if c["category"].startswith("impact.")]
    assert impacts and all(min(abs(t - h) for h in hits) < 0.05 for t in impacts)
    code, out, err = _run(["generate", str(path), "-o", str(tmp_path / "late.wav"), "--home", str(home)], capsys)
    assert code == 0, err
    assert read_audio(tmp_path / "late.wav").duration_s == pytest.approx(6.0, abs=0.01)


def test_an_output_another_run_published_meanwhile_is_not_replaced(home, video, tmp_path):
    """Two `generate` runs into one output both said "wrote": mark took its snapshot of the output
    after the soundtrack was made, so the second replaced the first's published file, whose store
    record then named a file no longer there. The snapshot is taken when the run begins now."""
    from provenance.core.errors import OutputError

    out = tmp_path / "x.flac"

    def other_run_publishes(stage: str, share: float) -> None:
        if stage == "mark" and not out.exists():
            out.write_bytes(b"the other run's published soundtrack")

    records = _store_count(home)
    with pytest.raises(OutputError, match="was written by another process while this run went on"):
        generate(video, out, GenerateOptions(duration_s=5.0), settings=load_settings(home),
                 progress=other_run_publishes)
    assert out.read_bytes() == b"the other run's published soundtrack"
    assert _leftovers(tmp_path) == ["x.flac"] and _store_count(home) == records


def test_cli_a_stop_while_the_result_is_reported_names_what_was_written(home, video, tmp_path, capsys, monkeypatch):
    """Ctrl-C while generate printed its report: "interrupted (SIGINT)", exit 130, and nothing
    said of the soundtrack it had published and recorded."""
    import signal

    import foleyseal.cli.generate as cli_generate

    out = tmp_path / "x.flac"
    monkeypatch.setattr(cli_generate, "_level", lambda *a: signal.raise_signal(signal.SIGINT))
    code, _, err = _run(["generate", str(video), "-o", str(out), "--duration", "5", "--home", str(home)], capsys)
    assert code == 130 and out.is_file(), err
    assert f"written before the run stopped (each complete, marked and recorded; the rest was not written): {out}" in err
