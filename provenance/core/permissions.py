"""Secret files (watermark keys, signing keys) must be private to their owner."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from provenance.core.errors import KeyFileError


def check_owner_only(path: Path, what: str) -> None:
    """:class:`KeyFileError` naming ``path`` when the file ``what`` (e.g. "signing key file") can
    be read or written by its group or by others (any of the bits 0o077), as SSH refuses such a
    private key: a secret anyone on the machine can read, or replace, is no secret. The file's
    own mode counts, not a symlink's; on Windows the mode bits say nothing and nothing is refused."""
    if os.name == "nt":  # pragma: no cover - platform specific
        return
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"{what} has permissions {mode:04o}; it must be readable by its owner only (chmod 600 {path})",
            path=path,
        )


def read_owner_only_text(path: Path, what: str) -> str:
    """The ASCII text of the secret file ``what`` at ``path``; :class:`KeyFileError` when it is
    missing, not a regular file, readable by others (:func:`check_owner_only`) or unreadable."""
    if not path.exists():
        raise KeyFileError(f"{what} not found", path=path)
    if not path.is_file():
        raise KeyFileError(f"{what} path is not a regular file", path=path)
    check_owner_only(path, what)
    try:
        return path.read_text(encoding="ascii")
    except (UnicodeDecodeError, OSError) as exc:
        raise KeyFileError(f"cannot read {what}: {exc}", path=path) from exc
