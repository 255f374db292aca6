"""Load benchmark of the verification service: N concurrent clients verifying clips of
``file_seconds`` (30 s by default).

Starts ``foleyseal serve`` as a separate process on 127.0.0.1 (a fresh FoleySeal home with keys
and a marked clip, unless ``LoadConfig.url`` names a running server), then runs ``clients`` threads
that each upload a file to ``POST /v1/verify`` again and again until ``duration_s`` has passed.
Bounded in every direction: only localhost, a request cap, a per-request timeout, and a hard
stop after ``duration_s`` + the timeout.

Reports throughput (requests/s and audio-seconds verified per second), p50/p95/max latency,
error count (any non-200 or transport error), and the verdicts seen::

    python -m benchmarks.load --clients 32 --duration 60 --file-seconds 30
    foleyseal bench load --clients 32 --duration 60
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.jsonout import dumps
from provenance.core.atomic import atomic_write_bytes, check_output_folder, check_writable
from provenance.core.interrupts import stop_signals_deferred, stop_signals_raise


LOCAL_URLS = ("http://127.0.0.1", "http://localhost", "http://[::1]")
"""How the URL of a service on this machine begins: the only kind the benchmark loads."""


@dataclass
class LoadConfig:
    clients: int = 32
    duration_s: float = 60.0
    file_seconds: float = 30.0
    """Length of the clips the clients verify, seconds."""
    workers: int = 2
    """Detector worker processes of the server started here."""
    request_timeout_s: float = 180.0
    max_requests: int = 20_000
    url: str | None = None
    """An already running server (must be on localhost); None: start one."""
    api_key: str | None = None
    """Key for a server given by ``url`` (clients with a key are not rate limited)."""


@dataclass
class LoadResult:
    config: dict[str, Any]
    requests: int
    ok: int
    errors: int
    error_samples: list[str]
    elapsed_s: float
    throughput_rps: float
    audio_seconds_per_s: float
    latency_p50_s: float
    latency_p95_s: float
    latency_max_s: float
    verdicts: dict[str, int]
    server_health: dict[str, Any] | None
    machine: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clip(seconds: float, seed: int) -> np.ndarray:
    """A broadband stereo 48 kHz clip (filtered noise with a tone), float32 ``(2, n)``."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(48_000 * seconds)
    t = np.arange(n) / 48_000
    x = 0.25 * lfilter([1.0], [1.0, -0.98], rng.standard_normal(n))
    x = x / np.abs(x).max() * 0.3 + 0.05 * np.sin(2 * np.pi * 220 * t)
    side = 0.02 * rng.standard_normal(n)
    return np.stack([x + side, x - side]).astype(np.float32)


def prepare_home(base: Path, file_seconds: float) -> tuple[Path, list[Path], str]:
    """A FoleySeal home with keys, an API key, a marked clip, its MP3 re-encode and an unmarked
    clip; returns (home, files, api key)."""
    from benchmarks.homes import init_home
    from provenance.core.audio import Audio
    from provenance.core.io import read_audio, write_audio
    from provenance.mark import mark

    from detectors.service.api_keys import ApiKeyStore, home_keys_file

    home = base / "home"
    settings = init_home(home)
    write_audio(base / "src.wav", Audio(_clip(file_seconds, 1), 48_000, subtype="PCM_16"))
    marked = mark(base / "src.wav", base / "marked.wav", settings=settings, generated=True).output
    write_audio(base / "reencoded.mp3", read_audio(marked), bitrate_kbps=128)
    write_audio(base / "unmarked.wav", Audio(_clip(file_seconds, 2), 48_000, subtype="PCM_16"))
    key, _ = ApiKeyStore(home_keys_file(home)).create("load benchmark")
    return home, [marked, base / "reencoded.mp3", base / "unmarked.wav"], key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A SIGKILL to the benchmark runs no cleanup, so on Linux the server asks the kernel for SIGTERM
# (its graceful shutdown) when its parent dies, and exits at once if that already happened.
_SERVER_CODE = """\
import os, signal, sys
if sys.platform.startswith("linux"):
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    if os.getppid() != {parent}:
        sys.exit(143)
from foleyseal.cli import main
main(sys.argv[1:])
"""


