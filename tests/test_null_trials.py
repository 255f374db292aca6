"""The null-trial benchmark's calibration checks tell a calibrated detector from a liberal one."""

from __future__ import annotations

import numpy as np
from scipy import special

from benchmarks.null_trials import calibration_summary
from provenance.watermark.presence import EFFECTIVE_ALIGNMENTS, NULL_Z_SCALE, p_value_from_z
from tests._shared import corpus_clip


def _null_sample(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Best-z values drawn from the shipped law (the maximum of K normals of spread s), and
    their p-values under it."""
    u = np.random.default_rng(seed).uniform(size=n)
    z = NULL_Z_SCALE * special.ndtri(u ** (1.0 / EFFECTIVE_ALIGNMENTS))
    return z, np.array([p_value_from_z(float(v)) for v in z])


def test_calibrated_p_values_pass_every_check() -> None:
    z, law = _null_sample(seed=1)
    s = calibration_summary(z, law)
    assert s["ks_uniform_pvalue"] > 0.01
    assert s["ks_law_pvalue"] > 0.01
    assert s["ks_liberal_pvalue"] > 0.01
    assert s["expected_at_or_below_1e-3"] == 3.0


def test_conservative_reports_fail_only_the_two_sided_test() -> None:
    # Doubling some p-values (as the detector does for clipped windows) is safe: the two-sided test
    # rejects, the test for p-values that are too small does not.
    z, law = _null_sample(seed=2)
    reported = np.minimum(1.0, law * np.where(np.arange(law.size) % 3 == 0, 2.0, 1.0))
    s = calibration_summary(z, reported)
    assert s["ks_uniform_pvalue"] < 0.01
    assert s["ks_law_pvalue"] > 0.01
    assert s["ks_liberal_pvalue"] > 0.01


def test_liberal_reports_are_caught() -> None:
    z, law = _null_sample(seed=3)
    s = calibration_summary(z, law * 0.8)
    assert s["ks_liberal_pvalue"] < 0.01


def test_null_windows_read_against_a_store_score_every_issued_codeword() -> None:
    # Windows of an unmarked clip and of one marked under another key, read against 200 issued
    # random payloads: each is scored against every issued codeword, none is named or found.
    from benchmarks.null_trials import _trial_batch

    clip = corpus_clip("music_acoustic_guitar_phrases.flac")
    rows = _trial_batch((str(clip), [(0, False, 5.0), (1, True, 5.0), (2, True, 10.0)], 3, False, 200))
    assert len(rows) == 3
    assert not any(r.found or r.store_named for r in rows)
    assert all(0.0 < r.store_z < 6.0 for r in rows)
