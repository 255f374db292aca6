"""What a command that stopped part-way had already published, said on stderr."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer


@contextlib.contextmanager
def say_what_was_written() -> Iterator[None]:
    """When the block stops on an error or an interrupt after publishing some files (a first
    candidate, a stem, mark's output just before Ctrl-C), name them on stderr: they stay,
    complete, marked and recorded, and the rest was not written."""
    from provenance.core.errors import published_before

    try:
        yield
    except BaseException as exc:
        written = published_before(exc)
        if written:
            typer.echo("written before the run stopped (each complete, marked and recorded; the rest "
                       f"was not written): {', '.join(str(p) for p in written)}", err=True)
        raise
