"""JSON that every reader accepts: the benchmarks' reports and ``--json`` output.

Python's ``json`` writes NaN and Infinity as bare ``NaN``/``Infinity``, which JSON does not have
(``JSON.parse``, ``jq`` and most other readers refuse the whole file). A measure that has no value
(a recall with no events, a latency with no successful request) is written as ``null`` instead.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def finite(o: Any) -> Any:
    """``o`` with every NaN or infinite float replaced by None, numpy scalars and arrays made
    Python numbers and lists, through dicts, lists and tuples."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite(v) for v in o]
    if isinstance(o, np.generic):
        return finite(o.item())
    if isinstance(o, np.ndarray):
        return finite(o.tolist())
    return o


def dumps(o: Any, **kw: Any) -> str:
    """``json.dumps`` of :func:`finite` ``(o)``, paths as strings; ``allow_nan=False`` so that a
    non-finite number that slipped through is an error, never an invalid file."""
    return json.dumps(finite(o), default=_default, allow_nan=False, **kw)


def _default(o: Any) -> Any:
    # numpy values never get here: finite() has made them Python numbers and lists
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
