"""The FastAPI application: verification, soft-binding resolution, admin writes, the web page."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders

from provenance import __version__
from provenance.core.errors import ConfigError, FoleySealError, StoreError

from detectors.service.api_keys import ApiKeyStore, home_keys_file
from detectors.service.config import ServiceConfig
from detectors.service.connections import SECURITY_HEADERS
from detectors.service.ratelimit import RateLimiter
from detectors.service.state import ServiceState
from detectors.service.workers import WorkerPool, WorkerSpec

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

_PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _settings(config: ServiceConfig) -> Any:
    """The FoleySeal settings the service runs with: its home's, with ``--database-url`` applied."""
    from provenance.core.config import load_settings

    settings = load_settings(config.home)
    return replace(settings, store_url=config.database_url) if config.database_url else settings


def _open_state(config: ServiceConfig) -> ServiceState:
    from provenance.core.config import trust_anchors

    from detectors.watermark_scan import load_keyring

    settings = _settings(config)
    anchors = trust_anchors(settings, config.trust_anchors)
    keys = len(load_keyring(settings))  # fails early, with the file named, on a bad key file

    owns = config.upload_dir is None
    root = Path(tempfile.mkdtemp(prefix="foleyseal-serve-")) if owns else Path(config.upload_dir)  # type: ignore[arg-type]
    root.mkdir(parents=True, exist_ok=True)
    spec = WorkerSpec(
        home=str(settings.home),
        database_url=config.database_url,
        trust_anchors=[str(p) for p in config.trust_anchors],
        verify_timeout_s=config.verify_timeout_s,
        max_bytes=config.max_upload_bytes,
    )
    pool = WorkerPool(spec, size=config.workers, scratch_root=root / "workers", max_pending=config.max_pending)
    from provenance.store import open_store

    # A store that cannot be opened is a configuration error: the workers need it too, and a
    # service that answered "no record" for every payload would mislead every client.
    store = open_store(settings)
    return ServiceState(
        config=config,
        settings=settings,
        pool=pool,
        limiter=RateLimiter(config.rate_limit_per_min, config.rate_limit_burst),
        api_keys=_api_keys(config, settings),
        upload_dir=root / "uploads",
        store=store,
        keys_in_keyring=keys,
        trust_anchor_count=anchors.count,
        owns_upload_root=owns,
    )


