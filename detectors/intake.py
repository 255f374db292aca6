"""Taking a file in: a path, or a binary stream spooled to a temporary file within the size
limit; its SHA-256, and whether its bytes hold a C2PA manifest store."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from provenance.core.errors import InputError

from detectors.decode import DeadlineExceeded
from detectors.limits import VerifyLimits


@contextlib.contextmanager
def spooled(source: str | os.PathLike[str] | IO[bytes], name: str | None, limits: VerifyLimits) -> Iterator[tuple[Path, str, Path | None]]:
    """Yield ``(path, display_name, temp_dir)`` for a path or a binary stream (spooled to a
    temporary file that is always removed)."""
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        yield p, name or str(p), None
        return
    tmpdir = Path(tempfile.mkdtemp(prefix="foleyseal-verify-"))
    try:
        dst = tmpdir / ("upload" + safe_suffix(name))
        total = 0
        with open(dst, "wb") as fh:
            while True:
                block = source.read(1 << 20)
                if not block:
                    break
                total += len(block)
                if limits.max_bytes is not None and total > limits.max_bytes:
                    raise InputError(f"file is larger than the limit of {limits.max_bytes} bytes", path=name)
                fh.write(block)
        yield dst, name or "upload", tmpdir
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def safe_suffix(name: str | None) -> str:
    """A file-name extension from an untrusted name: ``.`` + 1-8 ASCII letters/digits, or ''."""
    if not name:
        return ""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if "." not in base:
        return ""
    ext = base.rsplit(".", 1)[-1].lower()
    if 1 <= len(ext) <= 8 and ext.isascii() and ext.isalnum():
        return "." + ext
    return ""


C2PA_STORE_UUID = bytes.fromhex("6332706100110010800000aa00389b71")
"""UUID of a JUMBF C2PA manifest store box ("c2pa" + ISO suffix): its bytes mark a manifest."""


def hash_and_scan(path: Path, deadline: float | None) -> tuple[str, bool]:
    """SHA-256 of the file, and whether its bytes contain a C2PA manifest store box."""
    h = hashlib.sha256()
    marker = False
    tail = b""
    with open(path, "rb") as fh:
        while True:
            block = fh.read(4 << 20)
            if not block:
                break
            h.update(block)
            if not marker:
                marker = C2PA_STORE_UUID in tail + block
                tail = block[-(len(C2PA_STORE_UUID) - 1) :]
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded("verification exceeded its time limit while hashing")
    return h.hexdigest(), marker


def is_manifest_store(path: Path) -> bool:
    """Whether the file *is* a C2PA manifest store (what a ``.c2pa`` sidecar holds), judged by
    its first bytes, not its name: a JUMBF superbox (``jumb``) whose description box (``jumd``)
    names the C2PA store's UUID. Such a file is no media: read as one, it validated against
    itself (its own sidecar, by name) and was reported tampered."""
    with open(path, "rb") as fh:
        head = fh.read(48)
    # A box is size (4 bytes), type (4), and an 8-byte size after the type when size is 1.
    desc = 16 if head[:4] == b"\0\0\0\1" else 8
    return (
        head[4:8] == b"jumb"
        and head[desc + 4 : desc + 8] == b"jumd"
        and head[desc + 8 : desc + 24] == C2PA_STORE_UUID
    )


SIDECAR_BESIDE = "verify the file it belongs to, with the sidecar beside it"
"""How to verify with a sidecar, for the CLI and the Python API (the service says its own)."""


def manifest_not_media(advice: str) -> str:
    """The error for a manifest store given to verify as if it were media; ``advice``: how the
    caller's door takes a sidecar."""
    return f"this file is a C2PA manifest (a sidecar), not audio or video: {advice}"

