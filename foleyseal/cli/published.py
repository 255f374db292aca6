"""What a command published, said on stderr: the files a command that stopped part-way had
already written, and an output resampled for its codec."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

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


@contextlib.contextmanager
def already_published(*paths: Path | None) -> Iterator[None]:
    """For the block that reports a run whose ``paths`` are published: a stop (Ctrl-C, SIGTERM)
    or an error there names them as :func:`say_what_was_written` does. A Ctrl-C during mark's
    report gave "interrupted (SIGINT)", exit 130, with its complete, recorded output unnamed: a
    script would run it again and record a second payload."""
    from provenance.core.errors import note_published

    with say_what_was_written():
        try:
            yield
        except BaseException as exc:
            note_published(exc, tuple(p for p in paths if p is not None))
            raise


def say_if_resampled(input: Path, output: Path) -> None:
    """A note on stderr when OUTPUT's codec could not run at INPUT's rate (MP3 and AAC stop at
    48 kHz, Opus runs at 48 kHz only), so the marked copy was resampled: a 96 kHz master marked
    into .mp3 should not turn into a 48 kHz file without a word, as a 6-channel one into .mp3 is
    refused with one."""
    from provenance.core.io import audio_info

    before, after = audio_info(input).sample_rate, audio_info(output).sample_rate
    if before != after:
        typer.echo(f"note: {output} holds the audio at {after} Hz, not {before} Hz: it was resampled for "
                   "its codec", err=True)
