"""``foleyseal bench load``: whatever stops it, its server and its temporary home go with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests._processes import foleyseal, wait_for

def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def port_of(pid: int) -> int | None:
    """The ``--port`` on the command line of process ``pid``; None before it runs the server (a
    child just forked still shows its parent's command line until it execs)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return int(argv[argv.index(b"--port") + 1]) if b"--port" in argv else None


def server_of(pid: int) -> tuple[int, int] | None:
    """The server child of ``pid`` and its port, once it runs the server; else None."""
    for child in children(pid):
        port = port_of(child)
        if port is not None:
            return child, port
    return None


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start_load_run(tmp_path: Path) -> tuple[Path, subprocess.Popen[str]]:
    """``bench load`` (one client, 120 s) in a child with its own TMPDIR (returned) and the default
    Ctrl-C handling (a test runner may start its children with SIGINT ignored)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = foleyseal("bench", "load", "--clients", "1", "--duration", "120", "--file-seconds", "5", "--workers", "1",
                     env={"TMPDIR": str(tmp), "FOLEYSEAL_HOME": str(tmp_path / "home")})
    return tmp, proc


@pytest.mark.slow  # three load runs, each with its own server start-up (a few seconds each)
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("signum, when", [
    (signal.SIGTERM, "start-up"),
    (signal.SIGTERM, "run"),
    (signal.SIGINT, "start-up"),
])
def test_a_stopped_load_run_leaves_no_server_and_no_temporary_home(tmp_path, signum, when):
    """SIGTERM killed bench load outright, and SIGINT during the server's start-up came before the
    try/finally that stops it: the server kept running and the temporary home (signing key,
    watermark key, API keys, store) stayed in TMPDIR."""
    tmp, proc = start_load_run(tmp_path)
    server = None
    orphan = False
    try:
        wait_for(lambda: server_of(proc.pid) is not None, proc, "the server process started",
                 timeout_s=120.0, poll_s=0.05)
        server, port = server_of(proc.pid)  # type: ignore[misc]
        if when == "run":
            wait_for(lambda: answers(port), proc, "the server answered",
                     timeout_s=120.0, poll_s=0.05)
            time.sleep(0.5)  # the clients are at work
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if server is not None and alive(server):  # a failure must not leave it running either
            time.sleep(2)
            if alive(server):
                os.kill(server, signal.SIGKILL)
                orphan = True
    assert not orphan, "the server process was still running"
    assert proc.returncode == 128 + signum, err
    assert err.strip().splitlines()[-1] == f"interrupted ({signal.Signals(signum).name})"
    assert "Traceback" not in err
    assert not answers(port)
    assert sorted(p.name for p in tmp.iterdir()) == []  # no foleyseal-load-* home, nothing of the server's


@pytest.mark.slow  # one server start-up
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_load_run_killed_outright_takes_its_server_with_it(tmp_path):
    """SIGKILL runs no cleanup in bench load: its server kept serving, orphaned, until killed by
    hand. The server now stops itself when its parent dies (its temporary home cannot be removed
    by anyone after a SIGKILL, so this test removes it)."""
    _, proc = start_load_run(tmp_path)
    server = None
    try:
        wait_for(lambda: server_of(proc.pid) is not None, proc, "the server process started",
                 timeout_s=120.0, poll_s=0.05)
        server, port = server_of(proc.pid)  # type: ignore[misc]
        wait_for(lambda: answers(port), proc, "the server answered",
                 timeout_s=120.0, poll_s=0.05)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 30
        while alive(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphan = alive(server)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if server is not None and alive(server):
            os.kill(server, signal.SIGKILL)
    assert not orphan, "the server outlived its killed parent"
    assert not answers(port)


def _strict_json(text: str) -> dict:
    """``json.loads`` that refuses NaN and Infinity, as JSON.parse and jq do."""
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _no_request_succeeded(cfg):
    from benchmarks.load import _summarise

    return _summarise(cfg, [(0.5, 503, "busy")], 1.0, None)


def test_latencies_without_a_successful_request_are_null_in_the_json(tmp_path, monkeypatch, capsys):
    """They were NaN, written as a bare NaN: invalid JSON for every other reader."""
    import benchmarks.load
    from foleyseal.cli import main

    monkeypatch.setattr(benchmarks.load, "run_load", _no_request_succeeded)
    out = tmp_path / "load.json"
    with pytest.raises(SystemExit) as exc:
        main(["bench", "load", "--duration", "1", "--json", "--out", str(out)])
    assert exc.value.code == 1  # nothing succeeded
    printed = _strict_json(capsys.readouterr().out)
    assert printed == _strict_json(out.read_text())
    assert printed["latency_p50_s"] is None and printed["latency_max_s"] is None and printed["errors"] == 1
    out.unlink()
    assert benchmarks.load.main(["--duration", "1", "--out", str(out)]) == 1  # python -m benchmarks.load
    assert _strict_json(out.read_text())["latency_p95_s"] is None


def _never(*args, **kwargs):
    raise AssertionError("the run started before the output was checked")


@pytest.mark.parametrize("where, message", [
    ("folder", "is a directory"),
    ("file/x.json", "is not a folder"),
    ("missing/x.json", "does not exist"),
    ("/proc/x.json", "cannot create files in /proc"),
])
def test_an_unwritable_out_is_refused_before_the_load_run(tmp_path, monkeypatch, capsys, where, message):
    """--out was checked only after minutes of load (a directory failed at the very end), and a
    folder that exists but takes no new files (/proc) was said not to exist."""
    import benchmarks.load
    from foleyseal.cli import main

    if where.startswith("/proc") and not Path("/proc").is_dir():
        pytest.skip("needs /proc")
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(benchmarks.load, "run_load", _never)
    out = Path(where) if where.startswith("/") else tmp_path / where
    with pytest.raises(SystemExit) as exc:
        main(["bench", "load", "--out", str(out)])
    err = capsys.readouterr().err
    assert exc.value.code == 3 and message in err, err
    if where != "missing/x.json":  # python -m benchmarks.load makes missing folders
        with pytest.raises(Exception, match=message):
            benchmarks.load.main(["--out", str(out)])


def test_a_running_service_can_be_loaded_with_its_api_key(tmp_path, monkeypatch, capsys):
    """`bench load` always started a server of its own: a running one (with its store, its rate
    limit) could not be measured from the command line, though the benchmark supports it."""
    import benchmarks.load
    from foleyseal.cli import main

    seen = []

    def record(cfg):
        seen.append(cfg)
        return _no_request_succeeded(cfg)

    monkeypatch.setattr(benchmarks.load, "run_load", record)
    key = tmp_path / "api.key"
    key.write_text("fsk_partner\n")
    key.chmod(0o600)
    with pytest.raises(SystemExit):
        main(["bench", "load", "--duration", "1", "--url", "http://127.0.0.1:8731/", "--api-key-file", str(key)])
    assert (seen[0].url, seen[0].api_key) == ("http://127.0.0.1:8731", "fsk_partner")
    assert "the service at http://127.0.0.1:8731" in capsys.readouterr().out  # not the workers it did not start
    for args, message in ((["--url", "https://verify.example.org"], "must be a service on this machine"),
                          (["--api-key-file", str(key)], "--api-key-file is for a service given by --url")):
        with pytest.raises(SystemExit) as exc:
            main(["bench", "load", "--duration", "1", *args])
        assert exc.value.code == 3 and message in capsys.readouterr().err
    assert len(seen) == 1


def test_a_url_where_no_service_answers_is_said_before_any_load(tmp_path, capsys):
    """`bench load --url` at a port nobody listens on fired thousands of refused requests for the
    whole --duration and reported latencies of "nan s"."""
    import socket

    from foleyseal.cli import main

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(SystemExit) as exc:
        main(["bench", "load", "--duration", "30", "--url", f"http://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert exc.value.code == 3 and f"no verification service answers at http://127.0.0.1:{port}" in err, err
