"""Optional packages a robustness run needs, checked before the run starts.

The core of FoleySeal needs none of them, so they live in the ``bench`` extra
(``pip install 'foleyseal[bench]'``). Without this check a run on a machine that lacks one
would not fail: attacks that need it would turn into error rows and quality measures into
empty columns, found only in the results after an hour. A run therefore stops before its
first trial and names what is missing, unless the caller allows missing packages, in which
case what they measure is left out (or, for a package that only makes a measure fast, measured
slowly) and listed in the summary.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

INSTALL_HINT = "pip install 'foleyseal[bench]'"
"""How to install every optional package of the benchmarks (``bench`` extra of pyproject.toml)."""


@dataclass(frozen=True)
class Requirement:
    """An optional package: its import name, its distribution on PyPI and what it is used for."""

    module: str
    dist: str
    needed_for: str

    def describe(self) -> str:
        return f"{self.dist} ({self.needed_for})"


PEDALBOARD = Requirement("pedalboard", "pedalboard",
                         "room reverb, dynamic range compression, re-recording, time stretch and pitch shift attacks")
PESQ = Requirement("pesq", "pesq", "PESQ-WB quality of the marked speech clips")
VISQOL = Requirement("visqol", "visqol-python", "ViSQOL quality of the marked music and other non-speech clips")
MATPLOTLIB = Requirement("matplotlib", "matplotlib", "the PNG plots")
NUMBA = Requirement("numba", "numba",
                    "ViSQOL's compiled kernels: about 2 s per 10 s clip instead of 18 s; without them "
                    "the full suite takes 48 min instead of 35")

HTTPX = Requirement("httpx", "httpx", "the clients of the load benchmark")
PYTEST = Requirement("pytest", "pytest", "running the speed benchmarks")
PYTEST_BENCHMARK = Requirement("pytest_benchmark", "pytest-benchmark", "timing the speed benchmarks")
TEST_INSTALL_HINT = "pip install 'foleyseal[test]'"
"""How to install what ``bench load`` and ``bench speed`` need (the ``test`` extra)."""

MEASURE_REQUIREMENTS: dict[str, Requirement] = {"pesq": PESQ, "visqol": VISQOL}
"""Quality measure name (``benchmarks.quality.MEASURES``) -> the package that computes it."""

SPEEDUPS: dict[str, Requirement] = {"visqol": NUMBA}
"""Quality measure name -> a package without which it is still measured, only far slower."""

REQUIREMENTS: dict[str, Requirement] = {r.module: r for r in (PEDALBOARD, PESQ, VISQOL, MATPLOTLIB, NUMBA)}
"""Import name -> requirement, for :attr:`benchmarks.attacks.base.Attack.requires`."""


@cache
def importable(module: str) -> bool:
    """True when ``module`` imports here (a package that is installed but fails to load counts
    as missing, since the run could not use it either)."""
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - any failure to load means the package cannot be used
        return False
    return True


def missing_requirements(
    attack_requires: Iterable[str], quality_measures: Iterable[str], *, plots: bool = True
) -> list[Requirement]:
    """The requirements of a run that do not import here, in a stable order.

    ``attack_requires``: import names the chosen attacks need; ``quality_measures``: the quality
    measures asked for (with the packages that compute them and those that make them fast enough
    for the full suite); ``plots``: whether the run writes its PNG plots.
    """
    needed = [REQUIREMENTS[m] for m in attack_requires]
    measures = list(quality_measures)
    needed += [MEASURE_REQUIREMENTS[m] for m in measures if m in MEASURE_REQUIREMENTS]
    needed += [SPEEDUPS[m] for m in measures if m in SPEEDUPS]
    if plots:
        needed.append(MATPLOTLIB)
    out: list[Requirement] = []
    for r in needed:
        if r not in out and not importable(r.module):
            out.append(r)
    return out


def missing_message(missing: list[Requirement], *, allow_flag: str | None = "--allow-missing",
                    install_hint: str = INSTALL_HINT) -> str:
    """The error a run gives when packages it needs are missing: what, why, and how to fix it
    (``allow_flag``: the option that runs without them, where the command has one)."""
    names = "; ".join(r.describe() for r in missing)
    msg = f"the benchmark needs packages that are not installed: {names}. Install them with `{install_hint}`"
    if allow_flag:
        msg += (f", or run with {allow_flag} to leave out what they measure, or measure it slowly "
                "(the summary lists them)")
    return msg


def require_test_extra(*requirements: Requirement) -> None:
    """:class:`~provenance.core.errors.InputError` (exit 3) naming those of ``requirements`` that
    do not import here, and the ``test`` extra that brings them (``bench load``, ``bench speed``)."""
    from provenance.core.errors import InputError

    missing = [r for r in requirements if not importable(r.module)]
    if missing:
        raise InputError(missing_message(missing, allow_flag=None, install_hint=TEST_INSTALL_HINT))
