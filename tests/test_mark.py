"""`mark`: payload -> watermark -> sign -> store, atomically; the round trip back from a stripped copy.

Acceptance 2 of issue 4 (strip the credentials, find the record through the watermark, the
stored manifest validates against the originally signed file) and acceptance 3 (8 concurrent
`foleyseal mark` processes on one store, SQLite and PostgreSQL).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import sqlalchemy as sa
from scipy.signal import lfilter, resample_poly

from foleyseal.cli import main
from provenance.c2pa import read_credentials
from provenance.core.audio import Audio
from provenance.core.config import Settings, load_settings, trust_anchors_pem
from provenance.core.errors import InputError, KeyFileError, OutputError, SigningError, StoreError
from provenance.core.io import is_video, read_audio, write_audio
from provenance.keys.pki import install_dev_chain
from provenance.mark import mark
from provenance.store import ManifestStore, open_store
from provenance.watermark import SOFT_BINDING_ALG, WatermarkKey, detect, load_key, new_key, save_key
from provenance.watermark.files import detect_file

SR = 48_000
PG_URL = os.environ.get("FOLEYSEAL_TEST_DATABASE_URL")


def make_signal(seconds: float = 8.0, seed: int = 3) -> Audio:
    """Deterministic stereo material: filtered noise bed, a chord, and percussive bursts."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    bed = lfilter([1.0], [1.0, -0.98], rng.standard_normal((2, n)), axis=1)  # red-ish noise
    bed = bed / np.abs(bed).max() * 0.2
    chord = sum(0.04 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0))
    bursts = (np.sin(2 * np.pi * 2.0 * t) > 0.95) * rng.standard_normal(n) * 0.15
    x = bed + chord + bursts
    return Audio(np.clip(x, -0.95, 0.95).astype(np.float32), SR)


