"""Checks of the arguments of the public Python entry points (``mark``, ``sign``, ``generate``):
a wrong type is an :class:`~provenance.core.errors.InputError` naming the argument, not a
``TypeError`` from deep inside, nor a truthy string taken for ``True``."""

from __future__ import annotations

import os
from pathlib import Path

from provenance.core.errors import InputError


def path_argument(name: str, value: object) -> Path:
    """``value`` (a str or path-like) as a Path; :class:`InputError` naming ``name`` otherwise."""
    if isinstance(value, os.PathLike) or (isinstance(value, str) and value.strip()):
        try:
            return Path(value)
        except TypeError:  # a PathLike whose path is bytes
            pass
    raise InputError(f"{name} must be a file path (str or Path), got {value!r:.60}")


def flag_argument(name: str, value: object) -> bool:
    """``value`` when it is True or False: "no" is truthy, and would disclose or publish."""
    if not isinstance(value, bool):
        raise InputError(f"{name} must be True or False, got {value!r:.60}")
    return value


def text_argument(name: str, value: object) -> str | None:
    """``value`` when it is a string or None; :class:`InputError` naming ``name`` otherwise."""
    if value is not None and not isinstance(value, str):
        raise InputError(f"{name} must be text (str) or None, got {value!r:.60}")
    return value
