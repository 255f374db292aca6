"""Running ``foleyseal`` as a real child process in tests, and waiting on it.

Import what you use into a test module (``from tests._processes import foleyseal, wait_for``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def foleyseal(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``foleyseal ARGS`` from this checkout, in a child with the default Ctrl-C handling (a test
    runner may start its children with SIGINT ignored); ``env`` is added to this process's."""
    return subprocess.Popen(
        [sys.executable, "-m", "foleyseal.cli", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(condition, proc: subprocess.Popen[str], what: str = "the condition", *,
             timeout_s: float = 60.0, poll_s: float = 0.02) -> None:
    """Poll ``condition()`` every ``poll_s`` seconds until it holds; fail, naming ``what``, if
    ``proc`` ends first or ``timeout_s`` passes (then ``proc`` is killed)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the command ended before {what} (exit {proc.returncode}): {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(poll_s)
