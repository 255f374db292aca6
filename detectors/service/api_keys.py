"""API keys for the service's write endpoints, stored hashed.

A key looks like ``fsk_<id>_<secret>``: the id finds the entry, the SHA-256 of the whole key
is what the file stores (the secret has 256 bits, so a plain hash is enough: there is nothing
to brute-force), and comparison is constant-time. The file is JSON, mode 0600, written
atomically.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from provenance.core.atomic import atomic_write_bytes
from provenance.core.errors import ConfigError

_PREFIX = "fsk"


@dataclass
class ApiKeyEntry:
    id: str
    name: str
    sha256: str
    created_at: str
    revoked_at: str | None = None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyStore:
    """The hashed API keys of one service (a small JSON file)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _load(self) -> list[ApiKeyEntry]:
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [ApiKeyEntry(**e) for e in data.get("keys", [])]
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"cannot read the API keys file: {exc}", path=self.path) from exc

    def _save(self, entries: list[ApiKeyEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"keys": [asdict(e) for e in entries]}, indent=2).encode()
        atomic_write_bytes(self.path, body, mode=0o600)

    def create(self, name: str) -> tuple[str, ApiKeyEntry]:
        """A new key; returns the plain key (shown once, never stored) and its entry."""
        with self._lock:
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
        with self._lock:
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
        with self._lock:
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