def _spawn_server(home: Path, workers: int, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``foleyseal serve`` on ``127.0.0.1:port`` in its own process group, output to ``log``."""
    env = dict(os.environ, FOLEYSEAL_HOME=str(home))
    code = _SERVER_CODE.format(parent=os.getpid())
    with open(log, "wb") as fh:
        # Its own session: a Ctrl-C at the terminal reaches this process only, which stops the
        # server itself, in order; and the group can be killed whole if it does not stop.
        return subprocess.Popen(
            [sys.executable, "-c", code, "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)],
            env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, timeout_s: float = 180.0) -> None:
    """Return once ``url``/v1/health answers 200; raise if the server exits or ``timeout_s`` passes."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the server did not start within {timeout_s:.0f} s")


def stop_server(proc: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    """Stop the server: SIGTERM (a graceful shutdown that also ends its worker processes), then
    SIGKILL to its whole process group after ``grace_s`` seconds. Signals to this process are
    held back meanwhile, so a second Ctrl-C cannot leave the server running."""
    with stop_signals_deferred():
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def local_server(home: Path, workers: int, *, log: Path) -> Iterator[str]:
    """``foleyseal serve`` in its own process on a free localhost port; yields its URL once
    /v1/health answers, and stops it on the way out, whatever ends the block (start-up included)."""
    port = _free_port()
    proc = _spawn_server(home, workers, port, log)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(proc, url, log)
        yield url
    finally:
        stop_server(proc)


def run_clients(url: str, files: list[Path], cfg: LoadConfig, api_key: str | None) -> tuple[list[tuple[float, int, str | None]], float]:
    """Run the clients; returns [(latency_s, status, verdict or error)] and the elapsed time."""
    import httpx

    if not url.startswith(LOCAL_URLS):
        raise ValueError("the load benchmark only talks to localhost")
    blobs = [(p.name, p.read_bytes()) for p in files]
    results: list[tuple[float, int, str | None]] = []
    lock = threading.Lock()
    start = time.monotonic()
    stop_at = start + cfg.duration_s
    count = [0]
    stop = threading.Event()  # set when the caller is interrupted: the clients stop too
    headers = {"X-API-Key": api_key} if api_key else {}

    def client(i: int) -> None:
        with httpx.Client(base_url=url, timeout=cfg.request_timeout_s, headers=headers) as h:
            k = i
            while time.monotonic() < stop_at and not stop.is_set():
                with lock:
                    if count[0] >= cfg.max_requests:
                        return
                    count[0] += 1
                name, data = blobs[k % len(blobs)]
                k += 1
                t0 = time.monotonic()
                try:
                    r = h.post("/v1/verify", files={"file": (name, data)})
                    verdict = r.json().get("verdict") if r.status_code == 200 else r.text[:200]
                    status = r.status_code
                except httpx.HTTPError as exc:
                    status, verdict = 0, f"{type(exc).__name__}: {exc}"
                with lock:
                    results.append((time.monotonic() - t0, status, verdict))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(cfg.clients)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, stop_at - time.monotonic()) + cfg.request_timeout_s + 5)
    finally:
        stop.set()
    return results, time.monotonic() - start


def run_load(cfg: LoadConfig) -> LoadResult:
    """Prepare files, start a server (unless ``cfg.url``), run the clients, stop, summarise.

    Whatever ends the run (an error, Ctrl-C, SIGTERM; the signals raise here as in the CLI),
    the server is stopped and the temporary home with its keys and store is removed."""
    with stop_signals_raise():
        return _summarise(cfg, *_measure(cfg))


def _measure(cfg: LoadConfig) -> tuple[list[tuple[float, int, str | None]], float, dict[str, Any] | None]:
    """Run the clients against ``cfg.url`` or a server of a temporary home; returns the results,
    the elapsed time (s) and the server's health after the run."""
    if cfg.url is not None:
        check_service(cfg.url)  # before its clips are made, and not thousands of refused requests after
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(_temporary_folder())
        home, files, key = prepare_home(base, cfg.file_seconds)
        url, api_key = cfg.url, cfg.api_key
        if url is None:
            url = stack.enter_context(local_server(home, cfg.workers, log=base / "server.log"))
            api_key = key
        results, elapsed = run_clients(url, files, cfg, api_key)
        return results, elapsed, _health(url)


