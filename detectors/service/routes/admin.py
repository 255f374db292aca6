"""Writes (API key required): register a manifest from another FoleySeal instance, rotate a key."""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from provenance.c2pa.read import record_manifest_problem
from provenance.core.errors import ConfigError
from provenance.store.repository import PayloadCollision

from detectors.intake import C2PA_STORE_UUID
from detectors.service.api_keys import ApiKeyEntry
from detectors.service.openapi import AUTH, AUTH_STORE, BAD_REQUEST, error
from detectors.service.routes.common import json_body, json_body_openapi
from detectors.service.routes.softbinding import check_manifest_id, decode_value, soft_binding_alg
from detectors.service.state import get_state, keys_unreadable, require_api_key

router = APIRouter(prefix="/v1", tags=["admin (API key)"])

MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_REGISTRATION_BYTES = MAX_MANIFEST_BYTES * 4 // 3 + 64 * 1024
"""The largest registration body, bytes: a manifest of the largest size, in base64, and the
other fields (a larger one is refused unread: 413)."""


class ManifestRegistration(BaseModel):
    """A store record exported by another FoleySeal instance."""

    manifestId: str = Field(max_length=200)
    alg: str = Field(max_length=200)
    value: str = Field(max_length=4096, description="The soft binding value (payload), base64 or 16 hex digits")
    manifest: str = Field(description="The detached manifest store bytes, base64")
    asset_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    mime_type: str = Field(max_length=100, pattern=r"^[a-z]+/[A-Za-z0-9.+-]+$")
    duration_s: float = Field(ge=0, le=7 * 24 * 3600, allow_inf_nan=False)
    title: str | None = Field(default=None, max_length=500)


@router.post(
    "/manifests",
    status_code=201,
    summary="Register a manifest (API key)",
    description="Adds a store record exported by another FoleySeal instance (`foleyseal store push`). "
    "The manifest must validate as signed (its hard binding and the signer's trust are judged when a "
    "file is verified against it), its active manifest must be `manifestId` and its soft binding must "
    "hold `value`: **400** names what does not hold.",
    responses={
        **BAD_REQUEST,
        **AUTH_STORE,
        409: error("The manifest id or the payload is already registered"),
        413: error("The request body is larger than a registration can be"),
    },
    openapi_extra=json_body_openapi(ManifestRegistration),
)
async def register_manifest(request: Request, key: ApiKeyEntry = Depends(require_api_key)) -> dict[str, Any]:
    from provenance.core.c2pa_types import StoreRecord

    body = await json_body(request, ManifestRegistration, MAX_REGISTRATION_BYTES)  # read once the key is checked

    if body.alg != soft_binding_alg():
        raise HTTPException(status_code=400, detail=f"unsupported soft binding algorithm {body.alg[:100]!r}")
    check_manifest_id(body.manifestId)
    payload = decode_value(body.value)
    try:
        manifest = base64.b64decode(body.manifest, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(status_code=400, detail="manifest is not valid base64") from None
    if not manifest or len(manifest) > MAX_MANIFEST_BYTES:
        raise HTTPException(status_code=400, detail="manifest is empty or larger than 16 MiB")
    if manifest[4:8] != b"jumb" or C2PA_STORE_UUID not in manifest[:64]:
        raise HTTPException(status_code=400, detail="manifest is not a C2PA manifest store (a JUMBF c2pa box)")
    store = get_state(request).store
    if await asyncio.to_thread(store.get, body.manifestId) is not None:
        raise HTTPException(status_code=409, detail=f"manifest {body.manifestId} is already registered")
    if await asyncio.to_thread(store.find_by_payload, body.alg, payload) is not None:
        raise HTTPException(status_code=409, detail=f"payload {payload} is already registered")
    # A record vouches for the files its watermark payload leads to: its manifest must be one,
    # signed and intact, for this id and payload (the hard binding and trust are checked when a
    # file is verified against it; they need the file and the verifier's anchors).
    problem = await asyncio.to_thread(
        record_manifest_problem, manifest, manifest_id=body.manifestId, alg=body.alg, payload=payload,
        mime=body.mime_type,
    )
    if problem is not None:
        raise HTTPException(status_code=400, detail=f"manifest refused: {problem}")
    record = StoreRecord(
        id=body.manifestId,
        payload=payload,
        algorithm=body.alg,
        manifest=manifest,
        asset_sha256=body.asset_sha256.lower(),
        mime_type=body.mime_type,
        duration_s=body.duration_s,
        created_at=datetime.now(timezone.utc),
        title=body.title,
    )
    try:
        await asyncio.to_thread(store.add, record)
    except PayloadCollision:  # registered by a concurrent request since the checks above
        raise HTTPException(
            status_code=409, detail=f"manifest {body.manifestId} or payload {payload} is already registered"
        ) from None
    return {"manifestId": record.id, "registered_by": key.name}


@router.post(
    "/api-keys/rotate", summary="Replace the calling API key by a new one (API key)", responses={**AUTH}
)
async def rotate_key(request: Request, key: ApiKeyEntry = Depends(require_api_key)) -> dict[str, Any]:
    try:
        rotated = await asyncio.to_thread(get_state(request).api_keys.rotate, key)
    except ConfigError as exc:
        raise keys_unreadable(request, exc) from None
    if rotated is None:
        raise HTTPException(status_code=403, detail="this API key was revoked (rotated by another request)")
    new_key, entry = rotated
    return {"id": entry.id, "name": entry.name, "key": new_key, "revoked": key.id}


