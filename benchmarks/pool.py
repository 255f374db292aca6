"""Worker processes for the benchmarks: spawned, single-threaded each, and stopped with the run.

A stop (Ctrl-C, SIGTERM) reaches the main process only: workers ignore SIGINT, the main process
then ends them with SIGTERM, on which a worker in the middle of a task unwinds it (an external
tool's process group is killed on the way) and exits at once. Left to themselves, workers that
got the terminal's SIGINT while one of them held the task queue's lock left the pool's shutdown
waiting for ever, and the ones that did not were left running after the command had exited.

A main process that is killed outright (SIGKILL, the OOM killer) cannot end its workers: each
worker therefore watches its parent itself and, once it is gone, stops as on SIGTERM (unwinding
its task, so an external tool's process group is killed too). On Linux the kernel tells it
(``prctl(PR_SET_PDEATHSIG)``); everywhere a daemon thread also polls ``os.getppid()``. Without
this, orphaned workers went on computing, then waited for ever on a queue nobody wrote to.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")

STOP_GRACE_S = 10.0
"""How long stopped workers get to unwind their task (kill an external tool) before SIGKILL, s."""

PARENT_POLL_S = 1.0
"""How often a worker checks that its parent is still there (where the kernel does not tell it), s."""

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

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


def _ask_kernel_for_sigterm_on_parent_death() -> None:
    """Linux: have the kernel send this process SIGTERM when its parent dies; elsewhere, or
    without a usable libc, nothing (the polling thread still covers it)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _watch_parent(parent_pid: int, poll_s: float = PARENT_POLL_S) -> None:
    """Poll until the parent is gone (this process re-parented), then SIGTERM this process: its
    handler runs in the main thread, where it can unwind the task."""
    while os.getppid() == parent_pid:
        time.sleep(poll_s)
    os.kill(os.getpid(), signal.SIGTERM)


def _init_worker(parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stopped)
    _ask_kernel_for_sigterm_on_parent_death()
    # The parent may have died before prctl took effect, and prctl may be unavailable: the
    # thread sees both (it checks at once, then every PARENT_POLL_S).
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()


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
        # Workers are spawned from this (the main) thread, as prctl's "parent" is the thread
        # that started a process: one started by a thread that ends would be stopped with it.
        ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                 initargs=(os.getpid(),))
        try:
            yield ex
        except BaseException:
            _stop(ex)
            raise
        ex.shutdown(wait=True)
