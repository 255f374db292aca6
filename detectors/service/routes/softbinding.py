"""The C2PA Soft Binding Resolution API (response shapes as in the C2PA OpenAPI document).

* ``GET|POST /matches/byBinding`` - manifest ids for a soft-binding value;
* ``POST /matches/byContent`` - upload an asset, we run the watermark detector;
* ``GET /manifests/{manifestId}`` - the detached manifest store, ``application/c2pa``;
* ``GET /services/supportedAlgorithms``.

Soft-binding values of ``org.foleyseal.audio-wm.1`` are the 64-bit watermark payload, base64
(as the specification asks) or, for convenience, 16 hexadecimal digits.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from detectors.service.openapi import BAD_REQUEST, RATE_LIMITED, STORE, UPLOAD, error
from detectors.service.routes.common import UPLOAD_OPENAPI, json_body, json_body_openapi, verify_upload
from detectors.service.state import get_state, rate_limited

router = APIRouter(tags=["soft binding resolution"])

_MANIFEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:~+-]{0,199}$")


def check_manifest_id(value: str) -> None:
    """400 for a manifest id outside what the store's ids look like, saying what they may hold."""
    if not _MANIFEST_ID.match(value):
        raise HTTPException(
            status_code=400,
            detail=f"invalid C2PA manifest id {value[:100]!r}: 1 to 200 letters, digits and . _ : ~ + -, "
            "beginning with a letter or digit",
        )


def soft_binding_alg() -> str:
    from provenance.watermark import SOFT_BINDING_ALG

    return SOFT_BINDING_ALG


MAX_QUERY_BYTES = 64 * 1024
"""The largest ``POST /matches/byBinding`` body, bytes (its value is at most 4,096 characters)."""


class SoftBindingQuery(BaseModel):
    """``c2pa.softBindingQuery``."""

    alg: str = Field(max_length=200, description="Soft binding algorithm name, e.g. org.foleyseal.audio-wm.1")
    value: str = Field(max_length=4096, description="Base64-encoded soft binding value (the 64-bit payload)")


class Match(BaseModel):
    manifestId: str
    endpoint: str | None = None
    similarityScore: int | None = Field(default=None, ge=0, le=100)


class SoftBindingQueryResult(BaseModel):
    """``c2pa.softBindingQueryResult``."""

    matches: list[Match]


class AlgEntry(BaseModel):
    alg: str


class SoftBindingAlgList(BaseModel):
    """``c2pa.softBindingAlgList``."""

    watermarks: list[AlgEntry]
    fingerprints: list[AlgEntry]


