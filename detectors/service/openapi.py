"""What the service's OpenAPI document says about errors and authentication.

FastAPI documents a 422 ``HTTPValidationError`` on every route with parameters; this service
answers a malformed request with 400 and ``{"detail": "<text>"}`` (the C2PA Soft Binding API
asks for 400, see ``app.py``). The response sets below are what the routes really return, and
:func:`service_openapi` replaces FastAPI's default so that generated clients are right.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from detectors.report import Verdict


class ErrorBody(BaseModel):
    """Every error answer of the service."""

    detail: str = Field(description="What was wrong, in one sentence")


class UnexaminableBody(BaseModel):
    """``/v1/verify``'s answer for a file that could not be examined."""

    detail: str = Field(description="What was wrong with the file")
    report: dict[str, Any] = Field(description="The verification report, verdict `error`")


class StoreDownBody(BaseModel):
    """``/v1/verify``'s answer when the manifest store did not answer."""

    detail: str = Field(description="That the store is unavailable, and to retry later")
    report: dict[str, Any] = Field(description="The verification report without what a record adds "
                                   "(`store_unavailable` true); the store's location is in the service's log only")


class ReportBody(BaseModel):
    """``/v1/verify``'s answer: the verification report (:class:`detectors.report.VerificationReport`,
    schema ``org.foleyseal.verification-report.1``); the nested parts are described in the README."""

    schema_: str = Field(alias="schema", description="`org.foleyseal.verification-report.1`")
    file: str = Field(description="The name the file was sent under")
    verdict: Verdict
    title: str = Field(description="The verdict in a few words")
    explanation: str = Field(description="One plain-language paragraph: the verdict, the evidence, what it does not mean")
    size_bytes: int | None = None
    sha256: str | None = None
    container: dict[str, Any] | None = Field(None, description="Format, codec, sample rate (Hz), channels, duration (s)")
    credentials: dict[str, Any] | None = Field(None, description="The C2PA credentials found with the file, validated")
    watermark: list[dict[str, Any]] = Field(description="One result per watermark key: found, p-value, payloads, "
                                            "segments (s)")
    store: list[dict[str, Any]] = Field(description="Manifest-store records the file leads to, and how bound")
    notes: list[str]
    error: str | None = None
    elapsed_s: float
    trust_anchors: int = Field(description="Trust anchors the verifier used (0: nothing is trusted)")
    store_unavailable: bool = Field(description="Always false here: the service answers 503 instead")


class HealthBody(BaseModel):
    """``/v1/health``'s answer (also the body of its 503)."""

    status: Literal["ok", "degraded"]
    version: str
    workers: int
    pending: int
    worker_restarts: int
    jobs_done: int
    watermark_keys: int
    trust_anchors: int
    store: Literal["ok", "unavailable"]
    max_upload_bytes: int


def error(description: str, model: type[BaseModel] = ErrorBody) -> dict[str, Any]:
    return {"model": model, "description": description}


BAD_REQUEST = {400: error("Malformed request: a parameter or the body is invalid")}
RATE_LIMITED = {429: error("Too many requests from this client (Retry-After gives the seconds to wait)")}
UPLOAD = {
    **BAD_REQUEST,
    408: error("The upload stalled or took too long"),
    413: error("The upload is larger than the service's limit"),
    429: error("Rate limited, or the server is busy with other verifications (Retry-After)"),
}
AUTH = {
    401: error("No API key (Authorization: Bearer <key>, or X-API-Key)"),
    403: error("The API key is unknown or revoked"),
    503: error("The service cannot read its API keys file (Retry-After)"),
}
STORE = {503: error("The manifest store is unavailable (Retry-After)")}
AUTH_STORE = {**AUTH, 503: error("The manifest store, or the service's API keys file, is unavailable (Retry-After)")}


def service_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, with FastAPI's default 422 validation answers replaced by
    the 400 :class:`ErrorBody` the service really sends (built once, then cached)."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    for path in doc.get("paths", {}).values():
        for op in path.values():
            responses = op.get("responses", {})
            default = responses.get("422", {})
            ref = str(default.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", ""))
            if ref.endswith("/HTTPValidationError"):
                del responses["422"]
                responses.setdefault("400", {
                    "description": BAD_REQUEST[400]["description"],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                })
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas.setdefault("ErrorBody", ErrorBody.model_json_schema())
    app.openapi_schema = doc
    return doc
