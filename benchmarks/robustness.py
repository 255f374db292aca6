"""The robustness benchmark: corpus x attacks x watermarkers -> one row per trial.

Per (clip, attack, watermarker) trial: exact payload recovery, bit accuracy, detection score and
p-value, localization error of the marked spans (seconds), time per embed and detect. Null trials
(unmarked windows, and marked audio read with wrong keys where the watermarker has keys) give the
score distribution the report turns into TPR at a fixed FPR. Quality trials measure the marked
audio before any attack (SNR, PESQ-WB on speech, ViSQOL on the rest), at several strengths.

Rows are appended to ``OUT/results.jsonl`` as tasks finish, so an interrupted run resumes where it
stopped (trials already there are skipped); at the end the JSONL is compacted (one valid row per
trial and inputs) and ``results.json``, ``summary.md`` and the plots are written (see
:mod:`benchmarks.report`).

The corpus (:mod:`benchmarks.corpus`) and the trials (:mod:`benchmarks.trials`) have their own
modules; this one holds a run's configuration and runs it, resumably, on worker processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from concurrent.futures import as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.attacks import QUICK_ATTACKS, Attack, get_attack
from benchmarks.corpus import check_corpus_folder, discover_clips, select_clips
from benchmarks.jsonout import dumps
from benchmarks.pool import call, worker_pool
from benchmarks.quality import MEASURES
from benchmarks.requirements import MEASURE_REQUIREMENTS, Requirement, missing_message, missing_requirements
from benchmarks.source import source_info
from benchmarks.trials import SCHEMA, describe_watermarker, error_row, package_versions, plan_tasks, run_task
from benchmarks.watermarkers import Watermarker
from provenance.core.atomic import atomic_path
from provenance.core.errors import InputError

RESULTS_JSONL = "results.jsonl"
RESULTS_JSON = "results.json"
RUN_LOCK = ".run.lock"
"""The lock file of the run writing to an output folder; it holds that run's pid."""


@dataclass
class BenchConfig:
    """Everything that defines a run (recorded in ``results.json``)."""

    corpus: Path
    out: Path
    attacks: list[Attack]
    watermarkers: list[Watermarker]
    seed: int = 0
    strength: float = 1.0
    workers: int = 2
    quick: bool = False
    max_clips: int | None = None
    min_clip_s: float = 0.0
    null_per_clip: int = 40
    """Null trials per (clip, watermarker): half unmarked windows, half wrong keys (where keyed)."""
    null_window_s: float = 5.0
    quality_measures: tuple[str, ...] = MEASURES
    quality_strengths: tuple[float, ...] = (0.25, 0.5, 1.0)
    """Strength multipliers (of ``strength``) for the quality-vs-strength sweep (FoleySeal's
    strength is at most 1.0, its default)."""
    attacks_per_task: int = 16
    information: bool = False
    """Also read every attacked file against its embedded payload's codeword, on the file's own
    timeline (not after speed, tempo or pitch edits), where the watermarker supports it
    (:meth:`WatermarkerBase.informed_reading`): the information per coded bit its soft values
    carry, which tells a failure no decoder could avoid from one a better decoder might not."""
    allow_missing: bool = False
    """Run even when optional packages the run needs are missing (``benchmarks.requirements``):
    attacks that need one are left out, quality measures it computes stay empty, and one that
    only makes a measure fast (numba) leaves it slow. Without it a run with a missing package
    stops before its first trial. A resumed run with the packages measures the quality of those
    trials again (their inputs changed)."""
    missing: tuple[Requirement, ...] = ()
    """The packages this run goes without (set by :func:`check_requirements` under ``allow_missing``)."""

    @classmethod
    def quick_defaults(cls, corpus: Path, out: Path, watermarkers: list[Watermarker], **kw: Any) -> "BenchConfig":
        """The ``--quick`` (CI) profile: 3 clips, 5 attacks + none, 4 nulls, SNR and PESQ only."""
        base = dict(
            attacks=[get_attack(n) for n in ("none", *QUICK_ATTACKS)], quick=True, max_clips=3,
            min_clip_s=6.0, null_per_clip=4, quality_measures=("snr", "pesq"), quality_strengths=(1.0,),
        )
        base.update(kw)
        return cls(corpus=corpus, out=out, watermarkers=watermarkers, **base)

    def describe(self) -> dict[str, Any]:
        return {
            "corpus": str(self.corpus), "seed": self.seed, "strength": self.strength, "workers": self.workers,
            "quick": self.quick, "max_clips": self.max_clips, "min_clip_s": self.min_clip_s,
            "null_per_clip": self.null_per_clip, "null_window_s": self.null_window_s,
            "quality_measures": list(self.quality_measures), "quality_strengths": list(self.quality_strengths),
            "information": self.information,
            "missing_packages": [{"dist": r.dist, "needed_for": r.needed_for} for r in self.missing],
            "attacks": [{"name": a.name, "kind": a.kind, **a.params()} for a in self.attacks],
            "watermarkers": [describe_watermarker(w) for w in self.watermarkers],
        }


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a results JSONL file. A line that is no row (torn by an interrupted write,
    damaged, or not a JSON object with a trial id) is skipped: its trial is measured again."""
    rows = []
    if not path.exists():
        return rows
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("trial_id"), str):
                rows.append(row)
    return rows


@dataclass
class BenchResult:
    """Where a run wrote its outputs, and what it did."""

    out: Path
    rows: list[dict[str, Any]]
    ran_trials: int
    skipped_trials: int
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    remeasured_trials: int = 0
    """Of ``ran_trials``: those ``out`` held results of, for other inputs (see ``Task.inputs_of``)."""
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    """Corpus files left out because they cannot be read as audio: (name, reason)."""


def _end_with_newline(path: Path) -> None:
    """Terminate a line torn by an interrupted write, so appended rows start on a fresh line."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")