def check_service(url: str) -> None:
    """:class:`~provenance.core.errors.ConfigError` unless a FoleySeal verification service answers
    ``url``/v1/health (200, or 503 for one whose store is down: it answers, and says so)."""
    import httpx

    from provenance.core.errors import ConfigError

    try:
        answer = httpx.get(f"{url}/v1/health", timeout=10)
    except httpx.HTTPError as exc:
        raise ConfigError(f"no verification service answers at {url}: {exc}") from None
    if answer.status_code not in (200, 503) or "status" not in answer.text:
        raise ConfigError(f"{url} is not a FoleySeal verification service (GET /v1/health answered "
                          f"{answer.status_code})")


@contextlib.contextmanager
def _temporary_folder() -> Iterator[Path]:
    """A private temporary folder (it will hold signing and watermark keys), removed on the way
    out with stop signals held back, so that a second Ctrl-C cannot leave the keys behind."""
    path = Path(tempfile.mkdtemp(prefix="foleyseal-load-"))
    try:
        yield path
    finally:
        with stop_signals_deferred():
            shutil.rmtree(path)


def _health(url: str) -> dict[str, Any] | None:
    """The server's /v1/health answer, None when it does not answer."""
    import httpx

    try:
        return httpx.get(f"{url}/v1/health", timeout=30).json()
    except httpx.HTTPError:
        return None


def _summarise(cfg: LoadConfig, results: list[tuple[float, int, str | None]], elapsed: float,
               health: dict[str, Any] | None) -> LoadResult:
    """The :class:`LoadResult` of one run: counts, throughput and latency percentiles."""
    lat = np.array([r[0] for r in results if r[1] == 200]) if results else np.zeros(0)
    ok = int(sum(1 for r in results if r[1] == 200))
    errors = [r for r in results if r[1] != 200]
    seconds_per_file = cfg.file_seconds
    return LoadResult(
        config=asdict(cfg) | {"url": None if cfg.url is None else cfg.url, "api_key": None},
        requests=len(results),
        ok=ok,
        errors=len(errors),
        error_samples=[f"{s}: {v}" for _, s, v in errors[:5]],
        elapsed_s=round(elapsed, 2),
        throughput_rps=round(ok / elapsed, 3) if elapsed else 0.0,
        audio_seconds_per_s=round(ok * seconds_per_file / elapsed, 1) if elapsed else 0.0,
        latency_p50_s=round(float(np.percentile(lat, 50)), 3) if lat.size else float("nan"),
        latency_p95_s=round(float(np.percentile(lat, 95)), 3) if lat.size else float("nan"),
        latency_max_s=round(float(lat.max()), 3) if lat.size else float("nan"),
        verdicts=dict(Counter(str(r[2]) for r in results if r[1] == 200)),
        server_health=health,
        machine={"cpus": os.cpu_count(), "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
    )


def format_result(r: LoadResult) -> str:
    c = r.config
    return "\n".join([
        f"{c['clients']} clients x {c['duration_s']:.0f} s, {c['file_seconds']:.0f} s files, "
        + (f"the service at {c['url']}" if c.get("url")
           else f"{c['workers']} worker process{'' if c['workers'] == 1 else 'es'}"),
        f"requests {r.requests}  ok {r.ok}  errors {r.errors}",
        f"throughput {r.throughput_rps:.2f} req/s  ({r.audio_seconds_per_s:.0f} s of audio verified per second)",
        f"latency p50 {r.latency_p50_s:.2f} s  p95 {r.latency_p95_s:.2f} s  max {r.latency_max_s:.2f} s",
        f"verdicts {r.verdicts}",
    ] + ([f"error samples {r.error_samples}"] if r.errors else []))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Load benchmark of the FoleySeal verification service.")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--file-seconds", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    args = ap.parse_args(argv)
    if args.out:  # before minutes of load, not after
        check_output_folder(args.out.parent)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        check_writable(args.out)
    r = run_load(LoadConfig(clients=args.clients, duration_s=args.duration, file_seconds=args.file_seconds,
                            workers=args.workers))
    print(format_result(r))
    if args.out:
        atomic_write_bytes(args.out, dumps(r.to_dict(), indent=2).encode("utf-8"))
    return 0 if r.errors == 0 and r.ok > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
