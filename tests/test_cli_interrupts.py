"""Ctrl-C and SIGTERM stop a ``foleyseal`` command cleanly: one line on stderr, exit 128 + the
signal's number, no partial output left beside the target."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import soundfile as sf

from provenance.watermark.keys import new_key, save_key
from tests._processes import foleyseal, wait_for

def _long_embed(tmp_path) -> tuple[str, ...]:
    """Arguments of a ``watermark embed`` of 60 s of stereo noise in ``tmp_path`` (long.wav and
    wm.key made there) into ``tmp_path/out.wav``: seconds of work to interrupt."""
    rng = np.random.default_rng(0)
    src = tmp_path / "long.wav"
    sf.write(src, (0.1 * rng.standard_normal((48_000 * 60, 2))).astype(np.float32), 48_000, subtype="PCM_16")
    key = tmp_path / "wm.key"
    save_key(new_key(), key)
    return ("watermark", "embed", str(src), str(tmp_path / "out.wav"), "--key", str(key), "--payload", "0011223344556677")


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_embed_says_so_and_leaves_no_partial_file(tmp_path, signum, code):
    """typer swallowed Ctrl-C into a silent exit 130, and SIGTERM killed the process before the
    temporary output beside the target was removed."""
    proc = foleyseal(*_long_embed(tmp_path))
    # The writer's temporary file exists from the first chunk until the rename: stop it in between.
    wait_for(lambda: any(p.name.startswith(".out.wav.") for p in tmp_path.iterdir()), proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.strip() == f"interrupted ({signal.Signals(signum).name})"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav", "wm.key"]


def test_ignored_and_foreign_handlers_are_left_alone():
    """A signal the caller ignores (``nohup``, a script's background job) stays ignored, and an
    enclosing handler keeps handling it: only the defaults are taken over."""
    from provenance.core.interrupts import stop_signals_raise

    def theirs(signum, frame):  # pragma: no cover - never called
        pass

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, theirs)
        with stop_signals_raise():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is theirs
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with stop_signals_raise() as stop:
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGTERM)
            assert stop.name == "SIGTERM"
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        for s, h in before.items():
            signal.signal(s, h)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_that_lands_where_python_drops_exceptions_is_delivered_again(signum):
    """A Ctrl-C that arrived while Python ran a garbage-collection callback (SQLAlchemy's, in a
    ``bench load`` start-up) was printed as "Exception ignored in ..." and lost: the command ran
    on. It is now delivered again, and stops the command."""
    import gc

    from provenance.core.interrupts import Interrupted, stop_signals_raise

    class SignalledWhileCollected:
        def __del__(self):
            signal.raise_signal(signum)  # the handler raises here, where Python cannot propagate

    with stop_signals_raise() as stop, pytest.raises(Interrupted):
        SignalledWhileCollected()  # collected at once: its __del__ swallows the first Interrupted
        gc.collect()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.01)
    assert stop.signum == signum


def test_what_a_killed_embed_left_is_removed_by_the_next_write_there(tmp_path):
    """SIGKILL (the OOM killer, a CI timeout) leaves no chance to clean up: the hidden temporary
    output stays beside the target. The next write into that folder removes what processes of
    this machine that have ended left there."""
    args = _long_embed(tmp_path)
    proc = foleyseal(*args)
    wait_for(lambda: any(p.name.startswith(".out.wav.") for p in tmp_path.iterdir()), proc)
    proc.kill()
    proc.communicate(timeout=60)
    (left,) = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.wav.")]
    an_hour_ago = time.time() - 3600  # what changed in the last minute is left alone
    os.utime(tmp_path / left, (an_hour_ago, an_hour_ago))
    again = foleyseal(*args)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav", "out.wav", "wm.key"], left
