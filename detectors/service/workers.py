"""A pool of worker processes that run the detectors, so the event loop never blocks.

Each worker builds one :class:`~detectors.verify.Verifier` (keys, trust anchors and store
opened once) and serves jobs over a pipe. The pool is deliberately simple and strict:

* one job per worker at a time; callers wait for a free worker (bounded queue: past
  ``max_pending`` waiting jobs, :class:`PoolBusy`);
* a job that runs past its hard time limit gets its worker killed and replaced
  (:class:`JobTimeout`): a pathological file cannot wedge the service;
* a worker that dies (a crash in a native decoder) is replaced (:class:`WorkerCrashed`);
* each worker's temporary files live in its own scratch directory, wiped when it is replaced.

``workers=0`` runs jobs in threads of the calling process instead (no isolation; for embedding
and debugging).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import multiprocessing as mp
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class PoolBusy(Exception):
    """Too many jobs are already waiting."""


class JobTimeout(Exception):
    """A job exceeded its hard time limit; its worker was replaced."""


class WorkerCrashed(Exception):
    """The worker process died while running the job; it was replaced."""


@dataclass
class WorkerSpec:
    """What every worker needs to build its verifier (picklable)."""

    home: str | None
    database_url: str | None
    trust_anchors: list[str] = field(default_factory=list)
    verify_timeout_s: float = 120.0
    max_bytes: int | None = None
    threads: int = 1
    """Detector threads per verification (1 when each worker process has its own core)."""


SIDECAR_PART_ADVICE = "send it as the `sidecar` part with its file"
"""What the service tells a client that sent a bare ``.c2pa`` manifest as the file to verify."""


# --------------------------------------------------------------------------------------------
# inside a worker


def _build_verifier(spec: WorkerSpec) -> Any:
    from dataclasses import replace

    from provenance.core.config import load_settings

    from detectors.verify import Verifier, VerifyLimits

    settings = load_settings(Path(spec.home) if spec.home else None)
    if spec.database_url:
        settings = replace(settings, store_url=spec.database_url)
    limits = VerifyLimits(time_limit_s=spec.verify_timeout_s, max_bytes=spec.max_bytes)
    return Verifier(settings, extra_trust_anchors=spec.trust_anchors, limits=limits, threads=spec.threads,
                    sidecar_advice=SIDECAR_PART_ADVICE)


def run_job(verifier: Any, op: str, args: dict[str, Any]) -> Any:
    """Execute one job with ``verifier``; returns plain, picklable data."""
    if op == "verify":
        return verifier.verify(args["path"], name=args.get("name")).to_dict()
    if op == "ping":
        return {"pid": os.getpid(), "keys": len(verifier.keyring)}
    raise ValueError(f"unknown job {op!r}")


def _worker_main(conn: Any, spec: WorkerSpec, scratch: str) -> None:
    # Temporary files of this worker (C2PA aliases, spooled streams) go to its scratch dir,
    # which the pool wipes if the worker has to be killed.
    tempfile.tempdir = scratch
    os.environ["TMPDIR"] = scratch
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us
    try:
        verifier = _build_verifier(spec)
        # Load the heavy modules now, not on the first request.
        for module in ("provenance.c2pa.read", "provenance.watermark"):
            importlib.import_module(module)

        verifier._get_store()
        conn.send(("ready", None))
    except BaseException as exc:  # report configuration problems to the server, then exit
        conn.send(("init_error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        if msg is None:
            break
        op, args = msg
        try:
            conn.send(("ok", run_job(verifier, op, args)))
        except Exception as exc:
            log.exception("job %s failed", op)
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    verifier.close()


# --------------------------------------------------------------------------------------------
# the pool


class _Worker:
    def __init__(self, ctx: Any, spec: WorkerSpec, scratch_root: Path, index: int) -> None:
        self.scratch = scratch_root / f"w{index}-{os.urandom(3).hex()}"
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_worker_main, args=(child, spec, str(self.scratch)), name=f"foleyseal-worker-{index}", daemon=True
        )
        self.proc.start()
        child.close()
        self.ready = False

    def wait_ready(self, timeout_s: float) -> None:
        try:
            if not self.conn.poll(timeout_s):
                raise RuntimeError("a verification worker did not start in time")
            kind, info = self.conn.recv()
        except (EOFError, OSError):
            raise RuntimeError(
                f"a verification worker exited during start-up (exit code {self.proc.exitcode}); "
                "a script that starts the service must guard its entry point with "
                "`if __name__ == '__main__':` (workers are separate processes)"
            ) from None
        if kind != "ready":
            raise RuntimeError(f"a verification worker could not start: {info}")
        self.ready = True

    def alive(self) -> bool:
        """Whether an idle worker can take a job: its process runs and its pipe is quiet (an idle
        worker sends nothing, so a readable pipe is the EOF of one that died)."""
        try:
            return self.proc.is_alive() and not self.conn.poll(0)
        except (EOFError, OSError, ValueError):
            return False

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.join(5)
        with contextlib.suppress(Exception):
            self.conn.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(None)
        with contextlib.suppress(Exception):
            self.proc.join(5)
        if self.proc.is_alive():
            self.kill()
        else:
            with contextlib.suppress(Exception):
                self.conn.close()
            shutil.rmtree(self.scratch, ignore_errors=True)


_PRELOAD = [
    "detectors.service.workers",
    "detectors.verify",
    "provenance.watermark",
    "provenance.c2pa.read",
    "provenance.store",
]


class WorkerPool:
    """Runs detector jobs in ``size`` worker processes (or threads when ``size == 0``)."""

    def __init__(self, spec: WorkerSpec, *, size: int, scratch_root: Path, max_pending: int = 64,
                 grace_s: float = 15.0) -> None:
        self.spec = spec
        self.size = size
        self.scratch_root = Path(scratch_root)
        self.max_pending = max_pending
        self.grace_s = grace_s
        # Workers fork from a forkserver that has imported the heavy modules once: a worker (or a
        # replacement for a killed one) starts in milliseconds, and never inherits the server's
        # threads or event loop the way a plain fork would.
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(_PRELOAD)
        self._idle: asyncio.Queue[_Worker] | None = None
        self._workers: list[_Worker] = []
        self._pending = 0
        self._counter = 0
        self._local = threading.local()
        self._thread_sem: asyncio.Semaphore | None = None
        self.restarts = 0
        self.jobs_done = 0

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        """Start the workers and wait until each has loaded its keys and trust anchors."""
        self.scratch_root.mkdir(parents=True, exist_ok=True)
        if self.size == 0:
            self._thread_sem = asyncio.Semaphore(max(1, os.cpu_count() or 1))
            return
        self._idle = asyncio.Queue()
        started = [self._spawn() for _ in range(self.size)]
        try:
            for w in started:
                w.wait_ready(120.0)
        except BaseException:
            for w in started:
                w.kill()
            raise
        for w in started:
            self._workers.append(w)
            self._idle.put_nowait(w)

    def _spawn(self) -> _Worker:
        self._counter += 1
        return _Worker(self._ctx, self.spec, self.scratch_root, self._counter)

    async def _replace(self, dead: _Worker) -> None:
        dead.kill()
        self.restarts += 1
        with contextlib.suppress(ValueError):
            self._workers.remove(dead)
        fresh = self._spawn()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, fresh.wait_ready, 120.0)
        except Exception:
            log.exception("a replacement worker failed to start")
            fresh.kill()
            # Keep the pool's size: try again later rather than shrink for ever.
            fresh = self._spawn()
            await loop.run_in_executor(None, fresh.wait_ready, 120.0)
        self._workers.append(fresh)
        assert self._idle is not None
        self._idle.put_nowait(fresh)

    async def run(self, op: str, args: dict[str, Any], *, timeout_s: float | None = None) -> Any:
        """Run one job; raises PoolBusy, JobTimeout, WorkerCrashed, or RuntimeError (job failed)."""
        if self._pending >= self.max_pending:
            raise PoolBusy()
        limit = (timeout_s if timeout_s is not None else self.spec.verify_timeout_s) + self.grace_s
        self._pending += 1
        try:
            if self.size == 0:
                return await self._run_thread(op, args)
            worker = await self._take_live_worker()
        finally:
            self._pending -= 1
        return await self._run_on(worker, op, args, limit)

    async def _take_live_worker(self) -> _Worker:
        """The next idle worker that is alive. One killed while idle (the OOM killer, an
        operator) is replaced here: sent the job, it would fail it as if the file had crashed it."""
        assert self._idle is not None
        while True:
            worker = await self._idle.get()
            if worker.alive():
                return worker
            await self._replace_dead(worker)

    async def replace_dead_idle(self) -> int:
        """Replace the idle workers that have died (a health check calls this, so that it
        reports workers that can take jobs); returns how many were replaced."""
        if self._idle is None:
            return 0
        idle: list[_Worker] = []
        while not self._idle.empty():
            idle.append(self._idle.get_nowait())
        dead = [w for w in idle if not w.alive()]
        for w in idle:
            if w not in dead:
                self._idle.put_nowait(w)
        for w in dead:
            await self._replace_dead(w)
        return len(dead)

    async def _replace_dead(self, worker: _Worker) -> None:
        log.warning("worker pid %s died while idle (exit code %s): replacing it", worker.proc.pid, worker.proc.exitcode)
        await self._replace(worker)

    async def _run_on(self, worker: _Worker, op: str, args: dict[str, Any], limit: float) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        fd = worker.conn.fileno()

        def _readable() -> None:
            if not fut.done():
                fut.set_result(None)

        try:
            worker.conn.send((op, args))
        except (OSError, BrokenPipeError):
            await self._replace(worker)
            raise WorkerCrashed() from None
        loop.add_reader(fd, _readable)
        try:
            await asyncio.wait_for(fut, limit)
        except asyncio.TimeoutError:
            loop.remove_reader(fd)
            log.warning("job %s exceeded %.0f s: replacing worker pid %s", op, limit, worker.proc.pid)
            await self._replace(worker)
            raise JobTimeout() from None
        except asyncio.CancelledError:
            # The request went away mid-job: the worker is still busy with it, so it cannot be
            # handed to someone else; replace it in the background.
            loop.remove_reader(fd)
            asyncio.ensure_future(self._replace(worker))
            raise
        loop.remove_reader(fd)
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            await self._replace(worker)
            raise WorkerCrashed() from None
        assert self._idle is not None
        self._idle.put_nowait(worker)
        self.jobs_done += 1
        if kind == "ok":
            return payload
        raise RuntimeError(payload)

    async def _run_thread(self, op: str, args: dict[str, Any]) -> Any:
        assert self._thread_sem is not None

        def call() -> Any:
            v = getattr(self._local, "verifier", None)
            if v is None:
                v = _build_verifier(self.spec)
                self._local.verifier = v
            return run_job(v, op, args)

        async with self._thread_sem:
            result = await asyncio.to_thread(call)
        self.jobs_done += 1
        return result

    def close(self) -> None:
        for w in self._workers:
            w.stop()
        self._workers.clear()
