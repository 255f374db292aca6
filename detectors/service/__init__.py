"""The FoleySeal verification service (FastAPI): ``create_app(ServiceConfig)`` and ``serve``.

Routes: ``POST /v1/verify``, ``GET /v1/health``, the C2PA Soft Binding Resolution API
(``/matches/byBinding``, ``/matches/byContent``, ``/manifests/{id}``,
``/services/supportedAlgorithms``), API-key writes under ``/v1`` (``POST /v1/manifests``,
``POST /v1/api-keys/rotate``), the web page at ``/`` and OpenAPI docs at ``/docs``.
"""

from detectors.service.app import create_app, serve
from detectors.service.config import ServiceConfig

__all__ = ["ServiceConfig", "create_app", "serve"]
