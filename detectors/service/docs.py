"""The interactive API documentation at ``/docs``, served without the internet.

FastAPI's own ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from a CDN (and fonts from
Google): offline, or behind a firewall, they were blank pages. Here Swagger UI's files come from
the ``swagger-ui-bundle`` package (Swagger UI 4.15.5, Apache-2.0) and are served by the service
itself, under ``/docs/assets`` (only the three files the page loads). ReDoc is not served.

Swagger UI 4 reads OpenAPI 3.0 documents only, and FastAPI writes 3.1 (Swagger UI 4 refuses
it: "Unable to render this definition"). The page therefore reads a 3.0 rendering of the
document, ``/docs/openapi-3.0.json``: the same document with its version set to 3.0.3 and each
3.1 "X or null" (``anyOf`` with ``{"type": "null"}``, or a ``type`` list holding ``"null"``)
written as 3.0's ``nullable`` X, the only 3.1 construct the service's document uses.
``/openapi.json`` stays the service's document, for clients and generators.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
OPENAPI_30_URL = "/docs/openapi-3.0.json"
SWAGGER_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})
"""The files of the Swagger UI distribution the page loads; nothing else of it is served."""

_NULL = {"type": "null"}


def swagger_ui_dir() -> Path:
    """The folder of the ``swagger-ui-bundle`` package's Swagger UI files."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(swagger_ui_path)


def openapi_30(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of the OpenAPI 3.1 document ``doc`` that Swagger UI 4 reads as 3.0 (see the
    module docstring); ``doc`` is left as it is."""
    out = _as_30(copy.deepcopy(doc))
    out["openapi"] = "3.0.3"
    return out


def _as_30(node: Any) -> Any:
    """``node`` with every schema's null alternative written the 3.0 way, depth first."""
    if isinstance(node, list):
        return [_as_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _as_30(value) for key, value in node.items()}
    return _nullable_type_list(_nullable_any_of(node))


def _nullable_any_of(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, {"type": "null"}]`` as ``X`` with ``nullable: true``. A ``$ref`` cannot take
    siblings in 3.0, so a referenced X goes under ``allOf``; several X stay an ``anyOf``."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list) or _NULL not in branches:
        return schema
    rest = [b for b in branches if b != _NULL]
    out = {key: value for key, value in schema.items() if key != "anyOf"}
    if len(rest) == 1 and isinstance(rest[0], dict) and "$ref" not in rest[0]:
        out = {**rest[0], **out}
    elif rest:
        out["anyOf" if len(rest) > 1 else "allOf"] = rest
    out["nullable"] = True
    return out


def _nullable_type_list(schema: dict[str, Any]) -> dict[str, Any]:
    """``type: ["string", "null"]`` as ``type: "string"`` with ``nullable: true``."""
    types = schema.get("type")
    if not isinstance(types, list) or "null" not in types:
        return schema
    rest = [t for t in types if t != "null"]
    out = {key: value for key, value in schema.items() if key != "type"}
    if len(rest) == 1:
        out["type"] = rest[0]
    elif rest:
        out["anyOf"] = [{"type": t} for t in rest]
    out["nullable"] = True
    return out


class _SwaggerAssets(StaticFiles):
    """Only :data:`SWAGGER_FILES` of the Swagger UI folder (it holds more: source maps, an
    index page that loads the Petstore example)."""

    async def get_response(self, path: str, scope: Any) -> Any:
        from starlette.exceptions import HTTPException as StarletteHTTPException

        if path not in SWAGGER_FILES:
            raise StarletteHTTPException(status_code=404)
        return await super().get_response(path, scope)


def add_docs(app: FastAPI) -> None:
    """Serve the documentation page, its 3.0 document and Swagger UI's files on ``app`` (built
    with ``docs_url=None, redoc_url=None``)."""

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_30_URL,
            title=f"{app.title}: API documentation",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            # No "valid" badge: Swagger UI would send the document's address to an online validator.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(OPENAPI_30_URL, include_in_schema=False)
    async def openapi_for_swagger_ui() -> JSONResponse:
        return JSONResponse(openapi_30(app.openapi()))

    app.mount(ASSETS_URL, _SwaggerAssets(directory=str(swagger_ui_dir())), name="docs-assets")
