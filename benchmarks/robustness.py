"""The robustness benchmark: corpus x attacks x watermarkers -> one row per trial.

Per (clip, attack, watermarker) trial: exact payload recovery, bit accuracy, detection score and
p-value, localization error of the marked spans (seconds), time per embed and detect. Null trials
(unmarked windows, and marked audio read with wrong keys where the watermarker has keys) give the
score distribution the report turns into TPR at a fixed FPR. Quality trials measure the marked
audio before any attack (SNR, PESQ-WB on speech, ViSQOL on the rest), at several strengths.

Rows are appended to ``OUT/results.jsonl`` as tasks finish, so an interrupted run resumes where it
stopped (trials already there are skipped); at the end ``results.json``, ``summary.md`` and the
plots are written (see :mod:`benchmarks.report`).

Randomness: every trial draws from ``numpy.random.default_rng([seed, crc32(clip), crc32(attack)])``
so the same attack instance (crop position, noise) hits every watermarker identically.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.attacks import (
    OTHER,
    PRIMARY,
    QUICK_ATTACKS,
    Attack,
    AttackContext,
    MarkedSpan,
    get_attack,
)
from benchmarks.attacks.base import merge_spans
from benchmarks.quality import MEASURES, clip_kind, measure_quality
from benchmarks.requirements import MEASURE_REQUIREMENTS, Requirement, missing_message, missing_requirements
from benchmarks.watermarkers import Watermarker, WatermarkerResult, bits_to_hex
from provenance.core.atomic import atomic_path
from provenance.core.audio import Audio
from provenance.core.errors import FormatError, InputError

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".mp4", ".mov", ".mkv", ".webm"}
RESULTS_JSONL = "results.jsonl"
RESULTS_JSON = "results.json"
SCHEMA = "foleyseal-robustness/1"


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """One corpus file (what the harness needs to know before loading it)."""

    path: Path
    name: str
    kind: str
    duration_s: float
    sample_rate: int
    channels: int


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
    stops before its first trial. A resumed run keeps the trials it already has: measure them
    with the packages into a new ``out``."""
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
            "watermarkers": [_describe_wm(w) for w in self.watermarkers],
        }


def _describe_wm(w: Watermarker) -> dict[str, Any]:
    d = getattr(w, "describe", None)
    return d() if callable(d) else {"name": w.name, "payload_bits": w.payload_bits}


# --- corpus ----------------------------------------------------------------------------------


def read_audio(path: Path) -> Audio:
    """Read any corpus file: ``provenance.core.io.read_audio`` when present, else soundfile, else PyAV."""
    try:
        from provenance.core.io import read_audio as _read
    except ImportError:
        _read = None
    if _read is not None:
        return _read(path)
    import soundfile as sf

    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return Audio(np.ascontiguousarray(x.T), sr)
    except (sf.LibsndfileError, RuntimeError):
        pass
    import av

    try:
        with av.open(str(path)) as c:
            st = c.streams.audio[0]
            chunks = [f.to_ndarray() for f in c.decode(st)]
            sr = st.codec_context.sample_rate
    except (av.FFmpegError, IndexError) as exc:
        raise FormatError(f"cannot decode audio: {exc}", path=path) from None
    x = np.concatenate([c if c.ndim == 2 else c[np.newaxis] for c in chunks], axis=1)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
    if x.shape[0] == 1 and len(chunks) and st.codec_context.layout.nb_channels > 1:  # packed layout
        x = x.reshape(-1, st.codec_context.layout.nb_channels).T
    return Audio(x.astype(np.float32), sr)


@lru_cache(maxsize=8)
def _load(path: str) -> Audio:
    return read_audio(Path(path))


def _probe(path: Path) -> tuple[int, int, float]:
    """(rate Hz, channels, duration s) from the header where possible, else by decoding."""
    try:
        from provenance.core.io import audio_info
    except ImportError:
        audio_info = None
    if audio_info is not None:
        info = audio_info(path)
        if info.frames > 0:
            return info.sample_rate, info.channels, info.duration_s
    a = _load(str(path))
    return a.sample_rate, a.channels, a.duration_s


def discover_clips(corpus: Path) -> list[Clip]:
    """Every audio file directly in ``corpus`` (sorted by name)."""
    corpus = Path(corpus)
    if not corpus.is_dir():
        raise InputError("corpus directory not found", path=corpus)
    clips = []
    for p in sorted(corpus.iterdir()):
        if p.suffix.lower() not in AUDIO_EXTENSIONS or not p.is_file():
            continue
        rate, channels, duration_s = _probe(p)
        clips.append(Clip(p, p.name, clip_kind(p.name), duration_s, rate, channels))
    if not clips:
        raise InputError("corpus directory holds no audio files", path=corpus)
    return clips


