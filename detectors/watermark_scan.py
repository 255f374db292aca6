"""The verifier's watermark search: every key of the keyring, window by window.

A file is read once, as mono audio, in overlapping analysis windows (:class:`~detectors.limits.VerifyLimits`:
60 s with 5 s of overlap), so memory stays bounded for long files. Each window is read with every key
(:func:`provenance.watermark.detect`), with the tempo and pitch search in the first few, and matched
against the manifest store's issued payloads where that can name or confirm a mark. A window with a
suggestive miss, or with audible stretches its mark does not cover, is read again in short
sub-windows. Per key, the windows' evidence becomes one :class:`~detectors.report.WatermarkResult`
(a union bound over the windows read).

The keyring is the configured watermark key plus any ``*.key`` file in ``<home>/keys/keyring/``
(older, rotated keys, or keys shared by other FoleySeal installations).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from provenance.core.errors import FormatError, InputError, StoreError
from provenance.core.results import Segment
from provenance.watermark.segments import merge_segments

from detectors.decode import DeadlineExceeded, DecodeStats, iter_mono
from detectors.limits import VerifyLimits
from detectors.report import ContainerInfo, WatermarkResult

log = logging.getLogger(__name__)


KEYRING_DIR = Path("keys") / "keyring"
"""Extra watermark keys, relative to the FoleySeal home."""
SILENCE_PEAK = 10 ** (-96.0 / 20.0)
"""Below this peak amplitude (-96 dBFS) a window cannot carry the mark: skip the detector."""


def load_keyring(settings: Any) -> list[Any]:
    """The watermark keys a verifier with ``settings`` searches for: the configured key (if its
    file exists) and every ``*.key`` in ``<home>/keys/keyring/``. Unreadable files raise
    :class:`~provenance.core.errors.KeyFileError` naming the file."""
    from provenance.watermark import load_key

    keys = []
    seen: set[str] = set()
    paths: list[Path] = []
    if settings.watermark_key_path.exists():
        paths.append(settings.watermark_key_path)
    ring = settings.home / KEYRING_DIR
    if ring.is_dir():
        paths.extend(sorted(ring.glob("*.key")))
    for p in paths:
        k = load_key(p)
        if k.key_id not in seen:
            seen.add(k.key_id)
            keys.append(k)
    return keys


@dataclass
class _KeySearch:
    """What the windows read so far showed of one key's mark."""

    key: Any
    min_p: float = 1.0
    threshold: float = 0.0
    windows: int = 0
    found_windows: int = 0
    store_confirmed_windows: int = 0
    """Found windows whose presence test alone missed the mark (an issued payload confirmed it)."""
    payloads: Counter = field(default_factory=Counter)
    segments: list[Segment] = field(default_factory=list)
    bit_conf: list[float] = field(default_factory=list)
    best_found_p: float = 2.0
    warp: tuple[float, float] = (1.0, 0.0)
    """Speed factor and pitch shift (semitones) undone in the found window with the smallest p-value."""


def _unnamed(det: Any, known: Any, store_failed: list[str]) -> bool:
    """Whether a detection names no issued payload: none decoded, or one the store never issued."""
    if det.payload is None:
        return True
    try:
        return not known.find([det.payload])
    except StoreError as exc:
        store_failed.append(exc.message)
        return False


def analysis_windows(chunks: Iterator[np.ndarray], stats: DecodeStats, limits: VerifyLimits) -> Iterator[tuple[int, np.ndarray]]:
    """Group decoded chunks into overlapping analysis windows: ``(start_frame, samples)``."""
    buf: list[np.ndarray] = []
    buf_len = 0
    start = 0
    last_end = 0
    for chunk in chunks:
        buf.append(chunk)
        buf_len += chunk.shape[0]
        win = int(limits.window_s * stats.sample_rate)
        hop = max(1, win - int(limits.overlap_s * stats.sample_rate))
        while buf_len >= win:
            data = np.concatenate(buf) if len(buf) > 1 else buf[0]
            yield start, data[:win]
            last_end = start + win
            rest = data[hop:]
            buf, buf_len, start = [rest], rest.shape[0], start + hop
    if buf_len and start + buf_len > last_end:
        data = np.concatenate(buf) if len(buf) > 1 else buf[0]
        yield start, data