def _preferred(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether ``new``, read after ``old`` for the same trial, replaces it: a later row does,
    unless it failed where ``old`` did not."""
    return old is None or bool(old.get("error")) or not new.get("error")


def compact_rows(path: Path) -> list[dict[str, Any]]:
    """Rewrite the results JSONL ``path`` (atomically) with one row per trial id and inputs, the
    one a run uses, dropping torn lines, rows measured again and rows of other code; return those
    rows, in order.

    Torn and duplicate lines stayed for ever, and ``json.loads`` per line, ``jq`` or
    ``pandas.read_json(lines=True)`` failed on the file. Rows of other inputs or configurations
    (another strength, an older clip) stay: a later run with those settings reuses them. Rows
    measured by other code (:mod:`benchmarks.source`) do not: no run of this code reuses them, and
    after each ``git pull`` every trial was in the file once more."""
    current = source_info()["digest"]
    kept: dict[tuple[str, Any], dict[str, Any]] = {}
    for r in read_rows(path):
        if (r.get("source") or {}).get("digest") != current:
            continue
        key = (r["trial_id"], r.get("inputs"))
        if _preferred(kept.get(key), r):
            kept[key] = r  # in the place of the trial's first row: the order stays as it was
    rows = list(kept.values())
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            _append_rows(fh, rows)
    return rows


def _append_rows(fh: Any, rows: list[dict[str, Any]]) -> None:
    for r in rows:
        fh.write(dumps(r) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def check_requirements(cfg: BenchConfig) -> BenchConfig:
    """Stop a run that lacks an optional package it needs, before anything is written; under
    ``cfg.allow_missing``, return the run without what the missing packages would measure."""
    requires = [m for a in cfg.attacks for m in a.requires]
    missing = missing_requirements(requires, cfg.quality_measures, plots=True)
    if not missing:
        return cfg
    if not cfg.allow_missing:
        raise InputError(missing_message(missing))
    gone = {r.module for r in missing}
    attacks = [a for a in cfg.attacks if not gone.intersection(a.requires)]
    measures = tuple(m for m in cfg.quality_measures if MEASURE_REQUIREMENTS.get(m) not in missing)
    known = tuple(dict.fromkeys((*cfg.missing, *missing)))
    return replace(cfg, attacks=attacks, quality_measures=measures, missing=known)


def _earlier_invocations(results_json: Path) -> list[dict[str, Any]]:
    """The invocations an earlier results file of this output folder records (a run resumed or
    run again), oldest first; [] when there is none or it cannot be read."""
    try:
        meta = json.loads(results_json.read_text(encoding="utf-8")).get("meta") or {}
    except (OSError, ValueError, AttributeError):
        return []
    earlier = meta.get("invocations")
    if isinstance(earlier, list):
        return [i for i in earlier if isinstance(i, dict)]
    # a results file from before invocations were kept: its one run
    return [{k: meta.get(k) for k in ("argv", "wall_s", "ran_trials", "resumed_trials", "versions")}]


def _row_versions(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each package's versions over the rows, where the rows were not all measured with one (a
    run resumed after installing pesq): ``{"pesq": ["0.0.4", "absent"]}``."""
    names = {k for r in rows for k in (r.get("versions") or {})}
    seen: dict[str, list[str]] = {}
    for name in sorted(names):
        values = sorted({str((r.get("versions") or {}).get(name, "absent")) for r in rows})
        if len(values) > 1:
            seen[name] = values
    return seen


def check_paths(cfg: BenchConfig) -> None:
    """:class:`InputError` for a corpus that is not a folder or an output folder that is a file:
    said before anything else (a missing package, say), since the run cannot start either way."""
    check_corpus_folder(Path(cfg.corpus))
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():  # mkdir said only "File exists"
        raise InputError("--out is a file, not a folder for the results", path=out)
    for parent in out.absolute().parents:  # mkdir said "outfile/sub: Not a directory"
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"is a file, not a folder: --out {out} cannot be a folder for the results "
                                 "inside it", path=parent)
            break