def decode_value(value: str) -> str:
    """The payload as lower-case hex from a base64 (or 16-hex-digit) soft-binding value."""
    # a '+' pasted into a URL unencoded arrives as a space; base64 has no spaces to lose
    v = value.strip().replace(" ", "+")
    if re.fullmatch(r"[0-9a-fA-F]{16}", v):
        return v.lower()
    try:
        raw = base64.b64decode(v + "=" * (-len(v) % 4), altchars=b"-_" if ("-" in v or "_" in v) else None,
                               validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(status_code=400, detail="value is not base64 (nor 16 hexadecimal digits)") from None
    if len(raw) != 8:
        raise HTTPException(
            status_code=400, detail=f"value must encode the 64-bit payload (8 bytes), got {len(raw)} bytes"
        )
    return raw.hex()


def _check_alg(alg: str | None) -> None:
    ours = soft_binding_alg()
    if alg is not None and alg != ours:
        raise HTTPException(status_code=400, detail=f"unsupported soft binding algorithm {alg[:100]!r}; supported: {ours}")


async def _lookup(request: Request, alg: str, value: str, max_results: int) -> SoftBindingQueryResult:
    _check_alg(alg)
    payload = decode_value(value)
    store = get_state(request).store
    record = await asyncio.to_thread(store.find_by_payload, alg, payload)
    matches = [Match(manifestId=record.id, similarityScore=100)] if record is not None else []
    return SoftBindingQueryResult(matches=matches[:max_results])


@router.get(
    "/matches/byBinding",
    response_model=SoftBindingQueryResult,
    response_model_exclude_none=True,
    dependencies=[Depends(rate_limited)],
    summary="Returns C2PA Manifest identifiers corresponding to a soft binding.",
    responses={**BAD_REQUEST, **RATE_LIMITED, **STORE},
)
async def by_binding_get(
    request: Request,
    alg: str = Query(..., max_length=200),
    value: str = Query(..., max_length=4096),
    maxResults: int = Query(10, ge=1, le=1000),
) -> SoftBindingQueryResult:
    return await _lookup(request, alg, value, maxResults)


@router.post(
    "/matches/byBinding",
    response_model=SoftBindingQueryResult,
    response_model_exclude_none=True,
    dependencies=[Depends(rate_limited)],
    summary="Returns C2PA Manifest identifiers corresponding to a large soft binding value.",
    responses={**BAD_REQUEST, **RATE_LIMITED, 413: error("The request body is larger than a query can be"), **STORE},
    openapi_extra=json_body_openapi(SoftBindingQuery),
)
async def by_binding_post(
    request: Request,
    maxResults: int = Query(10, ge=1, le=1000),
) -> SoftBindingQueryResult:
    query = await json_body(request, SoftBindingQuery, MAX_QUERY_BYTES)  # read once the rate limit allows it
    return await _lookup(request, query.alg, query.value, maxResults)


@router.post(
    "/matches/byContent",
    response_model=SoftBindingQueryResult,
    response_model_exclude_none=True,
    dependencies=[Depends(rate_limited)],
    summary="Finds C2PA Manifest identifiers using a digital asset (we run the watermark detector).",
    openapi_extra=UPLOAD_OPENAPI,
    responses={
        **UPLOAD,
        415: error("Invalid asset type: the content is no audio or video format"),
        422: error("The file could not be examined (cut short, damaged, or past the time limit)"),
        **STORE,
    },
)
async def by_content(
    request: Request,
    alg: str | None = Query(None, max_length=200),
    maxResults: int = Query(10, ge=1, le=1000),
    hintAlg: str | None = Query(None, max_length=200),
    hintValue: str | None = Query(None, max_length=4096),
) -> SoftBindingQueryResult:
    _check_alg(alg)
    report = await verify_upload(request)
    if report.get("verdict") == "error":
        # 415 is the API's answer for content that is no audio or video format at all: hashed
        # whole, yet no container recognised (a file cut short before its container's index,
        # which FFmpeg cannot open, reads the same). A video without audio, an empty file or one
        # past the time limit is a recognised type, or none was told, that could not be
        # examined: 422, as /v1/verify answers.
        if report.get("container") is None and report.get("sha256") is not None:
            raise HTTPException(status_code=415, detail=f"invalid asset type: {report.get('error')}")
        raise HTTPException(status_code=422, detail=report.get("error") or "the file could not be examined")
    if report.get("store_unavailable"):  # "no matches" would be an answer; this is "retry later"
        raise HTTPException(status_code=503, detail="the manifest store is unavailable", headers={"Retry-After": "30"})
    matches: list[Match] = []
    seen: set[str] = set()
    conf = max((w.get("bit_confidence", 0.0) for w in report.get("watermark", []) if w.get("found")), default=0.0)
    for m in report.get("store", []):
        if m["record_id"] in seen or m.get("refused"):  # a record that cannot vouch is no match
            continue
        seen.add(m["record_id"])
        score = 100 if m["binding"] in ("hard", "hash") else max(1, min(100, round(conf * 100)))
        matches.append(Match(manifestId=m["record_id"], similarityScore=score))
    return SoftBindingQueryResult(matches=matches[:maxResults])


@router.get(
    "/manifests/{manifestId}",
    dependencies=[Depends(rate_limited)],
    summary="Returns the C2PA Manifest Store of a manifest identifier (application/c2pa).",
    responses={
        200: {"content": {"application/c2pa": {}}, "description": "The detached manifest store"},
        400: error("Invalid C2PA Manifest Id supplied"),
        404: error("C2PA Manifest Id not found"),
        **RATE_LIMITED,
        **STORE,
    },
    response_class=Response,
)
async def get_manifest(
    request: Request, manifestId: str, returnActiveManifest: bool = Query(False)
) -> Response:
    # returnActiveManifest: FoleySeal stores one manifest per asset, so the store and the active
    # manifest coincide; the whole store is returned either way.
    check_manifest_id(manifestId)
    store = get_state(request).store
    record = await asyncio.to_thread(store.get, manifestId)
    if record is None:
        raise HTTPException(status_code=404, detail=f"manifest {manifestId} not found")
    return Response(content=bytes(record.manifest), media_type="application/c2pa")


@router.get(
    "/services/supportedAlgorithms",
    response_model=SoftBindingAlgList,
    summary="Returns a list of the soft binding algorithms supported by the service.",
)
async def supported_algorithms() -> dict[str, Any]:
    return {"watermarks": [{"alg": soft_binding_alg()}], "fingerprints": []}
