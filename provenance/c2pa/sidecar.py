"""Sidecar manifests: a ``.c2pa`` file beside an asset whose format cannot carry one (Ogg, Opus).

FoleySeal writes the sidecar of ``song.ogg`` as ``song.ogg.c2pa`` (the extension appended), so
``song.ogg`` and ``song.opus`` in one directory never overwrite each other's sidecar. Readers
also accept ``song.c2pa`` (the extension replaced), the name c2pa-rs and c2patool look for;
an operator publishing for those tools can copy the sidecar to that name.
"""

from __future__ import annotations

from pathlib import Path

from provenance.core.atomic import atomic_write_bytes, same_file

SIDECAR_SUFFIX = ".c2pa"


def sidecar_path(asset: str | Path) -> Path:
    """Where FoleySeal writes the sidecar of ``asset``: its full name plus ``.c2pa``."""
    asset = Path(asset)
    return asset.with_name(asset.name + SIDECAR_SUFFIX)


def sidecar_candidates(asset: str | Path) -> list[Path]:
    """Sidecar names looked for, in order: ``song.ogg.c2pa``, then ``song.c2pa``, each also
    with the extension in capitals (``.C2PA``, as some Windows tools and cameras write it)."""
    asset = Path(asset)
    return [asset.with_name(asset.name + suffix) for suffix in (SIDECAR_SUFFIX, SIDECAR_SUFFIX.upper())] + [
        asset.with_suffix(suffix) for suffix in (SIDECAR_SUFFIX, SIDECAR_SUFFIX.upper())
    ]


def find_sidecar(asset: str | Path) -> Path | None:
    """The first existing sidecar of ``asset``, or None. The asset itself is never its own
    sidecar (a WAV named ``clip.c2pa`` is ``clip.c2pa``'s ``song.c2pa`` form)."""
    for p in sidecar_candidates(asset):
        try:
            found = p.is_file()
        except OSError:  # "File name too long": the asset's name leaves no room for ".c2pa"
            continue
        if found and not same_file(p, asset):
            return p
    return None


def write_sidecar(asset: str | Path, manifest: bytes) -> Path:
    """Write ``manifest`` (detached manifest store bytes) beside ``asset``, atomically."""
    path = sidecar_path(asset)
    atomic_write_bytes(path, manifest)
    return path
