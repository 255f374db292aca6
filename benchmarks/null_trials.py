"""Null trials of the watermark detector: false positives and p-value calibration.

Runs the detector on audio that does not carry the mark of the key used: unmarked corpus
clips under random keys, and marked clips under random wrong keys, over windows of several
lengths. Reports the number of detections at the default threshold, the maximum-z statistics,
the maximum-likelihood fit of the effective number of independent alignments searched
and spread (``K``, ``s`` in ``p = 1 - Phi(z/s)^K``), and Kolmogorov-Smirnov tests of the
p-values of the test on the unedited timeline against the uniform distribution (see
:func:`calibration_summary`). When the test on the unedited timeline does not find the mark,
the detector also searches speed, tempo and pitch changes (its p-value carries a union
bound over the warps it could end on); detections count that search too, and the smallest
search p-value is reported (``--no-search`` skips it). With ``--store-payloads N`` every window
is read as a verifier with the manifest store reads it: against ``N`` issued random payloads
listed in memory, in a store counted as a million records (``provenance.watermark.known``), so
the correlation with every issued codeword, and the routes by which a match confirms a mark,
are part of each null trial; the largest correlation score and any payload the store named are
reported.

The detector reads the unedited timeline with two sets of reliabilities and reports the better
reading (``detect._detect_timeline``), so the reported z is the better of two and the fit of
``K`` and ``s`` (and ``ks_law_pvalue``) describe that maximum, not the law each reading's
p-value uses: check the law on one reading at a time. The reported p-values carry the union
bound over the two readings (``ks_liberal_pvalue`` tests them for being too small).

    python -m benchmarks.null_trials --corpus ../shared/corpus --trials 2000 --out bench-out/null.json
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import optimize, special, stats

from benchmarks.corpus import discover_clips
from benchmarks.jsonout import dumps
from benchmarks.pool import call, worker_pool
from provenance.core.atomic import atomic_write_bytes

WINDOWS_S = (5.0, 10.0, 20.0)


@dataclass
class NullTrial:
    clip: str
    marked: bool
    window_s: float
    start_s: float
    z: float
    """Standardised best z of the test on the unedited timeline."""
    p_value: float
    """Its p-value (the one whose uniformity is tested)."""
    found: bool
    """The detector's decision, the speed and pitch search included."""
    search_p_value: float
    """p-value of the best warp the search found (1.0 where it did not run)."""
    store_z: float = 0.0
    """Best correlation of an issued codeword with the window (0 where it did not run)."""
    store_named: bool = False
    """Whether the issued payloads named a payload (a false match, in a null trial)."""


STORE_RECORDS = 1_000_000
"""Records the simulated store of ``--store-payloads`` is counted as (for the false-match bounds)."""


def _trial_batch(args: tuple[str, list[tuple[int, bool, float]], int, bool, int]) -> list[NullTrial]:
    from provenance.core import io
    from provenance.watermark import WatermarkKey, detect, embed
    from provenance.watermark.known import PayloadSet

    path, specs, seed, search, store_payloads = args
    audio = io.read_audio(path)
    out: list[NullTrial] = []
    rng = np.random.default_rng(seed)
    known = None
    if store_payloads:
        listed = [rng.bytes(8).hex() for _ in range(store_payloads)]
        known = PayloadSet(listed, decoys=max(0, STORE_RECORDS - store_payloads))
    marked_audio = None
    for i, marked, window in specs:
        key = WatermarkKey(rng.bytes(32))
        src = audio
        if marked:
            if marked_audio is None and audio.duration_s >= 3.5:
                marked_audio = embed(audio, WatermarkKey(b"\x01" * 32), "00112233445566ff")
            src = marked_audio if marked_audio is not None else audio
        n = src.frames
        w = min(n, int(window * src.sample_rate))
        start = int(rng.integers(0, n - w + 1))
        clip = src.with_samples(src.samples[:, start : start + w])
        det = detect(clip, key, search=search, known=known)
        d = det.details
        out.append(NullTrial(Path(path).name, marked, w / src.sample_rate, start / src.sample_rate,
                             float(d.get("unedited_z", d.get("z", 0.0))),
                             float(d.get("unedited_p_value", det.p_value)), det.found,
                             float(d.get("search_p_value", 1.0)), float(d.get("issued_correlation_z", 0.0)),
                             "payload_source" in d))
    return out