@contextlib.contextmanager
def holding_out(out: Path) -> Iterator[None]:
    """Hold ``out`` for this run, or :class:`InputError` naming the run that holds it.

    Two runs into one folder each measured every trial (twice the CPU) and overwrote each
    other's results.json, summary.md and plots one file at a time. The lock is ``flock`` on
    ``out/.run.lock``: the OS releases it when its process ends, however it ends, so a killed
    run never leaves a stale lock (the file stays, the lock does not). Without ``fcntl`` (not
    POSIX) nothing is locked.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(out / RUN_LOCK, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            other = fh.read().strip() or "unknown"  # empty for the instant the holder writes it
            raise InputError(f"another run is writing to this folder (pid {other}); wait for it to end, "
                             "or give another --out", path=out) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield


def run_benchmark(cfg: BenchConfig, *, show_progress: bool = True, write_report: bool = True) -> BenchResult:
    """Run (or resume) the benchmark described by ``cfg`` and write its outputs into ``cfg.out``;
    :class:`InputError` if another run is writing to ``cfg.out`` (see :func:`holding_out`)."""
    t0 = time.perf_counter()
    if not cfg.attacks:
        raise InputError("no attacks selected")
    if not cfg.watermarkers:
        raise InputError("no watermarkers selected")
    check_paths(cfg)
    cfg = check_requirements(cfg)
    if not any(a.name == "none" for a in cfg.attacks):
        cfg = replace(cfg, attacks=[get_attack("none"), *cfg.attacks])
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with holding_out(out):
        return _run_holding_out(cfg, out, t0, show_progress=show_progress, write_report=write_report)


def _run_holding_out(cfg: BenchConfig, out: Path, t0: float, *, show_progress: bool,
                     write_report: bool) -> BenchResult:
    """The body of :func:`run_benchmark`, once the run holds ``out``; ``t0``: its start
    (``time.perf_counter()``, s)."""
    unreadable: list[tuple[str, str]] = []
    clips = select_clips(discover_clips(cfg.corpus, unreadable=unreadable), min_clip_s=cfg.min_clip_s,
                         max_clips=cfg.max_clips)
    if not clips:
        raise InputError(f"no corpus clip is at least {cfg.min_clip_s} s long", path=cfg.corpus)
    tasks = plan_tasks(cfg, clips)
    jsonl = out / RESULTS_JSONL
    # A stored row counts only for the same inputs: same id but another clip file, attack
    # parameters, watermarker configuration or measures is another trial, measured again.
    expected = {i: t.inputs_of(i) for t in tasks for i in t.ids()}
    stored = read_rows(jsonl)
    done = {r["trial_id"] for r in stored if not r.get("error") and expected.get(r["trial_id"]) == r.get("inputs")}
    changed = {r["trial_id"] for r in stored if r["trial_id"] in expected and r["trial_id"] not in done
               and not r.get("error")}
    all_ids = [i for t in tasks for i in t.ids()]
    pending = []
    for t in tasks:
        ids = t.ids()
        skip = frozenset(i for i in ids if i in done)
        if len(skip) < len(ids):
            pending.append(replace(t, skip=skip))
    n_todo = sum(len(t.ids()) - len(t.skip) for t in pending)
    skipped = len(all_ids) - n_todo

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]robustness"), BarColumn(), MofNCompleteColumn(), TextColumn("trials"),
        TimeElapsedColumn(), TimeRemainingColumn(), disable=not show_progress, transient=False,
    )
    _end_with_newline(jsonl)
    with progress, open(jsonl, "a", encoding="utf-8") as fh:
        bar = progress.add_task("trials", total=n_todo)
        if cfg.workers <= 1:
            for t in pending:
                rows = run_task(t)
                _append_rows(fh, rows)
                progress.advance(bar, len(t.ids()) - len(t.skip))
        else:
            with worker_pool(cfg.workers) as ex:
                futures = {ex.submit(call, run_task, t): t for t in pending}
                for fut in as_completed(futures):
                    t = futures[fut]
                    try:
                        rows = fut.result()
                    except Exception as exc:  # a crashed worker: record, keep going, retried on resume
                        msg = f"worker failed: {type(exc).__name__}: {exc}"
                        rows = [error_row(t, tid, msg, {}) for tid in t.ids() if tid not in t.skip]
                    _append_rows(fh, rows)
                    progress.advance(bar, len(t.ids()) - len(t.skip))

    compacted = compact_rows(jsonl)  # the run finished: its file becomes one valid row per line
    # Keep only this configuration's trials; a later successful row replaces an earlier one.
    wanted = set(all_ids)
    latest: dict[str, dict[str, Any]] = {}
    for r in compacted:
        tid = r["trial_id"]
        if tid not in wanted or r.get("inputs") != expected[tid]:
            continue
        if _preferred(latest.get(tid), r):
            latest[tid] = r
    rows = [latest[i] for i in all_ids if i in latest]
    this_run = {"argv": sys.argv, "wall_s": round(time.perf_counter() - t0, 2), "ran_trials": n_todo,
                "resumed_trials": skipped, "versions": package_versions(), "source": source_info(),
                "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    invocations = [*_earlier_invocations(out / RESULTS_JSON), this_run]
    meta = {
        "schema": SCHEMA, "config": cfg.describe(), "versions": this_run["versions"], "source": source_info(),
        "clips": [{"name": c.name, "kind": c.kind, "duration_s": c.duration_s, "sample_rate": c.sample_rate,
                   "channels": c.channels} for c in clips],
        "trials": len(rows), "ran_trials": n_todo, "resumed_trials": skipped, "remeasured_trials": len(changed),
        # a resumed run's time is its invocations' together: the last alone (0.1 s of reading
        # rows back) replaced a 135 s run's figure, and its argv and versions the first's
        "wall_s": round(sum(float(i.get("wall_s") or 0.0) for i in invocations), 2),
        "invocations": invocations, "row_versions": _row_versions(rows),
        "unreadable_files": [{"file": f, "reason": why} for f, why in unreadable], "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "argv": sys.argv,
    }
    files = []
    with atomic_path(out / RESULTS_JSON) as tmp:
        tmp.write_text(dumps({"meta": meta, "rows": rows}, indent=1), encoding="utf-8")
    files.append(out / RESULTS_JSON)
    if write_report:
        from benchmarks.report import write_report as _write_report

        files += _write_report(rows, meta, out)
    return BenchResult(out, rows, n_todo, skipped, files, time.perf_counter() - t0, len(changed), unreadable)