def select_clips(clips: list[Clip], cfg: BenchConfig) -> list[Clip]:
    """Clips at least ``min_clip_s`` long; in quick mode one per kind first, then by name."""
    ok = [c for c in clips if c.duration_s >= cfg.min_clip_s]
    if cfg.max_clips is None or len(ok) <= cfg.max_clips:
        return ok
    chosen: list[Clip] = []
    for kind in ("speech", "music", "other"):
        for c in ok:
            if c.kind == kind and c not in chosen:
                chosen.append(c)
                break
    for c in ok:
        if len(chosen) >= cfg.max_clips:
            break
        if c not in chosen:
            chosen.append(c)
    return sorted(chosen[: cfg.max_clips], key=lambda c: c.name)


# --- trials ----------------------------------------------------------------------------------


def _crc(s: str) -> int:
    return zlib.crc32(s.encode())


def payload_for(seed: int, clip_name: str, n_bits: int) -> np.ndarray:
    """The payload embedded in a clip: random bits from ``[seed, crc32(clip)]``."""
    return np.random.default_rng([seed, _crc(clip_name), _crc("payload")]).integers(0, 2, n_bits).astype(np.uint8)


def trial_id(wm: str, clip: str, kind: str, what: str, strength: float, seed: int) -> str:
    return f"{wm}|{clip}|{kind}|{what}|s={strength:g}|seed={seed}"


@dataclass(frozen=True)
class Task:
    """A unit of work for one process: one (clip, watermarker), one embed, some of its trials."""

    cfg: BenchConfig
    clips: tuple[Clip, ...]
    clip_index: int
    wm_index: int
    attack_names: tuple[str, ...] = ()
    nulls: bool = False
    quality: bool = False
    skip: frozenset[str] = frozenset()

    @property
    def clip(self) -> Clip:
        return self.clips[self.clip_index]

    @property
    def wm(self) -> Watermarker:
        return self.cfg.watermarkers[self.wm_index]

    def attack_ids(self) -> list[str]:
        c, w, s, seed = self.clip.name, self.wm.name, self.cfg.strength, self.cfg.seed
        return [trial_id(w, c, "attack", a, s, seed) for a in self.attack_names]

    def null_ids(self) -> list[str]:
        if not self.nulls:
            return []
        c, w, s, seed = self.clip.name, self.wm.name, self.cfg.strength, self.cfg.seed
        return [trial_id(w, c, "null", str(j), s, seed) for j in range(self.cfg.null_per_clip)]

    def quality_ids(self) -> list[str]:
        if not self.quality:
            return []
        c, w, s, seed = self.clip.name, self.wm.name, self.cfg.strength, self.cfg.seed
        return [trial_id(w, c, "quality", f"{st:g}", s, seed) for st in _quality_strengths(self.cfg, self.wm)]

    def ids(self) -> list[str]:
        return self.attack_ids() + self.null_ids() + self.quality_ids()

    def kind_of(self, tid: str) -> str:
        return tid.split("|")[2]


def _quality_strengths(cfg: BenchConfig, wm: Watermarker) -> list[float]:
    ws = getattr(wm, "with_strength", None)
    if not callable(ws) or ws(cfg.strength) is None:
        return [cfg.strength]
    return sorted({round(cfg.strength * m, 6) for m in cfg.quality_strengths} | {cfg.strength})


def plan_tasks(cfg: BenchConfig, clips: list[Clip]) -> list[Task]:
    """Per (clip, watermarker): attacks in chunks of ``attacks_per_task``; the first chunk also runs
    the null and quality trials (so small runs embed each clip once)."""
    tasks = []
    names = [a.name for a in cfg.attacks]
    chunk = max(1, cfg.attacks_per_task)
    tup = tuple(clips)
    for ci in range(len(clips)):
        for wi in range(len(cfg.watermarkers)):
            chunks = [tuple(names[k : k + chunk]) for k in range(0, len(names), chunk)] or [()]
            for i, part in enumerate(chunks):
                tasks.append(Task(cfg, tup, ci, wi, part, nulls=i == 0 and cfg.null_per_clip > 0, quality=i == 0))
    return tasks


