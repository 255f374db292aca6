"""Tables and plots from robustness trial rows: ``summary.md``, ``bit_accuracy.png``, ``roc.png``,
``quality_vs_strength.png``.

Definitions used in every table:

- exact recovery: the detector says *found* and its payload equals the embedded one (for a splice of
  two marked files, the embedded payload may come from any reported segment);
- bit accuracy: fraction of payload bits right; a detector that reports no payload scores 0.5
  (chance) on that trial;
- TPR at FPR f, empirical: the detection threshold is set on the null trials' scores so that at
  most a fraction f of them pass, then TPR = fraction of attacked marked trials scoring above it;
  this needs at least 1/f null trials and is reported as n/a otherwise;
- TPR at FPR f, calibrated: fraction of attacked marked trials whose own p-value is <= f, for
  watermarkers that report a p-value (FoleySeal); the null rows show how many null p-values fell
  below f, as a check of that calibration.

Run ``python -m benchmarks.report OUT/results.json`` to rebuild them from a saved run.
"""

from __future__ import annotations

import json
import math
import sys
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.requirements import MATPLOTLIB, importable
from provenance.core.atomic import atomic_path

FPRS = (1e-3, 1e-6)


def _ordered(values: list[str]) -> list[str]:
    return list(OrderedDict.fromkeys(values))


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(xs)) if xs else None


def _median(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.median(xs)) if xs else None


def _score(r: dict[str, Any]) -> float:
    s = r.get("score")
    return float(s) if s is not None else -math.inf


def empirical_tpr(pos: list[float], null: list[float], fpr: float) -> tuple[float | None, str]:
    """TPR at ``fpr`` with the threshold set on the null scores; None (and why) if too few nulls."""
    n = len(null)
    if n == 0 or not pos:
        return None, "no null trials" if n == 0 else "no positive trials"
    if n < 1.0 / fpr:
        return None, f"{n} null trials < 1/FPR = {1 / fpr:.0f}"
    k = int(math.floor(fpr * n))
    thr = sorted(null, reverse=True)[k] if k < n else -math.inf
    return float(np.mean(np.asarray(pos) > thr)), f"threshold {thr:.3g} from {n} nulls"


