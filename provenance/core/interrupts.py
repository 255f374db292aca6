"""Stop requests (SIGINT, SIGTERM) as exceptions, so that cleanup code runs.

By default SIGTERM ends a Python process at once: no ``finally`` block, no context manager's exit,
so temporary files, temporary folders and child processes stay behind. While
:func:`stop_signals_raise` is active both signals raise :class:`Interrupted` in the main thread
instead, and every cleanup on the way out runs as it does for Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that ask a command to stop: Ctrl-C, and what ``kill`` and service managers send."""


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived. A :class:`KeyboardInterrupt`, so code that already stops cleanly on
    Ctrl-C (uvicorn, multiprocessing pools, subprocess) treats SIGTERM the same way."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + the signal number."""
        return 128 + self.signum


@dataclass
class StopRequest:
    """What :func:`stop_signals_raise` saw: the first stop signal received, if any."""

    signum: int | None = None

    @property
    def name(self) -> str | None:
        """The signal's name (``SIGINT``, ``SIGTERM``), None when none arrived."""
        return None if self.signum is None else signal.Signals(self.signum).name


_Handler = Callable[[int, FrameType | None], Any] | int | None


def _replaceable(handler: _Handler) -> bool:
    """Whether ``handler`` is a default we may take over. An ignored signal stays ignored (``nohup``,
    background jobs of a shell script) and a handler someone installed stays theirs."""
    return handler in (signal.SIG_DFL, signal.default_int_handler)


def _act_as_before(signum: int, previous: _Handler, frame: FrameType | None) -> None:
    """Do what ``previous`` would have done: used in forked children, which inherit our handler
    but not the cleanup it protects (multiprocessing's workers expect the defaults)."""
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[StopRequest]:
    """While the block runs, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread.

    Yields a :class:`StopRequest` that records the signal. Only default handlers are replaced,
    so an enclosing ``stop_signals_raise`` (or a server's own handlers) keeps handling the
    signals; outside the main thread, where handlers cannot be set, it changes nothing.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    owner = os.getpid()
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:
            _act_as_before(signum, previous[signum], frame)
            return
        if request.signum is None:
            request.signum = signum
        raise Interrupted(signum)

    previous_hook = sys.unraisablehook

    def swallowed(unraisable: Any) -> None:
        # Python drops an exception raised where it cannot propagate (a garbage-collection
        # callback, a __del__, a ctypes callback) with "Exception ignored in ...": a stop
        # signal that landed there would be lost, and the command would run on. Deliver it
        # again from another thread, so that it lands somewhere it can stop the command.
        if isinstance(unraisable.exc_value, Interrupted) and os.getpid() == owner:
            threading.Timer(0.05, os.kill, (owner, unraisable.exc_value.signum)).start()
            return
        previous_hook(unraisable)

    replaced = [s for s, h in previous.items() if _replaceable(h)]
    for s in replaced:
        signal.signal(s, handler)
    if replaced:
        sys.unraisablehook = swallowed
    try:
        yield request
    finally:
        for s in replaced:
            signal.signal(s, previous[s])
        if replaced:
            sys.unraisablehook = previous_hook


@contextlib.contextmanager
def stop_signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs (cleanup that must finish: stopping a
    child process, removing a folder of secrets), then deliver them as usual.

    A second Ctrl-C would otherwise cut the cleanup of the first short. Outside the main thread
    it changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(held):  # each signal once, in the order they came
            signal.raise_signal(signum)