def make_home(root: Path, store_url: str | None = None, key: WatermarkKey | None = None) -> Settings:
    s = load_settings(root)
    install_dev_chain(s)
    save_key(key or new_key(), s.watermark_key_path)
    if store_url:
        (root / "config.toml").write_text(f'store_url = "{store_url}"\n')
        s = load_settings(root)
    return s


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return make_home(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("src") / "source.wav"
    write_audio(p, make_signal(seconds=10.0))  # about three repetitions of the payload block
    return p


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def store_rows(settings: Settings) -> tuple[int, int]:
    with open_store(settings) as store:
        return store.count(), store.count_reserved()


# --------------------------------------------------------------------------- acceptance 2: round trip


def _strip_by_sample_copy(marked: Path, out: Path) -> Path:
    write_audio(out.with_suffix(".wav"), read_audio(marked))
    return out.with_suffix(".wav")


def _strip_by_opus_64(marked: Path, out: Path) -> Path:
    write_audio(out.with_suffix(".opus"), read_audio(marked), bitrate_kbps=64)
    return out.with_suffix(".opus")


def _strip_by_mp3_64(marked: Path, out: Path) -> Path:
    write_audio(out.with_suffix(".mp3"), read_audio(marked), bitrate_kbps=64)
    return out.with_suffix(".mp3")


@pytest.mark.parametrize(
    "strip", [_strip_by_sample_copy, _strip_by_opus_64, _strip_by_mp3_64], ids=["sample-copy", "opus-64k", "mp3-64k"]
)
def test_stripped_copy_finds_the_record_and_its_manifest_validates(source, tmp_path, monkeypatch, strip):
    # Fixed key and payload, so the watermark part is deterministic (mark draws payloads from
    # the OS CSPRNG; here that draw is pinned).
    settings = make_home(tmp_path / "home", key=WatermarkKey(hashlib.sha256(b"foleyseal test key").digest()))
    import provenance.store.repository as repo

    monkeypatch.setattr(repo.secrets, "token_bytes", lambda n: bytes.fromhex("5eed0fc0ffee1234")[:n])
    marked = tmp_path / "published.wav"
    res = mark(source, marked, settings=settings, generated=True,
               generation_record={"generator": "test", "prompt": "rain", "seed": 1})
    original_bytes = marked.read_bytes()

    stripped = strip(marked, tmp_path / "stripped")
    assert read_credentials(stripped).present is False, "the copy must have lost its credentials"

    det = detect_file(stripped, load_key(settings.watermark_key_path))
    assert res.payload == "5eed0fc0ffee1234"
    assert det.found and det.payload == res.payload

    with open_store(settings) as store:
        record = store.find_by_payload(SOFT_BINDING_ALG, det.payload)
        assert record is not None and record.id == res.record.id
        assert store.find_by_asset_hash(hashlib.sha256(original_bytes).hexdigest()) == [record]
    assert record.asset_sha256 == hashlib.sha256(original_bytes).hexdigest()

    anchors = trust_anchors_pem(settings)
    rep = read_credentials(marked, trust_anchors_pem=anchors, manifest_bytes=record.manifest)
    assert (rep.source, rep.state, rep.failure_codes) == ("detached", "Trusted", ())
    assert rep.soft_bindings[0].blocks[0].value == det.payload
    # The stored manifest is bound to the original bytes, not to the stripped copy.
    bad = read_credentials(stripped, trust_anchors_pem=anchors, manifest_bytes=record.manifest)
    assert bad.state == "Invalid"


# --------------------------------------------------------------------------- atomicity


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_mark_removes_the_working_folder_a_killed_mark_left(settings, source, tmp_path):
    # A mark killed by SIGKILL leaves its hidden working folder (marked audio, manifest) beside
    # the output; the next mark into that folder removes it, and only it.
    import subprocess
    import sys
    import time

    from provenance.core.atomic import owner_tag

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    host = owner_tag().split("h", 1)[1]
    stale = tmp_path / f".foleyseal-mark.p{ended.pid}h{host}k1ll3d"
    stale.mkdir()
    (stale / "marked.wav").write_bytes(b"half a file")
    an_hour_ago = time.time() - 3600  # what changed in the last minute is left alone
    for p in (stale / "marked.wav", stale):
        os.utime(p, (an_hour_ago, an_hour_ago))
    (tmp_path / "notes.txt").write_text("mine")
    res = mark(source, tmp_path / "out.wav", settings=settings)
    assert res.output == tmp_path / "out.wav"
    assert _leftovers(tmp_path) == ["notes.txt", "out.wav"]


def test_failures_leave_no_output_and_no_record(tmp_path, source, monkeypatch):
    s = make_home(tmp_path / "home")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "x.wav"

    # 1. Signing fails (timestamp authority unreachable) after the payload was reserved.
    (s.home / "config.toml").write_text('tsa_url = "http://127.0.0.1:1/tsa"\n')
    with pytest.raises(SigningError, match="timestamp authority"):
        mark(source, out, settings=load_settings(s.home))
    assert _leftovers(out_dir) == [] and store_rows(s) == (0, 0)
    (s.home / "config.toml").unlink()

    # 2. The store refuses the record.
    def refuse(self, record):
        raise StoreError("disk full (simulated)")

    with monkeypatch.context() as m:
        m.setattr(ManifestStore, "publish", refuse)
        with pytest.raises(StoreError, match="simulated"):
            mark(source, out, settings=s)
    assert _leftovers(out_dir) == [] and store_rows(s) == (0, 0)

    # 3. Publishing the file fails after the record was written: the record goes too.
    import provenance.mark as mark_module

    real_replace = os.replace

    def disk_full_when(fails):
        def replace(src, dst):
            if fails(Path(dst)):
                raise OSError(28, "No space left on device (simulated)")
            return real_replace(src, dst)
        return replace

    # The device fills up at the final rename (every working file was written), or (3b) while the
    # watermarked audio is written to mark's working folder: either way the error names OUTPUT
    # and its folder, never the working folder that is gone by then.
    for fails in (lambda dst: dst == out, lambda dst: dst.name.startswith("watermarked")):
        with monkeypatch.context() as m:
            m.setattr(mark_module.os, "replace", disk_full_when(fails))
            with pytest.raises(OutputError, match=f"no space left on the device holding {out_dir}$") as err:
                mark(source, out, settings=s)
            assert err.value.path == str(out)
        assert _leftovers(out_dir) == [] and store_rows(s) == (0, 0)

    # 4. Watermarking fails (too short to carry the watermark).
    short = tmp_path / "short.wav"
    write_audio(short, make_signal(seconds=0.5))
    with pytest.raises(InputError, match="too short"):
        mark(short, out, settings=s)
    assert _leftovers(out_dir) == [] and store_rows(s) == (0, 0)

    # 5. Missing watermark key: refused before the store is touched.
    s.watermark_key_path.rename(tmp_path / "away.key")
    with pytest.raises(KeyFileError, match="watermark key file not found"):
        mark(source, out, settings=s)
    assert _leftovers(out_dir) == []
    (tmp_path / "away.key").rename(s.watermark_key_path)

    # And then it works, and payloads differ between runs.
    a = mark(source, out, settings=s)
    b = mark(source, out_dir / "y.ogg", settings=s)
    assert a.payload != b.payload and len({a.record.id, b.record.id}) == 2
    assert _leftovers(out_dir) == ["x.wav", "y.ogg", "y.ogg.c2pa"] and store_rows(s) == (2, 0)


def test_mark_edits_inputs_c2pa_cannot_embed_into(settings, source, tmp_path):
    """Someone else's Opus file, marked into FLAC: the Opus input is the parent ingredient."""
    opus = tmp_path / "theirs.opus"
    write_audio(opus, read_audio(source), bitrate_kbps=96)
    res = mark(opus, tmp_path / "ours.flac", settings=settings)
    rep = read_credentials(res.output, trust_anchors_pem=trust_anchors_pem(settings))
    assert rep.state == "Trusted" and rep.failure_codes == ()
    doc = json.loads(rep.manifest_json)
    ingredients = doc["manifests"][doc["active_manifest"]]["ingredients"]
    assert [(i["title"], i["format"], i["relationship"]) for i in ingredients] == [
        ("theirs.opus", "audio/ogg", "parentOf")
    ]


def test_an_output_written_again_keeps_its_mode(settings, source, tmp_path):
    """mark published with a rename of its own, skipping the mode step of every other writer: a
    private (0600) output marked again came back readable by everyone (0644)."""
    import stat

    private = tmp_path / "private.flac"
    private.write_bytes(b"an old take")
    private.chmod(0o600)
    mark(source, private, settings=settings)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    old_mask = os.umask(0o027)
    try:
        fresh = mark(source, tmp_path / "new.flac", settings=settings).output
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # a new file's: 0666 less the umask


def test_output_names_up_to_the_file_systems_limit_are_written(settings, source, tmp_path):
    """A working file is named after its output, plus about 35 bytes: legal names of 221-255 bytes
    were refused as "cannot write in .: File name too long"."""
    from provenance.watermark import load_key
    from provenance.watermark.files import embed_file

    for n, stem in [(255, "d"), (251, "音")]:  # 251 bytes: 82 three-byte characters and .flac
        name = stem * ((n - 5) // len(stem.encode())) + ".flac"
        assert len(name.encode()) == n
        out = mark(source, tmp_path / name, settings=settings).output
        assert out.name == name and out.stat().st_size > 0
        embed_file(source, tmp_path / name, load_key(settings.watermark_key_path), "0123456789abcdef")
        assert sorted(p.name for p in tmp_path.iterdir()) == [name], "no working file left"
        (tmp_path / name).unlink()


def test_an_input_whose_name_lies_about_its_format(settings, source, tmp_path, capsys, monkeypatch):
    """A FLAC named .wav: mark did all the watermark work, then c2pa, told it was a WAV, failed
    with "Error adding ingredient: Unknown error". sign, which keeps the bytes, refuses it
    before any work, saying what it holds."""
    flac_named_wav = tmp_path / "song.wav"
    sf.write(flac_named_wav, read_audio(source).samples.T, 48_000, format="FLAC")
    res = mark(flac_named_wav, tmp_path / "ours.flac", settings=settings)
    doc = json.loads(read_credentials(res.output, trust_anchors_pem=trust_anchors_pem(settings)).manifest_json)
    (ingredient,) = doc["manifests"][doc["active_manifest"]]["ingredients"]
    assert (ingredient["title"], ingredient["format"]) == ("song.wav", "audio/flac")
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    with pytest.raises(SystemExit) as exc:
        main(["sign", str(flac_named_wav), str(tmp_path / "signed.wav")])
    err = capsys.readouterr().err
    assert exc.value.code == 3 and "holds audio/flac content, not the audio/wav its name says; rename it .flac" in err
    assert not (tmp_path / "signed.wav").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_just_after_publishing_leaves_no_working_folder_and_names_the_output(
        settings, source, tmp_path, capsys, monkeypatch, signum):
    """A signal right after the output was published cut the working folder's removal short (a
    whole marked copy of a video stayed in it) and the run said only "interrupted"."""
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    out = tmp_path / "out.flac"
    replace = os.replace

    def publish_then_stop(src, dst, *args, **kwargs):
        replace(src, dst, *args, **kwargs)
        if Path(dst) == out:
            signal.raise_signal(signum)

    monkeypatch.setattr(os, "replace", publish_then_stop)
    with pytest.raises(SystemExit) as exc:
        main(["mark", str(source), str(out)])
    err = capsys.readouterr().err
    assert exc.value.code == 128 + signum, err
    assert out.is_file() and _leftovers(tmp_path) == ["out.flac"]  # no .foleyseal-mark.* folder
    assert f"written before the run stopped (each complete, marked and recorded; the rest was not written): {out}" in err
    monkeypatch.undo()
    assert detect(read_audio(out), load_key(settings.watermark_key_path)).found


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_while_the_result_is_reported_names_the_published_output(
        settings, source, tmp_path, capsys, monkeypatch, signum):
    """A stop that came once mark had returned, while its report was printed, gave
    "interrupted (SIGINT)" with the complete, recorded output unnamed: a script trusting the exit
    code would run the job again and record a second payload."""
    import foleyseal.cli.published as published

    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    out = tmp_path / "out.flac"
    monkeypatch.setattr(published, "say_if_resampled", lambda *a: signal.raise_signal(signum))
    with pytest.raises(SystemExit) as exc:
        main(["mark", str(source), str(out)])
    err = capsys.readouterr().err
    assert exc.value.code == 128 + signum, err
    assert f"written before the run stopped (each complete, marked and recorded; the rest was not written): {out}" in err
    assert out.is_file()


def test_a_newline_in_a_file_name_keeps_the_report_on_its_lines(settings, source, tmp_path, capsys, monkeypatch):
    """mark printed a name with a newline raw, splitting its report line in two (verify escapes it)."""
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    out = tmp_path / "take\none.flac"
    with pytest.raises(SystemExit) as exc:
        main(["mark", str(source), str(out)])
    lines = capsys.readouterr().out.splitlines()
    assert (exc.value.code or 0) == 0 and out.is_file()
    assert lines[0] == f"marked {source} -> {tmp_path}/take\\none.flac" and lines[1].startswith("  payload"), lines


def test_mark_takes_file_names_that_are_not_utf8(settings, source, tmp_path):
    """Latin-1 names (old archives, Windows zips) reach Python with lone surrogates, which
    c2pa's JSON, the store and libsndfile refused: mark ended in an internal error."""
    theirs = tmp_path / os.fsdecode(b"chanson_\xe9t\xe9.wav")
    theirs.write_bytes(source.read_bytes())
    ours = tmp_path / os.fsdecode(b"marqu\xe9.flac")
    res = mark(theirs, ours, settings=settings)
    assert res.output == ours and ours.is_file()
    rep = read_credentials(ours, trust_anchors_pem=trust_anchors_pem(settings))
    assert rep.state == "Trusted" and rep.failure_codes == ()
    doc = json.loads(rep.manifest_json)
    active = doc["manifests"][doc["active_manifest"]]
    assert active["title"] == "marqu\ufffd.flac"
    assert [i["title"] for i in active["ingredients"]] == ["chanson_\ufffdt\ufffd.wav"]
    assert detect(read_audio(ours), load_key(settings.watermark_key_path)).payload == res.payload


@pytest.mark.parametrize(
    "args, message",
    [
        (("missing.wav", "out.wav"), "input file not found"),
        (("SRC", "nodir/out.wav"), "the output's folder does not exist"),
        (("SRC", "FILEDIR/out.wav"), "the output's folder is a file, not a folder"),
        # renamed over, a device or pipe was replaced by a file (as root, /dev/null)
        (("SRC", "FIFO"), "is a pipe, not a file"),
        (("SRC", "out.xyz"), "cannot sign '.xyz'"),
        (("SRC", "out.webm"), "out.webm: is a video container (.webm) and the input"),
        # an unreadable input says so, not that it holds no video
        (("GARBAGE", "out.webm"), "cannot open the file as audio or video"),
        # named by the path given, not by mark's working folder
        (("SIX", "out.mp3"), "error: out.mp3: MP3 carries at most 2 channels, got 6"),
        # c2pa read it only after the watermark work: "Io: failed to fill whole buffer"
        (("SRC", "out.wav", "--source-video", "GARBAGE"), "source video is not a readable video file"),
    ],
)
def test_cli_mark_bad_input_exit_3(settings, source, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    monkeypatch.chdir(tmp_path)
    inputs = []
    if "GARBAGE" in args:
        (tmp_path / "garbage.mp4").write_bytes(bytes(np.random.default_rng(5).integers(0, 256, 5000, dtype=np.uint8)))
        inputs.append("garbage.mp4")
    if "SIX" in args:
        sf.write(tmp_path / "six.wav", np.random.default_rng(6).uniform(-0.3, 0.3, (48_000 * 5, 6)), 48_000)
        inputs.append("six.wav")
    if "FILEDIR/out.wav" in args:
        (tmp_path / "FILEDIR").write_text("a file")
        inputs.append("FILEDIR")
    if "FIFO" in args:
        os.mkfifo(tmp_path / "out.wav")
        inputs.append("out.wav")
    named = {"SRC": str(source), "GARBAGE": str(tmp_path / "garbage.mp4"), "SIX": str(tmp_path / "six.wav"),
             "FIFO": str(tmp_path / "out.wav")}
    argv = [named.get(a, a) for a in args]
    with pytest.raises(SystemExit) as exc:
        main(["mark", *argv])
    assert exc.value.code == 3
    assert message in capsys.readouterr().err
    assert _leftovers(tmp_path) == inputs


@pytest.mark.parametrize("clip", ["sparse_clicks_silence.flac", "ui_notification_sounds.flac"])
def test_cli_mark_refuses_a_file_that_cannot_carry_the_mark(settings, corpus_dir, tmp_path, capsys, monkeypatch, clip):
    """mark published digital silence (the corpus's sparse-clicks clip: every sample is 0) and a
    few short interface sounds with exit 0, a store record and a manifest that claims a soft
    binding to a payload the file does not carry. The mark is now read back from the file
    written; nothing is published, the store keeps no record, and the message says how to sign
    the file without a watermark."""
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    src = tmp_path / clip
    src.write_bytes((corpus_dir / clip).read_bytes())
    out = tmp_path / "out.flac"
    out.write_bytes(b"an earlier output")  # left as it was
    before = store_rows(settings)
    with pytest.raises(SystemExit) as exc:
        main(["mark", str(src), str(out)])
    err = capsys.readouterr().err
    assert exc.value.code == 3, err
    # the input is named, whose audio is the cause (the output, not written, was named)
    assert err.startswith(f"error: {src}: read back from the file written, the watermark is not found"), err
    assert "too little sound" in err and "`foleyseal sign`" in err
    assert out.read_bytes() == b"an earlier output" and store_rows(settings) == before
    assert _leftovers(tmp_path) == sorted([clip, "out.flac"])


def test_cli_mark_json(settings, source, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    rec = tmp_path / "record.json"
    rec.write_text(json.dumps({"generator": "cli-test", "prompt": "wind", "seed": 9}))
    out = tmp_path / "o.flac"
    with pytest.raises(SystemExit) as exc:
        main(["mark", str(source), str(out), "--generated", "--generation-record", str(rec), "--no-prompts", "--json"])
    assert exc.value.code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["output"] == str(out) and len(summary["payload"]) == 16
    assert summary["record"]["id"].startswith("urn:c2pa:") and "manifest_base64" not in summary["record"]
    rep = read_credentials(out, trust_anchors_pem=trust_anchors_pem(settings))
    assert rep.generation_record["seed"] == 9 and "prompt" not in rep.generation_record


# --------------------------------------------------------------------------- acceptance 3: concurrency


def _pg_schema_url(schema: str) -> str:
    from provenance.store.repository import normalise_url

    base = normalise_url(PG_URL)
    return base.set(query={**base.query, "options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


def _mark_worker(src: str, out: str, home: str, queue) -> None:
    """One `mark` process (forked: the parent already paid for the imports)."""
    try:
        res = mark(Path(src), Path(out), settings=load_settings(Path(home)))
        queue.put(("ok", out, res.payload))
    except BaseException as exc:  # report, never hang the parent
        queue.put(("error", out, f"{type(exc).__name__}: {exc}"))


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(not PG_URL, reason="no PostgreSQL URL"))]
)
def test_eight_concurrent_mark_processes(tmp_path, backend):
    """8 processes mark at once into one store (whose schema they also create, racing)."""
    import multiprocessing as mp

    schema = None
    url = None
    if backend == "postgres":
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(_pg_schema_url("public"))
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = _pg_schema_url(schema)
    try:
        s = make_home(tmp_path / "home", url)
        src = tmp_path / "in.wav"
        write_audio(src, make_signal(seconds=6.0))
        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        procs = [
            ctx.Process(target=_mark_worker, args=(str(src), str(tmp_path / f"out{i}.wav"), str(s.home), queue))
            for i in range(8)
        ]
        for p in procs:
            p.start()
        results = [queue.get(timeout=240) for _ in procs]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert [r for r in results if r[0] != "ok"] == []
        payloads = {out: payload for _, out, payload in results}
        assert len(set(payloads.values())) == 8
        with open_store(s) as store:
            assert store.count() == 8 and store.count_reserved() == 0
            for out, p in payloads.items():
                rec = store.find_by_payload(SOFT_BINDING_ALG, p)
                assert rec is not None and rec.asset_sha256 == sha256(Path(out))
        rep = read_credentials(tmp_path / "out3.wav", trust_anchors_pem=trust_anchors_pem(s))
        assert rep.state == "Trusted"
    finally:
        if schema:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            admin.dispose()


def test_mark_takes_a_soundtrack_in_memory_for_a_video(settings, tmp_path):
    """A generator hands mark() its soundtrack: the video stream is copied, the soundtrack
    (not the video's own audio) is marked into it, or written alone for an audio output."""
    import av

    from tests.test_c2pa import make_video

    noise = np.random.default_rng(5).standard_normal((2, 6 * SR)).astype(np.float32)
    video = make_video(tmp_path / "clip.mp4", Audio(0.1 * noise, SR))
    track = make_signal(seconds=6.0, seed=9)
    key = load_key(settings.watermark_key_path)

    out = tmp_path / "scored.mp4"
    r = mark(video, out, settings=settings, generated=True, audio=track)
    with av.open(str(video)) as a, av.open(str(out)) as b:
        before = [bytes(p) for p in a.demux(video=0) if p.size]
        after = [bytes(p) for p in b.demux(video=0) if p.size]
    assert after == before  # video packets copied, not re-encoded
    got = read_audio(out)
    assert abs(got.duration_s - 6.0) < 0.05
    # it is the soundtrack that was marked: it correlates with `track`, not with the video's audio
    n = min(got.frames, track.frames)
    corr = lambda x: float(np.corrcoef(got.samples[0, 2048 : n - 2048], x.samples[0, 2048 : n - 2048])[0, 1])
    assert corr(track) > 0.9
    assert abs(corr(read_audio(video))) < 0.3
    det = detect_file(out, key)
    assert det.payload == r.payload, det  # the whole report: which reading named the payload

    wav = tmp_path / "scored.wav"
    r2 = mark(video, wav, settings=settings, generated=True, audio=Audio(track.samples, SR, subtype="PCM_24"))
    assert read_audio(wav).subtype == "PCM_24"
    det = detect_file(wav, key)
    assert det.payload == r2.payload, det
    anchors = trust_anchors_pem(settings)
    for path in (out, wav):
        assert read_credentials(path, trust_anchors_pem=anchors).state == "Trusted"


def test_mark_writes_a_videos_own_track_marked_into_an_audio_output(settings, tmp_path, monkeypatch):
    """``foleyseal mark VIDEO OUT.flac`` gives the video's audio track, marked and signed, as an
    audio file (it was refused: "cannot write video with extension '.flac'"), with the video
    as the parent ingredient."""
    from tests.test_c2pa import make_video

    noise = np.random.default_rng(6).standard_normal((2, 6 * SR)).astype(np.float32)
    video = make_video(tmp_path / "clip.mp4", Audio(0.1 * noise, SR))
    out = tmp_path / "track.flac"
    r = mark(video, out, settings=settings)
    got, track = read_audio(out), read_audio(video)
    assert (got.sample_rate, got.channels, got.frames) == (track.sample_rate, track.channels, track.frames)
    assert detect_file(out, load_key(settings.watermark_key_path)).payload == r.payload
    creds = read_credentials(out, trust_anchors_pem=trust_anchors_pem(settings))
    assert creds.state == "Trusted"
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    with pytest.raises(SystemExit) as exc:
        main(["mark", str(video), str(tmp_path / "track.wav")])
    assert exc.value.code == 0  # it was 3
    assert not is_video(tmp_path / "track.wav")


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_mark_marks_every_audio_track_of_a_video_and_keeps_the_rest(settings, tmp_path, suffix):
    """A film with a dub and a commentary track: every audio track gets the mark (any of them can
    be extracted and passed on) and keeps its language, title and default flag; the subtitles,
    attachment, chapters and title stay. Before, only the main track was written: the second
    track, the subtitles, the chapters and every tag were lost."""
    from tests._multitrack import Track, describe, multitrack_video, subtitle_packets

    tracks = [Track(make_signal(seconds=10.0, seed=11), "eng", "English", True),
              Track(Audio(0.5 * make_signal(seconds=10.0, seed=12).samples, SR), "fra", "Commentaire", False)]
    film = multitrack_video(tmp_path / f"film{suffix}", tracks, seconds=10.0)
    out = tmp_path / f"marked{suffix}"
    r = mark(film, out, settings=settings)

    assert describe(out) == describe(film)
    assert subtitle_packets(out) == subtitle_packets(film)
    key = load_key(settings.watermark_key_path)
    for track in range(2):
        got = read_audio(out, track=track)
        source = read_audio(film, track=track)
        n = min(got.frames, source.frames)
        assert np.corrcoef(got.samples[0, 4096:n - 4096], source.samples[0, 4096:n - 4096])[0, 1] > 0.9
        found = detect(got, key)
        assert found.payload == r.payload, (track, found)
    assert read_credentials(out, trust_anchors_pem=trust_anchors_pem(settings)).state == "Trusted"


def test_a_silent_main_track_is_named_when_the_mark_cannot_be_read_back(settings, tmp_path):
    """A film whose main track is silent and whose second has the sound: the refusal blamed "the
    audio" and suggested WAV or FLAC (which would hold the same silent track)."""
    from provenance.core.errors import UnreadableMarkError
    from tests._multitrack import Track, multitrack_video

    tracks = [Track(Audio(np.zeros((2, 10 * SR), np.float32), SR), "eng", "Silent", True),
              Track(make_signal(seconds=10.0, seed=12), "fra", "Music", False)]
    film = multitrack_video(tmp_path / "film.mkv", tracks, seconds=10.0)
    with pytest.raises(UnreadableMarkError, match="of its 2 audio tracks, all marked, the mark is read back from "
                                                  "the main one"):
        mark(film, tmp_path / "marked.mkv", settings=settings)
    assert not (tmp_path / "marked.mkv").exists()


def test_mark_of_a_video_without_sound_says_so_and_what_makes_a_soundtrack(tmp_path, monkeypatch, capsys):
    """A silent video: before, "not an audio file: contains no audio stream", the message of an
    image or a text file, after a payload was reserved in the store. Now it is named a video with
    no audio track, `generate` is named as what makes one, and the store is not touched."""
    from tests.test_c2pa import make_video

    settings = make_home(tmp_path / "home")
    silent = make_video(tmp_path / "silent.mp4", Audio(np.zeros((2, SR), np.float32), SR), with_audio=False)
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    with pytest.raises(SystemExit) as exc:
        main(["mark", str(silent), str(tmp_path / "out.mp4")])
    assert exc.value.code == 3
    err = capsys.readouterr().err
    assert "is a video with no audio track (it holds: video/" in err and "`foleyseal generate`" in err
    assert not (tmp_path / "out.mp4").exists()
    assert store_rows(settings) == (0, 0)


def test_mark_refuses_an_output_container_that_cannot_hold_the_subtitles_before_reserving(tmp_path, monkeypatch):
    """Subtitles the output cannot hold (bitmap ones; here SubRip with MP4's text format taken
    away): refused before a payload is reserved, nothing written."""
    from provenance.core.io import video as video_io
    from tests._multitrack import Track, multitrack_video

    monkeypatch.setattr(video_io, "_TEXT_SUBTITLE_ENCODERS", {})
    settings = make_home(tmp_path / "home")
    film = multitrack_video(tmp_path / "film.mkv", [Track(make_signal(seconds=6.0), "eng", "English", True)],
                            seconds=6.0)
    with pytest.raises(InputError, match=r"cannot hold film.mkv's srt subtitles.*write \.mkv instead"):
        mark(film, tmp_path / "out.mp4", settings=settings)
    assert not (tmp_path / "out.mp4").exists()
    assert store_rows(settings) == (0, 0)


def test_marking_a_signed_tagged_song_again_keeps_its_tags_and_carries_one_manifest(settings, tmp_path):
    """A song's title, artist and cover survive `mark`, twice over; the first manifest (an ID3
    GEOB frame in MP3) is not copied with the tags: the second file holds its own manifest only,
    and it validates."""
    from mutagen.id3 import ID3

    from provenance.core.io import read_tags
    from tests.test_io_tags import COVER, TEXT, _ffmpeg_tagged, write_tags, Tags

    song = _ffmpeg_tagged(tmp_path / "song.mp3", seconds=8.0)
    write_tags(song, Tags({}, (COVER,)))
    once, twice = tmp_path / "once.mp3", tmp_path / "twice.mp3"
    mark(song, once, settings=settings)
    r = mark(once, twice, settings=settings)
    for path in (once, twice):
        tags = read_tags(path)
        assert tags.text["title"] == TEXT["title"] and tags.text["artist"] == TEXT["artist"]
        assert [p.data for p in tags.pictures] == [COVER.data]
        assert len(ID3(str(path)).getall("GEOB")) == 1
    creds = read_credentials(twice, trust_anchors_pem=trust_anchors_pem(settings))
    assert creds.state == "Trusted"
    assert detect_file(twice, load_key(settings.watermark_key_path)).payload == r.payload


def test_marking_a_marked_file_again_records_the_mark_it_replaces(settings, source, tmp_path, capsys, monkeypatch):
    """A file carries one payload at a time: marking a marked copy again replaces its payload.
    Even from a stripped copy (no credentials left to name a parent), the new record leads to
    the old one, and the operator is told."""
    first = mark(source, tmp_path / "first.flac", settings=settings)
    assert first.replaced_payload is None and first.replaced_record is None  # an unmarked input
    stripped = _strip_by_sample_copy(tmp_path / "first.flac", tmp_path / "stripped")
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    out = tmp_path / "again.flac"
    with pytest.raises(SystemExit) as exc:
        main(["mark", str(stripped), str(out), "--json"])
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert exc.value.code == 0 and summary["payload"] != first.payload
    assert summary["replaced_payload"] == first.payload and summary["replaced_record"] == first.record.id
    assert f"already carried this operator's watermark, payload {first.payload}" in captured.err
    creds = read_credentials(out, trust_anchors_pem=trust_anchors_pem(settings))
    assert creds.generation_record["watermark"]["replaces"] == {"payload": first.payload,
                                                                  "manifest": first.record.id}
    assert detect_file(out, load_key(settings.watermark_key_path)).payload == summary["payload"]
    from detectors.verify import verify

    # and the verifier says so, for a stripped copy of the re-marked file too
    again_stripped = _strip_by_sample_copy(out, tmp_path / "again_stripped")
    for path in (out, again_stripped):
        report = verify(path, settings=settings)
        assert any(f"payload {first.payload} (stored record {first.record.id}) this mark replaced" in n
                   for n in report.notes), report.notes
    assert not any("replaced" in n for n in verify(tmp_path / "first.flac", settings=settings).notes)


def test_a_rate_the_output_codec_cannot_hold_is_said(settings, tmp_path, capsys, monkeypatch):
    """A 96 kHz master marked into MP3 comes out at 48 kHz (MP3 stops there): said, as a 6-channel
    one into MP3 is refused with a word, not done silently. The same rate says nothing."""
    a = make_signal(seconds=6.0)
    src = tmp_path / "master96.flac"
    write_audio(src, Audio(resample_poly(a.samples, 2, 1, axis=-1).astype(np.float32), 2 * SR))
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    for out, said in ((tmp_path / "m.mp3", f"holds the audio at 48000 Hz, not {2 * SR} Hz"),
                      (tmp_path / "m.flac", None)):
        with pytest.raises(SystemExit) as exc:
            main(["mark", str(src), str(out)])
        err = capsys.readouterr().err
        assert exc.value.code == 0
        assert (said in err) if said else "resampled" not in err, err


def test_confirm_refuses_audio_whose_mark_cannot_be_read_back(settings, source, tmp_path):
    """mark(audio=..., confirm=True) reads the mark back before publishing: a soundtrack of
    silence with one short blip carries none, so nothing is written and no record is kept."""
    from provenance.core.errors import UnreadableMarkError

    x = np.zeros((2, SR * 8), np.float32)
    x[:, SR * 3 : SR * 3 + SR // 4] = make_signal(seconds=0.25).samples  # a 0.25 s blip in 8 s of silence
    before = store_rows(settings)
    with pytest.raises(UnreadableMarkError, match="too little sound"):
        mark(source, tmp_path / "blip.wav", settings=settings, generated=True, audio=Audio(x, SR), confirm=True)
    assert list(tmp_path.iterdir()) == [] and store_rows(settings) == before
    result = mark(source, tmp_path / "ok.wav", settings=settings, generated=True, audio=make_signal(), confirm=True)
    assert detect_file(result.output, load_key(settings.watermark_key_path)).payload == result.payload


def test_confirm_reads_the_mark_back_from_the_written_file_too(settings, source, tmp_path, monkeypatch):
    """The read-back after writing sees what a verifier will: an output whose encoder takes the
    mark (here a writer that keeps only what lies below 200 Hz, under the mark's 250-5500 Hz
    band) is refused though the audio in memory carried it; nothing is published, no record."""
    from scipy.signal import butter, sosfilt

    import provenance.core.io as audio_io
    from provenance.core.errors import UnreadableMarkError

    real_write = audio_io.AudioWriter.write

    def band_limiting_write(writer, block):
        low = sosfilt(butter(8, 200, fs=writer.sample_rate, output="sos"), np.asarray(block), axis=1)
        return real_write(writer, low.astype(np.float32))

    monkeypatch.setattr(audio_io.AudioWriter, "write", band_limiting_write)
    before = store_rows(settings)
    with pytest.raises(UnreadableMarkError, match="before encoding, but in the WAV file written it is not found"):
        mark(source, tmp_path / "lost.wav", settings=settings, generated=True, audio=make_signal(), confirm=True)
    assert list(tmp_path.iterdir()) == [] and store_rows(settings) == before


def test_audio_marks_into_an_audio_only_mp4(settings, source, tmp_path):
    """An audio-only MP4 is a common format (and what `watermark embed` writes): `mark` refused
    it as "a video container", naming the input."""
    res = mark(source, tmp_path / "out.mp4", settings=settings)
    rep = read_credentials(res.output, trust_anchors_pem=trust_anchors_pem(settings))
    assert rep.state == "Trusted" and rep.failure_codes == ()
    assert detect(read_audio(res.output), load_key(settings.watermark_key_path)).payload == res.payload


def test_a_killed_runs_reservation_is_removed_by_the_next_mark_once_stale(tmp_path, source) -> None:
    """A SIGKILLed `mark` leaves its reservation; nothing ever removed it (it stayed counted among
    the issued payloads). The next mark deletes those a day old, and leaves a live run's."""
    import datetime as dt

    from provenance.mark import STALE_RESERVATION_S
    from provenance.store.models import manifests

    s = make_home(tmp_path / "home")
    with open_store(s) as store:
        store.reserve("urn:c2pa:killed", SOFT_BINDING_ALG, "00" * 8)
        store.reserve("urn:c2pa:running", SOFT_BINDING_ALG, "11" * 8)
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=STALE_RESERVATION_S + 60)
        with store.engine.begin() as conn:
            conn.execute(sa.update(manifests).where(manifests.c.id == "urn:c2pa:killed").values(created_at=old))
    mark(source, tmp_path / "out.wav", settings=s)
    assert store_rows(s) == (1, 1)
    with open_store(s) as store, store.engine.connect() as conn:
        assert conn.execute(sa.select(manifests.c.id).where(manifests.c.status == "reserved")).scalars().all() \
            == ["urn:c2pa:running"]


def test_an_output_another_run_wrote_meanwhile_is_not_replaced(tmp_path, source, monkeypatch) -> None:
    """Three marks to one OUT at once all said "marked" and all three records were published,
    for the one file the last rename left. The run that finds the output changed since it began
    fails and takes its record back; the other's file stays."""
    from provenance import mark as mark_module

    s = make_home(tmp_path / "home")
    out = tmp_path / "out.wav"
    first = mark(source, out, settings=s)  # an earlier output: replaced by a later run, as ever
    real_sign_to = mark_module.sign_to

    def another_run_publishes(*args, **kwargs):
        done = real_sign_to(*args, **kwargs)
        out.write_bytes(b"the other run's file")
        return done

    monkeypatch.setattr(mark_module, "sign_to", another_run_publishes)
    with pytest.raises(OutputError, match="was written by another process while this run went on"):
        mark(source, out, settings=s)
    assert out.read_bytes() == b"the other run's file"
    assert store_rows(s) == (1, 0)
    monkeypatch.setattr(mark_module, "sign_to", real_sign_to)
    again = mark(source, out, settings=s)
    assert again.payload != first.payload and store_rows(s) == (2, 0)
    assert detect_file(out, load_key(s.watermark_key_path)).payload == again.payload


def test_a_sound_effect_shorter_than_a_block_is_marked_and_recovered_through_the_store(tmp_path, monkeypatch) -> None:
    """Audio under one 4.32 s block was refused ("too short to carry the payload"): a 2 s sound
    effect could not be marked. It holds part of the coded payload, which `mark`'s read-back names
    among the issued payloads, as a verifier with the store does: a stripped copy gets its
    credentials back."""
    from detectors.verify import verify

    settings = make_home(tmp_path / "home", key=WatermarkKey(hashlib.sha256(b"foleyseal test key").digest()))
    import provenance.store.repository as repo

    monkeypatch.setattr(repo.secrets, "token_bytes", lambda n: bytes.fromhex("5eed0fc0ffee1234")[:n])
    effect = tmp_path / "whoosh.wav"
    write_audio(effect, make_signal(seconds=2.0))
    res = mark(effect, tmp_path / "marked.flac", settings=settings, generated=True)
    assert res.payload == "5eed0fc0ffee1234"
    stripped = tmp_path / "stripped.wav"
    write_audio(stripped, read_audio(res.output))
    report = verify(stripped, settings=settings)
    assert report.verdict.value == "credentials_recovered_by_watermark", (report.verdict, report.notes)
    assert report.store[0].record_id == res.record.id