def _strength_wm(wm: Watermarker, strength: float) -> Watermarker:
    ws = getattr(wm, "with_strength", None)
    out = ws(strength) if callable(ws) else None
    return out if out is not None else wm


def _versions() -> dict[str, str]:
    v = {"python": platform.python_version()}
    for dist in ("foleyseal", "numpy", "scipy", "av", "soundfile", "pedalboard", "pesq", "visqol-python", "numba"):
        try:
            v[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    try:
        from provenance import __version__

        v["provenance"] = __version__
    except ImportError:
        pass
    return v


def _segments_json(segs: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for s in segs:
        out.append({"start_s": round(float(s.start_s), 4), "end_s": round(float(s.end_s), 4),
                    "payload": getattr(s, "payload", None)})
    return out


def localization(
    expected: tuple[MarkedSpan, ...], segments: Iterable[Any], primary_hex: str, duration_s: float
) -> tuple[float | None, float | None]:
    """(worst boundary error, mislabelled seconds) of detected segments against expected primary spans.

    Worst boundary error: the largest distance from an expected span boundary to the nearest
    boundary of the detected segments that carry the primary payload (or no payload). Mislabelled
    seconds: the length of the symmetric difference of the two sets of spans (10 ms grid).
    Both None when the watermarker reports no segments at all.
    """
    seg_list = list(segments)
    if not seg_list:
        return None, None
    segs = [s for s in seg_list if getattr(s, "payload", None) in (None, primary_hex)]
    exp = merge_spans([s for s in expected if s.label == PRIMARY])
    det = merge_spans([MarkedSpan(float(s.start_s), float(s.end_s)) for s in segs], gap_s=0.05)
    grid = np.arange(0.0, max(duration_s, 1e-3), 0.01) + 0.005
    in_exp = np.zeros(grid.size, bool)
    in_det = np.zeros(grid.size, bool)
    for s in exp:
        in_exp |= (grid >= s.start_s) & (grid < s.end_s)
    for s in det:
        in_det |= (grid >= s.start_s) & (grid < s.end_s)
    mislabelled = float(np.sum(in_exp != in_det) * 0.01)
    if not exp or not det:
        return None, round(mislabelled, 3)
    det_b = np.array([b for s in det for b in (s.start_s, s.end_s)])
    worst = max(float(np.min(np.abs(det_b - b))) for s in exp for b in (s.start_s, s.end_s))
    return round(worst, 4), round(mislabelled, 3)


def _result_fields(res: WatermarkerResult, payload: np.ndarray) -> dict[str, Any]:
    bits = res.payload_bits
    if bits is not None and len(bits) == len(payload):
        errors = int(np.sum(np.asarray(bits, np.uint8) != payload))
        acc = 1.0 - errors / len(payload)
    else:
        errors, acc = None, 0.5  # nothing read: chance level, as a coin toss per bit would score
    return {
        "found": bool(res.found), "score": float(res.score),
        "p_value": None if res.p_value is None else float(res.p_value),
        "decoded_hex": bits_to_hex(bits) if bits is not None else None,
        "bit_errors": errors, "bit_accuracy": acc,
        "segments": _segments_json(res.segments),
        "details": {k: v for k, v in (res.details or {}).items() if isinstance(v, (int, float, str, bool))},
    }


def _base_row(task: Task, tid: str, kind: str, versions: dict[str, str]) -> dict[str, Any]:
    c = task.clip
    return {
        "schema": SCHEMA, "trial_id": tid, "kind": kind, "watermarker": task.wm.name,
        "watermarker_params": _describe_wm(task.wm), "clip": c.name, "clip_kind": c.kind,
        "clip_duration_s": round(c.duration_s, 4), "clip_rate_hz": c.sample_rate, "clip_channels": c.channels,
        "strength": task.cfg.strength, "run_seed": task.cfg.seed, "versions": versions, "error": None,
    }


def _error_row(task: Task, tid: str, message: str, versions: dict[str, str]) -> dict[str, Any]:
    kind = task.kind_of(tid)
    row = _base_row(task, tid, kind, versions)
    if kind == "attack":
        name = tid.split("|")[3]
        attack = next((a for a in task.cfg.attacks if a.name == name), None)
        row.update({"attack": name, "attack_kind": attack.kind if attack else "?", "exact": False,
                    "found": False, "bit_accuracy": 0.5, "score": None})
    elif kind == "null":
        row.update({"found": False, "score": None})
    row["error"] = message
    return row


_LAST_CPU_S: list[float] = [0.0]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``fn``; return its result and wall seconds (CPU seconds of this process go to ``_cpu()``)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    _LAST_CPU_S[0] = time.process_time() - c0
    return out, time.perf_counter() - t0


def _cpu() -> float:
    """CPU seconds of the last :func:`_timed` call (load-independent, unlike wall time)."""
    return round(_LAST_CPU_S[0], 5)


def run_task(task: Task) -> list[dict[str, Any]]:
    """Run one task in this process; every failure becomes a row with ``error`` set."""
    versions = _versions()
    ids = task.ids()
    todo = [i for i in ids if i not in task.skip]
    if not todo:
        return []
    clip, wm, cfg = task.clip, _strength_wm(task.wm, task.cfg.strength), task.cfg
    payload = payload_for(cfg.seed, clip.name, wm.payload_bits)
    payload_hex = bits_to_hex(payload)
    try:
        original = _load(str(clip.path))
        marked, embed_s = _timed(lambda: wm.embed(original, payload))
        embed_cpu_s = _cpu()
    except Exception as exc:  # a failing embed is a result (e.g. clip too short for the scheme)
        return [_error_row(task, tid, f"embed failed: {type(exc).__name__}: {exc}", versions) for tid in todo]
    rows = _attack_rows(task, wm, original, marked, payload, payload_hex, embed_s, versions)
    rows += _null_rows(task, wm, original, marked, versions)
    rows += _quality_rows(task, original, payload, versions, marked, embed_s, embed_cpu_s)
    return rows


def _other_context(task: Task, wm: Watermarker, attack: Attack, payload: np.ndarray) -> AttackContext:
    clips = task.clips
    block_s = float(getattr(wm, "block_s", 1.0) or 1.0)
    if len(clips) < 2:
        return AttackContext(block_s=block_s)
    other = clips[(task.clip_index + 1) % len(clips)]
    other_audio = _load(str(other.path))
    other_marked = None
    if attack.uses_other_marked:
        p2 = payload_for(task.cfg.seed, other.name + "#other", wm.payload_bits)
        if np.array_equal(p2, payload):
            p2[0] ^= 1
        try:
            other_marked = wm.embed(other_audio, p2)
        except Exception:
            other_marked = None
    return AttackContext(other_clip=other_audio, other_marked=other_marked, block_s=block_s)


def _attack_rows(task: Task, wm: Watermarker, original: Audio, marked: Audio, payload: np.ndarray,
                 payload_hex: str, embed_s: float, versions: dict[str, str]) -> list[dict[str, Any]]:
    cfg, clip = task.cfg, task.clip
    rows = []
    for name, tid in zip(task.attack_names, task.attack_ids()):
        if tid in task.skip:
            continue
        attack = next((a for a in cfg.attacks if a.name == name), None) or get_attack(name)
        seed = [cfg.seed, _crc(clip.name), _crc(name)]
        row = _base_row(task, tid, "attack", versions)
        row.update({"attack": name, "attack_kind": attack.kind, "attack_params": attack.params(),
                    "seed": seed, "payload_hex": payload_hex, "embed_s": round(embed_s, 5)})
        try:
            ctx = _other_context(task, wm, attack, payload)
            out, attack_s = _timed(lambda: attack.run(marked, np.random.default_rng(seed), ctx))
            attack_cpu_s = _cpu()
            res, detect_s = _timed(lambda: wm.detect(out.audio))
            detect_cpu_s = _cpu()
            row.update(_result_fields(res, payload))
            spliced = any(s.label == OTHER for s in out.marked_spans)
            seg_hit = spliced and any(s.get("payload") == payload_hex for s in row["segments"])
            row["exact"] = bool(res.found and (row["decoded_hex"] == payload_hex or seg_hit))
            loc, mis = localization(out.marked_spans, res.segments, payload_hex, out.audio.duration_s)
            row.update({
                "expected_spans": [{"start_s": round(s.start_s, 4), "end_s": round(s.end_s, 4), "label": s.label}
                                   for s in out.marked_spans],
                "attack_details": {k: v for k, v in out.details.items() if isinstance(v, (int, float, str, bool))},
                "loc_error_s": loc, "loc_mislabelled_s": mis,
                "attacked_duration_s": round(out.audio.duration_s, 4),
                "attack_s": round(attack_s, 5), "detect_s": round(detect_s, 5),
                "attack_cpu_s": attack_cpu_s, "detect_cpu_s": detect_cpu_s,
            })
            reader = getattr(wm, "informed_reading", None)
            if cfg.information and callable(reader) and not attack.warps_time:
                row.update(_informed(reader, out.audio, payload))
        except Exception as exc:
            row.update({"error": f"{type(exc).__name__}: {exc}", "exact": False, "found": False,
                        "bit_accuracy": 0.5, "score": None})
        rows.append(row)
    return rows


def _informed(reader: Callable[[Audio, np.ndarray], dict[str, Any] | None], audio: Audio,
              payload: np.ndarray) -> dict[str, Any]:
    """The ``information`` field of an attack row; a reading that fails leaves the trial's own
    result standing and says why under ``information_error``."""
    try:
        return {"information": reader(audio, payload)}
    except Exception as exc:  # a diagnostic must not turn a measured trial into an error
        return {"information": None, "information_error": f"{type(exc).__name__}: {exc}"}


def _window(audio: Audio, rng: np.random.Generator, window_s: float) -> tuple[Audio, float, float]:
    n = int(round(window_s * audio.sample_rate))
    if n >= audio.frames:
        return audio, 0.0, audio.duration_s
    start = int(rng.integers(0, audio.frames - n + 1))
    return audio.with_samples(audio.samples[:, start : start + n]), start / audio.sample_rate, (start + n) / audio.sample_rate


def _null_rows(task: Task, wm: Watermarker, original: Audio, marked: Audio, versions: dict[str, str]) -> list[dict[str, Any]]:
    """Null trials: j even (or no wrong-key support) = unmarked audio; j odd = marked audio, wrong key.

    Trial 0 is the whole unmarked clip under the benchmark key, trial 1 (keyed schemes) the whole
    marked clip under a wrong key; the others are random windows of ``null_window_s`` (at least the
    scheme's minimum length), each read under its own wrong key where the scheme is keyed.
    """
    cfg, clip = task.cfg, task.clip
    keyed = callable(getattr(wm, "with_wrong_key", None)) and wm.with_wrong_key(0) is not None
    window_s = max(cfg.null_window_s, float(getattr(wm, "min_duration_s", 0.0) or 0.0))
    payload_hex = bits_to_hex(payload_for(cfg.seed, clip.name, wm.payload_bits))
    rows = []
    for j, tid in enumerate(task.null_ids()):
        if tid in task.skip:
            continue
        seed = [cfg.seed, _crc(clip.name), _crc("null"), j]
        rng = np.random.default_rng(seed)
        wrong = keyed and j % 2 == 1
        src = marked if wrong else original
        whole = j == 0 or (keyed and j == 1)
        audio, a, b = (src, 0.0, src.duration_s) if whole else _window(src, rng, window_s)
        # Keyed schemes read every null but the first under a fresh key, so that windows of the
        # same clip (which overlap when the clip is short) still give nearly independent trials.
        key_index = _crc(clip.name) * 1000 + j if keyed and j > 0 else None
        detector = wm.with_wrong_key(key_index) if key_index is not None else wm
        row = _base_row(task, tid, "null", versions)
        row.update({"null_type": "wrong_key" if wrong else "unmarked", "window_s": [round(a, 4), round(b, 4)],
                    "null_key": "bench" if key_index is None else f"wrong-{key_index}",
                    "seed": seed, "payload_hex": payload_hex})
        try:
            res, detect_s = _timed(lambda: detector.detect(audio))
            row.update(_result_fields(res, payload_for(cfg.seed, clip.name, wm.payload_bits)))
            row["detect_s"] = round(detect_s, 5)
            row["detect_cpu_s"] = _cpu()
            row["false_positive"] = bool(res.found)
        except Exception as exc:
            row.update({"error": f"{type(exc).__name__}: {exc}", "score": None, "found": False})
        rows.append(row)
    return rows


def _quality_rows(task: Task, original: Audio, payload: np.ndarray, versions: dict[str, str],
                  marked_at_run: Audio, embed_s_at_run: float, embed_cpu_s_at_run: float) -> list[dict[str, Any]]:
    cfg, clip = task.cfg, task.clip
    rows = []
    for st, tid in zip(_quality_strengths(cfg, task.wm), task.quality_ids()):
        if tid in task.skip:
            continue
        row = _base_row(task, tid, "quality", versions)
        row.update({"quality_strength": st, "payload_hex": bits_to_hex(payload)})
        try:
            if abs(st - cfg.strength) < 1e-9:
                marked, embed_s, embed_cpu_s = marked_at_run, embed_s_at_run, embed_cpu_s_at_run
            else:
                w = _strength_wm(task.wm, st)
                marked, embed_s = _timed(lambda: w.embed(original, payload))
                embed_cpu_s = _cpu()
            q, quality_s = _timed(lambda: measure_quality(original, marked, kind=clip.kind, measures=cfg.quality_measures))
            row.update(q.to_dict())
            row["quality_s"], row["quality_cpu_s"] = round(quality_s, 4), _cpu()
            row["embed_s"] = round(embed_s, 5)
            row["embed_cpu_s"] = round(embed_cpu_s, 5)
            row["embed_x_realtime"] = round(original.duration_s / embed_s, 2) if embed_s > 0 else None
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    return rows


# --- the run ---------------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a results JSONL file; a torn last line (interrupted write) is ignored."""
    rows = []
    if not path.exists():
        return rows
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
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


def _end_with_newline(path: Path) -> None:
    """Terminate a line torn by an interrupted write, so appended rows start on a fresh line."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


@contextlib.contextmanager
def single_threaded_children() -> Iterator[None]:
    """Worker processes started inside this block keep each numeric library single-threaded
    (unless the user set the variables), so N processes on N cores do not oversubscribe.

    The variables must be in the environment the children start with: a spawned worker
    imports NumPy (and OpenBLAS sizes its thread pool) before any initializer runs.
    """
    saved = {var: os.environ.get(var) for var in _THREAD_VARS}
    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _append_rows(fh: Any, rows: list[dict[str, Any]]) -> None:
    for r in rows:
        fh.write(json.dumps(r, default=_json_default) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


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


def run_benchmark(cfg: BenchConfig, *, show_progress: bool = True, write_report: bool = True) -> BenchResult:
    """Run (or resume) the benchmark described by ``cfg`` and write its outputs into ``cfg.out``."""
    t0 = time.perf_counter()
    if not cfg.attacks:
        raise InputError("no attacks selected")
    if not cfg.watermarkers:
        raise InputError("no watermarkers selected")
    cfg = check_requirements(cfg)
    if not any(a.name == "none" for a in cfg.attacks):
        cfg = replace(cfg, attacks=[get_attack("none"), *cfg.attacks])
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    clips = select_clips(discover_clips(cfg.corpus), cfg)
    if not clips:
        raise InputError(f"no corpus clip is at least {cfg.min_clip_s} s long", path=cfg.corpus)
    tasks = plan_tasks(cfg, clips)
    jsonl = out / RESULTS_JSONL
    done = {r["trial_id"] for r in read_rows(jsonl) if not r.get("error")}
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
            import multiprocessing as mp

            with single_threaded_children(), ProcessPoolExecutor(max_workers=cfg.workers, mp_context=mp.get_context("spawn")) as ex:
                futures = {ex.submit(run_task, t): t for t in pending}
                for fut in as_completed(futures):
                    t = futures[fut]
                    try:
                        rows = fut.result()
                    except Exception as exc:  # a crashed worker: record, keep going, retried on resume
                        msg = f"worker failed: {type(exc).__name__}: {exc}"
                        rows = [_error_row(t, tid, msg, {}) for tid in t.ids() if tid not in t.skip]
                    _append_rows(fh, rows)
                    progress.advance(bar, len(t.ids()) - len(t.skip))

    # Keep only this configuration's trials; a later successful row replaces an earlier one.
    wanted = set(all_ids)
    latest: dict[str, dict[str, Any]] = {}
    for r in read_rows(jsonl):
        tid = r.get("trial_id")
        if tid in wanted and (tid not in latest or latest[tid].get("error") or not r.get("error")):
            latest[tid] = r
    rows = [latest[i] for i in all_ids if i in latest]
    meta = {
        "schema": SCHEMA, "config": cfg.describe(), "versions": _versions(),
        "clips": [{"name": c.name, "kind": c.kind, "duration_s": c.duration_s, "sample_rate": c.sample_rate,
                   "channels": c.channels} for c in clips],
        "trials": len(rows), "ran_trials": n_todo, "resumed_trials": skipped,
        "wall_s": round(time.perf_counter() - t0, 2), "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "argv": sys.argv,
    }
    files = []
    with atomic_path(out / RESULTS_JSON) as tmp:
        tmp.write_text(json.dumps({"meta": meta, "rows": rows}, default=_json_default, indent=1), encoding="utf-8")
    files.append(out / RESULTS_JSON)
    if write_report:
        from benchmarks.report import write_report as _write_report

        files += _write_report(rows, meta, out)
    return BenchResult(out, rows, n_todo, skipped, files, time.perf_counter() - t0)