def calibrated_tpr(pvals: list[float | None], fpr: float) -> float | None:
    ps = [p for p in pvals if p is not None]
    if not ps:
        return None
    return float(np.mean(np.asarray(ps) <= fpr))


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate trial rows into the numbers the tables and plots show."""
    all_attack_rows = [r for r in rows if r.get("kind") == "attack" and "attack" in r]
    # A trial whose clip the attack left as it was (a crop longer than the clip) measured no
    # attack: counted, it read as a recovery under that attack. It is left out, and counted.
    attack_rows = [r for r in all_attack_rows if not _unchanged(r)]
    unchanged: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in all_attack_rows:
        if _unchanged(r):
            unchanged[r["attack"]][r["watermarker"]] += 1
    null_rows = [r for r in rows if r.get("kind") == "null"]
    quality_rows = [r for r in rows if r.get("kind") == "quality"]
    wms = _ordered([r["watermarker"] for r in rows if "watermarker" in r])
    attacks = _ordered([r["attack"] for r in all_attack_rows])
    kinds = {r["attack"]: r.get("attack_kind", "?") for r in all_attack_rows}
    nulls: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in null_rows:
        if not r.get("error"):
            nulls[r["watermarker"]].append(r)

    cells = _cells(attack_rows, attacks, wms, nulls)
    null_summary: dict[str, dict[str, Any]] = {}
    pooled: dict[str, dict[str, Any]] = {}
    for w in wms:
        scores = [_score(r) for r in nulls[w]]
        null_summary[w] = _null_summary(nulls[w], scores)
        pooled[w] = _pooled_tpr([r for r in attack_rows if r["watermarker"] == w and r.get("attack") != "none"],
                                scores)
    quality = _quality(quality_rows, wms)
    timing = {w: _timing(rows, attack_rows, w) for w in wms}
    by_kind = _exact_by_kind(cells, attacks, kinds, wms)
    unmeasured = _unmeasured(attack_rows + null_rows, wms)

    errors = [r for r in rows if r.get("error")]
    return {
        "warnings": _unread_outputs(attack_rows, wms) + [
            f"watermarker {w!r}: none of its {n} attack and null trials was measured (every one failed), "
            "so its figures read n/a; the errors are listed below" for w, n in unmeasured.items()],
        "unmeasured": list(unmeasured), "by_kind_errors": _errors_by_kind(cells, attacks, kinds, wms),
        "unchanged": {a: dict(by_wm) for a, by_wm in unchanged.items()},
        "watermarkers": wms, "attacks": attacks, "attack_kinds": kinds, "cells": cells,
        "nulls": null_summary, "pooled": pooled, "quality": quality,
        "timing": timing, "by_kind": by_kind,
        "clips": _ordered([r["clip"] for r in rows if "clip" in r]),
        "errors": len(errors), "error_examples": _ordered([f"{r.get('trial_id')}: {r['error']}" for r in errors])[:10],
    }


def _unread_outputs(attack_rows: list[dict[str, Any]], wms: list[str]) -> list[str]:
    """A warning per watermarker whose payload regex matched nothing its detect command printed
    for any unattacked marked file: a broken regex (or tool) reads exactly like a watermark
    that is never found."""
    warnings = []
    for w in wms:
        unattacked = [r for r in attack_rows if r["watermarker"] == w and r.get("attack") == "none"
                      and not r.get("error")]
        if unattacked and all((r.get("details") or {}).get("payload_regex_matched") is False for r in unattacked):
            tail = (unattacked[0].get("details") or {}).get("output_tail", "")
            warnings.append(
                f"watermarker {w!r}: its payload_regex matched nothing its detect command printed for any of "
                f"the {len(unattacked)} unattacked marked files, so every result reads as not found; check "
                f"the regex against the tool's output (kept in each row's details.output_tail), e.g. {tail!r}"
            )
    return warnings


def _unchanged(row: dict[str, Any]) -> bool:
    """Whether the attack of ``row`` left its clip unchanged (its details say so)."""
    return row.get("attack") != "none" and bool((row.get("attack_details") or {}).get("unchanged"))


def _unmeasured(detection_rows: list[dict[str, Any]], wms: list[str]) -> dict[str, int]:
    """The watermarkers none of whose attack and null trials was measured (all failed), with
    their trial counts: a tool that never ran is not a detector that found nothing."""
    out = {}
    for w in wms:
        rs = [r for r in detection_rows if r.get("watermarker") == w]
        if rs and all(r.get("error") for r in rs):
            out[w] = len(rs)
    return out


def _cells(attack_rows: list[dict[str, Any]], attacks: list[str], wms: list[str],
           nulls: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """One cell per (attack, watermarker) that has trials: ``cells[attack][watermarker]``."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in attack_rows:
        by[(r["attack"], r["watermarker"])].append(r)
    cells: dict[str, dict[str, dict[str, Any]]] = {a: {} for a in attacks}
    for a in attacks:
        for w in wms:
            rs = by.get((a, w), [])
            if rs:
                cells[a][w] = _cell(rs, [_score(r) for r in nulls[w]])
    return cells


def _cell(rs: list[dict[str, Any]], null_scores: list[float]) -> dict[str, Any]:
    """Recovery, detection (TPR at each FPR), localization (seconds) and detection time (seconds)
    of one (attack, watermarker) cell's trials ``rs``, against that watermarker's null scores."""
    pos = [_score(r) for r in rs]
    errors = sum(1 for r in rs if r.get("error"))
    # With no trial measured there is no figure: a failed trial's "not found, 0.5 bit accuracy"
    # read as a measured miss. Where some were measured, a failed one still counts as a miss.
    measured = errors < len(rs)
    cell: dict[str, Any] = {
        "n": len(rs),
        "errors": errors,
        "exact": _mean([1.0 if r.get("exact") else 0.0 for r in rs]) if measured else None,
        "bit_accuracy": _mean([r.get("bit_accuracy", 0.5) for r in rs]) if measured else None,
        "found": _mean([1.0 if r.get("found") else 0.0 for r in rs]) if measured else None,
        "loc_error_s": _median([r.get("loc_error_s") for r in rs]),
        "loc_mislabelled_s": _median([r.get("loc_mislabelled_s") for r in rs]),
        "detect_s": _mean([r.get("detect_s") for r in rs]),
    }
    for f in FPRS:
        cell[f"tpr_emp_{f:g}"], _ = empirical_tpr(pos, null_scores, f)
        cell[f"tpr_cal_{f:g}"] = calibrated_tpr([r.get("p_value") for r in rs], f)
    cell.update(information_cell(rs))
    return cell


