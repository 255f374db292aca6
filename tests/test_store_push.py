"""`foleyseal store push`: one home's records registered with a real verification service, whose
verifier then recovers the credentials of a file stripped of them through its watermark."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from detectors.service import ServiceConfig
from detectors.service.api_keys import ApiKeyStore
from foleyseal.cli import main
from provenance.core.config import load_settings
from provenance.store import open_store
from tests._verify_fixtures import running_server


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def _strip_metadata(src: Path, dst: Path) -> None:
    """Copy ``src``'s audio into ``dst`` (same codec, packets copied): its C2PA manifest stays behind."""
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        stream = o.add_stream_from_template(i.streams.audio[0])
        for packet in i.demux(i.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = stream
                o.mux(packet)


def test_push_registers_each_record_once_and_the_service_recovers_credentials(tmp_path, capsys, monkeypatch):
    for var in list(os.environ):
        if var.startswith("FOLEYSEAL_"):
            monkeypatch.delenv(var)
    here, there = tmp_path / "here", tmp_path / "there"
    for home in (here, there):
        assert run_cli(capsys, "keys", "init", "--home", str(home))[0] == 0
    # the service trusts this home's root and holds its watermark key, as a partner's would
    (there / "keys" / "keyring").mkdir()
    (there / "keys" / "keyring" / "here.key").write_bytes((here / "keys" / "watermark.key").read_bytes())
    (there / "keys" / "keyring" / "here.key").chmod(0o600)
    rng = np.random.default_rng(11)
    monkeypatch.setenv("FOLEYSEAL_HOME", str(here))
    marked = []
    for n in range(2):
        src = tmp_path / f"take{n}.wav"
        sf.write(src, rng.normal(0, 0.1, (6 * 16000, 1)).astype(np.float32), 16000)
        marked.append(tmp_path / f"take{n}.flac")
        rc, _, err = run_cli(capsys, "mark", str(src), str(marked[-1]))
        assert rc == 0, err
    with open_store(load_settings(here)) as store:
        ids = sorted(r.id for r in store.iter_records())
    assert len(ids) == 2

    key, _ = ApiKeyStore(there / "api-keys.json").create("partner")
    key_file = tmp_path / "api.key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    config = ServiceConfig(home=there, upload_dir=tmp_path / "up", workers=0, rate_limit_per_min=0,
                           trust_anchors=[here / "keys" / "root-ca.pem"])
    with running_server(config) as url:
        rc, out, err = run_cli(capsys, "store", "push", url, "--api-key-file", str(key_file), "--json")
        assert rc == 0, err
        summary = json.loads(out)
        assert (summary["registered"], summary["already_registered"], summary["conflict"]) == (2, 0, 0)
        with open_store(load_settings(there)) as theirs, open_store(load_settings(here)) as ours:
            for i in ids:
                got, sent = theirs.get(i), ours.get(i)
                assert (got.payload, got.manifest, got.asset_sha256) == (sent.payload, sent.manifest, sent.asset_sha256)

        # twice is harmless; one id alone; an id this store lacks is named before anything is sent
        rc, out, err = run_cli(capsys, "store", "push", url, "--api-key-file", str(key_file))
        assert rc == 0 and "0 registered, 2 already there, 0 refused" in out, err
        rc, out, _ = run_cli(capsys, "store", "push", url, "--api-key-file", str(key_file), "--id", ids[0])
        assert rc == 0 and "1 record(s)" in out
        rc, _, err = run_cli(capsys, "store", "push", url, "--api-key-file", str(key_file), "--id", "urn:c2pa:gone")
        assert rc == 3 and "not in the manifest store: urn:c2pa:gone" in err

        # a payload the service holds for another manifest is refused, not overwritten: exit 3
        with open_store(load_settings(here)) as store:
            taken = store.get(ids[0])
            store.discard(ids[0])
            store.add(type(taken)(**{**taken.__dict__, "id": "urn:c2pa:00000000-0000-4000-8000-000000000000"}))
        rc, out, _ = run_cli(capsys, "store", "push", url, "--api-key-file", str(key_file))
        assert rc == 3 and "conflict" in out and f"payload {taken.payload} is already registered" in out

        # a wrong key, a key file others can read, no key, no service: named, exit 3
        key_file.write_text("fsk_0000_wrong\n")
        rc, _, err = run_cli(capsys, "store", "push", url, "--api-key-file", str(key_file))
        assert rc == 3 and "refused the API key (403" in err
        key_file.chmod(0o644)
        rc, _, err = run_cli(capsys, "store", "push", url, "--api-key-file", str(key_file))
        assert rc == 3 and "permissions 0644" in err
        rc, _, err = run_cli(capsys, "store", "push", url)
        assert rc == 3 and "FOLEYSEAL_API_KEY" in err
        # a URL below the base (404): one error naming the URL, not every record "refused"
        key_file.chmod(0o600)
        rc, out, err = run_cli(capsys, "store", "push", url + "/v1", "--api-key-file", str(key_file))
        assert rc == 3 and "has no FoleySeal manifest registration (404" in err and "refused" not in out, (out, err)

        # the service's verifier: a copy without the manifest gets its credentials back
        stripped = tmp_path / "stripped.flac"
        _strip_metadata(marked[1], stripped)
        with stripped.open("rb") as f:
            import urllib.request

            boundary = "----fs"
            body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.flac\"\r\n"
                    "Content-Type: audio/flac\r\n\r\n").encode() + f.read() + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(url + "/v1/verify", data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            report = json.loads(answer.read())
        assert report["verdict"] == "credentials_recovered_by_watermark", report["explanation"]
    rc, _, err = run_cli(capsys, "store", "push", url, "--api-key-file", str(key_file.with_name("none")))
    assert rc == 3 and "API key file not found" in err


def test_a_service_that_goes_away_mid_push_gets_the_counts_said(tmp_path, capsys, monkeypatch):
    """With --json, a push the service left part-way printed only the error: the records already
    registered went unsaid (without --json, only the per-record lines said them)."""
    import provenance.store.push as push
    from provenance.core.errors import StoreError

    for var in list(os.environ):
        if var.startswith("FOLEYSEAL_"):
            monkeypatch.delenv(var)
    home = tmp_path / "home"
    assert run_cli(capsys, "keys", "init", "--home", str(home))[0] == 0
    monkeypatch.setenv("FOLEYSEAL_HOME", str(home))
    for n in range(3):
        src = tmp_path / f"take{n}.wav"
        sf.write(src, np.random.default_rng(n).normal(0, 0.1, (6 * 16000, 1)).astype(np.float32), 16000)
        assert run_cli(capsys, "mark", str(src), str(tmp_path / f"take{n}.flac"))[0] == 0
    key_file = tmp_path / "api.key"
    key_file.write_text("fsk_key\n")
    key_file.chmod(0o600)
    sent = []

    def goes_away(record, url, key, *, timeout_s):
        if sent:
            raise StoreError("cannot reach the verification service at http://127.0.0.1:9: [Errno 111] Connection refused")
        sent.append(record.id)
        return push.PushResult(record.id, record.payload, "registered", 201, "registered")

    monkeypatch.setattr(push, "push_record", goes_away)
    rc, out, err = run_cli(capsys, "store", "push", "http://127.0.0.1:9", "--api-key-file", str(key_file), "--json")
    data = json.loads(out)
    assert rc == 3 == data["exit_code"] and "cannot reach the verification service" in data["error"] and err
    assert (data["registered"], data["already_registered"], data["conflict"]) == (1, 0, 0)
    assert [r["id"] for r in data["results"]] == sent
    sent.clear()
    rc, out, err = run_cli(capsys, "store", "push", "http://127.0.0.1:9", "--api-key-file", str(key_file))
    assert rc == 3 and "before the error: 1 record(s): 1 registered" in out and "cannot reach" in err, (out, err)
