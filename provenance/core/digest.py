"""Content digests of files."""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 1 << 20
"""Bytes read at a time (bounded memory for files of any size)."""


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()
