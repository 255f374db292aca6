"""Watermark keys: a 256-bit secret, per-purpose subkeys (HKDF-SHA256), key files (mode 0600)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from provenance.core.atomic import atomic_write_bytes
from provenance.core.config import Settings
from provenance.core.errors import KeyFileError
from provenance.core.permissions import read_owner_only_text

KEY_BYTES = 32
_FILE_HEADER = "foleyseal-watermark-key-v1"


@dataclass(frozen=True)
class WatermarkKey:
    """A 256-bit watermark secret. ``repr`` never shows it."""

    secret: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes | bytearray) or len(self.secret) != KEY_BYTES:
            raise KeyFileError(f"a watermark key must be {KEY_BYTES} bytes (256 bits)")

    def __repr__(self) -> str:
        return f"WatermarkKey(id={self.key_id})"

    @property
    def key_id(self) -> str:
        """A public 8-hex-digit identifier of the key (a hash; reveals nothing of the secret)."""
        return self.subkey("key-id", 4).hex()

    def subkey(self, purpose: str, length: int = 32) -> bytes:
        """Derive an independent subkey for one purpose (HKDF-SHA256, info = purpose)."""
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=length,
            salt=b"foleyseal/watermark/v1",
            info=purpose.encode(),
        )
        return hkdf.derive(bytes(self.secret))

    def rng(self, purpose: str) -> np.random.Generator:
        """A deterministic random generator seeded by the subkey for ``purpose``."""
        seed = np.frombuffer(self.subkey(purpose, 32), dtype=np.uint32)
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed.tolist())))


def new_key() -> WatermarkKey:
    """A fresh random key from the operating system's CSPRNG."""
    return WatermarkKey(secrets.token_bytes(KEY_BYTES))


def save_key(key: WatermarkKey, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``key`` to ``path`` (hex text, mode 0600, atomic). Refuses to overwrite unless asked."""
    path = Path(path)
    if path.is_dir():
        raise KeyFileError("is a directory; give the key file's path, e.g. DIR/watermark.key", path=path)
    if path.exists() and not overwrite:
        raise KeyFileError("key file already exists (refusing to overwrite it; --force replaces it, and files "
                           "marked with the old key can then no longer be read with this file)", path=path)
    if not path.parent.exists():
        raise KeyFileError("directory does not exist", path=path.parent)
    atomic_write_bytes(path, f"{_FILE_HEADER}\n{key.secret.hex()}\n".encode(), mode=0o600)
    return path


def load_key(path: str | Path) -> WatermarkKey:
    """Read a key file; refuse files that are missing, malformed, or readable by group/others."""
    path = Path(path)
    lines = read_owner_only_text(path, "watermark key file").split()
    if not lines or lines[0] != _FILE_HEADER:
        raise KeyFileError(f"not a FoleySeal watermark key file (its first line is not {_FILE_HEADER})", path=path)
    if len(lines) != 2:
        raise KeyFileError(f"watermark key file holds {len(lines) - 1} words after its header line; "
                           "it must hold exactly one, the key (64 hex digits)", path=path)
    try:
        secret = bytes.fromhex(lines[1])
    except ValueError as exc:
        raise KeyFileError("watermark key is not valid hexadecimal", path=path) from exc
    if len(secret) != KEY_BYTES:
        raise KeyFileError(f"watermark key has {len(secret) * 8} bits, expected 256", path=path)
    return WatermarkKey(secret)


def load_home_key(settings: Settings) -> WatermarkKey:
    """The watermark key the FoleySeal home's settings name (what ``mark`` and ``generate`` embed
    with); a missing one says how to make it, since a home set up by ``keys import`` has none."""
    path = settings.watermark_key_path
    if not path.exists():
        raise KeyFileError("watermark key file not found; `foleyseal keys init` creates it (and keeps an "
                           "existing or imported signing chain)", path=path)
    return load_key(path)


def as_key(key: WatermarkKey | bytes | str | Path) -> WatermarkKey:
    """Accept a key object, raw 32 bytes, or a key-file path."""
    if isinstance(key, WatermarkKey):
        return key
    if isinstance(key, bytes | bytearray):
        return WatermarkKey(bytes(key))
    if isinstance(key, str) and len(key.strip()) == 2 * KEY_BYTES and not Path(key).exists():
        try:
            bytes.fromhex(key.strip())
        except ValueError:
            pass
        else:  # never echo it: error messages end up in logs
            raise KeyFileError(
                "the key was given as its secret in hex, where a key file's path or a WatermarkKey is "
                "expected; use WatermarkKey(bytes.fromhex(secret))"
            )
    if not isinstance(key, (str, os.PathLike)):
        raise KeyFileError(f"a watermark key is a WatermarkKey, its {KEY_BYTES} bytes or a key file's path, "
                           f"not {type(key).__name__}")
    return load_key(key)
