"""The segment-boundary benchmark's summary (benchmarks/segment_edges.py)."""

from __future__ import annotations

import pytest

from benchmarks.segment_edges import TOLERANCE_S, summarize_errors


def test_trials_without_a_single_segment_count_as_misses():
    s = summarize_errors([0.1, None, -0.6, 0.0], [0.02, None, 0.0, 0.51])
    assert (s["trials"], s["single_segment"], s["within_tolerance"]) == (4, 3, 1)
    assert s["tolerance_s"] == TOLERANCE_S
    assert s["start_abs_err_s"]["max"] == pytest.approx(0.6) and s["end_abs_err_s"]["max"] == pytest.approx(0.51)
    # the signed mean keeps the direction (early starts are negative)
    assert s["start_mean_err_s"] == pytest.approx(round((0.1 - 0.6 + 0.0) / 3, 3))


def test_no_trials_give_counts_only():
    assert summarize_errors([], []) == {"trials": 0, "single_segment": 0, "within_tolerance": 0,
                                        "tolerance_s": TOLERANCE_S}
