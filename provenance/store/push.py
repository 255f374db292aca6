"""Register this store's records with a FoleySeal verification service (``POST /v1/manifests``),
so that its verifiers recover credentials through the watermark of files marked here.

The service's record then holds the same manifest, payload and asset hash as the local one; the
service refuses a manifest id or a payload it already has (409), so pushing twice is harmless and
a payload taken by another manifest is reported, never overwritten.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

from provenance.core.c2pa_types import StoreRecord
from provenance.core.errors import StoreError

Outcome = Literal["registered", "already_registered", "conflict"]


@dataclass(frozen=True)
class PushResult:
    """What the service answered for one record."""

    id: str
    payload: str
    outcome: Outcome
    """``registered`` (201), ``already_registered`` (this manifest id is there) or ``conflict``
    (the payload belongs to another manifest there, or the service refused the record)."""
    status: int
    """HTTP status of the answer."""
    detail: str


def registration_body(record: StoreRecord) -> dict[str, Any]:
    """The ``POST /v1/manifests`` JSON body for ``record`` (payload and manifest in base64)."""
    return {
        "manifestId": record.id,
        "alg": record.algorithm,
        "value": base64.b64encode(bytes.fromhex(record.payload)).decode(),
        "manifest": base64.b64encode(record.manifest).decode(),
        "asset_sha256": record.asset_sha256,
        "mime_type": record.mime_type,
        "duration_s": record.duration_s,
        "title": record.title,
    }


def push_record(record: StoreRecord, service_url: str, api_key: str, *, timeout_s: float = 60.0) -> PushResult:
    """Register ``record`` with the service at ``service_url`` (its base URL, e.g.
    ``https://verify.example.org``). :class:`StoreError` when the service cannot be reached or
    refuses the API key (nothing else can succeed then); any other refusal is a ``conflict``."""
    request = urllib.request.Request(
        service_url.rstrip("/") + "/v1/manifests",
        data=json.dumps(registration_body(record)).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return PushResult(record.id, record.payload, "registered", answer.status, "registered")
    except urllib.error.HTTPError as exc:
        status, detail = exc.code, _detail(exc)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StoreError(f"cannot reach the verification service at {service_url}: {reason}") from exc
    if status in (404, 405):  # the route is not there: not a FoleySeal service, or not its base URL
        raise StoreError(f"{service_url} has no FoleySeal manifest registration ({status} for POST /v1/manifests): "
                         "give the verification service's base URL, e.g. https://verify.example.org")
    if status in (401, 403):
        raise StoreError(f"the verification service at {service_url} refused the API key ({status}: {detail})")
    if status == 409 and detail.startswith(f"manifest {record.id} is already registered"):
        return PushResult(record.id, record.payload, "already_registered", status, detail)
    if status in (429, 503) or status >= 500:
        raise StoreError(f"the verification service at {service_url} cannot take records now ({status}: {detail})")
    return PushResult(record.id, record.payload, "conflict", status, detail)


def _detail(exc: urllib.error.HTTPError) -> str:
    """The ``detail`` of a FastAPI error answer, or its first 200 characters of text."""
    try:
        body = exc.read().decode("utf-8", "replace")
    except OSError:
        return exc.reason or ""
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        detail = None
    return detail if isinstance(detail, str) else body[:200]
