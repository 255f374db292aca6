"""The benchmark's trials: which a run holds (:class:`Task`, :func:`plan_tasks`), and how each is
run and recorded as a row: attacked files (exact recovery, bit accuracy, localization, times),
null trials (unmarked windows, and marked audio under wrong keys) and quality rows (the marked
audio before any attack, at several strengths).

Randomness: every trial draws from ``numpy.random.default_rng([seed, crc32(clip), crc32(attack)])``
so the same attack instance (crop position, noise) hits every watermarker identically.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.attacks import OTHER, PRIMARY, Attack, AttackContext, MarkedSpan, get_attack
from benchmarks.attacks.base import merge_spans
from benchmarks.corpus import Clip, load_clip
from benchmarks.quality import measure_quality
from benchmarks.source import source_info
from benchmarks.watermarkers import Watermarker, WatermarkerResult, bits_to_hex
from provenance.core.audio import Audio

if TYPE_CHECKING:
    from benchmarks.robustness import BenchConfig

SCHEMA = "foleyseal-robustness/1"
"""Schema of a result row (and of ``results.json``)."""


def describe_watermarker(w: Watermarker) -> dict[str, Any]:
    """How a watermarker describes itself in the results (its name, payload size and parameters)."""
    d = getattr(w, "describe", None)
    return d() if callable(d) else {"name": w.name, "payload_bits": w.payload_bits}


def crc(s: str) -> int:
    return zlib.crc32(s.encode())


def payload_for(seed: int, clip_name: str, n_bits: int) -> np.ndarray:
    """The payload embedded in a clip: random bits from ``[seed, crc32(clip)]``."""
    return np.random.default_rng([seed, crc(clip_name), crc("payload")]).integers(0, 2, n_bits).astype(np.uint8)


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
        return [trial_id(w, c, "quality", f"{st:g}", s, seed) for st in quality_strengths(self.cfg, self.wm)]

    def ids(self) -> list[str]:
        return self.attack_ids() + self.null_ids() + self.quality_ids()

    def parts(self, tid: str) -> tuple[str, str]:
        """``(kind, what)`` of one of this task's trial ids: the attack's name, the null trial's
        index or the quality trial's strength. Looked up, not parsed: names may hold ``|``."""
        for kind, names, ids in (
            ("attack", self.attack_names, self.attack_ids()),
            ("null", [str(j) for j in range(self.cfg.null_per_clip)] if self.nulls else [], self.null_ids()),
            ("quality", [f"{st:g}" for st in quality_strengths(self.cfg, self.wm)] if self.quality else [],
             self.quality_ids()),
        ):
            for what, i in zip(names, ids):
                if i == tid:
                    return kind, what
        raise KeyError(tid)

    def kind_of(self, tid: str) -> str:
        return self.parts(tid)[0]

    def inputs_of(self, tid: str) -> str:
        """A digest of what the trial's result depends on besides what its id says: the clip's
        bytes, the watermarker's parameters, the digest of the code that runs and scores a trial
        (:mod:`benchmarks.source`), and by kind the attack's parameters (and whether the informed
        reading is taken), the null trials' window, or the quality measures and missing packages.
        A resumed run re-measures a trial whose inputs changed under the same id."""
        kind, what = self.parts(tid)
        spec: dict[str, Any] = {"clip": self.clip.digest, "watermarker": describe_watermarker(self.wm),
                                "source": source_info()["digest"]}
        if kind == "attack":
            attack = next((a for a in self.cfg.attacks if a.name == what), None)
            spec.update(attack=attack.params() if attack is not None else what, information=self.cfg.information)
        elif kind == "null":  # null j is the same trial whatever the count (more nulls extend a run)
            spec.update(window_s=self.cfg.null_window_s)
        else:
            spec.update(measures=list(self.cfg.quality_measures), missing=sorted(r.dist for r in self.cfg.missing))
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def quality_strengths(cfg: BenchConfig, wm: Watermarker) -> list[float]:
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


def package_versions() -> dict[str, str]:
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
        "schema": SCHEMA, "trial_id": tid, "inputs": task.inputs_of(tid), "kind": kind, "watermarker": task.wm.name,
        "watermarker_params": describe_watermarker(task.wm), "clip": c.name, "clip_kind": c.kind,
        "clip_duration_s": round(c.duration_s, 4), "clip_rate_hz": c.sample_rate, "clip_channels": c.channels,
        "strength": task.cfg.strength, "run_seed": task.cfg.seed, "versions": versions, "source": source_info(),
        "error": None,
    }


def error_row(task: Task, tid: str, message: str, versions: dict[str, str]) -> dict[str, Any]:
    kind, name = task.parts(tid)
    row = _base_row(task, tid, kind, versions)
    if kind == "attack":
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
    versions = package_versions()
    ids = task.ids()
    todo = [i for i in ids if i not in task.skip]
    if not todo:
        return []
    clip, wm, cfg = task.clip, _strength_wm(task.wm, task.cfg.strength), task.cfg
    payload = payload_for(cfg.seed, clip.name, wm.payload_bits)
    payload_hex = bits_to_hex(payload)
    try:
        original = load_clip(str(clip.path))
        marked, embed_s = _timed(lambda: wm.embed(original, payload))
        embed_cpu_s = _cpu()
    except Exception as exc:  # a failing embed is a result (e.g. clip too short for the scheme)
        return [error_row(task, tid, f"embed failed: {type(exc).__name__}: {exc}", versions) for tid in todo]
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
    other_audio = load_clip(str(other.path))
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
        seed = [cfg.seed, crc(clip.name), crc(name)]
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
        seed = [cfg.seed, crc(clip.name), crc("null"), j]
        rng = np.random.default_rng(seed)
        wrong = keyed and j % 2 == 1
        src = marked if wrong else original
        whole = j == 0 or (keyed and j == 1)
        audio, a, b = (src, 0.0, src.duration_s) if whole else _window(src, rng, window_s)
        # Keyed schemes read every null but the first under a fresh key, so that windows of the
        # same clip (which overlap when the clip is short) still give nearly independent trials.
        key_index = crc(clip.name) * 1000 + j if keyed and j > 0 else None
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
    for st, tid in zip(quality_strengths(cfg, task.wm), task.quality_ids()):
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
