"""File names in lines of text."""

from __future__ import annotations

from pathlib import Path


def shown(name: str | Path) -> str:
    """``name`` for a line of text: control characters (a newline in a file name) and bytes that
    are not UTF-8 as escapes, so one file stays one line (a report split in two at a newline)."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(name))
