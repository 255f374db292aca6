"""Worker processes for the benchmarks: spawned, single-threaded each, and stopped with the run.

A stop (Ctrl-C, SIGTERM) reaches the main process only: workers ignore SIGINT, the main process
then ends them with SIGTERM, on which a worker in the middle of a task unwinds it (an external
tool's process group is killed on the way) and exits at once. Left to themselves, workers that
got the terminal's SIGINT while one of them held the task queue's lock left the pool's shutdown
waiting for ever, and the ones that did not were left running after the command had exited.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")

STOP_GRACE_S = 10.0
"""How long stopped workers get to unwind their task (kill an external tool) before SIGKILL, s."""

_in_task = False


@contextlib.contextmanager
def single_threaded_children() -> Iterator[None]:
    """Worker processes started inside this block keep each numeric library single-threaded
    (unless the user set the variables), so N processes on N cores do not oversubscribe.

    The variables must be in the environment the children start with: a spawned worker
    imports NumPy (and OpenBLAS sizes its thread pool) before any initializer runs.
    """
    saved = {var: os.environ.get(var) for var in _THREAD_VARS}
    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _stopped(signum: int, frame: Any) -> None:
    if _in_task:
        raise KeyboardInterrupt  # unwinds the task; call() then exits
    os._exit(128 + signum)


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stopped)


def call(fn: Any, *args: Any) -> Any:
    """Run ``fn(*args)`` in a worker; a stop while it runs ends the worker once it has unwound
    (the pool would otherwise report the interrupt as the task's result and carry on)."""
    global _in_task
    _in_task = True
    try:
        return fn(*args)
    except KeyboardInterrupt:
        os._exit(128 + signal.SIGTERM)
    finally:
        _in_task = False


def _stop(ex: ProcessPoolExecutor) -> None:
    """End the pool's workers now: SIGTERM, then SIGKILL for any still there after the grace."""
    processes = list((getattr(ex, "_processes", None) or {}).values())
    ex.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        with contextlib.suppress(OSError, ValueError):
            p.terminate()
    for p in processes:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            p.join(STOP_GRACE_S)
            if p.is_alive():
                p.kill()
                p.join()


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` spawned, single-threaded processes; submit ``call, fn, *args`` to
    it. Left normally, it waits for its tasks; left by an exception (a stop), it ends them."""
    with single_threaded_children():  # workers start as tasks are submitted
        ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_init_worker)
        try:
            yield ex
        except BaseException:
            _stop(ex)
            raise
        ex.shutdown(wait=True)
