"""C2PA credentials of FoleySeal outputs: what `mark` and `sign` write, and how they read back.

Acceptance 1 of issue 4: a file from `mark` (WAV, FLAC, MP3, M4A, MP4) reads back through
c2pa-python's Reader as Trusted with FoleySeal's root as anchor, with the AI disclosure, the
soft binding and the generation record; Valid but untrusted without an anchor; and one
flipped audio byte fails with the hash-mismatch code.
"""

from __future__ import annotations

import json
import os
import signal
import shutil
import stat
import struct
from pathlib import Path

import av
import c2pa
import numpy as np
import pytest

from foleyseal.cli import main
from provenance.c2pa import TRAINED_ALGORITHMIC_MEDIA, read_credentials
from provenance.c2pa.manifest import ManifestSpec, generation_assertion
from provenance.c2pa.sign import sign_file
from provenance.core.audio import Audio
from provenance.core.config import Settings, load_settings, trust_anchors_pem
from provenance.core.io import read_audio, write_audio
from provenance.keys.pki import install_dev_chain
from provenance.keys.signers import load_identity
from provenance.mark import mark
from provenance.core.errors import FormatError, OutputError
from provenance.watermark import SOFT_BINDING_ALG, detect, load_key, new_key, save_key

SR = 48_000
DURATION_S = 6.0
RECORD = {
    "generator": "builtin-foley",
    "generator_version": "0.1.0",
    "prompt": "footsteps on gravel",
    "negative_prompt": "music",
    "seed": 1234,
    "parameters": {"steps": 8, "guidance": 2.5},
}


def make_signal(seconds: float = DURATION_S, seed: int = 7) -> Audio:
    """Deterministic stereo noise bursts and tones, 48 kHz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t) ** 2
    x = 0.08 * rng.standard_normal((2, n)) * env + 0.05 * np.sin(2 * np.pi * 330 * t)
    return Audio(x.astype(np.float32), SR)


def make_video(path: Path, audio: Audio, fps: int = 24, *, codec: str = "libx264", with_audio: bool = True) -> Path:
    """A small video (64x64 frames, ``codec``) as long as ``audio``, holding it as AAC when
    ``with_audio`` (the default: an H.264 + AAC MP4)."""
    with av.open(str(path), "w") as c:
        v = c.add_stream(codec, rate=fps)
        v.width = v.height = 64
        v.pix_fmt = "yuv420p"
        streams = [v]
        if with_audio:
            a = c.add_stream("aac", rate=audio.sample_rate, layout="stereo")
            a.bit_rate = 128_000
            streams.append(a)
        frames = int(audio.duration_s * fps)
        for i in range(frames):
            img = np.full((64, 64, 3), (i * 5) % 255, dtype=np.uint8)
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        if with_audio:
            step = 1024
            for i in range(0, audio.frames, step):
                chunk = np.ascontiguousarray(audio.samples[:, i : i + step])
                f = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                f.sample_rate = audio.sample_rate
                f.pts = i
                for p in a.encode(f):
                    c.mux(p)
        for st in streams:
            for p in st.encode(None):
                c.mux(p)
    return path


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    home = tmp_path_factory.mktemp("home")
    s = load_settings(home)
    install_dev_chain(s)
    s.watermark_key_path.parent.mkdir(parents=True, exist_ok=True)
    save_key(new_key(), s.watermark_key_path)
    return s


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("src")
    audio = make_signal()
    wav = d / "source.wav"
    write_audio(wav, audio)
    return {"audio": wav, "video": make_video(d / "source.mp4", audio)}


def reader(path: Path, anchors: str | None, manifest: bytes | None = None) -> tuple[str, list[str], dict]:
    """Read through c2pa-python directly (not FoleySeal's wrapper)."""
    cfg: dict = {"verify": {"verify_trust": True}}
    if anchors:
        cfg["trust"] = {"user_anchors": anchors}
    mime = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".m4a": "audio/mp4",
            ".mp4": "video/mp4", ".ogg": "audio/ogg"}[path.suffix]
    with c2pa.Context.from_dict(cfg) as ctx, open(path, "rb") as fh, c2pa.Reader(mime, fh, manifest, context=ctx) as r:
        results = r.get_validation_results() or {}
        codes = [f["code"] for f in (results.get("activeManifest") or {}).get("failure", [])]
        return r.get_validation_state(), codes, json.loads(r.json())


