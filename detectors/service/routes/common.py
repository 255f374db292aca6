"""Helpers shared by the routers: upload handling around a worker job."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from detectors.report import error_report
from detectors.service.state import get_state
from detectors.service.uploads import (
    MAX_SIDECAR_BYTES,
    ClientGone,
    UploadError,
    receive_upload,
    size_text,
    stream_body,
)
from detectors.service.workers import JobTimeout, PoolBusy, WorkerCrashed

M = TypeVar("M", bound=BaseModel)

UPLOAD_OPENAPI: dict[str, Any] = {
    # read from the request by receive_upload, not by FastAPI, so they are declared here
    "parameters": [
        {"name": "filename", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "The file's name, for a raw body (only its base name is kept; its extension "
         "is compared with the content)"},
        {"name": "X-Filename", "in": "header", "required": False, "schema": {"type": "string"},
         "description": "The file's name, as `?filename=`"},
    ],
    "requestBody": {
        "required": True,
        "description": "The file: multipart/form-data with a field named `file`, or the raw bytes as "
        "the body (any audio/*, video/* or application/octet-stream type; the name may be given in "
        "`?filename=` or an `X-Filename` header). A form may also carry the file's C2PA sidecar "
        "(its `.c2pa` manifest, for formats that cannot embed one: Ogg, Matroska, AIFF...) in a "
        f"field named `sidecar`, before or after the file, up to {MAX_SIDECAR_BYTES // 2**20} MiB "
        "(413 beyond); a second file part whose name ends in `.c2pa` is taken as the sidecar too. "
        "A `.c2pa` sent alone, as the file, is refused: it is a manifest, not media.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The audio or video file"},
                        "sidecar": {
                            "type": "string",
                            "format": "binary",
                            "description": "Optional: the file's C2PA sidecar manifest (`.c2pa`)",
                        },
                    },
                    "required": ["file"],
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "audio/*": {"schema": {"type": "string", "format": "binary"}},
            "video/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


_DISCONNECT_POLL_S = 0.5
"""How often a running verification checks that its client is still there, seconds."""


async def _unless_client_leaves(request: Request, job: Awaitable[Any]) -> Any:
    """``job``'s result; :class:`ClientGone` as soon as the client disconnects, with the job
    cancelled (the pool then replaces its busy worker): an abandoned upload must not hold a
    worker that the next clients are waiting for."""
    task = asyncio.ensure_future(job)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=_DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise ClientGone()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def verify_upload(request: Request) -> dict[str, Any]:
    """Receive the upload into a temporary file, verify it in a worker, always delete it.

    Returns the report as a dict (verdict ``error`` for a file that could not be examined, also
    one past the hard time limit or that crashed its worker); raises HTTPException with a 4xx for
    bad uploads."""
    state = get_state(request)
    cfg = state.config
    try:
        up = await receive_upload(
            request,
            state.upload_dir,
            max_bytes=cfg.max_upload_bytes,
            timeout_s=cfg.upload_timeout_s,
            idle_timeout_s=cfg.upload_idle_timeout_s,
        )
    except UploadError as exc:
        headers = {"Connection": "close"} if exc.status_code in (408, 413) else None
        raise HTTPException(status_code=exc.status_code, detail=exc.message, headers=headers) from None
    except ClientGone:
        raise HTTPException(status_code=400, detail="the client disconnected during the upload") from None
    try:
        return await _unless_client_leaves(request, state.pool.run("verify", {"path": str(up.path), "name": up.filename}))
    except ClientGone:
        raise HTTPException(status_code=400, detail="the client disconnected during the verification") from None
    except PoolBusy:
        raise HTTPException(
            status_code=429, detail="the server is busy with other verifications; retry shortly",
            headers={"Retry-After": "5"},
        ) from None
    except JobTimeout:
        # the worker was killed, so the report is made here: the 422 carries one like any other
        return error_report(
            up.filename, f"verification took longer than the limit of {cfg.verify_timeout_s:g} s",
            advice="A shorter excerpt of the file verifies faster.", trust_anchors=state.trust_anchor_count,
            size_bytes=up.size,
        ).to_dict()
    except WorkerCrashed:
        return error_report(
            up.filename, "the file crashed the decoder and could not be examined",
            trust_anchors=state.trust_anchor_count, size_bytes=up.size,
        ).to_dict()
    finally:
        up.remove()


def json_body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads its JSON body with :func:`json_body`
    (FastAPI documents only the bodies it parses itself)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


async def json_body(request: Request, model: type[M], max_bytes: int) -> M:
    """The request's JSON body as ``model``, read by the route itself so that its dependencies
    (API key, rate limit) are met before a byte of it is (FastAPI reads a body it parses first,
    whatever its size: an anonymous client could make the service hold hundreds of MB). Over
    ``max_bytes`` (bytes): 413, from its Content-Length before it is read, else as it streams;
    the uploads' time limits; a malformed body: 400 naming the fault, as FastAPI's own parsing."""
    cfg = get_state(request).config
    too_large = f"the request body is larger than the limit of {size_text(max_bytes)} for {request.url.path}"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(status_code=413, detail=too_large, headers={"Connection": "close"})
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise RequestValidationError([{"type": "model_attributes_type", "loc": ("body",), "input": None,
                                       "msg": "Input should be a valid dictionary or object to extract fields from"}])
    data = bytearray()

    def take(chunk: bytes) -> None:
        data.extend(chunk)
        if len(data) > max_bytes:
            raise UploadError(413, too_large)

    try:
        await stream_body(request, take, cfg.upload_timeout_s, cfg.upload_idle_timeout_s)
    except UploadError as exc:
        raise HTTPException(status_code=exc.status_code, detail=exc.message, headers={"Connection": "close"}) from None
    except ClientGone:
        raise HTTPException(status_code=400, detail="the client disconnected while sending the request body") from None
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        pos = getattr(exc, "pos", None)
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body",) + ((pos,) if pos is not None else ()),
                                       "msg": "JSON decode error", "input": {}}]) from None
    try:
        return model.model_validate(parsed)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
