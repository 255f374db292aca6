"""FoleySeal: soundtracks for video, and provenance for every output.

The thin public layer: one entry point per stage, re-exported lazily (importing ``foleyseal``
does not load OpenCV or FastAPI until a name is used), and the CLI in :mod:`foleyseal.cli`.

    from foleyseal import generate, mark, sign, verify, embed, detect
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from provenance import __version__

_EXPORTS = {
    "generate": "v2a_core.pipeline",
    "mark": "provenance.mark",
    "sign": "provenance.sign",
    "verify": "detectors.verify",
    "embed": "provenance.watermark",
    "detect": "provenance.watermark",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'foleyseal' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names with the lazy exports, so that ``dir()`` and completion show them."""
    return sorted({*globals(), *_EXPORTS})
