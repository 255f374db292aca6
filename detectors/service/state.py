"""The service's shared state (one per app) and the request dependencies built on it."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from provenance.core.errors import ConfigError

from detectors.service.api_keys import ApiKeyEntry, ApiKeyStore
from detectors.service.config import ServiceConfig
from detectors.service.ratelimit import RateLimiter
from detectors.service.workers import WorkerPool


log = logging.getLogger(__name__)


@dataclass
class ServiceState:
    config: ServiceConfig
    settings: Any
    pool: WorkerPool
    limiter: RateLimiter
    api_keys: ApiKeyStore
    upload_dir: Path
    store: Any
    """The open :class:`~provenance.store.ManifestStore`: the service does not start without one."""
    keys_in_keyring: int
    trust_anchor_count: int
    owns_upload_root: bool = False


def get_state(request: Request) -> ServiceState:
    return request.app.state.foleyseal


def client_id(request: Request) -> str:
    state = get_state(request)
    if state.config.trust_forwarded_for:
        fwd = request.headers.get("x-forwarded-for")
        if fwd:
            return fwd.split(",")[0].strip()[:64]
    return request.client.host if request.client else "unknown"


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def rate_limited(request: Request) -> None:
    """Dependency of every public read: per-client token bucket (clients with a valid API key
    are exempt, e.g. a load test or a partner service)."""
    state = get_state(request)
    if not state.limiter.enabled:
        return
    key = presented_key(request)
    try:
        if key and state.api_keys.check(key) is not None:
            return
    except ConfigError as exc:  # a read does not need the key: it is rate limited as one without
        log.error("%s %s: %s", request.method, request.url.path, exc)
    wait = state.limiter.acquire(client_id(request))
    if wait > 0:
        raise HTTPException(
            status_code=429,
            detail=f"too many requests from this client; retry in {math.ceil(wait)} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


_BEARER = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")
_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key, the other way to send it")


def keys_unreadable(request: Request, exc: ConfigError) -> HTTPException:
    """The answer to a request that needed the API keys file when it could not be read (garbled by
    a hand edit, gone): the service's fault, so 503, with the path and the parse error in the log
    only, not told to whoever sent a key."""
    log.error("%s %s: %s", request.method, request.url.path, exc)
    return HTTPException(status_code=503, detail="the service cannot check API keys now (its keys file "
                         "cannot be read; the operator can see why in its log)", headers={"Retry-After": "30"})


def _checked(keys: ApiKeyStore, key: str, request: Request) -> ApiKeyEntry | None:
    """``keys.check(key)``; a keys file that cannot be read is :func:`keys_unreadable`."""
    try:
        return keys.check(key)
    except ConfigError as exc:
        raise keys_unreadable(request, exc) from None


def require_api_key(
    request: Request,
    _bearer: Any = Depends(_BEARER),  # declared for the OpenAPI document (and /docs' Authorize)
    _header: Any = Depends(_HEADER),
) -> ApiKeyEntry:
    """Dependency of every write: a valid, unrevoked API key (``Authorization: Bearer <key>`` or
    ``X-API-Key``)."""
    key = presented_key(request)
    if not key:
        raise HTTPException(
            status_code=401, detail="this endpoint needs an API key (Authorization: Bearer <key>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    entry = _checked(get_state(request).api_keys, key, request)
    if entry is None:
        raise HTTPException(status_code=403, detail="the API key is not valid (unknown or revoked)")
    return entry
