"""Watermarkers under test, behind one small protocol: FoleySeal's own, any external command-line
tool, and a deliberately weak LSB baseline."""

from __future__ import annotations

from pathlib import Path

from benchmarks.watermarkers.base import (
    Watermarker,
    WatermarkerBase,
    WatermarkerResult,
    bits_to_hex,
    hex_to_bits,
)
from benchmarks.watermarkers.external import ExternalCommandWatermarker, ExternalToolError, load_external_config
from benchmarks.watermarkers.foleyseal import SPREAD_STRIDE, STORE_RECORDS, FoleySealWatermarker
from benchmarks.watermarkers.lsb import LSBWatermarker
from provenance.core.errors import ConfigError

BUILTIN = ("foleyseal", "foleyseal+store", "foleyseal-spread", "lsb")


def build_watermarkers(
    names: list[str], *, external_config: str | Path | None = None, strength: float = 1.0
) -> list[Watermarker]:
    """Watermarkers by name: ``foleyseal``, ``foleyseal+store`` (FoleySeal read by a verifier that
    holds the manifest store: :class:`FoleySealWatermarker`), ``foleyseal-spread`` (the format variant
    with runs interleaved in time, to compare layouts), ``lsb``, ``external`` (every tool in ``external_config``)
    or the name of one tool in ``external_config``."""
    if isinstance(names, str):  # "foleyseal,lsb", as on the command line (not its characters)
        names = [n.strip() for n in names.split(",") if n.strip()]
    externals = load_external_config(external_config) if external_config else []
    for w in externals:
        if w.name in BUILTIN or w.name == "external":
            raise ConfigError(
                f"external watermarker {w.name!r} has the name of a built-in one; give it another name",
                path=external_config,
            )
    by_name = {w.name: w for w in externals}
    out: list[Watermarker] = []
    for n in names:
        if n == "foleyseal":
            out.append(FoleySealWatermarker(strength=strength))
        elif n == "foleyseal+store":
            out.append(FoleySealWatermarker(name=n, strength=strength, store_records=STORE_RECORDS))
        elif n == "foleyseal-spread":
            out.append(FoleySealWatermarker(name=n, strength=strength, run_stride=SPREAD_STRIDE))
        elif n == "lsb":
            out.append(LSBWatermarker())
        elif n == "external":
            if not externals:
                raise ConfigError("watermarker 'external' needs --external-config FILE.toml")
            out.extend(externals)
        elif n in by_name:
            out.append(by_name[n])
        else:
            raise ConfigError(
                f"unknown watermarker {n!r}; known: {', '.join(BUILTIN + ('external',) + tuple(by_name))}"
            )
    names_seen = [w.name for w in out]
    if len(set(names_seen)) != len(names_seen):
        raise ConfigError(f"watermarker names must be unique, got {names_seen}")
    return out


__all__ = [
    "BUILTIN", "ExternalCommandWatermarker", "ExternalToolError", "FoleySealWatermarker", "LSBWatermarker",
    "Watermarker", "WatermarkerBase", "WatermarkerResult", "bits_to_hex", "build_watermarkers",
    "hex_to_bits", "load_external_config",
]