def _null_summary(ns: list[dict[str, Any]], scores: list[float]) -> dict[str, Any]:
    """Counts over one watermarker's usable null trials ``ns`` (``scores``: their scores)."""
    pvals = [r.get("p_value") for r in ns if r.get("p_value") is not None]
    return {
        "n": len(ns),
        "unmarked": sum(1 for r in ns if r.get("null_type") == "unmarked"),
        "wrong_key": sum(1 for r in ns if r.get("null_type") == "wrong_key"),
        "false_positives": sum(1 for r in ns if r.get("found")),
        "max_score": max(scores) if scores else None,
        "p_values": len(pvals),
        **{f"p_below_{f:g}": (sum(1 for p in pvals if p <= f) if pvals else None) for f in FPRS},
    }


def _pooled_tpr(pos_rows: list[dict[str, Any]], null_scores: list[float]) -> dict[str, Any]:
    """TPR at each FPR (empirical, with why, and calibrated) over all attacked trials ``pos_rows``."""
    pooled: dict[str, Any] = {}
    for f in FPRS:
        v, why = empirical_tpr([_score(r) for r in pos_rows], null_scores, f)
        pooled[f"tpr_emp_{f:g}"] = v
        pooled[f"why_emp_{f:g}"] = why
        pooled[f"tpr_cal_{f:g}"] = calibrated_tpr([r.get("p_value") for r in pos_rows], f)
    return pooled


def _quality(quality_rows: list[dict[str, Any]], wms: list[str]) -> dict[str, dict[float, dict[str, Any]]]:
    """Quality medians per watermarker and embedding strength; a watermarker without a usable
    quality row is left out."""
    quality: dict[str, dict[float, dict[str, Any]]] = {}
    for w in wms:
        qs = [r for r in quality_rows if r["watermarker"] == w and not r.get("error")]
        for st in sorted({r.get("quality_strength", r.get("strength", 1.0)) for r in qs}):
            sub = [r for r in qs if r.get("quality_strength", r.get("strength")) == st]
            quality.setdefault(w, {})[st] = _quality_medians(sub)
    return quality


