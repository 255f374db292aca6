"""``POST /v1/verify`` and ``GET /v1/health``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from provenance import __version__
from provenance.core.errors import StoreError

from detectors.report import VERDICT_DESCRIPTIONS
from detectors.service.openapi import UPLOAD, HealthBody, ReportBody, StoreDownBody, UnexaminableBody, error
from detectors.service.routes.common import UPLOAD_OPENAPI, verify_upload
from detectors.service.state import get_state, rate_limited

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["verify"])

_VERDICTS_DOC = "\n".join(f"- `{v.value}`: {d}" for v, d in VERDICT_DESCRIPTIONS.items())


@router.post(
    "/verify",
    dependencies=[Depends(rate_limited)],
    summary="Verify an audio file or a video with an audio track",
    description="Upload a file; the answer is the verification report (JSON): container, Content "
    "Credentials, watermark, store record, and a verdict with a plain-language explanation.\n\n"
    f"Verdicts:\n{_VERDICTS_DOC}\n\n"
    "A file that cannot be examined gets **422** with `detail` and the report. Other errors: 400 "
    "malformed upload, 408 upload too slow, 413 too large, 429 rate limited or busy, 503 the manifest "
    "store does not answer (retry later; the report is included, as for 422, without what a record adds).",
    openapi_extra=UPLOAD_OPENAPI,
    responses={
        200: {"description": "The verification report", "model": ReportBody},
        **UPLOAD,
        422: error("The file could not be examined (report included)", UnexaminableBody),
        503: error("The manifest store does not answer (report included, without what a record adds; Retry-After)",
                   StoreDownBody),
    },
)
async def post_verify(request: Request) -> Any:
    report = await verify_upload(request)
    if report.get("verdict") == "error":
        return JSONResponse(status_code=422, content={"detail": report.get("error"), "report": report})
    if report.get("store_unavailable"):
        # Not a 200: the verdict lacks what a record adds ("watermark only" for a recoverable
        # file). The report still goes with it, as the CLI prints it with exit 3: credentials the
        # file carries decide their verdict without the store. Its mentions of the store's URL
        # (a host, a path) and fault go to the log only.
        log.warning("verify: the manifest store did not answer: %s", "; ".join(report.get("notes", [])))
        store = get_state(request).settings.store_url
        return JSONResponse(status_code=503, headers={"Retry-After": "30"}, content={
            "detail": "the manifest store is unavailable, so no record was looked up for this file; retry later",
            "report": _without(report, _store_names(store))})
    return report


_STORE_FAULT = "The manifest store did not answer (the service's log says why)."


def _store_names(url: str) -> list[str]:
    """How the store at ``url`` is named in messages: its URL as the store shows it (normalised:
    ``postgresql://`` reads ``postgresql+psycopg://``; password hidden), and as given."""
    from provenance.core.errors import StoreError
    from provenance.store.repository import display_url, normalise_url

    try:
        return [display_url(normalise_url(url)), url]
    except StoreError:  # an invalid URL: the store never opened, and its messages do not show it
        return [url]


def _without(value: Any, names: list[str]) -> Any:
    """``value`` (a report, or part of one) with every string that names the store (one of
    ``names``) replaced by :data:`_STORE_FAULT`, once per list."""
    if isinstance(value, str):
        return _STORE_FAULT if any(n and n in value for n in names) else value
    if isinstance(value, dict):
        return {k: _without(v, names) for k, v in value.items()}
    if isinstance(value, list):
        out = [_without(v, names) for v in value]
        return [v for i, v in enumerate(out) if v != _STORE_FAULT or _STORE_FAULT not in out[:i]]
    return value


@router.get(
    "/health",
    summary="Service health",
    description="The workers, keys and trust anchors, and whether the manifest store answers now "
    "(read on every call). **503** with the same body when it does not, so a load balancer takes "
    "this instance out of service: verification would lose credential recovery and store matches.",
    responses={200: {"description": "The service and its store answer", "model": HealthBody},
               503: {"description": "The manifest store does not answer (`status` 'degraded', `store` 'unavailable')",
                     "model": HealthBody}},
)
async def health(request: Request) -> Any:
    state = get_state(request)
    await state.pool.replace_dead_idle()  # "workers" then counts workers that can take a job
    try:
        await asyncio.to_thread(state.store.ping)
        store = "ok"
    except StoreError as exc:
        log.warning("health check: %s", exc)  # the message names the store's URL: for the log only
        store = "unavailable"
    body = {
        "status": "ok" if store == "ok" else "degraded",
        "version": __version__,
        "workers": state.pool.size,
        "pending": state.pool.pending,
        "worker_restarts": state.pool.restarts,
        "jobs_done": state.pool.jobs_done,
        "watermark_keys": state.keys_in_keyring,
        "trust_anchors": state.trust_anchor_count,
        "store": store,
        "max_upload_bytes": state.config.max_upload_bytes,
    }
    if store != "ok":
        return JSONResponse(status_code=503, content=body, headers={"Retry-After": "30"})
    return body


@router.head("/health", include_in_schema=False)
async def health_head(request: Request) -> Any:
    """The same check for probes that ask with HEAD (many load balancers and uptime monitors)."""
    return await health(request)
