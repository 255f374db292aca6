"""The ``foleyseal`` command: one typer app, one sub-app per stage.

The commands live in the modules imported below and are registered here (which module holds
which command: docs/architecture.md; ``bench`` registers its own).
Exit codes are documented in :mod:`foleyseal.cli.exit_codes`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
from typing import NoReturn

# One BLAS thread per process unless the user says otherwise, set before numpy loads OpenBLAS:
# the matrix products here are small, per chunk of audio, and OpenBLAS's worker threads cost
# more than they give (3 min of 48 kHz stereo embedded in 2.0 s instead of 3.9 s on a busy
# 2-core machine); the commands that can use more cores run processes (bench, serve --workers).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer

from foleyseal.cli import exit_codes
from foleyseal.cli.bench import app as bench_app
from foleyseal.cli.generate import generate_cmd
from foleyseal.cli.keys import app as keys_app
from foleyseal.cli.sign import mark_cmd, sign_cmd
from foleyseal.cli.store import app as store_app
from foleyseal.cli.verify import serve_cmd, verify_cmd
from foleyseal.cli.watermark import app as watermark_app
from provenance import __version__
from provenance.core.errors import FoleySealError
from provenance.core.interrupts import StopRequest, stop_signals_raise

app = typer.Typer(
    name="foleyseal",
    help="Generate soundtracks for video and make every output identifiable "
    "(keyed audio watermark, C2PA credentials, verification).\n\n"
    "Exit codes: 0 success/found, 1 nothing found, 2 usage error, 3 bad input, 4 internal error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(watermark_app, name="watermark")
app.add_typer(keys_app, name="keys")
app.add_typer(bench_app, name="bench")
app.add_typer(store_app, name="store")
app.command("sign")(sign_cmd)
app.command("mark")(mark_cmd)
app.command("verify")(verify_cmd)
app.command("serve")(serve_cmd)
app.command("generate")(generate_cmd)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"foleyseal {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """FoleySeal command line."""


_TYPER_INTERRUPTED = 130
"""What typer returns (without standalone mode) for a KeyboardInterrupt it caught."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the app, mapping FoleySeal errors to exit code 3 and a stop
    request (Ctrl-C, SIGTERM) to one line on stderr and exit 130 or 143."""
    stop = StopRequest()
    try:
        # SIGTERM raises like Ctrl-C does, so that temporary files, folders and child processes
        # are cleaned up on the way out instead of left behind by a process killed outright.
        with stop_signals_raise() as stop:
            # Without standalone mode click returns a command's exit code instead of exiting.
            rv = app(args=argv, standalone_mode=False, prog_name="foleyseal")
    except KeyboardInterrupt:  # one that typer did not catch (raised outside a command)
        _interrupted(stop)
    except FoleySealError as exc:
        typer.echo(f"error: {exc}", err=True)
        _json_error(argv, exit_codes.error_fields(exc), exit_codes.INPUT_ERROR)
        sys.exit(exit_codes.INPUT_ERROR)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except SystemExit:
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":
            # click (typer's copy of it, or click itself) met EPIPE, wrapped stdout and exits 1,
            # which means "found nothing" here: exit as SIGPIPE does instead
            _reader_went_away()
        raise
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            _reader_went_away()
        if exc.errno is None:
            _internal_error(exc)
        # The system refused a file operation (a read-only or full disk, a missing folder, no
        # permission): the environment is at fault, not FoleySeal, and the message says which file.
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        _json_error(argv, {"error": str(exc.strerror or exc), "file": exc.filename, "kind": "OSError"},
                    exit_codes.INPUT_ERROR)
        sys.exit(exit_codes.INPUT_ERROR)
    except Exception as exc:
        # Usage errors (typer's click exceptions) know how to show themselves and their code.
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        _internal_error(exc)
    if rv == _TYPER_INTERRUPTED:
        # typer turns a KeyboardInterrupt into this code, silently; nothing else exits 130
        _interrupted(stop)
    sys.exit(rv if isinstance(rv, int) else exit_codes.OK)


def _reader_went_away() -> NoReturn:
    """The reader of our output went away (``| head``): exit as a process killed by SIGPIPE
    does (141), never with a code that reads as a verdict."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(128 + signal.SIGPIPE)


def _interrupted(stop: StopRequest) -> NoReturn:
    """Say in one line that the command was stopped, and exit 128 + the signal's number."""
    # No signal seen: a KeyboardInterrupt from Python's own Ctrl-C handler (main outside the main thread).
    signum = stop.signum or signal.SIGINT
    typer.echo(f"interrupted ({signal.Signals(signum).name})", err=True)
    sys.exit(128 + signum)


def _internal_error(exc: BaseException) -> NoReturn:
    typer.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
    _json_error(None, {"error": f"internal error: {type(exc).__name__}: {exc}", "file": None,
                       "kind": "InternalError"}, exit_codes.INTERNAL_ERROR)
    sys.exit(exit_codes.INTERNAL_ERROR)


def _json_error(argv: list[str] | None, error: dict[str, object], code: int) -> None:
    """With ``--json`` on the command line, the error also goes to stdout as one JSON object
    (``error``, ``file``, ``kind``: the error class, ``exit_code``), so that a program reading
    the JSON of a run gets an answer it can parse, not an empty stdout; stderr says it to people."""
    args = argv if argv is not None else sys.argv[1:]
    if "--json" not in args:
        return
    with contextlib.suppress(OSError):
        typer.echo(json.dumps({**error, "exit_code": code}))
