"""Configuration of the verification service (limits, pool, rate limits, paths)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MAX_UPLOAD_BYTES = 500 * 1024 * 1024


@dataclass
class ServiceConfig:
    """How one ``foleyseal serve`` process behaves. Units in the names (bytes, seconds)."""

    home: Path | None = None
    """FoleySeal home (keys, trust anchors, store); None: ``$FOLEYSEAL_HOME`` or the user default."""
    database_url: str | None = None
    """SQLAlchemy URL of the manifest store; None: the configured one (SQLite in the home)."""
    trust_anchors: list[Path] = field(default_factory=list)
    """Extra PEM trust anchors on top of the configuration."""
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    upload_timeout_s: float = 300.0
    """Whole-upload time limit (a 500 MiB upload on a slow link still fits)."""
    upload_idle_timeout_s: float = 30.0
    """Longest pause between two chunks of an upload before it is dropped (slow-loris guard)."""
    header_timeout_s: float = 20.0
    """Time a connection has to send a whole request head, from connecting or from the previous
    response (the same guard for headers: a late head gets 408 and the connection is closed)."""
    max_connections_per_client: int = 64
    """Open connections allowed per client address; more get 503 at once (0: no cap). Off when
    ``trust_forwarded_for`` is set: behind a proxy every connection comes from the proxy."""
    verify_timeout_s: float = 120.0
    """Time limit of one verification; a worker past it (plus a grace period) is killed."""
    workers: int = 2
    """Worker processes running the detectors; 0 runs them in threads of this process."""
    max_pending: int = 64
    """Verifications that may wait for a worker; more are refused with 429."""
    rate_limit_per_min: float = 60.0
    """Read requests per minute per anonymous client (IP address); 0 disables the limit."""
    rate_limit_burst: int = 30
    upload_dir: Path | None = None
    """Where uploads and worker scratch files go; None: a fresh directory under the system temp."""
    api_keys_path: Path | None = None
    """Hashed API keys file; None: ``<home>/api-keys.json``."""
    trust_forwarded_for: bool = False
    """Take the client address from ``X-Forwarded-For`` (only behind a trusted reverse proxy)."""