def fit_max_law(z: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood (K, s) of the law of the maximum of K independent N(0, s^2)."""

    def nll(theta: np.ndarray) -> float:
        k, s = np.exp(theta[0]), theta[1]
        if s <= 0:
            return np.inf
        u = z / s
        return -float(np.sum(np.log(k) + (k - 1) * special.log_ndtr(u) + stats.norm.logpdf(u) - np.log(s)))

    res = optimize.minimize(nll, np.array([np.log(500.0), 1.0]), method="Nelder-Mead")
    return float(np.exp(res.x[0])), float(res.x[1])


def run(corpus: Path, trials: int, workers: int, seed: int = 0, search: bool = True, store_payloads: int = 0) -> dict:
    """``trials`` null trials over the clips of ``corpus`` on ``workers`` processes; with
    ``store_payloads``, read against that many issued payloads (see the module's docstring)."""
    files = [clip.path for clip in discover_clips(corpus)]
    rng = np.random.default_rng(seed)
    per_file: dict[str, list[tuple[int, bool, float]]] = {str(f): [] for f in files}
    for i in range(trials):
        f = files[i % len(files)]
        per_file[str(f)].append((i, bool(rng.integers(0, 2)), float(rng.choice(WINDOWS_S))))
    jobs = [(f, specs, seed + k, search, store_payloads) for k, (f, specs) in enumerate(per_file.items()) if specs]
    t0 = time.time()
    with worker_pool(workers) as ex:
        results = [t for batch in ex.map(call, [_trial_batch] * len(jobs), jobs) for t in batch]
    z = np.array([t.z for t in results])
    usable = z > 0  # silent windows return z = 0 and p = 1 (nothing to test)
    k_hat, s_hat = fit_max_law(z[usable]) if usable.sum() > 10 else (float("nan"), float("nan"))
    pvals = np.array([t.p_value for t in results])
    return {
        "trials": len(results),
        "usable_trials": int(usable.sum()),
        "detections_at_default_threshold": int(sum(t.found for t in results)),
        "min_p_value": float(pvals.min()),
        "speed_pitch_search": search,
        "min_search_p_value": float(min(t.search_p_value for t in results)),
        "store_payloads": store_payloads,
        "store_records": STORE_RECORDS if store_payloads else 0,
        "max_store_z": float(max(t.store_z for t in results)),
        "store_named": int(sum(t.store_named for t in results)),
        "max_z": float(z.max()),
        "fitted_effective_alignments": k_hat,
        "fitted_null_z_scale": s_hat,
        **calibration_summary(z[usable], pvals[usable]),
        "seconds": time.time() - t0,
        "rows": [asdict(t) for t in results],
    }


def calibration_summary(z: np.ndarray, reported: np.ndarray) -> dict[str, float | int]:
    """Kolmogorov-Smirnov checks of null p-values against the uniform law.

    ``z``: the standardised best z of each usable null window; ``reported``: the p-value the
    detector reported for it. Two sets are tested. The *law's* p-values
    (:func:`~provenance.watermark.presence.p_value_from_z` of ``z``) are what the fit of ``K`` and
    ``s`` claims to be uniform. The *reported* ones differ on purpose where the detector is
    conservative (clipped windows' doubled p-values, capped windows at 1), so their two-sided test
    rejects on large runs in the safe direction; what matters for false positives is the one-sided
    test against p-values that are too small (``ks_liberal_pvalue``), and the counts at or below
    1e-3 against the count expected.
    """
    from provenance.watermark.presence import p_value_from_z

    law = np.array([p_value_from_z(float(v)) for v in z])
    ks = stats.kstest(reported, "uniform")
    ks_law = stats.kstest(law, "uniform")
    # alternative="greater": the empirical CDF lies above the uniform one, i.e. p-values too small.
    ks_liberal = stats.kstest(reported, "uniform", alternative="greater")
    return {
        "ks_uniform_statistic": float(ks.statistic),
        "ks_uniform_pvalue": float(ks.pvalue),
        "ks_law_pvalue": float(ks_law.pvalue),
        "ks_liberal_pvalue": float(ks_liberal.pvalue),
        "reported_at_or_below_1e-3": int(np.sum(reported <= 1e-3)),
        "law_at_or_below_1e-3": int(np.sum(law <= 1e-3)),
        "expected_at_or_below_1e-3": float(1e-3 * reported.size),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--no-search", action="store_true", help="skip the speed/tempo/pitch search")
    ap.add_argument("--store-payloads", type=int, default=0,
                    help="read every window against this many issued random payloads (a store of a million records)")
    a = ap.parse_args()
    res = run(a.corpus, a.trials, a.workers, a.seed, search=not a.no_search, store_payloads=a.store_payloads)
    summary = {k: v for k, v in res.items() if k != "rows"}
    print(dumps(summary, indent=2))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(a.out, dumps(res, indent=1).encode("utf-8"))


if __name__ == "__main__":
    main()