def coverage(segments: Sequence[Segment], analysed_s: float) -> float:
    """Share (0..1) of the first ``analysed_s`` seconds that merged (non-overlapping) ``segments``
    cover; 0 when nothing was analysed."""
    covered = sum(max(0.0, min(g.end_s, analysed_s) - max(g.start_s, 0.0)) for g in segments)
    return min(1.0, covered / analysed_s) if analysed_s > 0 else 0.0


def scan_watermark(
    path: Path,
    container: ContainerInfo,
    keyring: Sequence[Any],
    limits: VerifyLimits,
    deadline: float | None,
    stats: DecodeStats,
    notes: list[str],
    threads: int = 1,
    known: Any | None = None,
) -> list[WatermarkResult]:
    """Detect every key's mark window by window. ``known``: the manifest store's issued payloads
    (:class:`~provenance.watermark.known.KnownPayloads`), which name the payload of a mark found
    too damaged to decode on its own, or None."""
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    from provenance.core.audio import Audio
    from provenance.watermark import detect
    from provenance.watermark.confirm import CONFIRM_P_VALUE
    from provenance.watermark.known import IssuedList, false_match_bound

    searches = [_KeySearch(key=k) for k in keyring]
    chunks = iter_mono(
        path,
        container_format=container.format,
        deadline=deadline,
        max_duration_s=limits.max_duration_s,
        stats=stats,
    )
    rejected: list[str] = []
    failed: list[str] = []
    store_failed: list[str] = []
    issued_checks: list[tuple[int, bool, float]] = []  # (candidates looked up, matched, match's bound)
    silent = 0

    matched = [0]  # windows matched against the issued payloads so far (all keys)

    def may_match() -> bool:
        with search_lock:
            matched[0] += 1
            return matched[0] <= limits.issued_match_windows * max(1, len(searches))

    listing = isinstance(known, IssuedList)

    def one(s: _KeySearch, x: np.ndarray, offset_s: float, search: bool = True, whole: bool = True) -> Any | None:
        try:
            audio = Audio(x[np.newaxis, :], stats.sample_rate)
            det = detect(audio, s.key, search=search)
            near = det.found or float(det.details.get("presence_p_value", 1.0)) <= CONFIRM_P_VALUE
            if known is not None and (near or (listing and whole)) and _unnamed(det, known, store_failed) and may_match():
                # The same reading again (the detector is deterministic), now also matched
                # against the issued payloads: only windows found, or nearly found (an issued
                # payload can confirm those), without a payload, or with one never issued (its
                # CRC may have passed by chance), pay for it; with a store that lists its
                # payloads, every whole window without one (a strong correlation with an issued
                # codeword can confirm a mark the presence test missed).
                # A reading on the file's own timeline is made again without the search, which
                # adds only warped readings: the same detection (details kept), at a fraction of
                # the cost, so that an unmarked file does not pay for its search twice.
                warped = (det.speed, det.pitch_semitones) != (1.0, 0.0)
                try:
                    again = detect(audio, s.key, search=search and warped, known=known)
                    det = dataclasses.replace(again, details={**det.details, **again.details})
                except StoreError as exc:
                    log.warning("matching issued payloads failed at %.1f s: %s", offset_s, exc)
                    store_failed.append(exc.message)
            return det
        except InputError as exc:
            # Too short for one watermark block, or a rate the watermark does not cover.
            rejected.append(exc.message)
        except Exception as exc:  # a detector bug must not cost the rest of the report
            log.exception("watermark detector failed at %.1f s", offset_s)
            failed.append(f"{type(exc).__name__} at {offset_s:.0f} s")
        return None

    searched = [0]  # windows given the speed/pitch search so far (all keys)
    search_lock = threading.Lock()

    def may_search() -> bool:
        with search_lock:
            searched[0] += 1
            return searched[0] <= limits.search_windows * max(1, len(searches))

    def run(start: int, window: np.ndarray) -> list[tuple[_KeySearch, Any, float]]:
        sr = stats.sample_rate
        offset_s = start / sr
        out = []
        for s in searches:
            det = one(s, window, offset_s, search=may_search())
            if det is None:
                continue
            out.append((s, det, offset_s))
            if not needs_refinement(det, window, sr, limits):
                continue
            # A splice, or a mark too faint to show over the whole window: search again in short,
            # overlapping sub-windows, whose evidence is not diluted by unmarked audio and whose
            # segments place the boundaries better (each is one more test: see the correction).
            sub, hop = int(limits.refine_window_s * sr), int(limits.refine_hop_s * sr)
            starts = list(range(0, max(1, window.shape[0] - sub + 1), hop))
            if starts[-1] + sub < window.shape[0]:
                starts.append(window.shape[0] - sub)
            for k in starts:
                if deadline is not None and time.monotonic() > deadline:
                    break
                part = window[k : k + sub]
                if part.shape[0] < sub // 2 or float(np.max(np.abs(part))) < SILENCE_PEAK:
                    continue
                # Sub-windows look for splices and faint marks on the timeline the whole window
                # was tested on; the speed and pitch search ran on the whole window.
                d2 = one(s, part, offset_s + k / sr, search=False, whole=False)
                if d2 is not None:
                    out.append((s, d2, offset_s + k / sr))
        return out

    def collect(results: list[tuple[_KeySearch, Any, float]]) -> None:
        for s, det, offset_s in results:
            s.windows += 1
            s.threshold = det.threshold
            s.min_p = min(s.min_p, float(det.p_value))
            if not det.found:
                continue
            s.found_windows += 1
            if float(det.p_value) < s.best_found_p:
                s.best_found_p = float(det.p_value)
                s.warp = (float(det.speed), float(det.pitch_semitones))
            s.store_confirmed_windows += int(bool(det.details.get("store_confirmed")))
            s.bit_conf.append(float(det.bit_confidence))
            if "issued_candidates" in det.details:
                # Every window that looked up candidates could have matched a wrong record.
                source = det.details.get("payload_source")
                matched_here = source in ("issued_payloads", "issued_correlation")
                issued_checks.append((int(det.details["issued_candidates"]), matched_here,
                                      float(det.details["issued_false_match_bound"]) if matched_here else 0.0))
            if det.payload:
                s.payloads[det.payload] += 1
            for seg in det.segments:
                s.segments.append(
                    Segment(
                        start_s=seg.start_s + offset_s,
                        end_s=seg.end_s + offset_s,
                        payload=seg.payload,
                        p_value=seg.p_value,
                    )
                )
                if seg.payload and seg.payload not in s.payloads:
                    s.payloads[seg.payload] += 0  # listed, without outvoting whole-window payloads

    # Windows are analysed on up to ``threads`` threads (NumPy/SciPy release the GIL in the heavy
    # parts); at most ``threads + 1`` windows are in memory at once.
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        inflight: set[Future[list[tuple[_KeySearch, Any, float]]]] = set()
        try:
            for start, window in analysis_windows(chunks, stats, limits):
                if deadline is not None and time.monotonic() > deadline:
                    raise DeadlineExceeded("verification exceeded its time limit while searching the watermark")
                if window.shape[0] == 0 or float(np.max(np.abs(window))) < SILENCE_PEAK:
                    silent += 1
                    continue
                inflight.add(pool.submit(run, start, window))
                while len(inflight) > max(1, threads):
                    done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
                    for f in done:
                        collect(f.result())
            for f in inflight:
                collect(f.result())
            inflight = set()
        finally:
            for f in inflight:
                f.cancel()
    if failed:
        notes.append(
            f"The watermark detector failed on {len(failed)} analysis window(s) ({failed[0]}); "
            "those parts were not checked."
        )
    if store_failed:
        notes.append(f"Matching the watermark against the manifest store's payloads failed ({store_failed[0]}).")
    matched_windows = sum(1 for _, hit, _ in issued_checks if hit)
    if matched_windows and known is not None:
        # Each match's own bound (its list candidates, or its correlation with every issued
        # codeword), and the list candidates of the windows that matched nothing.
        bound = sum(b for _, hit, b in issued_checks if hit) + false_match_bound(
            sum(n for n, hit, _ in issued_checks if not hit), known.count())
        notes.append(
            f"In {matched_windows} analysis window(s) the watermark's payload was too damaged to decode on its "
            "own and was named by matching against the payloads the manifest store has issued (chance of a "
            f"false match at most {bound:.1e})."
        )
    if rejected and not any(s.windows for s in searches):
        notes.append(f"The watermark could not be checked: {rejected[0]}")
    elif silent and not any(s.windows for s in searches):
        notes.append("The audio is digital silence (below -96 dBFS): it cannot carry a watermark.")
    if stats.frames == 0:
        raise FormatError("no audio could be decoded from the file")
    analysed_s = stats.frames / stats.sample_rate
    results = []
    for s in searches:
        # Bonferroni over the windows searched: each window is one more chance of a false alarm.
        p = min(1.0, s.min_p * max(1, s.windows))
        found = s.found_windows > 0 and (s.threshold <= 0.0 or p <= s.threshold)
        segs = merge_segments(s.segments) if found else ()
        results.append(
            WatermarkResult(
                key_id=s.key.key_id,
                found=found,
                p_value=p,
                payloads=tuple(pl for pl, _ in s.payloads.most_common()) if found else (),
                segments=segs,
                analysed_s=analysed_s,
                coverage=coverage(segs, analysed_s),
                bit_confidence=float(np.mean(s.bit_conf)) if s.bit_conf else 0.0,
                windows=s.windows,
                store_confirmed=found and s.store_confirmed_windows == s.found_windows,
                speed=s.warp[0] if found else 1.0,
                pitch_semitones=s.warp[1] if found else 0.0,
            )
        )
    return results


