"""The HTTP service: /v1/verify, health, the C2PA Soft Binding Resolution API, API-key writes,
rate limits, the web page, and concurrent uploads against a real uvicorn server."""

from __future__ import annotations

import base64
import contextlib
import concurrent.futures as cf
import json
import os
import re
import socket
import stat
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from detectors.service import ServiceConfig, create_app
from detectors.service.api_keys import ApiKeyStore
from provenance.core.errors import StoreError
from tests import _verify_fixtures
from tests._verify_fixtures import VerifyEnv, running_server, write_video_only

# The session fixture, held by this module (which therefore builds its own): assigned, since an
# imported fixture reads to pyflakes as an unused import that each test's argument redefines.
verify_env = _verify_fixtures.verify_env

ALG = "org.foleyseal.audio-wm.1"


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def api_key(verify_env: VerifyEnv, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    path = tmp_path_factory.mktemp("keys") / "api-keys.json"
    key, _ = ApiKeyStore(path).create("partner instance")
    return key, path


@pytest.fixture(scope="module")
def client(verify_env: VerifyEnv, upload_dir: Path, api_key: tuple[str, Path]) -> Iterator[TestClient]:
    config = ServiceConfig(
        home=verify_env.home, upload_dir=upload_dir, workers=2, rate_limit_per_min=0, api_keys_path=api_key[1]
    )
    with TestClient(create_app(config)) as c:
        yield c
    # Every upload and every worker scratch file is gone once the service stops.
    assert [p for p in upload_dir.rglob("*") if p.is_file()] == []


def _upload(client: TestClient, path: Path, name: str | None = None, url: str = "/v1/verify") -> httpx.Response:
    return client.post(url, files={"file": (name or path.name, path.read_bytes(), "application/octet-stream")})


def test_verify_multipart_and_raw_body(client: TestClient, verify_env: VerifyEnv) -> None:
    r = _upload(client, verify_env.files["marked_wav"])
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["verdict"] == "credentials_valid" and report["file"] == "marked.wav"
    assert report["store"][0]["record_id"] == verify_env.record_id
    r = client.post(
        "/v1/verify",
        content=verify_env.files["opus"].read_bytes(),
        headers={"content-type": "audio/ogg", "x-filename": "clip.opus"},
    )
    assert r.status_code == 200 and r.json()["verdict"] == "credentials_recovered_by_watermark"
    assert r.json()["file"] == "clip.opus"
    r = _upload(client, verify_env.files["unmarked"])
    assert r.status_code == 200 and r.json()["verdict"] == "no_evidence"


def test_unexaminable_file_is_422_with_message_and_report(client: TestClient) -> None:
    r = client.post("/v1/verify?filename=notes.wav", content=b"these are not samples\n" * 20)
    assert r.status_code == 422
    body = r.json()
    assert "not" in body["detail"] and body["report"]["verdict"] == "error"
    form = b'--b0\r\nContent-Disposition: form-data; name="note"\r\n\r\nno file here\r\n--b0--\r\n'
    r = client.post("/v1/verify", content=form, headers={"content-type": "multipart/form-data; boundary=b0"})
    assert r.status_code == 400 and "field named 'file'" in r.json()["detail"]
    r = client.post("/v1/verify", content=b"--xx\r\nbroken", headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400 and "boundary" in r.json()["detail"]
    cut = b'--b0\r\nContent-Disposition: form-data; name="file"; filename="x.wav"\r\n\r\n' + b"\0" * 1000
    r = client.post("/v1/verify", content=cut, headers={"content-type": "multipart/form-data; boundary=b0"})
    assert r.status_code == 400 and "incomplete" in r.json()["detail"], r.text


def test_a_sidecar_travels_with_its_file_in_either_order(
    client: TestClient, verify_env: VerifyEnv, upload_dir: Path
) -> None:
    # An Ogg signed by `foleyseal sign` keeps its manifest in signed.ogg.c2pa; only the first
    # file part of a form was kept, so such a file could not be verified through the service.
    ogg = verify_env.files["signed_ogg"]
    sidecar = Path(str(ogg) + ".c2pa")

    def form(*parts: tuple[str, Path]) -> httpx.Response:
        files = [(field, (path.name, path.read_bytes(), "application/octet-stream")) for field, path in parts]
        return client.post("/v1/verify", files=files)

    alone = _upload(client, ogg)
    assert alone.status_code == 200 and alone.json()["verdict"] != "credentials_valid"
    assert not alone.json()["credentials"]["present"]
    for parts in (
        [("file", ogg), ("sidecar", sidecar)],
        [("sidecar", sidecar), ("file", ogg)],
        [("file", ogg), ("file", sidecar)],  # a second file part named *.c2pa is the sidecar
        [("file", sidecar), ("file", ogg)],
    ):
        r = form(*parts)
        assert r.status_code == 200, (parts, r.text[:300])
        report = r.json()
        assert (report["verdict"], report["credentials"]["source"], report["file"]) == (
            "credentials_valid", "sidecar", "signed.ogg"), parts
    r = form(("file", ogg), ("sidecar", sidecar), ("sidecar", sidecar))
    assert r.status_code == 400 and "more than one sidecar" in r.json()["detail"]
    # Two media files: a small second one was dropped without a word, a large one made a 413
    # about "form fields other than the file".
    for second in (ogg, verify_env.files["marked_wav"]):
        r = form(("file", ogg), ("other", second))
        assert r.status_code == 400 and "more than one media file" in r.json()["detail"], r.text[:300]
    r = client.post("/v1/verify", files=[("file", ("signed.ogg", ogg.read_bytes())),
                                         ("sidecar", ("big.c2pa", b"\0" * (16 * 2**20 + 1)))])
    assert r.status_code == 413 and "sidecar is larger than the limit of 16777216 bytes (16.0 MiB)" in r.json()["detail"]
    r = form(("sidecar", sidecar))
    assert r.status_code == 400 and "no file" in r.json()["detail"]
    assert [p for p in (upload_dir / "uploads").rglob("*") if p.is_file()] == []  # sidecars deleted too


def test_a_bare_manifest_is_422_and_says_how_to_send_it(client: TestClient, verify_env: VerifyEnv) -> None:
    # A .c2pa sidecar sent as the file was reported credentials_tampered: it is no media.
    sidecar = Path(str(verify_env.files["signed_ogg"]) + ".c2pa")
    r = _upload(client, sidecar)
    assert r.status_code == 422, r.text[:300]
    assert r.json()["detail"] == ("this file is a C2PA manifest (a sidecar), not audio or video: "
                                  "send it as the `sidecar` part with its file")
    assert r.json()["report"]["verdict"] == "error" and r.json()["report"]["file"] == "signed.ogg.c2pa"
    # The soft-binding API's answer for content that is no audio or video format.
    r = _upload(client, sidecar, url="/matches/byContent")
    assert r.status_code == 415 and "C2PA manifest" in r.json()["detail"]


def test_the_client_file_name_arrives_as_written(client: TestClient, verify_env: VerifyEnv) -> None:
    data = verify_env.files["unmarked"].read_bytes()
    names = [
        # X-Filename in UTF-8 (the server reads header bytes as Latin-1)
        client.post("/v1/verify", content=data, headers={"X-Filename": "été.wav".encode()}),
        # RFC 6266 / 5987 on a raw body, and in a multipart part, taking precedence over filename=
        client.post("/v1/verify", content=data,
                    headers={"Content-Disposition": "attachment; filename*=UTF-8''%C3%A9t%C3%A9.wav"}),
        client.post("/v1/verify", content=(
            b'--b1\r\nContent-Disposition: form-data; name="file"; filename="ete.wav"; '
            b"filename*=UTF-8''%C3%A9t%C3%A9.wav\r\n\r\n" + data + b"\r\n--b1--\r\n"),
            headers={"content-type": "multipart/form-data; boundary=b1"}),
    ]
    assert [r.json()["file"] for r in names] == ["été.wav"] * 3, [r.text[:200] for r in names]


def test_a_browsers_escapes_in_a_form_file_name_are_undone(client: TestClient, verify_env: VerifyEnv) -> None:
    # Browsers write ", CR and LF in a form part's filename= as %22, %0D and %0A (the WHATWG HTML
    # standard): the report showed 'say %22hi%22.wav'. Any other %xx belongs to the name.
    from detectors.service.uploads import disposition_filename

    data = verify_env.files["unmarked"].read_bytes()
    form = (b'--b2\r\nContent-Disposition: form-data; name="file"; filename="say %22hi%22 100%41.wav"\r\n\r\n'
            + data + b"\r\n--b2--\r\n")
    r = client.post("/v1/verify", content=form, headers={"content-type": "multipart/form-data; boundary=b2"})
    assert r.status_code == 200 and r.json()["file"] == 'say "hi" 100%41.wav', r.text[:300]
    part = b'form-data; name="file"; filename="a%0D%0Ab%2522%22.wav"'
    assert disposition_filename(part, form_data=True) == 'a\r\nb%2522".wav'  # decoded once, nothing else
    # A raw body's own Content-Disposition is no form part: its name is taken as written.
    r = client.post("/v1/verify", content=data, headers={"Content-Disposition": 'attachment; filename="a%22b.wav"'})
    assert r.json()["file"] == "a%22b.wav"


def test_a_multipart_upload_is_read_like_the_same_bytes_sent_raw(client: TestClient) -> None:
    # The multipart file name arrives after the spool file was created; its extension still counts.
    data = b"these are not samples\n" * 60
    raw = client.post("/v1/verify?filename=text.flac", content=data)
    form = client.post("/v1/verify", files={"file": ("text.flac", data, "application/octet-stream")})
    assert raw.status_code == form.status_code == 422
    assert raw.json()["detail"] == form.json()["detail"], (raw.text, form.text)


def test_replies_never_show_the_servers_own_paths(client: TestClient, upload_dir: Path, verify_env: VerifyEnv) -> None:
    # Decoders quote the path they open: for an upload, that is the server's spool file.
    wav_0ch = bytearray(verify_env.files["unmarked"].read_bytes()[:44])
    wav_0ch[22:24] = (0).to_bytes(2, "little")  # the WAV header's channel count
    marked = verify_env.files["marked_wav"].read_bytes()
    replies = [
        client.post("/v1/verify?filename=text.flac", content=b"these are not samples\n" * 60),
        client.post("/v1/verify", files={"file": ("zero.wav", bytes(wav_0ch) + bytes(400), "audio/wav")}),
        client.post("/v1/verify?filename=piece.wav", content=marked[: len(marked) // 3]),
    ]
    for r, name in zip(replies, ("text.flac", "zero.wav", "piece.wav")):
        text = r.text
        assert str(upload_dir) not in text and "foleyseal-" not in text, text
        assert not re.search(r"up-[0-9a-f]{6}|upload\.\w+'", text), text
        body = r.json()
        report = body.get("report", body)
        assert report["file"] == name
    # the decoder's own words, without the path it quoted (as bytes: "Error opening b'...'")
    detail = replies[0].json()["detail"]
    assert replies[0].status_code == 422 and detail.startswith("cannot decode audio: ") and "b'" not in detail, detail


def test_health(client: TestClient) -> None:
    h = client.get("/v1/health").json()
    assert h["status"] == "ok" and h["workers"] == 2 and h["store"] == "ok"
    assert h["watermark_keys"] == 1 and h["trust_anchors"] == 1


def test_health_reads_the_store_on_every_call(verify_env: VerifyEnv, tmp_path: Path) -> None:
    import sqlite3

    import sqlalchemy as sa

    config = ServiceConfig(home=verify_env.home, upload_dir=tmp_path / "up", workers=1, rate_limit_per_min=0,
                           api_keys_path=tmp_path / "api-keys.json")
    with TestClient(create_app(config)) as c:
        assert c.get("/v1/health").json()["store"] == "ok"
        engine = c.app.state.foleyseal.store.engine  # type: ignore[attr-defined]

        def disk_fails(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            # what a statement raises when the store's disk fails: the driver's error, wrapped
            # as SQLAlchemy wraps it (2.1 wraps one raised here too; 2.0, on Python 3.10, not)
            raise sa.exc.OperationalError(statement, None, sqlite3.OperationalError("disk I/O error"))

        sa.event.listen(engine, "before_cursor_execute", disk_fails)
        try:
            r = c.get("/v1/health")
        finally:
            sa.event.remove(engine, "before_cursor_execute", disk_fails)
        assert r.status_code == 503 and r.headers["retry-after"] == "30", r.text
        h = r.json()
        assert h["status"] == "degraded" and h["store"] == "unavailable" and h["workers"] == 1
        assert "sqlite" not in r.text and "I/O" not in r.text  # the store's location and fault go to the log
        assert c.get("/v1/health").json()["store"] == "ok"  # and it answers again once the store does


def test_a_store_that_fails_while_verifying_is_a_503_not_an_answer(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """With the store down, /v1/verify answered 200 "watermark only" (a recoverable copy said to
    have no record) with notes naming the database's URL, and /matches/byContent answered 200
    with no matches, while /matches/byBinding said 503."""
    import shutil

    db = tmp_path / "store.sqlite3"
    shutil.copy(verify_env.settings.store_url.removeprefix("sqlite:///"), db)
    config = ServiceConfig(home=verify_env.home, upload_dir=tmp_path / "up", workers=1, rate_limit_per_min=0,
                           api_keys_path=tmp_path / "api-keys.json", database_url=f"sqlite:///{db}")
    with TestClient(create_app(config)) as c:
        db.write_bytes(b"this is not a database\n" * 64)  # the workers open it at their first file
        r = _upload(c, verify_env.files["mp3_64"], url="/matches/byContent")
        assert r.status_code == 503 and r.headers["retry-after"] == "30", r.text
        assert r.json() == {"detail": "the manifest store is unavailable"}
        # The verify answer carries the report, as the CLI prints it with exit 3: the page showed
        # no verdict even for a file whose own credentials decide it. Never the store's location.
        for name, verdict in (("mp3_64", "watermark_only"), ("marked_wav", "credentials_valid")):
            r = _upload(c, verify_env.files[name])
            assert r.status_code == 503 and r.headers["retry-after"] == "30", r.text
            body = r.json()
            assert body["detail"].startswith("the manifest store is unavailable"), body
            assert body["report"]["verdict"] == verdict and body["report"]["store_unavailable"] is True
            assert "sqlite" not in r.text and str(tmp_path) not in r.text and "not a database" not in r.text
            assert body["report"]["notes"].count("The manifest store did not answer (the service's log says why).") == 1


def test_soft_binding_resolution(client: TestClient, verify_env: VerifyEnv) -> None:
    value = base64.b64encode(bytes.fromhex(verify_env.payload)).decode()
    expected = {"matches": [{"manifestId": verify_env.record_id, "similarityScore": 100}]}
    r = client.get("/matches/byBinding", params={"alg": ALG, "value": value})
    assert r.status_code == 200 and r.json() == expected
    r = client.post("/matches/byBinding", json={"alg": ALG, "value": value})
    assert r.status_code == 200 and r.json() == expected
    r = client.get("/matches/byBinding", params={"alg": ALG, "value": verify_env.payload})  # hex too
    assert r.json() == expected
    r = client.get("/matches/byBinding", params={"alg": ALG, "value": base64.b64encode(b"\0" * 8).decode()})
    assert r.status_code == 200 and r.json() == {"matches": []}
    assert client.get("/matches/byBinding", params={"alg": "com.example.other.1", "value": value}).status_code == 400
    assert client.get("/matches/byBinding", params={"alg": ALG, "value": "!!notbase64"}).status_code == 400
    assert client.get("/matches/byBinding", params={"alg": ALG}).status_code == 400
    # a 400 names where the fault is: ": Field required", "0: JSON decode error" said nothing
    r = client.get("/matches/byBinding", params={"alg": ALG})
    assert r.json()["detail"] == "query parameter 'value': Field required"
    r = client.post("/matches/byBinding", content=b"alg=x", headers={"content-type": "text/plain"})
    assert r.status_code == 400 and r.json()["detail"].startswith("the request body: "), r.text
    assert "(send a JSON object, with Content-Type: application/json)" in r.json()["detail"]
    r = client.post("/matches/byBinding", content=json.dumps({"alg": ALG, "value": value}),
                    headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "Content-Type: application/json" in r.json()["detail"], r.text
    # '+' in a base64 value pasted into a URL unencoded arrives as a space
    plus = "/+vexCWIIVA="
    r = client.get(f"/matches/byBinding?alg={ALG}&value={plus}")
    assert r.status_code == 200 and r.json() == {"matches": []}, r.text
    r = client.post("/matches/byBinding", content=b'{"alg": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"].startswith("the request body is not valid JSON (at character"), r.text
    r = client.post("/matches/byBinding", json={"alg": ALG})
    assert r.status_code == 400 and r.json()["detail"] == "field 'value' of the JSON body: Field required", r.text
    r = client.get("/services/supportedAlgorithms")
    assert r.json() == {"watermarks": [{"alg": ALG}], "fingerprints": []}


def test_manifest_bytes_validate_with_c2pa_reader(client: TestClient, verify_env: VerifyEnv) -> None:
    """The detached manifest served by the resolution API + the original asset read as Trusted."""
    import c2pa

    from provenance.c2pa.read import reader_context
    from provenance.core.config import trust_anchors_pem

    r = client.get(f"/manifests/{verify_env.record_id}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/c2pa"
    with reader_context(trust_anchors_pem(verify_env.settings)) as ctx, open(verify_env.files["marked_wav"], "rb") as fh:
        with c2pa.Reader("audio/wav", fh, r.content, context=ctx) as reader:
            assert reader.get_validation_state() == "Trusted"
            data = json.loads(reader.json())
    assert data["active_manifest"] == verify_env.record_id
    assert client.get("/manifests/urn:c2pa:00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/manifests/..%2F..%2Fetc%2Fpasswd").status_code in (400, 404)
    r = client.get("/manifests/%20bad%20id")
    assert r.status_code == 400 and "letters, digits and . _ : ~ + -" in r.json()["detail"], r.text


def test_matches_by_content_runs_the_detector(client: TestClient, verify_env: VerifyEnv) -> None:
    r = client.post(
        "/matches/byContent", content=verify_env.files["mp3_64"].read_bytes(), headers={"content-type": "audio/mpeg"}
    )
    assert r.status_code == 200
    matches = r.json()["matches"]
    assert [m["manifestId"] for m in matches] == [verify_env.record_id]
    assert 0 < matches[0]["similarityScore"] <= 100
    r = client.post("/matches/byContent", content=b"\x89PNG\r\n\x1a\n" + b"\0" * 100, headers={"content-type": "image/png"})
    assert r.status_code == 415
    r = _upload(client, verify_env.files["unmarked"], url="/matches/byContent")
    assert r.status_code == 200 and r.json() == {"matches": []}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """Three store records of another FoleySeal instance (a home and store of their own): what
    `foleyseal store push` sends."""
    from provenance.core.audio import Audio
    from provenance.core.io import write_audio
    from provenance.mark import mark
    from provenance.store import open_store

    base = tmp_path_factory.mktemp("exporter")
    settings = _verify_fixtures._init_home(base / "home", None)
    records = []
    for seed in (21, 22, 23):
        write_audio(base / f"in{seed}.wav", Audio(_verify_fixtures.foley_host(6.0, seed=seed), _verify_fixtures.SR))
        res = mark(base / f"in{seed}.wav", base / f"out{seed}.wav", settings=settings, generated=True)
        with open_store(settings) as store:
            records.append(store.get(res.record.id))
    return records


def _registration(record: Any, **extra: Any) -> dict[str, Any]:
    """A ``POST /v1/manifests`` body registering ``record`` (fields in ``extra`` replaced)."""
    return {
        "manifestId": record.id,
        "alg": ALG,
        "value": base64.b64encode(bytes.fromhex(record.payload)).decode(),
        "manifest": base64.b64encode(record.manifest).decode(),
        "asset_sha256": record.asset_sha256,
        "mime_type": record.mime_type,
        "duration_s": 8.0,
        **extra,
    }


def test_writes_need_an_api_key_stored_hashed(client: TestClient, exported: list[Any], api_key: tuple[str, Path]) -> None:
    key, path = api_key
    body = _registration(exported[0], title="registered from elsewhere")
    assert client.post("/v1/manifests", json=body).status_code == 401
    assert client.post("/v1/manifests", json=body, headers={"Authorization": "Bearer fsk_0000_wrong"}).status_code == 403
    r = client.post("/v1/manifests", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201, r.text
    assert client.post("/v1/manifests", json=body, headers={"X-API-Key": key}).status_code == 409
    r = client.get("/matches/byBinding", params={"alg": ALG, "value": exported[0].payload})
    assert r.json()["matches"][0]["manifestId"] == body["manifestId"]
    # The key file holds hashes only, readable by its owner only.
    text = path.read_text()
    assert key not in text and key.split("_", 2)[2] not in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # Rotation: the new key works, the old one no longer does.
    r = client.post("/v1/api-keys/rotate", headers={"X-API-Key": key})
    assert r.status_code == 200
    new_key = r.json()["key"]
    assert client.post("/v1/api-keys/rotate", headers={"X-API-Key": key}).status_code == 403
    r = client.post("/v1/api-keys/rotate", headers={"X-API-Key": new_key})
    assert r.status_code == 200
    api_key_holder = r.json()["key"]
    assert ApiKeyStore(path).check(api_key_holder) is not None


def test_concurrent_rotations_of_one_key_give_one_new_key(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "api-keys.json")
    key, entry = store.create("partner")
    with cf.ThreadPoolExecutor(6) as ex:
        results = list(ex.map(lambda _: store.rotate(entry), range(6)))
    issued = [r for r in results if r is not None]
    assert len(issued) == 1
    assert store.check(key) is None and store.check(issued[0][0]) is not None
    assert [e.id for e in store.list() if e.revoked_at is None] == [issued[0][1].id]


_ROTATE_ALL = """
import json, sys, time
from detectors.service.api_keys import ApiKeyStore
store = ApiKeyStore(sys.argv[1])
by_id = {e.id: e for e in store.list()}
while time.time() < float(sys.argv[2]):  # both processes rotate at the same time
    time.sleep(0.001)
print(json.dumps([store.rotate(by_id[i])[0] for i in sys.argv[3:]]))
"""


def test_instances_sharing_the_keys_file_lose_no_rotation(tmp_path: Path) -> None:
    """Two instances sharing api-keys.json (one home, and another home through a symbolic link)
    overwrote each other's rotations: a thread lock does not hold across processes. A client got a
    new key that was refused while its "revoked" key still worked; and the first rotation through
    the link replaced the link by a copy, so the instances drifted apart for good."""
    import subprocess
    import sys
    import time

    real = tmp_path / "a" / "api-keys.json"
    store = ApiKeyStore(real)
    olds = [store.create(f"client {i}") for i in range(60)]
    link = tmp_path / "b" / "api-keys.json"
    link.parent.mkdir()
    link.symlink_to(real)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    halves = [(real, olds[0::2]), (link, olds[1::2])]
    start = str(time.time() + 5)
    procs = [subprocess.Popen([sys.executable, "-c", _ROTATE_ALL, str(path), start, *(e.id for _, e in half)],
                              stdout=subprocess.PIPE, text=True, env=env) for path, half in halves]
    new_keys = [k for p in procs for k in json.loads(p.communicate(timeout=120)[0])]
    assert all(p.returncode == 0 for p in procs)
    assert link.is_symlink() and os.readlink(link) == str(real)
    for path in (real, link):
        seen = ApiKeyStore(path)
        assert [k for k in new_keys if seen.check(k) is None] == [], "a rotated-to key is refused"
        assert [k for k, _ in olds if seen.check(k) is not None] == [], "a revoked key still works"


def test_api_keys_are_listed_and_revoked_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A leaked key could be revoked only by editing api-keys.json by hand (no command listed or
    revoked keys); and names that cannot label a key (empty, a newline) were taken as given."""
    from foleyseal.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as done:
            main(["serve", *args])
        out, err = capsys.readouterr()
        return int(done.value.code or 0), out, err

    monkeypatch.setenv("FOLEYSEAL_HOME", str(tmp_path / "home"))
    rc, key, _ = run("--create-api-key", "  ci bot ")
    assert rc == 0
    keys = ApiKeyStore(tmp_path / "home" / "api-keys.json")
    entry = keys.check(key.strip())
    assert entry is not None and entry.name == "ci bot"
    rc, out, _ = run("--list-api-keys")
    assert rc == 0 and re.fullmatch(rf"{entry.id}  ci bot  created \S+  active\n", out), out
    rc, _, err = run("--revoke-api-key", entry.id)
    assert rc == 0 and f"API key {entry.id} (ci bot) revoked" in err
    assert keys.check(key.strip()) is None
    rc, out, _ = run("--list-api-keys")
    assert rc == 0 and " revoked 20" in out, out
    rc, _, err = run("--revoke-api-key", entry.id)
    assert rc == 0 and "already revoked" in err
    rc, _, err = run("--revoke-api-key", "00000000")
    assert rc == 3 and "no API key with the id '00000000'" in err, err
    for bad, said in (("", "must not be empty"), ("  ", "must not be empty"), ("a\nb", "control characters"),
                      ("x" * 101, "at most 100 characters")):
        rc, out, err = run("--create-api-key", bad)
        assert rc == 3 and said in err and out == "", (bad, err)
    assert len(keys.list()) == 1


def test_a_garbled_api_keys_file_stops_the_start_and_is_the_services_fault_later(
    client: TestClient, api_key: tuple[str, Path], verify_env: VerifyEnv, tmp_path: Path
) -> None:
    """A garbled api-keys.json (a hand edit cut short) was not caught at start, where /v1/health
    said "ok"; later every write, and every verify sent with a key, got 422 "not examinable" with
    the server's path and the parse error, told to anyone sending a made-up key; a file of the
    wrong shape ([]) was a 500."""
    from detectors.service.app import check_config
    from provenance.core.errors import ConfigError

    key, path = api_key
    good = path.read_bytes()
    for garbled, said in ((b'{"keys": [ {"id": "x"', "Expecting"), (b"[]", "not an API keys file"),
                          (b'{"keys": [{"id": "x"}]}', "entry 1 is not an API key")):
        bad = tmp_path / "api-keys.json"
        bad.write_bytes(garbled)
        with pytest.raises(ConfigError, match=said) as caught:
            check_config(ServiceConfig(home=verify_env.home, api_keys_path=bad))
        assert str(bad) in str(caught.value)
    try:
        path.write_bytes(b"[]")
        for headers in ({"X-API-Key": key}, {"Authorization": "Bearer fsk_x_y"}):
            r = client.post("/v1/api-keys/rotate", headers=headers)
            assert r.status_code == 503 and str(path) not in r.text and "keys file" in r.text, r.text
        r = client.post("/v1/verify", headers={"X-API-Key": key},
                        files={"file": ("m.wav", verify_env.files["marked_wav"].read_bytes())})
        assert r.status_code == 200 and r.json()["verdict"] == "credentials_valid", r.text
    finally:
        path.write_bytes(good)
    assert client.post("/v1/api-keys/rotate", headers={"X-API-Key": "fsk_x_y"}).status_code == 403


def test_a_registration_that_loses_a_race_is_409_and_store_faults_are_503(
    client: TestClient, exported: list[Any], api_key: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = ApiKeyStore(api_key[1]).create("racer")
    store = client.app.state.foleyseal.store  # type: ignore[attr-defined]
    body = _registration(exported[1])
    auth = {"X-API-Key": key}
    for bad, fragment in (
        ({"manifest": base64.b64encode(b"not a manifest store at all").decode()}, "not a C2PA manifest store"),
        ({"mime_type": "wav"}, "mime_type"),
    ):
        r = client.post("/v1/manifests", json={**body, **bad}, headers=auth)
        assert r.status_code == 400 and fragment in r.json()["detail"], r.text
    r = client.post("/v1/manifests", content=json.dumps(body).replace("8.0", "NaN"), headers={**auth, "content-type": "application/json"})
    assert r.status_code == 400 and "finite" in r.json()["detail"], r.text
    assert client.post("/v1/manifests", json=body, headers=auth).status_code == 201
    # A concurrent request registered it between the checks and the insert.
    monkeypatch.setattr(store, "get", lambda *_: None)
    monkeypatch.setattr(store, "find_by_payload", lambda *_: None)
    r = client.post("/v1/manifests", json=body, headers=auth)
    assert r.status_code == 409 and "already registered" in r.json()["detail"], r.text

    def broken(*_: Any) -> None:
        raise StoreError("manifest store sqlite:////srv/secret/manifests.sqlite3: add record failed: disk I/O error")

    monkeypatch.setattr(store, "add", broken)
    r = client.post("/v1/manifests", json=_registration(exported[2]), headers=auth)
    assert r.status_code == 503 and "secret" not in r.text and r.json()["detail"] == "the manifest store is unavailable"


def test_a_registered_manifest_must_be_the_record_it_claims_to_be(
    client: TestClient, verify_env: VerifyEnv, exported: list[Any], api_key: tuple[str, Path]
) -> None:
    """Before, any bytes that began like a C2PA manifest store were stored under any id and
    payload: a record whose manifest belonged to another payload (or was garbage) then took
    lookups of that payload, and vouched for nothing."""
    from provenance.store import open_store

    key, _ = ApiKeyStore(api_key[1]).create("registrar")
    auth = {"X-API-Key": key}
    record = exported[2]
    manifest = bytearray(record.manifest)
    at = manifest.find(record.payload.encode())  # the soft binding's value, inside a signed assertion
    manifest[at] = ord("0") if manifest[at] != ord("0") else ord("1")
    with open_store(verify_env.settings) as own:
        ours = own.get(verify_env.record_id)
    for changed, fragment in (
        ({"manifestId": "urn:c2pa:11111111-2222-3333-4444-555555555555"}, "active manifest is"),
        ({"value": base64.b64encode(bytes.fromhex("0123456789abcdef")).decode()},
         f"does not hold payload 0123456789abcdef (it holds: {record.payload})"),
        ({"manifest": base64.b64encode(bytes(manifest)).decode()}, "does not validate (assertion.hashedURI.mismatch"),
        ({"manifest": base64.b64encode(bytes(record.manifest[:600])).decode()}, "cannot be read"),
        ({"manifest": base64.b64encode(ours.manifest).decode()}, "active manifest is"),  # another record's
    ):
        r = client.post("/v1/manifests", json=_registration(record, **changed), headers=auth)
        assert r.status_code == 400 and fragment in r.json()["detail"], r.text
        assert r.json()["detail"].startswith("manifest refused: ")
    assert client.get("/matches/byBinding", params={"alg": ALG, "value": "0123456789abcdef"}).json() == {"matches": []}


def test_by_content_keeps_415_for_what_is_no_media_type(verify_env: VerifyEnv, tmp_path: Path) -> None:
    config = ServiceConfig(home=verify_env.home, upload_dir=tmp_path / "up", workers=0, rate_limit_per_min=0,
                           verify_timeout_s=1e-6)
    with TestClient(create_app(config)) as c:  # every verification runs out of time at once
        r = c.post("/matches/byContent", content=verify_env.files["marked_wav"].read_bytes())
        assert r.status_code == 422 and "time limit" in r.json()["detail"], r.text
        r = c.post("/matches/byContent", content=b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
        assert r.status_code == 422  # not even hashed in time: nothing is known of its type


def test_the_openapi_document_describes_the_answers_really_given(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(doc)  # FastAPI's 422 default: we answer 400
    assert set(doc["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
    assert doc["paths"]["/v1/manifests"]["post"]["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    for upload in (doc["paths"]["/v1/verify"]["post"], doc["paths"]["/matches/byContent"]["post"]):
        assert {(p["name"], p["in"]) for p in upload["parameters"]} >= {("filename", "query"), ("X-Filename", "header")}
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
    answers = [
        ("get", "/matches/byBinding", client.get("/matches/byBinding")),
        ("get", "/matches/byBinding", client.get("/matches/byBinding", params={"alg": ALG, "value": "zz"})),
        ("post", "/matches/byBinding", client.post("/matches/byBinding", json={"alg": ALG})),
        ("post", "/matches/byContent", client.post("/matches/byContent", content=png)),
        ("post", "/matches/byContent", client.post("/matches/byContent?maxResults=0", content=png)),
        ("get", "/manifests/{manifestId}", client.get("/manifests/%20bad")),
        ("post", "/v1/manifests", client.post("/v1/manifests", json={})),
        ("post", "/v1/manifests", client.post("/v1/manifests", json={}, headers={"X-API-Key": "fsk_0_wrong"})),
        ("post", "/v1/api-keys/rotate", client.post("/v1/api-keys/rotate")),
        ("post", "/v1/verify", client.post("/v1/verify?filename=a.wav", content=b"no audio here\n" * 30)),
    ]
    for method, path, r in answers:
        documented = doc["paths"][path][method]["responses"]
        assert str(r.status_code) in documented, (method, path, r.status_code, sorted(documented))
        schema = documented[str(r.status_code)]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        required = doc["components"]["schemas"][schema]["required"]
        assert set(required) <= set(r.json()), (path, r.status_code, r.json())
    assert [r.status_code for _, _, r in answers] == [400, 400, 400, 415, 400, 400, 401, 403, 401, 422]


def test_web_page_and_docs_are_served(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    html = r.text
    assert '<label for="file">' in html and 'src="/static/app.js"' in html and "http" not in html.split("<body>")[0]
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    icon = client.get("/static/favicon.svg")  # linked from the page: no /favicon.ico 404 per load
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert '<link rel="icon" href="/static/favicon.svg"' in html
    assert client.get("/static/../service/app.py").status_code == 404
    assert client.get("/static/__init__.py").status_code == 404  # the folder is a package too
    assert client.head("/").status_code == 200
    spec = client.get("/openapi.json").json()
    for p in ("/v1/verify", "/v1/health", "/matches/byBinding", "/matches/byContent", "/manifests/{manifestId}",
              "/services/supportedAlgorithms"):
        assert p in spec["paths"], p
    for path in ("/v1/verify", "/matches/byContent"):  # both take the file, and its sidecar
        form = spec["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        assert set(form["properties"]) == {"file", "sidecar"} and form["required"] == ["file"], path


def test_the_page_lets_a_user_choose_every_kind_of_file_the_verifier_reads(client: TestClient) -> None:
    """The file chooser listed 15 extensions: a .ts or .avi (which Linux desktops may not type as
    video/*, .ts being also Qt's translation files) could not be picked though the verifier reads it."""
    import re

    from detectors.container import _EXTENSIONS

    accept = re.search(r'<input id="file"[^>]*accept="([^"]*)"', client.get("/").text, re.S)
    assert accept is not None
    listed = set(accept.group(1).split(","))
    assert {"audio/*", "video/*", ".c2pa"} <= listed
    assert set().union(*_EXTENSIONS.values()) - listed == set()


def test_the_api_documentation_is_served_offline(client: TestClient) -> None:
    # FastAPI's /docs and /redoc loaded Swagger UI and ReDoc from a CDN: blank pages offline.
    r = client.get("/docs")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    html = r.text
    assert not re.search(r"https?://", html), re.findall(r"https?://[^\s'\"]+", html)
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
    assert len(loaded) == 4, loaded  # Swagger UI's script, style sheet and icon; the document
    for url in loaded:
        assert url.startswith("/") and client.get(url).status_code == 200, url
    assert client.get("/docs/assets/index.html").status_code == 404  # only the files the page needs
    assert client.get("/redoc").status_code == 404  # ReDoc cannot be served offline: not at all
    # Swagger UI 5 reads the service's OpenAPI 3.1 document itself.
    assert "/openapi.json" in loaded and client.get("/openapi.json").json()["openapi"].startswith("3.1")



def test_reads_are_rate_limited_per_client(verify_env: VerifyEnv, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    key, _ = ApiKeyStore(keys).create("load test")
    config = ServiceConfig(home=verify_env.home, upload_dir=tmp_path / "up", workers=0,
                           rate_limit_per_min=6, rate_limit_burst=3, api_keys_path=keys)
    with TestClient(create_app(config)) as c:
        params = {"alg": ALG, "value": "0000000000000000"}
        codes = [c.get("/matches/byBinding", params=params).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/matches/byBinding", params=params)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "retry" in r.json()["detail"]
        # A client presenting a valid API key is not limited (e.g. a partner service, a load test).
        assert c.get("/matches/byBinding", params=params, headers={"X-API-Key": key}).status_code == 200
        assert c.get("/v1/health").status_code == 200  # health is not rate limited


def test_upload_size_limit(verify_env: VerifyEnv, tmp_path: Path) -> None:
    config = ServiceConfig(home=verify_env.home, upload_dir=tmp_path / "up", workers=0, max_upload_bytes=200_000,
                           rate_limit_per_min=0)
    data = verify_env.files["marked_wav"].read_bytes()
    assert len(data) > 200_000
    with TestClient(create_app(config)) as c:
        r = c.post("/v1/verify", content=data)  # Content-Length says too much: refused before reading
        assert r.status_code == 413 and "limit" in r.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: refused while streaming
            for i in range(0, len(data), 65536):
                yield data[i : i + 65536]

        r = c.post("/v1/verify", content=chunks())
        assert r.status_code == 413
        r = c.post("/v1/verify", files={"file": ("big.wav", data)})
        assert r.status_code == 413
    assert [p for p in (tmp_path / "up").rglob("*") if p.is_file()] == []


def test_concurrent_uploads_against_real_server(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """Eight clients at once: every answer is the right one for its own file."""
    config = ServiceConfig(home=verify_env.home, upload_dir=tmp_path / "up", workers=2, rate_limit_per_min=0)
    files = ["marked_wav", "unmarked", "mp3_64", "flipped_wav"] * 2
    expected = {"marked_wav": "credentials_valid", "unmarked": "no_evidence",
                "mp3_64": "credentials_recovered_by_watermark", "flipped_wav": "credentials_tampered"}
    with running_server(config) as url:

        def one(name: str) -> tuple[str, int, str]:
            p = verify_env.files[name]
            with httpx.Client(base_url=url, timeout=120) as h:
                r = h.post("/v1/verify", files={"file": (p.name, p.read_bytes())})
            return name, r.status_code, r.json().get("verdict")

        with cf.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(one, files))
        health = httpx.get(f"{url}/v1/health").json()
    assert all(code == 200 and verdict == expected[name] for name, code, verdict in results), results
    assert health["worker_restarts"] == 0 and health["jobs_done"] == 8
    assert [p for p in (tmp_path / "up").rglob("*") if p.is_file()] == []


def test_worker_pool_replaces_hung_and_crashed_workers(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """A job past its hard limit gets its worker killed and replaced; so does a worker that dies."""
    import asyncio
    import signal

    from detectors.service.workers import JobTimeout, WorkerCrashed, WorkerPool, WorkerSpec

    spec = WorkerSpec(home=str(verify_env.home), database_url=None, verify_timeout_s=60)
    path = str(verify_env.files["spliced"])

    async def scenario() -> None:
        pool = WorkerPool(spec, size=1, scratch_root=tmp_path / "scratch", grace_s=0.0)
        pool.start()
        try:
            with pytest.raises(JobTimeout):
                await pool.run("verify", {"path": path, "name": "slow.wav"}, timeout_s=0.05)
            assert pool.restarts == 1
            report = await pool.run("verify", {"path": str(verify_env.files["marked_wav"])})
            assert report["verdict"] == "credentials_valid"

            worker = pool._workers[0]
            job = asyncio.ensure_future(pool.run("verify", {"path": path}))
            await asyncio.sleep(0.5)
            os.kill(worker.proc.pid, signal.SIGKILL)  # a native crash, as far as the pool can tell
            with pytest.raises(WorkerCrashed):
                await job
            assert pool.restarts == 2
            report = await pool.run("verify", {"path": str(verify_env.files["unmarked"])})
            assert report["verdict"] == "no_evidence"

            # A worker killed while idle (the OOM killer): the next job used to be sent to it and
            # fail as WorkerCrashed, which the service reports as "the file crashed the decoder".
            for restarts in (3, 4):
                idle = pool._workers[0]
                os.kill(idle.proc.pid, signal.SIGKILL)
                idle.proc.join(5)
                if restarts == 3:
                    report = await pool.run("verify", {"path": str(verify_env.files["marked_wav"])})
                    assert report["verdict"] == "credentials_valid"
                else:  # what a health check does: the idle workers it counts can take jobs
                    assert await pool.replace_dead_idle() == 1
                    assert pool._workers[0].alive() and await pool.replace_dead_idle() == 0
                assert pool.restarts == restarts
        finally:
            pool.close()

    asyncio.run(scenario())
    assert list((tmp_path / "scratch").iterdir()) == []


def test_by_content_tells_a_silent_video_from_a_file_of_no_media_type(client: TestClient, tmp_path: Path) -> None:
    """An MP4 without an audio track got 415 "invalid asset type", the answer for content of no
    audio or video type at all; it is a recognised type that cannot be examined: 422."""
    silent = tmp_path / "silent.mp4"
    write_video_only(silent, 2.0)
    r = client.post("/matches/byContent", files={"file": ("silent.mp4", silent.read_bytes())})
    assert r.status_code == 422 and "has no audio track" in r.json()["detail"], r.text
    r = _upload(client, silent)
    assert r.status_code == 422 and r.json()["report"]["container"]["format"] == "mp4", r.text
    r = client.post("/matches/byContent", files={"file": ("notes.txt", b"plain text, no media " * 20)})
    assert r.status_code == 415, r.text


def test_a_worker_killed_while_idle_is_replaced_before_it_fails_a_client(client: TestClient, verify_env: VerifyEnv) -> None:
    """A worker killed while idle (the OOM killer) went unnoticed: /v1/health said ok with its
    count of workers, and the next good upload got 422 "the file crashed the decoder"."""
    import signal

    pool = client.app.state.foleyseal.pool
    before = client.get("/v1/health").json()["worker_restarts"]
    for w in list(pool._workers):
        os.kill(w.proc.pid, signal.SIGKILL)
        w.proc.join(5)
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["workers"] == 2 and health["worker_restarts"] == before + 2
    assert client.head("/v1/health").status_code == 200  # load balancers probe with HEAD too
    assert all(w.alive() for w in pool._workers)
    victim = pool._workers[0]
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.join(5)
    for _ in range(2):  # whichever worker the job goes to, it is a live one
        r = _upload(client, verify_env.files["marked_wav"])
        assert r.status_code == 200 and r.json()["verdict"] == "credentials_valid", r.text


@pytest.mark.parametrize("outcome, fragment", [("timeout", "took longer than the limit"),
                                               ("crash", "crashed the decoder")])
def test_a_verification_that_kills_its_worker_gets_the_documented_422_with_a_report(
        client: TestClient, verify_env: VerifyEnv, monkeypatch: pytest.MonkeyPatch, outcome: str, fragment: str) -> None:
    """The 422s for a job past the hard limit or a worker crash had only `detail`, while the
    OpenAPI document (and every other 422 of /v1/verify) gives `detail` and `report`."""
    from detectors.service.workers import JobTimeout, WorkerCrashed

    async def fails(op: str, args: dict, **kw: Any) -> Any:
        raise JobTimeout() if outcome == "timeout" else WorkerCrashed()

    monkeypatch.setattr(client.app.state.foleyseal.pool, "run", fails)
    r = _upload(client, verify_env.files["marked_wav"], name="slow.wav")
    assert r.status_code == 422, r.text
    body = r.json()
    schema = client.get("/openapi.json").json()["components"]["schemas"]["UnexaminableBody"]
    assert set(schema["required"]) <= set(body)
    report = body["report"]
    assert fragment in body["detail"] and report["error"] == body["detail"] and report["verdict"] == "error"
    assert report["file"] == "slow.wav" and report["size_bytes"] == verify_env.files["marked_wav"].stat().st_size
    r = client.post("/matches/byContent", files={"file": ("slow.wav", verify_env.files["marked_wav"].read_bytes())})
    assert r.status_code == 422 and fragment in r.json()["detail"], r.text


def _half_open(url: str, n: int) -> list:
    """``n`` connections that send half a request head and stop (the slow-loris attack)."""
    host, port = url.removeprefix("http://").split(":")
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    return socks


def _reply(sock: Any) -> bytes:
    """What the server sends before it closes the connection (b'' if it never writes)."""
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def _detail(reply: bytes) -> str:
    """The ``detail`` of a raw reply's JSON body (every error of the service is one), which also
    carries the headers every answer does (the 408s and 503s of the connection guard lacked them)."""
    head, body = reply.split(b"\r\n\r\n", 1)
    assert b"content-type: application/json" in head.lower(), head
    assert b"x-content-type-options: nosniff" in head.lower() and b"referrer-policy: no-referrer" in head.lower(), head
    return json.loads(body)["detail"]


def test_connections_that_never_finish_their_headers_are_dropped(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """Slow loris: without a deadline on request heads, a few hundred half-sent heads fill the
    server's connection limit and every other client gets 503 for as long as they stay open."""
    config = ServiceConfig(home=verify_env.home, upload_dir=tmp_path / "up", workers=0, rate_limit_per_min=0,
                           header_timeout_s=1.0, max_connections_per_client=4)
    with running_server(config) as url:
        held = _half_open(url, 4)
        over = _half_open(url, 2)  # over the per-client cap: refused at once
        for s in over:
            reply = _reply(s)
            assert reply.startswith(b"HTTP/1.1 503") and "too many open connections" in _detail(reply), reply
        for s in held:  # the head is late: 408, then closed
            reply = _reply(s)
            assert reply.startswith(b"HTTP/1.1 408") and "request headers not received" in _detail(reply), reply
        for s in held + over:
            s.close()
        # A head h11 cannot parse: uvicorn's own 400 was plain text, not {"detail": ...}
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(b"POST /v1/verify?filename=a.wav HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
            reply = _reply(s)
        assert reply.startswith(b"HTTP/1.1 400") and "malformed HTTP request" in _detail(reply), reply
        with httpx.Client(base_url=url, timeout=30) as h:  # kept alive across requests: still served
            assert [h.get("/v1/health").status_code for _ in range(3)] == [200] * 3


def test_connections_send_without_waiting_for_the_clients_acknowledgement(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """`serve` binds its own socket, of a kind asyncio leaves Nagle's algorithm on for: every
    response after the first on a kept-alive connection waited about 40 ms for the client's
    delayed ACK (22 lookups a second per connection). Accepted connections now set TCP_NODELAY."""
    config = ServiceConfig(home=verify_env.home, upload_dir=tmp_path / "up", workers=0, rate_limit_per_min=0)
    server = running_server(config)
    with server as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/services/supportedAlgorithms").status_code == 200  # the connection stays open
        connections = list(server.server.server_state.connections)
        assert connections
        for protocol in connections:
            sock = protocol.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_json_bodies_are_bounded_and_read_only_once_the_caller_may_send_them(
    verify_env: VerifyEnv, tmp_path: Path, api_key: tuple[str, Path]
) -> None:
    """FastAPI read and parsed a JSON body before any check: an anonymous 300 MB body to
    POST /v1/manifests raised the service's memory from 0.26 to 1.12 GB before its 401, and the
    public POST /matches/byBinding took any size. A write's body is now read only once its API key
    is checked, and each body has a limit (413, from its Content-Length before it is read)."""
    key, _ = ApiKeyStore(api_key[1]).create("json bodies")  # the module's key may have been rotated by now
    config = ServiceConfig(home=verify_env.home, upload_dir=tmp_path / "up", workers=0, rate_limit_per_min=0,
                           api_keys_path=api_key[1])

    def head_only(url: str, path: str, length: int, extra: str = "") -> bytes:
        """Send the head of a POST announcing ``length`` bytes of JSON, and 10 of them: the
        answer must come without the rest (the service would otherwise wait for it)."""
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=20) as s:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
                      f"Content-Length: {length}\r\n\r\n{{\"alg\": 1,".encode())
            reply = b""
            while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < int(
                    re.search(rb"content-length: (\d+)", reply.lower()).group(1)):
                reply += s.recv(65536)
            return reply

    with running_server(config) as url:
        reply = head_only(url, "/v1/manifests", 300_000_000)
        assert reply.startswith(b"HTTP/1.1 401") and "needs an API key" in _detail(reply), reply
        reply = head_only(url, "/v1/manifests", 300_000_000, "Authorization: Bearer not-a-key\r\n")
        assert reply.startswith(b"HTTP/1.1 403"), reply
        reply = head_only(url, "/v1/manifests", 300_000_000, f"Authorization: Bearer {key}\r\n")
        assert reply.startswith(b"HTTP/1.1 413") and "larger than the limit of" in _detail(reply), reply
        reply = head_only(url, "/matches/byBinding", 1_000_000)
        assert reply.startswith(b"HTTP/1.1 413") and "/matches/byBinding" in _detail(reply), reply
        with httpx.Client(base_url=url, timeout=30) as client:
            def chunks():  # no Content-Length: counted as it streams
                for _ in range(100):
                    yield b" " * 1024
            r = client.post("/matches/byBinding", content=chunks(), headers={"content-type": "application/json"})
            assert r.status_code == 413, r.text
            # still what it was within the limits (the errors are FastAPI's own)
            r = client.post("/matches/byBinding", json={"alg": ALG})
            assert r.status_code == 400 and r.json()["detail"] == "field 'value' of the JSON body: Field required"
            r = client.post("/matches/byBinding", json={"alg": ALG, "value": "a" * 5000})
            assert r.status_code == 400 and "field 'value' of the JSON body" in r.json()["detail"], r.text
            spec = client.get("/openapi.json").json()["paths"]
            for path in ("/v1/manifests", "/matches/byBinding"):
                body = spec[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
                assert {"alg", "value"} <= set(body["properties"]) and "413" in spec[path]["post"]["responses"]


def test_serve_with_a_store_it_cannot_open_stops_with_one_clear_line(
    verify_env: VerifyEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from foleyseal.cli import main

    monkeypatch.setenv("FOLEYSEAL_HOME", str(verify_env.home))
    garbage = tmp_path / "manifests.sqlite3"
    garbage.write_bytes(b"not a database\n" * 100)
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--port", "0", "--database-url", f"sqlite:///{garbage}"])
    err = capsys.readouterr().err
    assert exc.value.code == 3 and str(garbage) in err and "Traceback" not in err, err
    assert "verification service on" not in err  # nothing claims to be running


def test_serve_on_a_port_in_use_says_so_without_announcing_itself(
    verify_env: VerifyEnv, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL was announced ("verification service on ...") before the port was bound, then
    uvicorn failed on it."""
    from foleyseal.cli import main

    monkeypatch.setenv("FOLEYSEAL_HOME", str(verify_env.home))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exc:
            main(["serve", "--port", str(port), "--workers", "0"])
    err = capsys.readouterr().err
    assert exc.value.code == 3 and "verification service on" not in err, err


def test_serve_says_when_it_has_no_watermark_key(
    verify_env: VerifyEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A home without a watermark key started a service that reads no mark, without a word."""
    from detectors.service.app import check_config
    from foleyseal.cli import main

    assert check_config(ServiceConfig(home=verify_env.home, upload_dir=tmp_path / "up")) == []
    bare = tmp_path / "bare"
    bare.mkdir(mode=0o700)
    notes = check_config(ServiceConfig(home=bare, upload_dir=tmp_path / "up"))
    assert len(notes) == 1 and notes[0].startswith(f"no watermark key in {bare}"), notes
    monkeypatch.setenv("FOLEYSEAL_HOME", str(bare))
    with socket.socket() as taken:  # the port is taken, so the service stops right after its checks
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SystemExit):
            main(["serve", "--port", str(taken.getsockname()[1]), "--workers", "0"])
    assert "note: no watermark key in" in capsys.readouterr().err


def _wait_until_healthy(url: str, proc: Any, timeout_s: float = 120.0) -> None:
    """Wait until the service started as ``proc`` answers ``GET {url}v1/health`` with 200."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "the service stopped"
        try:
            if httpx.get(f"{url}v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the service did not answer"
        time.sleep(0.2)


@contextlib.contextmanager
def _serve_process(args: list[str], env: dict[str, str]) -> Iterator[Any]:
    """``foleyseal serve ARGS`` as a real process (stderr piped, as text), stopped the way a
    service manager stops it: SIGTERM, and it must exit 0. Killed if the test fails first."""
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "from foleyseal.cli import main; main()", "serve", *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_port_in_use_is_named_with_the_way_out(verify_env: VerifyEnv) -> None:
    """A taken port gave only uvicorn's "[Errno 98] Address already in use"."""
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = subprocess.run([sys.executable, "-c", "from foleyseal.cli import main; main()", "serve",
                              "--port", str(port), "--workers", "0"],
                             env=verify_env.env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 3, res.stderr
    assert f"cannot listen on http://127.0.0.1:{port}/" in res.stderr and "--port" in res.stderr, res.stderr


def test_sigterm_stops_the_service_cleanly(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """What a service manager sends: a graceful stop, exit 0, and no temporary folder left."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with _serve_process(["--port", str(port), "--workers", "1"], {**verify_env.env(), "TMPDIR": str(tmp)}) as proc:
        _wait_until_healthy(f"http://127.0.0.1:{port}/", proc)
        assert any(tmp.iterdir())  # the upload root and multiprocessing's folder
    assert list(tmp.iterdir()) == []


def test_port_0_announces_the_port_the_system_picked(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """serve --port 0 printed 'service on http://127.0.0.1:0/', a URL nobody can reach."""
    with _serve_process(["--port", "0", "--workers", "0"], verify_env.env()) as proc:
        lines = [proc.stderr.readline() for _ in range(2)]  # ours and uvicorn's "running on", in some order
        match = re.search(r"service on (http://127\.0\.0\.1:(\d+)/)", "".join(lines))
        assert match and int(match.group(2)) > 0, lines
        _wait_until_healthy(match.group(1), proc)


def test_a_client_that_leaves_mid_verification_frees_its_worker(verify_env: VerifyEnv, tmp_path: Path) -> None:
    """Abandoned uploads held the only worker until their verification ended (minutes for long
    files), and every later client waited behind them."""
    import time

    import soundfile as sf

    long_wav = tmp_path / "long.wav"
    rng = np.random.default_rng(5)
    sf.write(long_wav, (0.1 * rng.standard_normal(48_000 * 600)).astype(np.float32), 48_000, subtype="PCM_16")
    config = ServiceConfig(home=verify_env.home, upload_dir=tmp_path / "up", workers=1, rate_limit_per_min=0)
    with running_server(config) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/verify?filename=long.wav", content=long_wav.read_bytes(), timeout=3.0)
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/v1/health").json()["worker_restarts"] < 1:
            assert time.monotonic() < deadline, "the abandoned verification still holds the worker"
            time.sleep(0.2)
        t0 = time.monotonic()
        r = httpx.post(f"{url}/v1/verify", files={"file": ("u.wav", verify_env.files["unmarked"].read_bytes())},
                       timeout=60)
        assert r.status_code == 200 and r.json()["verdict"] == "no_evidence"
        assert time.monotonic() - t0 < 30


def test_openapi_describes_the_report_and_health_answers(client: TestClient, verify_env: VerifyEnv) -> None:
    """The 200s of /v1/verify and /v1/health had no schema: generated clients got an untyped
    object for the service's main answer. The schema's fields are the report's own."""
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    ok = doc["paths"]["/v1/verify"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/ReportBody")
    report = _upload(client, verify_env.files["marked_wav"]).json()
    assert set(schemas["ReportBody"]["properties"]) == set(report)
    assert set(schemas["HealthBody"]["properties"]) == set(client.get("/v1/health").json())
    verdicts = set(schemas["Verdict"]["enum"]) if "Verdict" in schemas else set(schemas["ReportBody"]["properties"]["verdict"]["enum"])
    assert report["verdict"] in verdicts and "no_evidence" in verdicts
    assert "503" in doc["paths"]["/v1/verify"]["post"]["responses"]


def test_a_new_api_key_says_where_it_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The key goes to the home's api-keys.json, not to the (perhaps shared PostgreSQL) store: a
    second instance on the same store refused it, and nothing had said where it went."""
    from foleyseal.cli import main

    monkeypatch.setenv("FOLEYSEAL_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit) as done:
        main(["serve", "--create-api-key", "probe"])
    out, err = capsys.readouterr()
    assert (done.value.code or 0) == 0 and len(out.strip()) >= 32
    keys_file = tmp_path / "home" / "api-keys.json"
    assert f"created in {keys_file}" in err and keys_file.is_file()
    assert out.strip() not in keys_file.read_text()  # only its hash is kept


@pytest.mark.parametrize("stop_asked, failed, code", [(True, True, 0), (False, True, 3), (True, False, 0),
                                                      (False, False, 3)])
def test_a_stop_asked_for_during_start_up_exits_0(stop_asked: bool, failed: bool, code: int) -> None:
    """SIGTERM to serve's process group during start-up (timeout, systemd, a terminal) killed the
    worker processes under it: the start-up failed and serve exited 3, where a stop asked for
    exits 0 (README). A start-up that fails on its own still exits 3."""
    from detectors.service.app import _run_on

    class Server:
        started = False
        should_exit = stop_asked

        def run(self, sockets: list[Any]) -> None:
            if failed:
                raise SystemExit(3)  # uvicorn's own exit on a failed lifespan start-up

    try:
        with socket.socket() as sock:
            _run_on(Server(), sock)
        exited = 0  # returned: the command ends with 0
    except SystemExit as done:
        exited = int(done.code or 0)
    assert exited == code


def test_a_stop_before_the_service_runs_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """SIGTERM in serve's first seconds (its checks, before uvicorn runs) exited 143
    "interrupted (SIGTERM)", where a stop asked for exits 0 (README)."""
    from detectors.service import app as service_app
    from foleyseal.cli import main

    def stopped(config: Any) -> list[str]:
        raise KeyboardInterrupt  # what the CLI's SIGTERM handler raises

    monkeypatch.setenv("FOLEYSEAL_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(service_app, "check_config", stopped)
    with pytest.raises(SystemExit) as done:
        main(["serve", "--port", "0"])
    assert (done.value.code or 0) == 0, capsys.readouterr().err
    assert "stopped before the service started" in capsys.readouterr().err


def test_a_postgresql_url_is_kept_out_of_a_store_down_report() -> None:
    """The 503 report's scrubbing looked for the store's URL as given (postgresql://...), while
    the store's messages name it normalised (postgresql+psycopg://...): with such a URL the
    database's host went out to every client."""
    from detectors.service.routes.verify import _STORE_FAULT, _store_names, _without
    from provenance.store.repository import ManifestStore

    url = "postgresql://foleyseal:secret@127.0.0.1:1/foleyseal"  # nothing listens on port 1
    with pytest.raises(StoreError) as failed:
        ManifestStore(url)
    note = f"The manifest store lookup failed ({failed.value})."
    assert "127.0.0.1" in note
    report = _without({"notes": [note, "another note"]}, _store_names(url))
    assert report == {"notes": [_STORE_FAULT, "another note"]}
