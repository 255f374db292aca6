"""Helpers shared by the routers: upload handling around a worker job."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

from fastapi import HTTPException, Request

from detectors.report import error_report
from detectors.service.state import get_state
from detectors.service.uploads import MAX_SIDECAR_BYTES, ClientGone, UploadError, receive_upload
from detectors.service.workers import JobTimeout, PoolBusy, WorkerCrashed

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