def audio_byte_offset(path: Path) -> int:
    """An offset inside the coded audio, well away from headers and the manifest."""
    data = path.read_bytes()
    if path.suffix == ".wav":
        pos = 12
        while pos + 8 <= len(data):
            cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
            if cid == b"data":
                return pos + 8 + size // 2
            pos += 8 + size + (size & 1)
        raise AssertionError("no data chunk")
    if path.suffix in (".mp4", ".m4a"):
        pos = 0
        while pos + 8 <= len(data):
            size, kind = struct.unpack(">I4s", data[pos : pos + 8])
            if kind == b"mdat":
                return pos + size // 2
            pos += size
        raise AssertionError("no mdat box")
    return int(len(data) * 0.6)


EXPECTED_HASH_CODE = {
    ".wav": "assertion.dataHash.mismatch",
    ".flac": "assertion.dataHash.mismatch",
    ".mp3": "assertion.dataHash.mismatch",
    ".m4a": "assertion.bmffHash.mismatch",
    ".mp4": "assertion.bmffHash.mismatch",
}


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".m4a", ".mp4"])
def test_marked_file_reads_back_trusted_with_disclosure(settings, sources, tmp_path, suffix):
    src = sources["video"] if suffix == ".mp4" else sources["audio"]
    out = tmp_path / f"marked{suffix}"
    res = mark(src, out, settings=settings, generated=True, generation_record=RECORD,
               source_video=sources["video"], title="Gravel walk")
    anchors = trust_anchors_pem(settings)

    # Through c2pa-python's Reader with FoleySeal's root as trust anchor: Trusted.
    state, codes, doc = reader(out, anchors)
    assert (state, codes) == ("Trusted", [])
    active = doc["manifests"][doc["active_manifest"]]
    assert doc["active_manifest"] == res.record.id
    labels = {a["label"]: a["data"] for a in active["assertions"]}
    actions = labels["c2pa.actions.v2"]["actions"]
    assert actions[0]["action"] == "c2pa.created"
    assert actions[0]["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert actions[0]["softwareAgent"]["name"] == "FoleySeal"
    assert "c2pa.watermarked.bound" in [a["action"] for a in actions]
    sb = labels["c2pa.soft-binding"]
    assert sb["alg"] == SOFT_BINDING_ALG == "org.foleyseal.audio-wm.1"
    assert [b["value"] for b in sb["blocks"]] == [res.payload]
    assert sb["blocks"][0]["scope"]["timespan"]["start"] == 0
    assert abs(sb["blocks"][0]["scope"]["timespan"]["end"] - res.record.duration_s * 1000) <= 1
    gen = labels["org.foleyseal.generation"]
    assert gen["generator"] == {"name": "builtin-foley", "version": "0.1.0"}
    assert gen["prompt"] == "footsteps on gravel" and gen["seed"] == 1234
    assert len(gen["source_video_sha256"]) == 64
    assert [i["relationship"] for i in active["ingredients"]] == ["inputTo"]
    assert active["title"] == "Gravel walk"

    # FoleySeal's own reader agrees.
    rep = read_credentials(out, trust_anchors_pem=anchors)
    assert rep.present and rep.source == "embedded" and rep.state == "Trusted" and rep.failure_codes == ()
    assert rep.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert rep.soft_bindings[0].blocks[0].value == res.payload
    assert rep.generation_record["negative_prompt"] == "music"
    assert "FoleySeal Development Signer" in rep.signer and len(rep.chain) == 2

    # The store's manifest validates against the published bytes.
    assert res.manifest_embedded and res.sidecar is None
    assert reader(out, anchors, res.record.manifest)[:2] == ("Trusted", [])

    # No trust anchor configured: valid signature, untrusted signer.
    state, codes, _ = reader(out, None)
    assert state == "Valid" and codes == ["signingCredential.untrusted"]

    # One flipped audio byte: the hard binding fails.
    data = bytearray(out.read_bytes())
    data[audio_byte_offset(out)] ^= 0x01
    tampered = tmp_path / f"tampered{suffix}"
    tampered.write_bytes(bytes(data))
    state, codes, _ = reader(tampered, anchors)
    assert state == "Invalid" and EXPECTED_HASH_CODE[suffix] in codes
    rep = read_credentials(tampered, trust_anchors_pem=anchors)
    assert rep.state == "Invalid" and EXPECTED_HASH_CODE[suffix] in rep.failure_codes


def test_mark_of_someone_elses_file_is_an_edit(settings, sources, tmp_path):
    out = tmp_path / "edited.flac"
    res = mark(sources["audio"], out, settings=settings, include_prompts=False,
               generation_record=RECORD)
    rep = read_credentials(out, trust_anchors_pem=trust_anchors_pem(settings))
    assert rep.state == "Trusted" and rep.failure_codes == ()
    assert [a["action"] for a in rep.actions] == ["c2pa.opened", "c2pa.edited", "c2pa.watermarked.bound"]
    assert rep.digital_source_type is None
    doc = json.loads(rep.manifest_json)
    active = doc["manifests"][doc["active_manifest"]]
    assert [(i["title"], i["relationship"]) for i in active["ingredients"]] == [("source.wav", "parentOf")]
    # include_prompts=False: the record stays, the prompts go.
    assert rep.generation_record["seed"] == 1234
    assert "prompt" not in rep.generation_record and "negative_prompt" not in rep.generation_record
    assert rep.generation_record["prompts_included"] is False
    assert rep.generation_record["input_sha256"] and res.payload == rep.soft_bindings[0].blocks[0].value


def test_without_prompts_every_prompt_key_goes_in_any_spelling():
    """Another generator's record: ``negativePrompt``, ``text_prompt``, ``prompts`` stayed in a
    manifest that said ``prompts_included: false``."""
    record = {"generator": "other", "seed": 7, "negativePrompt": "no", "text_prompt": "rain", "prompts": ["a", "b"],
              "parameters": {"steps": 25, "PromptStrength": 0.7, "stages": [{"prompt": "x", "cfg": 4}]}}
    data = generation_assertion(record, include_prompts=False)
    assert "prompt" not in json.dumps(data).lower().replace("prompts_included", "")
    assert data["prompts_included"] is False
    assert (data["seed"], data["parameters"]["steps"], data["parameters"]["stages"]) == (7, 25, [{"cfg": 4}])


@pytest.mark.parametrize("suffix", [".ogg", ".opus", ".aiff", ".caf", ".w64", ".au", ".mka"])
def test_formats_c2pa_cannot_embed_into_get_a_sidecar(settings, sources, tmp_path, suffix):
    """(.mka, Matroska audio: "cannot sign '.mka' files" until 2026-11-29, though `watermark
    embed` wrote one and .mkv videos were signed with a sidecar.)"""
    out = tmp_path / f"marked{suffix}"
    res = mark(sources["audio"], out, settings=settings, generated=True)
    assert not res.manifest_embedded and res.sidecar == tmp_path / f"marked{suffix}.c2pa"
    assert res.sidecar.read_bytes() == res.record.manifest
    rep = read_credentials(out, trust_anchors_pem=trust_anchors_pem(settings))
    assert (rep.source, rep.state, rep.failure_codes) == ("sidecar", "Trusted", ())
    assert rep.soft_bindings[0].blocks[0].value == res.payload
    # The sidecar is bound to the bytes: another file with it fails; without it, nothing found.
    other = tmp_path / f"other{suffix}"
    write_audio(other, make_signal(seed=99))
    other.with_name(other.name + ".c2pa").write_bytes(res.sidecar.read_bytes())
    bad = read_credentials(other, trust_anchors_pem=trust_anchors_pem(settings))
    assert bad.state == "Invalid" and "assertion.dataHash.mismatch" in bad.failure_codes
    res.sidecar.unlink()
    assert read_credentials(out).present is False


@pytest.mark.parametrize("suffix", [".aiff", ".ogg", ".wav"])
def test_re_signing_keeps_the_history_of_a_sidecar_signed_file(settings, sources, tmp_path, capsys, monkeypatch, suffix):
    # c2pa reads an ingredient's manifest from its bytes only: a file signed with a sidecar lost
    # its history when signed again (AIFF and Ogg failed; WAV, embedded, always kept it).
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    first = mark(sources["audio"], tmp_path / f"a{suffix}", settings=settings, generated=True)
    for src, dst in ((tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"), (tmp_path / f"b{suffix}",) * 2):
        with pytest.raises(SystemExit) as exc:
            main(["sign", str(src), str(dst)])
        assert exc.value.code == 0, capsys.readouterr().err
        rep = read_credentials(dst, trust_anchors_pem=trust_anchors_pem(settings))
        assert rep.state == "Trusted" and rep.failure_codes == (), rep.failure_codes
        store = json.loads(rep.manifest_json)
        parent = store["manifests"][store["active_manifest"]]["ingredients"][0]
        assert parent["relationship"] == "parentOf" and parent.get("active_manifest"), parent
        assert first.record.id in store["manifests"]  # the marked file's manifest, with its AI disclosure
    # The sidecar of another file is not taken for this file's history.
    other = tmp_path / f"other{suffix}"
    write_audio(other, make_signal(seed=99))
    if suffix != ".wav":
        other.with_name(other.name + ".c2pa").write_bytes(first.sidecar.read_bytes())
        with pytest.raises(SystemExit) as exc:
            main(["sign", str(other), str(tmp_path / f"c{suffix}")])
        assert exc.value.code == 0, capsys.readouterr().err
        store = json.loads(read_credentials(tmp_path / f"c{suffix}").manifest_json)
        assert list(store["manifests"]) == [store["active_manifest"]]


def test_an_rf64_wav_is_signed_and_marked_with_a_sidecar(settings, tmp_path, monkeypatch):
    """An RF64 file named .wav (what a WAV over 4 GiB is) could be neither signed nor marked:
    "c2pa refused the manifest: ... expected "RIFF", got "RF64"", after all the watermark work.
    c2pa cannot embed into it, so it gets a sidecar; signing it again keeps its history."""
    import soundfile as sf

    rf64 = tmp_path / "long.wav"
    sf.write(rf64, make_signal(seed=5).samples.T, 48_000, format="RF64", subtype="PCM_24")
    assert rf64.read_bytes()[:4] == b"RF64"
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    anchors = trust_anchors_pem(settings)
    for src, dst in ((rf64, tmp_path / "signed.wav"), (tmp_path / "signed.wav", tmp_path / "again.wav")):
        with pytest.raises(SystemExit) as exc:
            main(["sign", str(src), str(dst)])
        assert exc.value.code == 0
        assert dst.read_bytes() == rf64.read_bytes() and dst.with_name(dst.name + ".c2pa").exists()
        rep = read_credentials(dst, trust_anchors_pem=anchors)
        assert rep.source == "sidecar" and rep.state == "Trusted" and rep.failure_codes == (), rep
    assert len(json.loads(read_credentials(tmp_path / "again.wav").manifest_json)["manifests"]) == 2
    r = mark(rf64, tmp_path / "marked.wav", settings=settings)  # the RF64 input as the parent ingredient
    assert read_credentials(r.output, trust_anchors_pem=anchors).state == "Trusted"


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_matroska_and_webm_videos_get_a_sidecar(settings, sources, tmp_path, suffix):
    # c2pa cannot embed into Matroska/WebM but signs them detached, as it does Ogg: the generator
    # documents .mkv and .webm outputs, which failed at signing until they were signed this way.
    # the MKV re-marks the MP4's own audio; the silent VP9 video gets a soundtrack, as from the generator
    video = sources["video"] if suffix == ".mkv" else make_video(tmp_path / "src.webm", make_signal(), codec="libvpx-vp9", with_audio=False)
    soundtrack = None if suffix == ".mkv" else make_signal(seed=5)
    out = tmp_path / f"marked{suffix}"
    res = mark(video, out, settings=settings, generated=True, audio=soundtrack)
    assert not res.manifest_embedded and res.sidecar == tmp_path / f"marked{suffix}.c2pa"
    rep = read_credentials(out, trust_anchors_pem=trust_anchors_pem(settings))
    assert (rep.source, rep.state, rep.failure_codes) == ("sidecar", "Trusted", ())
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert c.streams.audio[0].codec_context.name == ("aac" if suffix == ".mkv" else "opus")
    key = load_key(settings.watermark_key_path)
    det = detect(read_audio(out), key)
    assert det.found and det.payload == res.payload
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    bad = read_credentials(out, trust_anchors_pem=trust_anchors_pem(settings))
    assert bad.state == "Invalid" and "assertion.dataHash.mismatch" in bad.failure_codes


def test_webm_output_of_an_h264_video_is_refused_before_anything_is_written(settings, sources, tmp_path):
    with pytest.raises(FormatError, match="WebM holds VP8, VP9 or AV1 video only.*h264"):
        mark(sources["video"], tmp_path / "out.webm", settings=settings, generated=True)
    assert list(tmp_path.iterdir()) == []


def test_read_never_raises_on_bad_manifests(settings, sources, tmp_path):
    plain = read_credentials(sources["audio"])
    assert plain.present is False and plain.error
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really a wav file")
    assert read_credentials(junk).present is False
    # Damage inside the embedded manifest (claim signature, JUMBF structure): Invalid, not an exception.
    signed = tmp_path / "signed.wav"
    mark(sources["audio"], signed, settings=settings, generated=True)
    data = signed.read_bytes()
    for anchor, delta in ((b"c2pa.signature", 300), (b"C2PA", 1000)):
        broken = bytearray(data)
        broken[data.rfind(anchor) + delta] ^= 0xFF
        junk.write_bytes(bytes(broken))
        rep = read_credentials(junk, trust_anchors_pem=trust_anchors_pem(settings))
        assert rep.present and rep.state == "Invalid" and rep.failure_codes, anchor
    rep = read_credentials(sources["audio"], manifest_bytes=b"\x00\x01garbage")
    assert rep.state == "Invalid" and rep.error
    with pytest.raises(Exception, match="file not found"):
        read_credentials(tmp_path / "missing.wav")


def test_cli_sign_embeds_or_refuses(settings, sources, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    out = tmp_path / "signed.wav"
    with pytest.raises(SystemExit) as exc:
        main(["sign", str(sources["audio"]), str(out), "--generated", "--json"])
    assert exc.value.code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["manifest_embedded"] is True
    rep = read_credentials(out, trust_anchors_pem=trust_anchors_pem(settings))
    assert rep.state == "Trusted" and rep.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert rep.soft_bindings == ()  # sign alone adds no watermark binding
    # A format c2pa cannot handle: refused with exit 3, nothing written.
    bad_in = tmp_path / "x.aac"  # raw ADTS: c2pa neither embeds into it nor is it signed beside
    bad_in.write_bytes(b"\xff\xf1")
    with pytest.raises(SystemExit) as exc:
        main(["sign", str(bad_in), str(tmp_path / "y.aac")])
    assert exc.value.code == 3 and "cannot sign '.aac'" in capsys.readouterr().err
    assert not (tmp_path / "y.aac").exists()


def test_python_sign_is_the_cli_sign(settings, sources, tmp_path):
    """``foleyseal.sign``: the credentials alone from Python, as ``foleyseal sign`` makes them."""
    import foleyseal
    from provenance.core.errors import InputError

    out = tmp_path / "edited.wav"
    result = foleyseal.sign(sources["audio"], out, settings=settings, title="take 2")
    assert result.output == out and result.manifest_embedded and result.mime_type == "audio/wav"
    rep = read_credentials(out, trust_anchors_pem=trust_anchors_pem(settings))
    assert rep.state == "Trusted" and rep.title == "take 2" and rep.soft_bindings == ()
    assert rep.digital_source_type != TRAINED_ALGORITHMIC_MEDIA  # an opened file, its source the parent
    made = foleyseal.sign(sources["audio"], tmp_path / "made.wav", settings=settings, generated=True)
    assert read_credentials(made.output, trust_anchors_pem=trust_anchors_pem(settings)).digital_source_type \
        == TRAINED_ALGORITHMIC_MEDIA
    with pytest.raises(InputError, match="sign keeps the format"):
        foleyseal.sign(sources["audio"], tmp_path / "x.flac", settings=settings)
    assert not (tmp_path / "x.flac").exists()


@pytest.mark.parametrize("suffix", [".mp3", ".mp4", ".ogg"])
def test_cli_sign_refuses_truncated_media(settings, sources, tmp_path, capsys, monkeypatch, suffix):
    # c2pa signs whatever bytes it can parse; a manifest on a file cut short in transfer would
    # vouch for damaged media, so sign decodes the input first (an Ogg file would get a sidecar).
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    whole = sources["video"] if suffix == ".mp4" else tmp_path / f"whole{suffix}"
    if suffix != ".mp4":
        write_audio(whole, read_audio(sources["audio"]))
    data = whole.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2] if suffix != ".mp4" else data[:1000] + data[len(data) // 2:])
    out = tmp_path / f"signed{suffix}"
    with pytest.raises(SystemExit) as exc:
        main(["sign", str(cut), str(out)])
    err = capsys.readouterr().err
    assert exc.value.code == 3
    assert str(cut) in err and ("truncated" in err or "corrupt" in err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == [cut.name] + ([whole.name] if suffix != ".mp4" else [])
    # the whole file signs
    with pytest.raises(SystemExit) as exc:
        main(["sign", str(whole), str(out)])
    assert exc.value.code == 0, capsys.readouterr().err


def test_ingredient_and_sign_failures_leave_nothing(settings, sources, tmp_path):
    spec = ManifestSpec(mime_type="audio/wav", generated=True, generation_record=generation_assertion(None))
    identity = load_identity(settings)
    identity.key_pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    with pytest.raises(Exception):
        sign_file(sources["audio"], tmp_path / "out.wav", spec, identity)
    assert list(tmp_path.iterdir()) == []


_SIGNAL_DURING_SIGNING = """
import builtins, io, signal, sys
from pathlib import Path
import provenance.c2pa.read as read_module
import provenance.c2pa.sign as sign_module
from provenance.c2pa.manifest import ManifestSpec, generation_assertion
from provenance.core.config import load_settings
from provenance.core.interrupts import Interrupted, stop_signals_raise
from provenance.keys.signers import load_identity

signum, home, src, out = int(sys.argv[1]), *map(Path, sys.argv[2:5])
reading = len(sys.argv) > 5
sent = []

class SignalOnFirstRead(io.BufferedReader):
    def readinto(self, b):
        if not sent:
            sent.append(True)
            signal.raise_signal(signum)
        return super().readinto(b)

def opener(path, mode="r", *args, **kwargs):
    if mode == "rb":
        return SignalOnFirstRead(io.FileIO(path, "r"))
    return builtins.open(path, mode, *args, **kwargs)

spec = ManifestSpec(mime_type="audio/wav", generated=True, generation_record=generation_assertion(None))
if reading:
    sign_module.sign_file(src, out, spec, load_identity(load_settings(home)))
(read_module if reading else sign_module).open = opener
try:
    with stop_signals_raise():
        if reading:
            read_module.read_credentials(out)
        else:
            sign_module.sign_file(src, out, spec, load_identity(load_settings(home)))
except Interrupted as exc:
    print("interrupted", exc, bool(sent))
    sys.exit(exc.exit_code)
print("finished", bool(sent))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_during_signing_is_not_lost(settings, sources, tmp_path, signum):
    """c2pa reads the asset through Python callbacks called from its native code, and a
    KeyboardInterrupt raised in one aborted the whole process (a Rust panic: "fatal runtime
    error", no cleanup). A stop signal that comes while c2pa reads is now delivered once it
    returns: the command stops as it does anywhere else, and nothing is published. (In a child
    process, since the fault it guards against kills the process.)"""
    import subprocess
    import sys

    out = tmp_path / "out" / "signed.wav"
    out.parent.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_DURING_SIGNING, str(int(signum)), str(settings.home), str(sources["audio"]), str(out)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        capture_output=True, text=True, timeout=120,
    )
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, proc.stderr[-2000:]
    assert proc.stdout.strip() == f"interrupted {name} True"
    assert list(out.parent.iterdir()) == []


def test_a_stop_signal_while_credentials_are_read_is_not_lost(settings, sources, tmp_path):
    """The same for reading: c2pa hashes the file through Python callbacks (a long video takes
    seconds), and a Ctrl-C then aborted ``verify``."""
    import subprocess
    import sys

    out = tmp_path / "signed.wav"
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_DURING_SIGNING, str(int(signal.SIGINT)), str(settings.home), str(sources["audio"]),
         str(out), "read"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert proc.stdout.strip() == "interrupted SIGINT True"


def test_outputs_are_as_readable_as_any_file_the_user_writes(settings, sources, tmp_path, capsys, monkeypatch):
    # mkstemp makes 0600 files: published media and its manifest must follow the umask instead.
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    old = os.umask(0o022)
    try:
        with pytest.raises(SystemExit) as exc:
            main(["sign", str(sources["audio"]), str(tmp_path / "signed.wav")])
        assert exc.value.code == 0, capsys.readouterr().err
        res = mark(sources["audio"], tmp_path / "marked.ogg", settings=settings)
        assert res.sidecar is not None
        for p in (tmp_path / "signed.wav", tmp_path / "marked.ogg", res.sidecar):
            assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
        # Re-signing in place keeps the file's own mode.
        os.chmod(tmp_path / "signed.wav", 0o640)
        with pytest.raises(SystemExit) as exc:
            main(["sign", str(tmp_path / "signed.wav"), str(tmp_path / "signed.wav")])
        assert exc.value.code == 0, capsys.readouterr().err
        assert stat.S_IMODE((tmp_path / "signed.wav").stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_signing_in_place_through_a_link_signs_the_file_it_points_to(settings, sources, tmp_path):
    """`sign link link` put a signed copy in the link's place and left the file it points to
    unsigned."""
    real = tmp_path / "takes" / "take.wav"
    real.parent.mkdir()
    real.write_bytes(sources["audio"].read_bytes())
    link = tmp_path / "current.wav"
    link.symlink_to(real)
    from provenance.sign import sign

    sign(link, link, settings=settings)
    assert link.is_symlink() and link.resolve() == real
    rep = read_credentials(real, trust_anchors_pem=trust_anchors_pem(settings))
    assert rep.state == "Trusted", rep


def test_an_output_folder_that_cannot_take_the_file_is_named(settings, sources, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FOLEYSEAL_HOME", str(settings.home))
    for cmd in ("sign", "mark"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, str(sources["audio"]), str(tmp_path / "missing" / "out.wav")])
        err = capsys.readouterr().err
        assert exc.value.code == 3 and "missing" in err and "does not exist" in err, (cmd, err)
    # A full device: c2pa reports a short write as "embedding error", which must not blame the input.
    real_usage = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real_usage(p)._replace(free=4096))
    identity = load_identity(settings)
    identity.key_pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    spec = ManifestSpec(mime_type="audio/wav", generated=True, generation_record=generation_assertion(None))
    with pytest.raises(OutputError, match="no space left on the device") as err:
        sign_file(sources["audio"], tmp_path / "out.wav", spec, identity)
    assert err.value.path == str(tmp_path / "out.wav")
    assert list(tmp_path.iterdir()) == []
