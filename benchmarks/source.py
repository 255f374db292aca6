"""Which source code measured a benchmark row: a digest of it, and the git commit where there is one.

The package version alone did not tell: every commit the robustness docs compare is 0.1.0, and
the version comes from the installed dist-info, not from the checkout on ``PYTHONPATH`` that ran.
A resumed run after ``git pull`` reused every row measured with the old detector, silently.

What the digest covers (:data:`SOURCE_PARTS`) is the code that decides a trial's outcome, and
nothing else, so that a change elsewhere (the CLI, the report, the service) does not throw away
days of measurements:

- ``provenance/watermark`` and ``provenance/core``: FoleySeal's embedder and detector and what
  they stand on (audio, codecs, I/O); the watermark imports no other ``provenance`` package;
- ``benchmarks/watermarkers``: the adapters (how a detection becomes bits, score and segments;
  the external tool driver);
- ``benchmarks/attacks``: what each attack does to the audio;
- ``benchmarks/trials.py``, ``corpus.py``, ``quality.py``: how a trial is run and scored
  (exact recovery, bit accuracy, localization), how a clip is read, how quality is measured.

Not covered: ``benchmarks/robustness.py`` (scheduling and resuming), ``report.py`` (figures
are recomputed from the rows on every run), ``pool.py``, the CLI.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
"""The folder holding the ``benchmarks`` and ``provenance`` packages (a checkout's root)."""

SOURCE_PARTS = (
    "provenance/watermark", "provenance/core", "benchmarks/watermarkers", "benchmarks/attacks",
    "benchmarks/trials.py", "benchmarks/corpus.py", "benchmarks/quality.py",
)
"""Folders (all their ``.py`` files, recursively) and files, relative to :data:`ROOT`."""

GIT_TIMEOUT_S = 5.0
"""How long asking git for the commit may take before it is given up, s."""


def _source_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for part in SOURCE_PARTS:
        p = root / part
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p] if p.is_file() else []
    return sorted(files)


def source_digest(root: Path = ROOT) -> str:
    """SHA-256 (first 16 hex digits) over the relative paths and bytes of the ``.py`` files of
    :data:`SOURCE_PARTS` under ``root``, in sorted order: the same for the same code, wherever
    it is installed."""
    h = hashlib.sha256()
    for f in _source_files(root):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return None


def git_commit(root: Path = ROOT) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout at ``root`` (dirty: the files of
    :data:`SOURCE_PARTS` differ from that commit), or None where it is no git checkout or git
    is missing: best effort, never an error."""
    if not (root / ".git").exists():
        return None  # an installed copy: git would report an enclosing repository, not this code
    head = _git(root, "rev-parse", "HEAD")
    if head is None or head.returncode != 0:
        return None
    diff = _git(root, "status", "--porcelain", "--", *SOURCE_PARTS)
    dirty = None if diff is None or diff.returncode != 0 else bool(diff.stdout.strip())
    return {"commit": head.stdout.strip(), "dirty": dirty}


@functools.lru_cache(maxsize=1)
def source_info() -> dict[str, Any]:
    """What this process's benchmark code is: ``{"digest": ..., "commit": ..., "dirty": ...}``
    (commit and dirty None without git). Computed once per process (tens of ms)."""
    git = git_commit() or {}
    return {"digest": source_digest(), "commit": git.get("commit"), "dirty": git.get("dirty")}
