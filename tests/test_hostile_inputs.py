"""Hostile input: a 300-input sample of the generated bad files through the engine (as the CLI
runs it), the CLI itself, and the HTTP service. Every one gets a correct report or a 4xx with a
clear message; no 5xx, no crash, no hung worker, no temporary file left behind. Also: 2 hours of
silence, path traversal in names, oversized and slow uploads against a real server.

The full 2,000-input run is ``python -m benchmarks.hostile --count 2000``.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from benchmarks.hostile import (
    CATEGORIES,
    HostileCase,
    iter_cases,
    judge,
    plain_bases,
    run_engine,
    run_http,
    summarize,
    two_hours_of_silence,
)
from detectors.service import ServiceConfig, create_app
from detectors.verify import Verifier
from tests import _verify_fixtures
from tests._verify_fixtures import VerifyEnv, running_server

# The session fixture, held by this module (which therefore builds its own): assigned, since an
# imported fixture reads to pyflakes as an unused import that each test's argument redefines.
verify_env = _verify_fixtures.verify_env

SAMPLE = 300


@pytest.fixture(scope="module")
def bases(verify_env: VerifyEnv) -> tuple[dict[str, bytes], dict[str, bytes]]:
    plain = plain_bases()
    signed = {"signed.wav": verify_env.files["marked_wav"].read_bytes()}
    return plain, signed


@pytest.fixture()
def private_tmp(tmp_path: Path) -> Iterator[Path]:
    """Point every temporary file (Python's tempfile and TMPDIR) at an empty directory."""
    d = tmp_path / "tmp"
    d.mkdir()
    old_dir, old_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = str(d)
    os.environ["TMPDIR"] = str(d)
    try:
        yield d
    finally:
        tempfile.tempdir = old_dir
        if old_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_env


def test_generator_covers_every_category_deterministically(bases: tuple[dict, dict]) -> None:
    plain, signed = bases
    a = list(iter_cases(40, seed=3, plain=plain, signed=signed))
    b = list(iter_cases(40, seed=3, plain=plain, signed=signed))
    assert [(c.name, c.data) for c in a] == [(c.name, c.data) for c in b]
    assert {c.category for c in a} == set(CATEGORIES)
    assert any(c.signed for c in a) and any(len(c.data) == 0 for c in a)


def test_judge_rejects_wrong_answers() -> None:
    case = HostileCase(0, "bitflip", "x.wav", b"", "signed.wav", signed=True)
    assert judge(case, 500, {"detail": "boom"}) == "HTTP 500"
    assert judge(case, 422, {"detail": ""}) is not None
    assert judge(case, 200, {"verdict": "credentials_valid", "explanation": "x"}) is not None
    assert judge(case, 200, {"verdict": "credentials_tampered", "explanation": "x"}) is None
    plain = HostileCase(1, "truncated", "y.wav", b"", "plain.wav", signed=False)
    assert judge(plain, 200, {"verdict": "watermark_only", "explanation": "x"}) is not None


def test_engine_sample(verify_env: VerifyEnv, bases: tuple[dict, dict], private_tmp: Path) -> None:
    plain, signed = bases
    with Verifier(verify_env.settings) as v:
        outcomes = run_engine(iter_cases(SAMPLE, seed=11, plain=plain, signed=signed), v)
    summary = summarize(outcomes)
    assert summary["inputs"] == SAMPLE
    assert summary["problems"] == [], summary["problems"][:10]
    statuses = Counter(o.status for o in outcomes)
    assert set(statuses) <= {200, 422} and statuses[200] > 50 and statuses[422] > 50, statuses
    assert os.listdir(private_tmp) == []


def test_http_sample(verify_env: VerifyEnv, bases: tuple[dict, dict], tmp_path: Path) -> None:
    plain, signed = bases
    up = tmp_path / "uploads"
    config = ServiceConfig(home=verify_env.home, upload_dir=up, workers=2, rate_limit_per_min=0)
    with TestClient(create_app(config)) as c:
        outcomes = run_http(iter_cases(SAMPLE, seed=12, plain=plain, signed=signed), c)
        health = c.get("/v1/health").json()
        assert health["status"] == "ok"
    summary = summarize(outcomes)
    assert summary["problems"] == [], summary["problems"][:10]
    assert max(o.status for o in outcomes) < 500
    assert health["worker_restarts"] == 0 and health["jobs_done"] == SAMPLE
    assert [p for p in up.rglob("*") if p.is_file()] == []


def test_cli_on_a_directory_of_hostile_files(verify_env: VerifyEnv, bases: tuple[dict, dict], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from foleyseal.cli import main

    plain, signed = bases
    d = tmp_path / "hostile"
    d.mkdir()
    for case in iter_cases(40, seed=13, plain=plain, signed=signed):
        (d / f"{case.index:03d}-{case.category}{Path(case.name).suffix[:8]}").write_bytes(case.data)
    os.environ["FOLEYSEAL_HOME"] = str(verify_env.home)
    try:
        with pytest.raises(SystemExit) as exc:
            main(["verify", "--json", str(d)])
    finally:
        os.environ.pop("FOLEYSEAL_HOME", None)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 40
    assert exc.value.code in (1, 3, 5)  # never 4 (internal error)


def test_two_hours_of_silence(verify_env: VerifyEnv, tmp_path: Path) -> None:
    path = two_hours_of_silence(tmp_path / "silence.wav")
    assert path.stat().st_size > 100_000_000
    with Verifier(verify_env.settings) as v:
        t0 = time.perf_counter()
        r = v.verify(path)
    assert r.verdict.value == "no_evidence", r.notes
    assert r.container.duration_s == pytest.approx(7200.0)
    assert any("digital silence" in n for n in r.notes)
    assert "nothing a watermark could be searched in" in r.explanation
    assert time.perf_counter() - t0 < 60
    # The same file through the HTTP service (streamed from disk, 115 MB).
    config = ServiceConfig(home=verify_env.home, upload_dir=tmp_path / "up", workers=0, rate_limit_per_min=0)
    with TestClient(create_app(config)) as c, open(path, "rb") as fh:
        r = c.post("/v1/verify", params={"filename": "silence.wav"}, content=fh)
    assert r.status_code == 200 and r.json()["verdict"] == "no_evidence"
    assert [p for p in (tmp_path / "up").rglob("*") if p.is_file()] == []


def test_path_traversal_names_are_only_displayed(verify_env: VerifyEnv, tmp_path: Path) -> None:
    up = tmp_path / "uploads"
    config = ServiceConfig(home=verify_env.home, upload_dir=up, workers=0, rate_limit_per_min=0)
    data = verify_env.files["unmarked"].read_bytes()
    with TestClient(create_app(config)) as c:
        for name in ("../../../../tmp/owned.wav", "..\\..\\owned.wav", "/etc/passwd", "a/../../owned.wav"):
            r = c.post("/v1/verify", files={"file": (name, data)})
            assert r.status_code == 200, r.text
            shown = r.json()["file"]
            assert "/" not in shown and "\\" not in shown and shown.endswith((".wav", "passwd"))
        r = c.post("/v1/verify", params={"filename": "x\x00.wav/../../y"}, content=data)
        assert r.status_code == 200 and "\x00" not in r.json()["file"]
    assert not Path("/tmp/owned.wav").exists() and not (up.parent / "owned.wav").exists()
    assert [p for p in up.rglob("*") if p.is_file()] == []


def _raw_request(url: str, head: bytes, body_parts: list[tuple[bytes, float]], read_timeout: float = 30) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as s:
        s.sendall(head)
        for part, pause in body_parts:
            try:
                s.sendall(part)
            except OSError:
                break
            time.sleep(pause)
        chunks = []
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        except (TimeoutError, OSError):
            pass
        return b"".join(chunks)


def test_slow_and_oversized_uploads_on_a_real_server(verify_env: VerifyEnv, tmp_path: Path) -> None:
    up = tmp_path / "uploads"
    config = ServiceConfig(home=verify_env.home, upload_dir=up, workers=1, rate_limit_per_min=0,
                           upload_idle_timeout_s=1.0, upload_timeout_s=4.0, max_upload_bytes=1_000_000)
    with running_server(config) as url:
        # Stalls: 100 bytes then silence.
        head = b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 50000\r\n\r\n"
        t0 = time.perf_counter()
        answer = _raw_request(url, head, [(b"R" * 100, 3.0)])
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"stalled" in answer and time.perf_counter() - t0 < 10
        # Trickles: a few bytes every 0.5 s (never idle long enough) hits the total time limit.
        answer = _raw_request(url, head, [(b"R" * 10, 0.5)] * 12)
        assert answer.startswith(b"HTTP/1.1 408") and b"longer than the limit" in answer, answer[:200]
        # Oversized, with a truthful Content-Length: refused before the body is read.
        big = b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 5000000\r\n\r\n"
        answer = _raw_request(url, big, [(b"\0" * 65536, 0.0)])
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        # Oversized and chunked (no length): cut off while streaming.
        chunked = b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nTransfer-Encoding: chunked\r\n\r\n"
        piece = b"10000\r\n" + b"\0" * 0x10000 + b"\r\n"
        answer = _raw_request(url, chunked, [(piece, 0.0)] * 20)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        import httpx

        health = httpx.get(f"{url}/v1/health", timeout=30).json()
        assert health["status"] == "ok" and health["worker_restarts"] == 0
    assert [p for p in up.rglob("*") if p.is_file()] == []
