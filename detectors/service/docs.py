"""The interactive API documentation at ``/docs``, served without the internet.

FastAPI's own ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from a CDN (and fonts from
Google): offline, or behind a firewall, they were blank pages. Here Swagger UI's files come from
the ``swagger-ui-py`` package (Swagger UI 5, Apache-2.0), which reads the service's OpenAPI 3.1
document as it is, and are served by the service itself under ``/docs/assets`` (only the three
files the page loads). ReDoc is not served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
SWAGGER_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})
"""The files of the Swagger UI distribution the page loads; nothing else of it is served."""


def swagger_ui_dir() -> Path:
    """The folder of Swagger UI's files in the ``swagger-ui-py`` package."""
    import swagger_ui

    return Path(swagger_ui.__file__).resolve().parent / "static"


class _SwaggerAssets(StaticFiles):
    """Only :data:`SWAGGER_FILES` of the Swagger UI folder (it holds more: source maps, an
    index page that loads the Petstore example)."""

    async def get_response(self, path: str, scope: Any) -> Any:
        from starlette.exceptions import HTTPException as StarletteHTTPException

        if path not in SWAGGER_FILES:
            raise StarletteHTTPException(status_code=404)
        return await super().get_response(path, scope)


def add_docs(app: FastAPI) -> None:
    """Serve the documentation page and Swagger UI's files on ``app`` (built with
    ``docs_url=None, redoc_url=None``)."""

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API documentation",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            # No "valid" badge: Swagger UI would send the document's address to an online validator.
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.mount(ASSETS_URL, _SwaggerAssets(directory=str(swagger_ui_dir())), name="docs-assets")
