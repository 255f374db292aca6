"""Numbers on the command line: checks of numeric options (a value outside its range is a usage
error, exit 2, naming the option), and how p-values are shown.

typer's ``min``/``max`` checks let NaN through (every comparison with NaN is false) and, without a
``max``, infinity too; the callbacks here close that gap and apply the Python API's own rules,
so the command line and the API accept the same values.
"""

from __future__ import annotations

import math

import typer

from provenance.core.errors import InputError


def finite(value: float | None) -> float | None:
    """typer callback: refuse NaN and infinities (None, an option left out, passes)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def p_value_threshold(value: float) -> float:
    """typer callback: a detection threshold, a p-value strictly between 0 and 1 (:func:`detect`'s rule)."""
    from provenance.watermark.detect import check_threshold

    return _api_rule(check_threshold, value)


def mark_strength(value: float) -> float:
    """typer callback: an embedding strength the embedder accepts (0.05-1.0)."""
    from provenance.watermark.embed import check_strength

    return _api_rule(check_strength, value)


def _api_rule(check, value: float) -> float:
    """``value`` if ``check`` accepts it; its refusal as a usage error of the option."""
    try:
        check(value)
    except InputError as exc:
        raise typer.BadParameter(exc.message) from None
    return value


def p_text(p: float, digits: int = 2) -> str:
    """A p-value for people: ``digits`` significant digits, and one that underflowed to 0 (a mark
    read over minutes of audio) as ``<1e-300``, not ``0``, which would claim certainty."""
    return "<1e-300" if p < 1e-300 else f"{p:.{digits}g}"
