"""Partly marked files: audible gaps that carry no trace of the mark, and the edges of the
marked segments next to them.

A marked file is called ``partially_marked`` only when an audible gap of
``partial_min_gap_s`` or more shows no trace of the mark in a presence test of its own
(:func:`confirmed_gaps`); the segment edges that border such gaps are then placed by bisection
(:func:`refine_boundaries`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from provenance.core.errors import InputError
from provenance.core.results import Segment
from provenance.watermark.segments import merge_segments

from detectors.decode import DecodeStats, iter_mono
from detectors.limits import VerifyLimits
from detectors.report import ContainerInfo, WatermarkResult
from detectors.watermark_scan import SILENCE_PEAK, coverage, unmarked_audible_runs


def candidate_gaps(result: WatermarkResult, stats: DecodeStats, limits: VerifyLimits) -> list[tuple[float, float]]:
    """Audible stretches of at least ``partial_min_gap_s`` that carry no detected mark, seconds.

    Silent stretches cannot carry the mark, so gaps are measured on audible audio only: a marked
    file with a quiet intro is not "partially marked".
    """
    if not result.found or not result.segments:
        return []
    return unmarked_audible_runs(result.segments, np.asarray(stats.level_db), stats.level_step_s, limits)


def decode_ranges(
    path: Path, container: ContainerInfo, ranges: list[tuple[float, float]], limits: VerifyLimits,
    deadline: float | None,
) -> tuple[list[np.ndarray], int]:
    """Decode the file again and keep only ``ranges`` (seconds) as mono arrays."""
    stats = DecodeStats()
    out: list[list[np.ndarray]] = [[] for _ in ranges]
    pos = 0
    end_needed = max(b for _, b in ranges)
    for chunk in iter_mono(path, container_format=container.format, deadline=deadline,
                           max_duration_s=limits.max_duration_s, stats=stats):
        sr = stats.sample_rate
        n = chunk.shape[0]
        for k, (a, b) in enumerate(ranges):
            lo, hi = max(int(a * sr), pos), min(int(b * sr), pos + n)
            if hi > lo:
                out[k].append(chunk[lo - pos : hi - pos])
        pos += n
        if pos >= end_needed * sr:
            break
    return [np.concatenate(parts) if parts else np.zeros(0, np.float32) for parts in out], stats.sample_rate


def refine_boundaries(
    path: Path, container: ContainerInfo, result: WatermarkResult, key: Any, gaps: list[tuple[float, float]],
    limits: VerifyLimits, deadline: float | None,
) -> WatermarkResult:
    """Place the ends of marked segments that border an unmarked gap more precisely.

    The detector localises a mark's last partial block poorly when unmarked audio follows (its
    segment can end up to ~2 s early), but a window that *ends* inside the mark shows the mark
    running up to the window's edge. So each bordering end is found by bisection on the end of a
    ``refine_edge_window_s`` window (and each start, mirrored, on its beginning), to
    ``refine_edge_resolution_s``.
    """
    from provenance.core.audio import Audio
    from provenance.watermark import detect

    L, reach, tol = limits.refine_edge_window_s, limits.refine_edge_reach_s, 0.15
    segs = list(result.segments)
    jobs: list[tuple[int, str, float, float]] = []  # (segment index, "end"/"start", lo, hi)
    for i, seg in enumerate(segs):
        nxt = segs[i + 1].start_s if i + 1 < len(segs) else result.analysed_s
        prv = segs[i - 1].end_s if i > 0 else 0.0
        if any(abs(g[0] - seg.end_s) <= 1.5 + limits.gap_margin_s for g in gaps) and seg.end_s - seg.start_s >= L:
            jobs.append((i, "end", seg.end_s, min(seg.end_s + reach, nxt)))
        if any(abs(g[1] - seg.start_s) <= 1.5 + limits.gap_margin_s for g in gaps) and seg.end_s - seg.start_s >= L:
            jobs.append((i, "start", max(seg.start_s - reach, prv), seg.start_s))
    if not jobs:
        return result
    ranges = [(lo - L, hi) if kind == "end" else (lo, hi + L) for _, kind, lo, hi in jobs]
    ranges = [(max(0.0, a), b) for a, b in ranges]
    pieces, sr = decode_ranges(path, container, ranges, limits, deadline)

    def covered(x: np.ndarray, x0: float, a: float, b: float, kind: str) -> bool:
        part = x[int(round((a - x0) * sr)) : int(round((b - x0) * sr))]
        if part.shape[0] < int(3.3 * sr):
            return False
        try:
            # edges of a mark already found: same timeline, no speed/pitch search
            det = detect(Audio(part[np.newaxis, :], sr), key, search=False)
        except InputError:
            return False
        if not det.found or not det.segments:
            return False
        if kind == "end":
            return det.segments[-1].end_s >= (b - a) - tol
        return det.segments[0].start_s <= tol

    for (i, kind, lo, hi), (x0, _), x in zip(jobs, ranges, pieces):
        while hi - lo > limits.refine_edge_resolution_s:
            if deadline is not None and time.monotonic() > deadline:
                break
            mid = (lo + hi) / 2
            ok = covered(x, x0, mid - L, mid, "end") if kind == "end" else covered(x, x0, mid, mid + L, "start")
            if kind == "end":
                lo, hi = (mid, hi) if ok else (lo, mid)
            else:
                lo, hi = (lo, mid) if ok else (mid, hi)
        seg = segs[i]
        segs[i] = Segment(
            start_s=round(hi if kind == "start" else seg.start_s, 3),
            end_s=round(lo if kind == "end" else seg.end_s, 3),
            payload=seg.payload,
            p_value=seg.p_value,
        )
    merged = merge_segments(segs)
    return dataclasses.replace(result, segments=merged, coverage=coverage(merged, result.analysed_s))


def confirmed_gaps(
    path: Path, container: ContainerInfo, result: WatermarkResult, key: Any, stats: DecodeStats,
    limits: VerifyLimits, deadline: float | None,
) -> list[tuple[float, float]]:
    """The candidate gaps in which a search with ``key`` finds no trace of the mark.

    The detector localises marked time at 0.5 s resolution from per-slot agreement, which can miss
    stretches where the mark is present but weak (soft or noisy content, lossy re-encoding). A
    gap is only called unmarked when a presence test run on the gap alone also finds nothing
    (p > ``gap_p_marked``); gaps too short to test (one 4.32 s watermark block after trimming the
    edges) are not called unmarked.
    """
    from provenance.core.audio import Audio
    from provenance.watermark import detect

    margin = limits.gap_margin_s  # keep clear of the detected segments' edges (their resolution)
    ranges = []
    for a, b in candidate_gaps(result, stats, limits)[: limits.max_gap_tests]:
        a2, b2 = a + margin, b - margin
        if b2 - a2 >= limits.gap_min_test_s:
            mid = (a2 + b2) / 2
            half = min(b2 - a2, limits.gap_max_test_s) / 2
            ranges.append((mid - half, mid + half))
    if not ranges:
        return []
    pieces, sr = decode_ranges(path, container, ranges, limits, deadline)
    confirmed = []
    for (a, b), x in zip(ranges, pieces):
        if x.shape[0] < int(limits.gap_min_test_s * sr) or float(np.max(np.abs(x))) < SILENCE_PEAK:
            continue
        try:
            # at most max_gap_tests gaps of at most gap_max_test_s: the search's cost is bounded
            det = detect(Audio(x[np.newaxis, :], sr), key)
        except InputError:
            continue
        if not det.found and det.p_value > limits.gap_p_marked:
            confirmed.append((a, b))
    return confirmed
