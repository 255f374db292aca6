"""API keys for the service's write endpoints, stored hashed.

A key looks like ``fsk_<id>_<secret>``: the id finds the entry, the SHA-256 of the whole key
is what the file stores (the secret has 256 bits, so a plain hash is enough: there is nothing
to brute-force), and comparison is constant-time. The file is JSON, mode 0600, written
atomically.

Instances behind one load balancer share the file (one home, or a symbolic link to one file).
A change is a read-modify-write, so each holds an exclusive ``flock`` on ``<file>.lock`` beside
the real file while it makes one: a thread lock alone let two instances overwrite each other's
rotations, leaving a "revoked" key working and a new one refused. The write goes to the file a
link points to, so the link, and the sharing, survive it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

from provenance.core.atomic import atomic_write_bytes
from provenance.core.errors import ConfigError, InputError

_PREFIX = "fsk"
def home_keys_file(home: Path) -> Path:
    """The API keys file of the FoleySeal home ``home``: every service of that home checks keys
    there (the keys are not in the manifest store, which instances may share)."""
    return Path(home) / "api-keys.json"


MAX_NAME_CHARS = 100
"""Longest key name: a label in listings and in ``registered_by``, not a document."""


@dataclass
class ApiKeyEntry:
    id: str
    name: str
    sha256: str
    created_at: str
    revoked_at: str | None = None


_FIELDS = {f.name for f in fields(ApiKeyEntry)}
_REQUIRED = {f.name for f in fields(ApiKeyEntry) if f.name != "revoked_at"}


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_name(name: str) -> str:
    """``name`` without surrounding blanks, or :class:`InputError` when it cannot label a key in a
    listing (empty, over :data:`MAX_NAME_CHARS`, or holding control characters such as a newline)."""
    clean = name.strip()
    if not clean:
        raise InputError("an API key's name must not be empty")
    if len(clean) > MAX_NAME_CHARS:
        raise InputError(f"an API key's name must be at most {MAX_NAME_CHARS} characters, got {len(clean)}")
    if any(unicodedata.category(c) == "Cc" for c in clean):
        raise InputError(f"an API key's name must not hold control characters (such as a newline): {clean!r}")
    return clean


def _entries(data: object) -> list[ApiKeyEntry]:
    """The entries of a parsed keys file, or ValueError saying how it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("keys", []), list):
        raise ValueError('not an API keys file (expected an object with a "keys" list)')
    out = []
    for i, e in enumerate(data.get("keys", [])):
        if not isinstance(e, dict) or not _REQUIRED <= e.keys() or not e.keys() <= _FIELDS:
            raise ValueError(f"entry {i + 1} is not an API key (expected the fields {', '.join(sorted(_FIELDS))})")
        out.append(ApiKeyEntry(**e))
    return out


class ApiKeyStore:
    """The hashed API keys of one service (a small JSON file)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _load(self) -> list[ApiKeyEntry]:
        if not self.path.exists():
            return []
        try:
            return _entries(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the API keys file: {exc}", path=self.path) from exc

    def _real_path(self) -> Path:
        """The file the keys are in: the target of a symbolic link, which must stay a link."""
        return Path(os.path.realpath(self.path))

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold this process's lock and the file's lock (shared by every process) for one change."""
        real = self._real_path()
        real.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(real.with_name(real.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd closes, or the process dies
                yield
            finally:
                os.close(fd)

    def _save(self, entries: list[ApiKeyEntry]) -> None:
        body = json.dumps({"keys": [asdict(e) for e in entries]}, indent=2).encode()
        atomic_write_bytes(self._real_path(), body, mode=0o600)

    def create(self, name: str) -> tuple[str, ApiKeyEntry]:
        """A new key named ``name`` (see :func:`check_name`); returns the plain key (shown once,
        never stored) and its entry."""
        name = check_name(name)
        with self._changing():
            entries = self._load()
            key, entry = self._new_entry(name, datetime.now(timezone.utc).isoformat())
            entries.append(entry)
            self._save(entries)
            return key, entry

    @staticmethod
    def _new_entry(name: str, created_at: str) -> tuple[str, ApiKeyEntry]:
        kid = secrets.token_hex(4)
        key = f"{_PREFIX}_{kid}_{secrets.token_urlsafe(32)}"
        return key, ApiKeyEntry(id=kid, name=name, sha256=_hash(key), created_at=created_at)

    def check(self, key: str | None) -> ApiKeyEntry | None:
        """The entry for a valid, unrevoked key, else None (constant-time hash comparison)."""
        if not key or not key.startswith(_PREFIX + "_") or len(key) > 200:
            return None
        parts = key.split("_", 2)
        if len(parts) != 3:
            return None
        digest = _hash(key)
        match = None
        for e in self._load():
            if hmac.compare_digest(e.sha256, digest) and e.id == parts[1] and e.revoked_at is None:
                match = e
        return match

    def revoke(self, key_id: str) -> bool:
        """Revoke the key ``key_id``; False when no unrevoked key has that id."""
        with self._changing():
            entries = self._load()
            hit = False
            for e in entries:
                if e.id == key_id and e.revoked_at is None:
                    e.revoked_at = datetime.now(timezone.utc).isoformat()
                    hit = True
            if hit:
                self._save(entries)
            return hit

    def rotate(self, old: ApiKeyEntry) -> tuple[str, ApiKeyEntry] | None:
        """Replace ``old`` with a new key of the same name, revoking ``old`` in the same write;
        None if ``old`` was revoked meanwhile (concurrent rotations of one key give one new key)."""
        with self._changing():
            entries = self._load()
            current = next((e for e in entries if e.id == old.id and e.revoked_at is None), None)
            if current is None:
                return None
            now = datetime.now(timezone.utc).isoformat()
            current.revoked_at = now
            key, entry = self._new_entry(current.name, now)
            entries.append(entry)
            self._save(entries)
            return key, entry

    def list(self) -> list[ApiKeyEntry]:
        return self._load()