def create_app(config: ServiceConfig | None = None) -> FastAPI:
    """Build the app. Workers start with the app's lifespan (``with TestClient(app)`` or uvicorn)."""
    config = config or ServiceConfig()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = _open_state(config)
        state.upload_dir.mkdir(parents=True, exist_ok=True)
        try:
            state.pool.start()
        except BaseException:
            if state.owns_upload_root:
                shutil.rmtree(state.upload_dir.parent, ignore_errors=True)
            raise
        app.state.foleyseal = state
        try:
            yield
        finally:
            state.pool.close()
            with contextlib.suppress(Exception):
                state.store.close()
            if state.owns_upload_root:
                shutil.rmtree(state.upload_dir.parent, ignore_errors=True)

    app = FastAPI(
        title="FoleySeal verification service",
        version=__version__,
        description="Verify suspected AI audio: Content Credentials (C2PA), the FoleySeal watermark and "
        "the manifest store, in one report. Also the C2PA Soft Binding Resolution API. Reads are public "
        "and rate-limited per client; writes need an API key.",
        lifespan=lifespan,
        # FastAPI's pages load Swagger UI and ReDoc from a CDN: blank offline (see docs.py).
        docs_url=None,
        redoc_url=None,
    )

    from detectors.service.docs import add_docs
    from detectors.service.openapi import service_openapi
    from detectors.service.routes import admin, softbinding, verify

    app.openapi = lambda: service_openapi(app)  # type: ignore[method-assign]
    add_docs(app)

    app.include_router(verify.router)
    app.include_router(softbinding.router)
    app.include_router(admin.router)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> JSONResponse:
        # The message names the store's URL (a server path or host): for the log, not the client.
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(status_code=503, content={"detail": "the manifest store is unavailable"},
                            headers={"Retry-After": "30"})

    @app.exception_handler(FoleySealError)
    async def _foleyseal_error(request: Request, exc: FoleySealError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default is 422; the soft-binding spec answers a bad query with 400.
        errors = [_validation_message(e) for e in exc.errors()]
        return JSONResponse(status_code=400, content={"detail": "; ".join(errors) or "invalid request"})

    app.add_middleware(_SecurityHeaders)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", _PageAssets(directory=str(WEB_DIR)), name="static")
    return app


def _validation_message(error: dict[str, Any]) -> str:
    """One validation error of a request, named by where it is: ``query parameter 'alg'``, ``the
    request body``, ``field 'value' of the JSON body``. (``loc`` is ``("body",)`` for a body that
    is not an object and ``("body", 0)`` for JSON that does not parse: a bare ``: Field required``
    or ``0: JSON decode error`` said nothing.)"""
    raw = tuple(error.get("loc", ()))
    msg = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid":
        pos = next((p for p in reversed(raw) if isinstance(p, int)), None)
        return "the request body is not valid JSON" + (f" (at character {pos})" if pos is not None else "") + f": {msg}"
    where, fields = (str(raw[0]), [str(p) for p in raw[1:]]) if raw else ("request", [])
    if where == "body":
        if not fields:
            # also what a JSON object sent as text/plain meets: FastAPI parses JSON bodies only
            return f"the request body: {msg} (send a JSON object, with Content-Type: application/json)"
        return f"field '{'.'.join(fields)}' of the JSON body: {msg}"
    return f"{where} parameter '{'.'.join(fields)}': {msg}" if fields else f"{where}: {msg}"


class _SecurityHeaders:
    """Headers every answer carries (and the page's Content-Security-Policy), as plain ASGI
    middleware: Starlette's ``@app.middleware("http")`` wraps ``receive``, and behind it a route
    cannot tell that its client has gone (``Request.is_disconnected``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        page = path == "/" or path.startswith("/static/")

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
                if page:
                    headers.setdefault("Content-Security-Policy", _PAGE_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _PageAssets(StaticFiles):
    """The page's own files only: the folder is also a Python package (``__init__.py``, caches)."""

    SUFFIXES = frozenset({".html", ".js", ".css", ".svg", ".png", ".ico"})

    async def get_response(self, path: str, scope: Any) -> Any:
        from starlette.exceptions import HTTPException as StarletteHTTPException

        if Path(path).suffix.lower() not in self.SUFFIXES:
            raise StarletteHTTPException(status_code=404)
        return await super().get_response(path, scope)


def uvicorn_options(config: ServiceConfig) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` that the service needs besides the app, host and
    port: its connection limits and guards (:mod:`detectors.service.connections`)."""
    from detectors.service.connections import guarded_protocol

    per_client = 0 if config.trust_forwarded_for else config.max_connections_per_client
    return {
        "http": guarded_protocol(header_timeout_s=config.header_timeout_s, max_connections_per_client=per_client),
        "timeout_keep_alive": 10,
        "limit_concurrency": 512,
        "server_header": False,
    }


def _api_keys(config: ServiceConfig, settings: Any) -> ApiKeyStore:
    """The service's API keys: ``config.api_keys_path``, else ``api-keys.json`` in its home."""
    return ApiKeyStore(config.api_keys_path or home_keys_file(settings.home))


def check_config(config: ServiceConfig) -> list[str]:
    """Raise the :class:`FoleySealError` that would stop the service from starting (unreadable
    trust anchors, key or API keys files, a store that cannot be opened), naming the file or store, before
    uvicorn starts: a failure inside its start-up is printed as a traceback. Returns notes on
    what it will serve without (no watermark key: no mark can be read)."""
    from provenance.core.config import trust_anchors
    from provenance.store import open_store

    from detectors.watermark_scan import load_keyring

    settings = _settings(config)
    trust_anchors(settings, config.trust_anchors)
    _api_keys(config, settings).list()
    notes = []
    if not load_keyring(settings):
        notes.append(f"no watermark key in {settings.home} ({settings.watermark_key_path.name}, or keys/keyring/*.key): files are "
                     "checked for Content Credentials only, no watermark is read and no credentials are "
                     "recovered through one")
    open_store(settings).close()
    return notes


def serve(
    config: ServiceConfig, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info", checked: bool = False,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Run the service with uvicorn until interrupted (``checked``: :func:`check_config` ran).

    ``announce`` is called with the service's URL once its socket is bound (with ``port`` 0 the
    system picks the port then), before requests are taken."""
    import uvicorn

    if not checked:
        check_config(config)
    # Bound before the URL is announced: a port in use must not be announced as served first.
    uv_config = uvicorn.Config(create_app(config), host=host, port=port, log_level=log_level, **uvicorn_options(config))
    try:
        sock = uv_config.bind_socket()
    except SystemExit:  # uvicorn logs the OS error ("[Errno 98] Address already in use") and exits
        raise ConfigError(
            f"cannot listen on {_url(host, port)}: the port is taken (another server?) or the address is "
            "not one of this machine's; choose another with --port or --host"
        ) from None
    with sock:
        if announce is not None:
            announce(_url(host, sock.getsockname()[1]))
        with _sigterm_exits_cleanly():
            _run_on(uvicorn.Server(uv_config), sock)


def _run_on(server: Any, sock: socket.socket) -> None:
    """``server.run`` on a bound socket, ended as :func:`uvicorn.run` ends it: Ctrl-C is a normal
    stop, a failed application start-up exits :data:`STARTUP_FAILURE`, unless a stop was asked
    for during it (``timeout``, systemd or a terminal signal the whole process group, whose
    worker processes then die under the start-up): a stop asked for is a success."""
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    except SystemExit:
        if server.should_exit:  # set by uvicorn's signal handler only, before or during start-up
            sys.exit(0)
        raise
    if not server.started and not server.should_exit:
        sys.exit(STARTUP_FAILURE)


STARTUP_FAILURE = 3
"""Exit code of a service whose application failed to start: uvicorn's (``uvicorn.run`` exits 3;
its ``uvicorn.config.STARTUP_FAILURE`` name exists only since 0.50), and FoleySeal's for bad
configuration."""


def _url(host: str, port: int) -> str:
    """The service's base URL (IPv6 addresses in brackets)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


@contextlib.contextmanager
def _sigterm_exits_cleanly() -> Iterator[None]:
    """SIGTERM ends the process through ``SystemExit(0)`` after uvicorn's graceful shutdown.

    uvicorn stops on SIGTERM, then raises the signal again under the handler it found. Under the
    default one the process dies at once and its exit handlers never run, which leaves
    multiprocessing's temporary folder (the forkserver's socket) behind.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit_after_shutdown)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_after_shutdown(signum: int, frame: Any) -> None:
    raise SystemExit(0)  # a requested stop that completed is a success, as after Ctrl-C
