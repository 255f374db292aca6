"""Bounds on one verification: time, size, duration, and how far the watermark search goes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VerifyLimits:
    """Bounds on one verification."""

    time_limit_s: float | None = 300.0
    """Wall-clock limit for one file, seconds (None: no limit)."""
    max_bytes: int | None = None
    """Refuse files larger than this (bytes); None: no limit (the HTTP service sets 500 MiB)."""
    max_duration_s: float = 4 * 3600.0
    """Audio beyond this many seconds is not analysed (the report notes it)."""
    window_s: float = 60.0
    """Watermark analysis window, seconds: files up to this long are analysed in one piece."""
    overlap_s: float = 5.0
    """Overlap of consecutive windows, seconds (longer than one 4.32 s watermark block)."""
    partial_min_gap_s: float = 3.0
    """An audible unmarked gap at least this long makes a marked file ``partially_marked``."""
    audible_db: float = -60.0
    """Audio quieter than this (dBFS RMS per 0.5 s) is silence, which cannot carry a mark."""
    gap_p_marked: float = 1e-3
    """A gap whose own presence test reaches this p-value still carries the mark (weakly)."""
    gap_min_test_s: float = 3.5
    """Shortest gap interior that can be tested on its own (one watermark block), seconds."""
    gap_max_test_s: float = 30.0
    """Longest stretch of a gap tested, seconds (bounds the cost)."""
    max_gap_tests: int = 6
    search_windows: int = 6
    """Analysis windows (per key) in which the detector may search speed, tempo and pitch
    changes when the mark is not found as embedded; later windows are tested as they are.
    The search costs 1-3 s of CPU per window, so this bounds it on long unmarked files."""
    issued_match_windows: int = 4
    """Analysis windows (per key) in which a mark that is found, or nearly found, but does not
    decode is matched against the manifest store's issued payloads
    (:mod:`provenance.watermark.known`; 1-6 s of CPU per window); with a store that lists its
    payloads, any whole window without a payload (a detection again, plus 2 s per million issued
    payloads). The first such windows in the file's order get it, on any number of threads."""
    refine_window_s: float = 8.0
    """Sub-window length of the refined search, seconds (0 disables it)."""
    refine_hop_s: float = 2.0
    refine_p: float = 1e-2
    gap_margin_s: float = 0.5
    """Gap edges left out of the gap test (the detector's segment edges are this uncertain), s."""
    refine_edge_window_s: float = 6.0
    """Window used to place a segment edge next to a gap, seconds."""
    refine_edge_reach_s: float = 3.0
    """How far past the detected edge the true edge is looked for, seconds."""
    refine_edge_resolution_s: float = 0.2
    """A window missed with a p-value below this is searched again in sub-windows."""