def _quality_medians(sub: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of SNR (dB), PESQ-WB, ViSQOL (MOS-LQO) and embedding speed (x realtime) over the
    quality rows ``sub`` of one watermarker and strength, and how many rows had each measure."""
    return {
        "n": len(sub),
        "snr_db_median": _median([r.get("snr_db") for r in sub]),
        "snr_db_median_music": _median([r.get("snr_db") for r in sub if r.get("clip_kind") == "music"]),
        "snr_db_median_speech": _median([r.get("snr_db") for r in sub if r.get("clip_kind") == "speech"]),
        "pesq_wb_median": _median([r.get("pesq_wb") for r in sub]),
        "pesq_wb_n": sum(1 for r in sub if r.get("pesq_wb") is not None),
        "visqol_median_music": _median([r.get("visqol_moslqo") for r in sub if r.get("clip_kind") == "music"]),
        "visqol_median_all": _median([r.get("visqol_moslqo") for r in sub]),
        "visqol_n": sum(1 for r in sub if r.get("visqol_moslqo") is not None),
        "embed_x_realtime_median": _median([r.get("embed_x_realtime") for r in sub]),
    }


def _timing(rows: list[dict[str, Any]], attack_rows: list[dict[str, Any]], w: str) -> dict[str, Any]:
    """Watermarker ``w``'s speed: total CPU seconds of its rows, median embed and detect seconds
    and the matching multiples of realtime (unattacked trials: clip seconds / processing seconds)."""
    ref = [r for r in attack_rows if r["watermarker"] == w and r.get("attack") == "none" and r.get("detect_s")]
    allr = [r for r in attack_rows if r["watermarker"] == w and r.get("detect_s")]
    wrows = [r for r in rows if r.get("watermarker") == w]
    cpu_total = sum(float(r.get(k) or 0.0) for r in wrows
                    for k in ("attack_cpu_s", "detect_cpu_s", "quality_cpu_s"))
    cpu_total += sum(float(r.get("embed_cpu_s") or 0.0) for r in wrows if r.get("kind") == "quality")
    return {
        "cpu_total_s": cpu_total,
        "detect_x_realtime_cpu_unattacked": _median([r["clip_duration_s"] / r["detect_cpu_s"] for r in ref
                                                     if r.get("detect_cpu_s")]),
        "embed_s_median": _median([r.get("embed_s") for r in ref]),
        "embed_x_realtime_median": _median([r["clip_duration_s"] / r["embed_s"] for r in ref if r.get("embed_s")]),
        "detect_s_median": _median([r.get("detect_s") for r in allr]),
        "detect_x_realtime_median_unattacked": _median([r["clip_duration_s"] / r["detect_s"] for r in ref]),
    }


def _exact_by_kind(cells: dict[str, dict[str, dict[str, Any]]], attacks: list[str], kinds: dict[str, str],
                   wms: list[str]) -> dict[str, dict[str, float | None]]:
    """Mean exact-recovery rate over the attacks of each kind, per watermarker; cells with no
    measured trial are left out (None where none of the kind's cells was measured)."""
    by_kind: dict[str, dict[str, float | None]] = defaultdict(dict)
    for k in _ordered(list(kinds.values())):
        for w in wms:
            vals = [cells[a][w]["exact"] for a in attacks if kinds[a] == k and w in cells[a]]
            by_kind[k][w] = _mean([v for v in vals if v is not None])
    return dict(by_kind)


def _errors_by_kind(cells: dict[str, dict[str, dict[str, Any]]], attacks: list[str], kinds: dict[str, str],
                    wms: list[str]) -> dict[str, dict[str, int]]:
    """Failed trials over the attacks of each kind, per watermarker (0 where none failed)."""
    return {k: {w: sum(cells[a][w]["errors"] for a in attacks if kinds[a] == k and w in cells[a]) for w in wms}
            for k in _ordered(list(kinds.values()))}


def _with_errors(value: str, errors: int) -> str:
    """A table cell's figure with its failed trials: ``0.50 (2 err)``, ``n/a (2 err)``."""
    return f"{value} ({errors} err)" if errors else value


def information_cell(rs: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts from the informed readings of one (attack, watermarker) cell (runs with
    ``--information``): how many trials were read, the median information per coded bit (bits),
    how many failed, and how many of those failed with less information than the code's rate (no
    decoder weighing those soft values linearly could have recovered the payload), also when each
    class of groups is weighted by its ideal channel state. Empty without readings."""
    read = [r for r in rs if isinstance(r.get("information"), dict)]
    if not read:
        return {}
    failed = [r["information"] for r in read if not r.get("exact")]
    return {
        "info_n": len(read),
        "info_median_bits": _median([r["information"]["information_bits"] for r in read]),
        "info_failed": len(failed),
        "info_failed_below_rate": sum(1 for i in failed if i["margin_bits"] < 0),
        "info_failed_below_rate_csi": sum(1 for i in failed if i.get("information_csi_bits", 0.0) < i["rate"]),
    }


def _f(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _information_lines(s: dict[str, Any]) -> list[str]:
    """The informed-reading table, where the run measured it (``--information``)."""
    wms, attacks, cells = s["watermarkers"], s["attacks"], s["cells"]
    shown = [w for w in wms if any(cells[a].get(w, {}).get("info_n") for a in attacks)]
    if not shown:
        return []
    lines = ["", "## Information per coded bit (informed readings)", "",
             "Each attacked file read against its embedded payload's codeword on its own timeline: median "
             "information per coded bit, bits; failed trials; how many of them carried less information "
             "than the code's rate (payload and CRC bits per coded bit), which no decoder weighing those "
             "soft values linearly can overcome; and how many stay below it with each class of groups "
             "weighted by its ideal channel state. Not measured after speed, tempo or pitch edits.", "",
             "| attack | " + " | ".join(f"{w} median bits | {w} failed | below rate | below rate, ideal weights"
                                      for w in shown) + " |",
             "|---|" + "---|---|---|---|" * len(shown)]
    for a in attacks:
        if not any(cells[a].get(w, {}).get("info_n") for w in shown):
            continue
        row = [a]
        for w in shown:
            c = cells[a].get(w, {})
            if not c.get("info_n"):
                row += ["—"] * 4
            else:
                row += [_f(c["info_median_bits"]), str(c["info_failed"]), str(c["info_failed_below_rate"]),
                        str(c["info_failed_below_rate_csi"])]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def markdown(summary: dict[str, Any], meta: dict[str, Any] | None = None) -> str:
    """The summary as markdown: recovery table (attack x watermarker) first, then details."""
    s = summary
    wms, attacks, cells = s["watermarkers"], s["attacks"], s["cells"]
    lines = ["# Robustness benchmark", ""]
    if s.get("warnings"):
        lines += ["## Warnings", ""] + [f"- **{w}**" for w in s["warnings"]] + [""]
    lines += _run_lines(s, wms, attacks, meta or {})
    lines += _recovery_lines(s, wms, attacks, cells)
    lines += _detection_lines(s, wms, attacks, cells)
    lines += _information_lines(s)
    lines += _localization_lines(wms, attacks, cells)
    lines += _quality_lines(s, wms)
    lines += _speed_lines(s, wms)
    if s["errors"]:
        # a tool's error may span lines (a traceback): a fenced block keeps the markdown whole
        lines += ["", f"## Errors ({s['errors']} trials, the first {len(s['error_examples'])})", "", "```"]
        lines += [e for e in s["error_examples"]] + ["```"]
    lines.append("")
    return "\n".join(lines)


def _run_lines(s: dict[str, Any], wms: list[str], attacks: list[str], meta: dict[str, Any]) -> list[str]:
    """What was run (clips, attacks, watermarkers, settings, trials, wall time in seconds, versions,
    missing packages), from the run's ``meta``; nothing without one."""
    cfg = meta.get("config", {})
    if not meta:
        return []
    v = meta.get("versions", {})
    lines = [
        f"- clips: {len(s['clips'])} ({cfg.get('corpus', '?')}); attacks: {len(attacks)}; "
        f"watermarkers: {', '.join(wms)}; seed {cfg.get('seed')}, strength {cfg.get('strength')}"
        + (" (quick mode)" if cfg.get("quick") else ""),
        f"- trials: {meta.get('trials')} ({meta.get('ran_trials')} run now, {meta.get('resumed_trials')} "
        f"resumed); wall time {meta.get('wall_s')} s on {meta.get('cpu_count')} CPUs, {cfg.get('workers')} workers"
        + _invocations_text(meta.get("invocations") or []),
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
    ]
    if meta.get("source"):
        lines.append("- source: " + _source_text(meta["source"]))
    if meta.get("unreadable_files"):
        lines.append("- **corpus files left out** (they cannot be read as audio): " + "; ".join(
            f"{u['file']} ({u['reason']})" for u in meta["unreadable_files"]))
    if meta.get("row_versions"):
        lines.append("- rows measured with different versions: " + "; ".join(
            f"{k} {' / '.join(vals)}" for k, vals in meta["row_versions"].items()))
    if cfg.get("missing_packages"):
        lines.append("- **packages missing** (run with --allow-missing; what they make is not measured, "
                     "or measured slowly): "
                     + "; ".join(f"{m['dist']} ({m['needed_for']})" for m in cfg["missing_packages"]))
    lines.append("")
    return lines


def _source_text(source: dict[str, Any]) -> str:
    """``digest 0123abcd... (commit 1a2b3c4, with uncommitted changes)``: the code that measured
    the rows (see :mod:`benchmarks.source`)."""
    text = f"digest {source.get('digest')}"
    if source.get("commit"):
        text += f" (commit {str(source['commit'])[:12]}" + (", with uncommitted changes" if source.get("dirty") else "") + ")"
    return text


def _invocations_text(invocations: list[dict[str, Any]]) -> str:
    """`` in 2 invocations (this one 0.1 s)`` for a run resumed or run again, else ''."""
    if len(invocations) < 2:
        return ""
    return f" in {len(invocations)} invocations (this one {invocations[-1].get('wall_s')} s)"


def _recovery_lines(s: dict[str, Any], wms: list[str], attacks: list[str],
                    cells: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Exact recovery / bit accuracy per attack and watermarker, then the mean per attack kind."""
    lines = [
        "## Exact payload recovery / bit accuracy (attack x watermarker)",
        "",
        "Each cell: fraction of clips whose payload was recovered exactly / mean bit accuracy "
        "(0.5 = chance; a detector that reports nothing scores 0.5).",
        "",
        "| attack | kind | " + " | ".join(wms) + " |",
        "|---|---|" + "---|" * len(wms),
    ]
    same = s.get("unchanged") or {}
    for a in attacks:
        row = [a, s["attack_kinds"].get(a, "")]
        for w in wms:
            c = cells[a].get(w)
            if c is None:
                text = "n/a" if (same.get(a) or {}).get(w) else "—"
            elif c["exact"] is None:  # no trial measured: no figure, only the failures
                text = _with_errors("n/a", c["errors"])
            else:
                text = _with_errors(f"{_rate(c['exact'])} / {_f(c['bit_accuracy'], 3)}", c["errors"])
            n_same = (same.get(a) or {}).get(w, 0)
            row.append(f"{text} ({n_same} unchanged)" if n_same else text)
        lines.append("| " + " | ".join(row) + " |")
    if same:
        lines += ["", "(N unchanged): trials whose clip the attack left as it was (a crop no shorter than "
                  "the clip), left out of that attack's figures; the rows say so in attack_details."]
    lines += ["", "Mean exact recovery by attack kind (over the attacks with a measured trial; "
              "failed trials in parentheses):", "", "| kind | " + " | ".join(wms) + " |",
              "|---|" + "---|" * len(wms)]
    errs = s.get("by_kind_errors") or {}
    for k, vals in s["by_kind"].items():
        lines.append(f"| {k} | " + " | ".join(_with_errors(_rate(vals.get(w)), (errs.get(k) or {}).get(w, 0))
                                              for w in wms) + " |")
    return lines


def _detection_lines(s: dict[str, Any], wms: list[str], attacks: list[str],
                     cells: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Null trials and pooled TPR at fixed FPR per watermarker, then TPR per attack."""
    lines = ["", "## Detection: TPR at fixed FPR", ""]
    for w in wms:
        n = s["nulls"][w]
        if not n["n"]:  # "no p-values" here read as if the watermarker gave none
            cal = "; without null trials no empirical threshold is measured (the calibrated TPR uses its own p-values)"
        elif n["p_values"]:
            cal = f"; null p-values <= 1e-3: {n['p_below_0.001']}, <= 1e-6: {n['p_below_1e-06']}"
        else:
            cal = "; no p-values (empirical thresholds only)"
        lines.append(
            f"- **{w}**: {n['n']} null trials ({n['unmarked']} unmarked, {n['wrong_key']} wrong key), "
            f"{n['false_positives']} detected at the default threshold{cal}."
        )
        p = s["pooled"][w]
        lines.append(
            f"  All attacks pooled: TPR@1e-3 empirical {_rate(p['tpr_emp_0.001'])} ({p['why_emp_0.001']}), "
            f"calibrated {_rate(p['tpr_cal_0.001'])}; TPR@1e-6 empirical {_rate(p['tpr_emp_1e-06'])} "
            f"({p['why_emp_1e-06']}), calibrated {_rate(p['tpr_cal_1e-06'])}."
        )
    lines += ["", "| attack | " + " | ".join(f"{w} TPR@1e-3 emp / cal | {w} TPR@1e-6 cal" for w in wms) + " |",
              "|---|" + "---|---|" * len(wms)]
    for a in attacks:
        row = [a]
        for w in wms:
            c = cells[a].get(w)
            if c is None:
                row += ["—", "—"]
            else:
                row += [f"{_rate(c['tpr_emp_0.001'])} / {_rate(c['tpr_cal_0.001'])}", _rate(c["tpr_cal_1e-06"])]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _localization_lines(wms: list[str], attacks: list[str], cells: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Median boundary error / mislabelled seconds per attack and watermarker."""
    lines = ["", "## Localization (median over clips, seconds)", "",
             "Worst boundary error of the reported marked segments / mislabelled seconds; n/a where the "
             "watermarker reports no segments.", "",
             "| attack | " + " | ".join(wms) + " |", "|---|" + "---|" * len(wms)]
    for a in attacks:
        row = [a]
        for w in wms:
            c = cells[a].get(w)
            row.append("—" if c is None else f"{_f(c['loc_error_s'])} / {_f(c['loc_mislabelled_s'])}")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _quality_lines(s: dict[str, Any], wms: list[str]) -> list[str]:
    """Quality medians of the marked audio (SNR in dB, PESQ-WB, ViSQOL) per watermarker and strength."""
    lines = ["", "## Quality of the marked audio (before attack, medians)", "",
             "SNR in dB; PESQ-WB (MOS-LQO 1-4.64) on speech clips at 16 kHz; ViSQOL v3 audio mode "
             "(MOS-LQO 1-~4.75) on music (and all non-speech clips, second figure).", "",
             "| watermarker | strength | SNR all | SNR music | SNR speech | PESQ-WB speech (n) | "
             "ViSQOL music | ViSQOL non-speech (n) | embed x realtime |",
             "|---|---|---|---|---|---|---|---|---|"]
    for w in wms:
        for st, q in s["quality"].get(w, {}).items():
            lines.append(
                f"| {w} | {st:g} | {_f(q['snr_db_median'], 1)} | {_f(q['snr_db_median_music'], 1)} | "
                f"{_f(q['snr_db_median_speech'], 1)} | {_f(q['pesq_wb_median'])} ({q['pesq_wb_n']}) | "
                f"{_f(q['visqol_median_music'])} | {_f(q['visqol_median_all'])} ({q['visqol_n']}) | "
                f"{_f(q['embed_x_realtime_median'], 0)} |"
            )
    return lines


def _speed_lines(s: dict[str, Any], wms: list[str]) -> list[str]:
    """Median embed and detect seconds, multiples of realtime and CPU seconds per watermarker."""
    lines = ["", "## Speed (medians; wall clock on this machine with parallel workers, and CPU time)", "",
             "| watermarker | embed s | embed x realtime | detect s (all trials) | detect x realtime (unattacked) "
             "| detect x realtime, CPU time | CPU s, all trials |",
             "|---|---|---|---|---|---|---|"]
    for w in wms:
        t = s["timing"][w]
        lines.append(f"| {w} | {_f(t['embed_s_median'], 3)} | {_f(t['embed_x_realtime_median'], 0)} | "
                     f"{_f(t['detect_s_median'], 3)} | {_f(t['detect_x_realtime_median_unattacked'], 0)} | "
                     f"{_f(t['detect_x_realtime_cpu_unattacked'], 0)} | {_f(t['cpu_total_s'], 0)} |")
    lines += ["", "CPU s (attack + detect + embed + quality measures, this process only; external tools' own "
              "CPU is not counted) over the worker count estimates the wall time on an otherwise idle machine."]
    return lines


def _savefig(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.tight_layout()
        fig.savefig(tmp, format="png", dpi=100)
    return path


def plot_bit_accuracy(summary: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attacks, wms, cells = summary["attacks"], summary["watermarkers"], summary["cells"]
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.12 * len(attacks) * (1 + len(wms))))
    h = 0.8 / max(1, len(wms))
    y = np.arange(len(attacks))
    for i, w in enumerate(wms):
        vals = [cells[a].get(w, {}).get("bit_accuracy") or np.nan for a in attacks]
        # an unmeasured cell (every trial failed) draws no tick, as it draws no bar
        exact = [np.nan if cells[a].get(w, {}).get("exact") is None else cells[a][w]["exact"] for a in attacks]
        bars = ax.barh(y + i * h, vals, height=h, label=w)
        ax.scatter(exact, y + i * h, marker="|", color="k", s=30, zorder=3)
        bars.set_label(w)
    ax.axvline(0.5, color="grey", ls=":", lw=1)
    ax.set_yticks(y + h * (len(wms) - 1) / 2)
    ax.set_yticklabels(attacks, fontsize=7)
    ax.set_ylim(len(attacks) - 0.2, -0.8)
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("bit accuracy (bars); exact recovery rate (black ticks); 0.5 = chance")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Bit accuracy per attack")
    out = _savefig(fig, path)
    plt.close(fig)
    return out


def roc_points(pos: list[float], null: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) for every threshold between the given scores (score >= threshold = detected)."""
    pos_a, null_a = np.sort(np.asarray(pos, float)), np.sort(np.asarray(null, float))
    thr = np.unique(np.concatenate([pos_a, null_a, [np.inf]]))[::-1]
    fpr = 1.0 - np.searchsorted(null_a, thr, side="left") / max(1, null_a.size)
    tpr = 1.0 - np.searchsorted(pos_a, thr, side="left") / max(1, pos_a.size)
    return fpr, tpr


def plot_roc(rows: list[dict[str, Any]], summary: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wms = summary["watermarkers"]
    fig, axes = plt.subplots(1, len(wms), figsize=(4.5 * len(wms), 4), squeeze=False)
    kinds = _ordered([k for k in summary["attack_kinds"].values() if k != "none"])
    for ax, w in zip(axes[0], wms):
        null = [_score(r) for r in rows if r.get("kind") == "null" and r["watermarker"] == w and not r.get("error")]
        if not null:
            # Without nulls there is no false-positive axis to draw: say so, and nothing else.
            ax.text(0.5, 0.5, "no null trials:\nno ROC curve", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            ax.set_title(w)
            continue
        floor = 1.0 / max(10, 10 * len(null))
        for k in ["all", *kinds]:
            pos = [_score(r) for r in rows if r.get("kind") == "attack" and r["watermarker"] == w
                   and r.get("attack") != "none" and (k == "all" or r.get("attack_kind") == k)]
            if not pos or not null:
                continue
            fpr, tpr = roc_points(pos, null)
            ax.step(np.maximum(fpr, floor), tpr, where="post", lw=2.2 if k == "all" else 1.0, label=k)
        ax.set_xscale("log")
        ax.set_xlim(floor, 1.0)
        ax.set_ylim(0, 1.02)
        for f in FPRS:
            ax.axvline(f, color="grey", ls=":", lw=0.8)
        ax.set_xlabel(f"false-positive rate ({len(null)} null trials; left edge = below 1/n)")
        ax.set_ylabel("true-positive rate (attacked marked clips)")
        ax.set_title(w)
        if ax.get_legend_handles_labels()[0]:  # no attacked trials (only "none"): no curve to name
            ax.legend(fontsize=7, loc="lower right")
    out = _savefig(fig, path)
    plt.close(fig)
    return out


def plot_quality(summary: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # (key, label, top of the measure's scale or None)
    metrics = [("snr_db_median", "SNR, dB (median)", None), ("pesq_wb_median", "PESQ-WB, speech (median)", 4.64),
               ("visqol_median_music", "ViSQOL, music (median)", 4.75)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, (key, label, top) in zip(axes, metrics):
        seen: list[float] = []
        for i, (w, by_st) in enumerate(summary["quality"].items()):
            st = sorted(by_st, key=lambda x: (x is None, x or 0.0))
            vals = [by_st[x][key] for x in st]
            if all(v is None for v in vals):
                continue
            seen += [v for v in vals if v is not None]
            color = f"C{i}"  # each watermarker its own colour: two grey dashed lines could not be told apart
            if len(st) == 1:  # one level (quick mode, or no strength): a reference line across the axis
                what = "no strength" if st[0] is None else f"strength {st[0]:g} only"
                ax.axhline(vals[0], ls="--", lw=1.2, color=color, label=f"{w} ({what}): {vals[0]:.3g}")
            else:
                ax.plot(st, [np.nan if v is None else v for v in vals], marker="o", color=color, label=w)
        if not seen:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color="grey")
        if top is not None and seen:
            # show the whole upper part of the scale so tiny differences are not magnified
            ax.set_ylim(min(min(seen) - 0.1, top - 1.0), top + 0.02)
        ax.set_xlabel("embedding strength")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("Quality of marked audio vs strength (before attack)")
    out = _savefig(fig, path)
    plt.close(fig)
    return out


def write_report(rows: list[dict[str, Any]], meta: dict[str, Any], out: Path) -> list[Path]:
    """Write ``summary.md`` and the three PNG plots into ``out``; return their paths."""
    out = Path(out)
    s = summarize(rows)
    files = []
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(markdown(s, meta), encoding="utf-8")
    files.append(out / "summary.md")
    if not importable(MATPLOTLIB.module):  # only a run under allow_missing gets here without it
        return files
    files.append(plot_bit_accuracy(s, out / "bit_accuracy.png"))
    files.append(plot_roc(rows, s, out / "roc.png"))
    files.append(plot_quality(s, out / "quality_vs_strength.png"))
    return files


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m benchmarks.report OUT/results.json", file=sys.stderr)
        return 2
    path = Path(args[0])
    data = json.loads(path.read_text(encoding="utf-8"))
    for p in write_report(data["rows"], data.get("meta", {}), path.parent):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
