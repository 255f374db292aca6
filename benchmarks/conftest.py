"""pytest options of the speed benchmarks (``pytest benchmarks/``, ``foleyseal bench speed``)."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-name", metavar="EXPR", default=None,
        help="Run only the benchmarks whose test name matches EXPR, a -k style expression "
        "(substrings, and/or/not, parentheses) matched against the function name and its "
        "parameters only. Plain -k also matches the module and folder names, and 'benchmarks' "
        "holds 'mark': -k mark selects everything.",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    expr = config.getoption("--bench-name")
    if not expr:
        return
    compiled = _compile(expr)
    selected, deselected = [], []
    for item in items:
        (selected if compiled.evaluate(_name_matcher(item.name)) else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def _compile(expr: str) -> Any:
    """``expr`` compiled with pytest's own -k grammar (a private module, stable since pytest 6),
    so that --bench-name reads exactly as -k does; a syntax error is a usage error."""
    from _pytest.mark import expression

    malformed = (SyntaxError, getattr(expression, "ParseError", SyntaxError))  # pytest 8 had its own class
    try:
        return expression.Expression.compile(expr)
    except malformed as exc:
        raise pytest.UsageError(f"--bench-name: wrong expression {expr!r}: {exc}") from None


def _name_matcher(name: str):
    """A -k matcher that sees one name: case-insensitive substring, as -k's own."""
    lowered = name.lower()

    def matches(subname: str, /, **kwargs: Any) -> bool:
        if kwargs:
            raise pytest.UsageError("--bench-name expressions take no call parameters")
        return subname.lower() in lowered

    return matches