def unmarked_audible_runs(
    segments: Any, levels_db: np.ndarray, step_s: float, limits: VerifyLimits, offset_s: float = 0.0
) -> list[tuple[float, float]]:
    """Runs (seconds) of audible audio, at least ``partial_min_gap_s`` long, outside ``segments``."""
    audible = levels_db > limits.audible_db
    if audible.size == 0:
        return []
    marked = np.zeros(audible.shape, dtype=bool)
    for seg in segments:
        a = max(0, int(np.floor((seg.start_s - offset_s) / step_s)))
        b = min(marked.size, int(np.ceil((seg.end_s - offset_s) / step_s)))
        marked[a:b] = True
    gaps = []
    run_start = None
    for i, v in enumerate(np.append(audible & ~marked, False)):
        if v and run_start is None:
            run_start = i
        elif not v and run_start is not None:
            if (i - run_start) * step_s >= limits.partial_min_gap_s:
                gaps.append((offset_s + run_start * step_s, offset_s + i * step_s))
            run_start = None
    return gaps


def levels_db(x: np.ndarray, sr: int, step_s: float = 0.5) -> np.ndarray:
    """RMS level of each whole ``step_s`` of ``x`` (sample rate ``sr``, Hz), dBFS."""
    step = max(1, int(step_s * sr))
    n = x.shape[0] // step
    if n == 0:
        return np.zeros(0)
    ms = np.mean(np.square(x[: n * step].reshape(n, step), dtype=np.float64), axis=1)
    return 10.0 * np.log10(ms + 1e-20)


def needs_refinement(det: Any, window: np.ndarray, sr: int, limits: VerifyLimits) -> bool:
    """Whether a window deserves the sub-window search: a suggestive miss, or a mark that leaves
    audible stretches unmarked (a possible splice, whose boundaries should be placed well)."""
    if limits.refine_window_s <= 0 or window.shape[0] < 1.5 * limits.refine_window_s * sr:
        return False
    if not det.found:
        return det.p_value < limits.refine_p
    return bool(unmarked_audible_runs(det.segments, levels_db(window, sr), 0.5, limits))
