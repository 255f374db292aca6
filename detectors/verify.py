"""The verification engine: one function that tells what a file is.

:func:`verify` combines every signal FoleySeal has about a file:

1. the container (format, codecs, duration, rate, channels) from PyAV;
2. Content Credentials (C2PA): embedded manifest or sidecar, validated against the verifier's
   trust configuration (FoleySeal's root plus the configured anchors and trust list; nothing
   else is trusted);
3. the watermark, searched with every key of the verifier's keyring in overlapping 60 s windows
   (memory stays bounded for long files); a window with a suggestive miss, or with audible
   unmarked stretches, is searched again in 8 s sub-windows. ``partially_marked`` needs an
   audible gap in which a separate presence test finds no trace of the mark (not asked of a mark
   that only the store's issued payloads could confirm: too weak to show in a gap), and the
   segment edges next to such gaps are then placed by bisection (to 0.2 s);
4. the manifest store: the record each decoded payload (and the file's SHA-256) points to, and
   whether that record's detached manifest validates against this exact file (*hard binding*) or
   only identifies it (*soft binding*: the content was re-encoded or edited);

and reduces them to one :class:`~detectors.report.Verdict` with a plain-language explanation.

The keyring is the configured watermark key plus any ``*.key`` file in ``<home>/keys/keyring/``
(older, rotated keys, or keys shared by other FoleySeal installations).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from provenance.core.errors import FoleySealError, FormatError, InputError, StoreError
from provenance.core.results import Segment

from detectors.container import probe
from detectors.decode import DeadlineExceeded, DecodeStats, iter_mono
from detectors.report import (
    ContainerInfo,
    StoreMatch,
    Verdict,
    VerificationReport,
    WatermarkResult,
    explain,
)

log = logging.getLogger(__name__)

KEYRING_DIR = Path("keys") / "keyring"
"""Extra watermark keys, relative to the FoleySeal home."""

# Failure codes that say "the signer is not one we trust", as opposed to "something changed".
_TRUST_CODES = {
    "signingCredential.untrusted",
    "signingCredential.ocsp.unknown",
    "timeStamp.untrusted",
}
_SILENCE_PEAK = 10 ** (-96.0 / 20.0)
"""Below this peak amplitude (-96 dBFS) a window cannot carry the mark: skip the detector."""


@dataclass(frozen=True)
class VerifyLimits:
    """Bounds on one verification."""

    time_limit_s: float | None = 300.0
    """Wall-clock limit for one file, seconds (None: no limit)."""
    max_bytes: int | None = None
    """Refuse files larger than this (bytes); None: no limit (the HTTP service sets 500 MB)."""
    max_duration_s: float = 4 * 3600.0
    """Audio beyond this many seconds is not analysed (the report notes it)."""
    window_s: float = 60.0
    """Watermark analysis window, seconds: files up to this long are analysed in one piece."""
    overlap_s: float = 5.0
    """Overlap of consecutive windows, seconds (longer than one 3.24 s watermark block)."""
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
    payloads)."""
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


# --------------------------------------------------------------------------------------------
# configuration: trust anchors and keyring


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


def _read_pem_file(path: Path) -> str:
    from provenance.core.errors import ConfigError

    try:
        text = Path(path).read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigError(f"cannot read trust anchors: {exc.strerror or exc}", path=path) from exc
    except UnicodeDecodeError:
        raise ConfigError("trust anchors file is not a PEM text file", path=path) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError("trust anchors file holds no PEM certificate", path=path)
    return text.strip() + "\n"


def _count_certs(pem: str) -> int:
    return pem.count("-----BEGIN CERTIFICATE-----")


# --------------------------------------------------------------------------------------------
# credentials classification


def classify_credentials(cred: Any) -> Verdict | None:
    """Map a :class:`CredentialsReport` to ``credentials_valid`` / ``_tampered`` / ``_untrusted``,
    or None when no credentials are present. Gated on failure codes, not on the state alone."""
    if cred is None or not getattr(cred, "present", False):
        return None
    codes = set(getattr(cred, "failure_codes", ()) or ())
    state = getattr(cred, "state", None)
    hard_failures = codes - _TRUST_CODES
    if state == "Invalid" or hard_failures or getattr(cred, "error", None) and state != "Trusted":
        return Verdict.CREDENTIALS_TAMPERED
    if state == "Trusted" and not codes:
        return Verdict.CREDENTIALS_VALID
    if state in ("Valid", "Trusted"):
        return Verdict.CREDENTIALS_UNTRUSTED
    return Verdict.CREDENTIALS_TAMPERED


# --------------------------------------------------------------------------------------------
# watermark search


@dataclass
class _KeySearch:
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


def _windows(chunks: Iterator[np.ndarray], stats: DecodeStats, limits: VerifyLimits) -> Iterator[tuple[int, np.ndarray]]:
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


def _merge_segments(segments: list[Segment], gap_s: float = 0.6) -> tuple[Segment, ...]:
    """Union of segments found in overlapping windows (same or unknown payload)."""
    out: list[Segment] = []
    for s in sorted(segments, key=lambda s: (s.start_s, s.end_s)):
        if out and s.start_s <= out[-1].end_s + gap_s and (
            s.payload is None or out[-1].payload is None or s.payload == out[-1].payload
        ):
            last = out[-1]
            out[-1] = Segment(
                start_s=last.start_s,
                end_s=max(last.end_s, s.end_s),
                payload=last.payload or s.payload,
                p_value=min(last.p_value, s.p_value),
            )
        else:
            out.append(s)
    return tuple(out)


def _search_watermark(
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
            if known is not None and (near or (listing and whole)) and det.payload is None and may_match():
                # The same reading again (the detector is deterministic), now also matched
                # against the issued payloads: only windows found, or nearly found (an issued
                # payload can confirm those), without a payload pay for it; with a store that
                # lists its payloads, every whole window without one (a strong correlation with
                # an issued codeword can confirm a mark the presence test missed).
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
            if not _needs_refinement(det, window, sr, limits):
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
                if part.shape[0] < sub // 2 or float(np.max(np.abs(part))) < _SILENCE_PEAK:
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
            for start, window in _windows(chunks, stats, limits):
                if deadline is not None and time.monotonic() > deadline:
                    raise DeadlineExceeded("verification exceeded its time limit while searching the watermark")
                if window.shape[0] == 0 or float(np.max(np.abs(window))) < _SILENCE_PEAK:
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
        segs = _merge_segments(s.segments) if found else ()
        covered = sum(max(0.0, min(g.end_s, analysed_s) - max(g.start_s, 0.0)) for g in segs)
        results.append(
            WatermarkResult(
                key_id=s.key.key_id,
                found=found,
                p_value=p,
                payloads=tuple(pl for pl, _ in s.payloads.most_common()) if found else (),
                segments=segs,
                analysed_s=analysed_s,
                coverage=min(1.0, covered / analysed_s) if analysed_s > 0 else 0.0,
                bit_confidence=float(np.mean(s.bit_conf)) if s.bit_conf else 0.0,
                windows=s.windows,
                store_confirmed=found and s.store_confirmed_windows == s.found_windows,
            )
        )
    return results


def _unmarked_audible_runs(
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


def _levels_db(x: np.ndarray, sr: int, step_s: float = 0.5) -> np.ndarray:
    step = max(1, int(step_s * sr))
    n = x.shape[0] // step
    if n == 0:
        return np.zeros(0)
    ms = np.mean(np.square(x[: n * step].reshape(n, step), dtype=np.float64), axis=1)
    return 10.0 * np.log10(ms + 1e-20)


def _needs_refinement(det: Any, window: np.ndarray, sr: int, limits: VerifyLimits) -> bool:
    """Whether a window deserves the sub-window search: a suggestive miss, or a mark that leaves
    audible stretches unmarked (a possible splice, whose boundaries should be placed well)."""
    if limits.refine_window_s <= 0 or window.shape[0] < 1.5 * limits.refine_window_s * sr:
        return False
    if not det.found:
        return det.p_value < limits.refine_p
    return bool(_unmarked_audible_runs(det.segments, _levels_db(window, sr), 0.5, limits))


def _candidate_gaps(result: WatermarkResult, stats: DecodeStats, limits: VerifyLimits) -> list[tuple[float, float]]:
    """Audible stretches of at least ``partial_min_gap_s`` that carry no detected mark, seconds.

    Silent stretches cannot carry the mark, so gaps are measured on audible audio only: a marked
    file with a quiet intro is not "partially marked".
    """
    if not result.found or not result.segments:
        return []
    return _unmarked_audible_runs(result.segments, np.asarray(stats.level_db), stats.level_step_s, limits)


def _decode_ranges(
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


def _refine_boundaries(
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
    pieces, sr = _decode_ranges(path, container, ranges, limits, deadline)

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
    merged = _merge_segments(segs)
    covered_s = sum(max(0.0, min(g.end_s, result.analysed_s) - max(g.start_s, 0.0)) for g in merged)
    return dataclasses.replace(
        result, segments=merged, coverage=min(1.0, covered_s / result.analysed_s) if result.analysed_s else 0.0
    )


def _confirmed_gaps(
    path: Path, container: ContainerInfo, result: WatermarkResult, key: Any, stats: DecodeStats,
    limits: VerifyLimits, deadline: float | None,
) -> list[tuple[float, float]]:
    """The candidate gaps in which a search with ``key`` finds no trace of the mark.

    The detector localises marked time at 0.5 s resolution from per-slot agreement, which can miss
    stretches where the mark is present but weak (soft or noisy content, lossy re-encoding). A
    gap is only called unmarked when a presence test run on the gap alone also finds nothing
    (p > ``gap_p_marked``); gaps too short to test (one 3.24 s watermark block after trimming the
    edges) are not called unmarked.
    """
    from provenance.core.audio import Audio
    from provenance.watermark import detect

    margin = limits.gap_margin_s  # keep clear of the detected segments' edges (their resolution)
    ranges = []
    for a, b in _candidate_gaps(result, stats, limits)[: limits.max_gap_tests]:
        a2, b2 = a + margin, b - margin
        if b2 - a2 >= limits.gap_min_test_s:
            mid = (a2 + b2) / 2
            half = min(b2 - a2, limits.gap_max_test_s) / 2
            ranges.append((mid - half, mid + half))
    if not ranges:
        return []
    pieces, sr = _decode_ranges(path, container, ranges, limits, deadline)
    confirmed = []
    for (a, b), x in zip(ranges, pieces):
        if x.shape[0] < int(limits.gap_min_test_s * sr) or float(np.max(np.abs(x))) < _SILENCE_PEAK:
            continue
        try:
            # at most max_gap_tests gaps of at most gap_max_test_s: the search's cost is bounded
            det = detect(Audio(x[np.newaxis, :], sr), key)
        except InputError:
            continue
        if not det.found and det.p_value > limits.gap_p_marked:
            confirmed.append((a, b))
    return confirmed


# --------------------------------------------------------------------------------------------
# the engine


@contextlib.contextmanager
def _spooled(source: str | os.PathLike[str] | IO[bytes], name: str | None, limits: VerifyLimits) -> Iterator[tuple[Path, str, Path | None]]:
    """Yield ``(path, display_name, temp_dir)`` for a path or a binary stream (spooled to a
    temporary file that is always removed)."""
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        yield p, name or str(p), None
        return
    tmpdir = Path(tempfile.mkdtemp(prefix="foleyseal-verify-"))
    try:
        dst = tmpdir / ("upload" + _safe_suffix(name))
        total = 0
        with open(dst, "wb") as fh:
            while True:
                block = source.read(1 << 20)
                if not block:
                    break
                total += len(block)
                if limits.max_bytes is not None and total > limits.max_bytes:
                    raise InputError(f"file is larger than the limit of {limits.max_bytes} bytes", path=name)
                fh.write(block)
        yield dst, name or "upload", tmpdir
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _safe_suffix(name: str | None) -> str:
    """A file-name extension from an untrusted name: ``.`` + 1-8 ASCII letters/digits, or ''."""
    if not name:
        return ""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if "." not in base:
        return ""
    ext = base.rsplit(".", 1)[-1].lower()
    if 1 <= len(ext) <= 8 and ext.isascii() and ext.isalnum():
        return "." + ext
    return ""


C2PA_STORE_UUID = bytes.fromhex("6332706100110010800000aa00389b71")
"""UUID of a JUMBF C2PA manifest store box ("c2pa" + ISO suffix): its bytes mark a manifest."""


def _hash_and_scan(path: Path, deadline: float | None) -> tuple[str, bool]:
    """SHA-256 of the file, and whether its bytes contain a C2PA manifest store box."""
    h = hashlib.sha256()
    marker = False
    tail = b""
    with open(path, "rb") as fh:
        while True:
            block = fh.read(4 << 20)
            if not block:
                break
            h.update(block)
            if not marker:
                marker = C2PA_STORE_UUID in tail + block
                tail = block[-(len(C2PA_STORE_UUID) - 1) :]
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlineExceeded("verification exceeded its time limit while hashing")
    return h.hexdigest(), marker


def _unparseable(cred: Any) -> bool:
    """The C2PA reader reports an embedded manifest as "Invalid" when it cannot parse the *asset*
    at all (a truncated or fake WAV/FLAC/MP4), whether or not a manifest exists: such reports
    carry only library error codes (``c2pa.io``, ``c2pa.other``...), no validation codes."""
    if not getattr(cred, "present", False) or getattr(cred, "source", None) != "embedded":
        return False
    codes = tuple(getattr(cred, "failure_codes", ()) or ())
    return bool(getattr(cred, "error", None)) and all(c.startswith("c2pa.") for c in codes)


class Verifier:
    """A reusable verifier: settings, trust anchors, keyring and store opened once.

    Thread-compatible but not thread-safe (one per worker process or thread).
    """

    def __init__(
        self,
        settings: Any | None = None,
        keyring: Sequence[Any] | None = None,
        *,
        extra_trust_anchors: Sequence[str | Path] = (),
        limits: VerifyLimits | None = None,
        use_store: bool = True,
        threads: int | None = None,
    ) -> None:
        from provenance.core.config import load_settings, trust_anchors_pem

        self.settings = settings if settings is not None else load_settings()
        self.limits = limits or VerifyLimits()
        self.threads = threads if threads is not None else min(2, os.cpu_count() or 1)
        pem = trust_anchors_pem(self.settings)
        for p in extra_trust_anchors:
            pem += _read_pem_file(Path(p))
        self.trust_pem = pem
        self.keyring = list(keyring) if keyring is not None else load_keyring(self.settings)
        self._use_store = use_store
        self._store: Any | None = None
        self._store_opened = False

    # The store is opened on first use, and only if it exists: verifying must not create
    # an empty database on a machine that only verifies.
    def _get_store(self) -> Any | None:
        if self._store_opened:
            return self._store
        self._store_opened = True
        if not self._use_store:
            return None
        url = self.settings.store_url
        if url.startswith("sqlite:///"):
            db = url[len("sqlite:///") :]
            if db and db != ":memory:" and not Path(db).exists():
                return None
        from provenance.store import open_store

        self._store = open_store(self.settings)
        return self._store

    def _issued_payloads(self) -> Any | None:
        """The store's issued watermark payloads (:class:`~provenance.store.IssuedPayloads`), or
        None without a store. A store that cannot be opened is left for :meth:`_store_lookup`
        to report."""
        try:
            store = self._get_store()
        except Exception:
            self._store_opened = False  # let _store_lookup try again and say why it failed
            return None
        if store is None:
            return None
        from provenance.watermark import SOFT_BINDING_ALG

        return store.issued_payloads(SOFT_BINDING_ALG)

    def close(self) -> None:
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.close()
        self._store = None
        self._store_opened = False

    def __enter__(self) -> "Verifier":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------

    def verify(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        name: str | None = None,
    ) -> VerificationReport:
        """Verify a file (path) or a binary stream; ``name`` is the display name (e.g. the
        uploaded file's name: used only for its extension and in messages)."""
        t0 = time.monotonic()
        deadline = t0 + self.limits.time_limit_s if self.limits.time_limit_s else None
        if name is None:
            name = str(source) if isinstance(source, (str, os.PathLike)) else str(getattr(source, "name", "upload"))
        try:
            with _spooled(source, name, self.limits) as (path, display, _tmp):
                report = self._verify_path(path, display, deadline)
        except InputError as exc:  # includes DeadlineExceeded and the size limit of a stream
            report = self._error_report(name, exc.message)
        except OSError as exc:
            report = self._error_report(name, f"cannot read file: {exc.strerror or exc}")
        report.elapsed_s = time.monotonic() - t0
        return report

    def _error_report(self, display: str, message: str, **kw: Any) -> VerificationReport:
        return VerificationReport(
            file=display,
            verdict=Verdict.ERROR,
            explanation=explain(Verdict.ERROR, error=message),
            error=message,
            trust_anchors=_count_certs(self.trust_pem),
            **kw,
        )

    def _verify_path(self, path: Path, display: str, deadline: float | None) -> VerificationReport:
        notes: list[str] = []
        try:
            st = os.stat(path)
        except OSError as exc:
            return self._error_report(display, f"cannot open file: {exc.strerror or exc}")
        if not os.path.isfile(path):
            return self._error_report(display, "not a regular file")
        size = st.st_size
        if size == 0:
            return self._error_report(display, "the file is empty (0 bytes)", size_bytes=0)
        if self.limits.max_bytes is not None and size > self.limits.max_bytes:
            return self._error_report(
                display, f"the file is larger than the limit of {self.limits.max_bytes} bytes", size_bytes=size
            )
        sha, has_manifest_box = _hash_and_scan(path, deadline)

        # 1. container
        container: ContainerInfo | None = None
        container_error: str | None = None
        try:
            container = probe(path, name=display)
        except FormatError as exc:
            container_error = exc.message
        except Exception as exc:  # a demuxer bug must not take the verifier down
            log.exception("container probe failed for %s", display)
            container_error = f"the container could not be parsed ({type(exc).__name__})"
        if container is not None and container.extension_mismatch:
            notes.append(
                f"The file name's extension does not match its content, which is {container.format.upper()}; "
                "the content was used."
            )

        with tempfile.TemporaryDirectory(prefix="foleyseal-alias-") as alias_dir:
            c2pa_path = self._c2pa_path(path, display, container, Path(alias_dir))

            # 2. credentials carried with the file
            credentials = self._read_credentials(c2pa_path, notes)
            if _unparseable(credentials) and not has_manifest_box:
                # No manifest in the bytes: the reader's "Invalid" is about the asset, not about
                # credentials. Saying "tampered credentials" would be false.
                notes.append("The C2PA reader could not parse this file; it holds no C2PA manifest.")
                credentials = dataclasses.replace(
                    credentials, present=False, source=None, state=None, failure_codes=()
                )

            # 3. watermark
            stats = DecodeStats()
            watermark: list[WatermarkResult] = []
            decode_error: str | None = None
            if container is not None:
                if not self.keyring:
                    notes.append("No watermark key is configured: the watermark was not checked.")
                try:
                    if self.keyring:
                        watermark = _search_watermark(
                            path, container, self.keyring, self.limits, deadline, stats, notes, self.threads,
                            known=self._issued_payloads(),
                        )
                    else:
                        # Still decode once: a file whose audio cannot be decoded must say so.
                        for _ in iter_mono(
                            path, container_format=container.format, deadline=deadline,
                            max_duration_s=min(self.limits.max_duration_s, 1.0), stats=stats,
                        ):
                            pass
                        if stats.frames == 0:
                            raise FormatError("no audio could be decoded from the file")
                except DeadlineExceeded:
                    raise
                except FoleySealError as exc:
                    decode_error = exc.message
                except (MemoryError, Exception) as exc:  # decoders on hostile input
                    log.exception("decoding failed for %s", display)
                    decode_error = f"the audio could not be decoded ({type(exc).__name__})"
                if stats.nonfinite:
                    notes.append(f"{stats.nonfinite} NaN or infinite samples were treated as silence.")
                if stats.truncated_at_s is not None:
                    notes.append(f"Only the first {stats.truncated_at_s:.0f} s were analysed.")
                if stats.decode_errors:
                    notes.append(f"{stats.decode_errors} corrupt audio packet(s) were skipped while decoding.")
                if decode_error:
                    notes.append(f"Audio decoding failed: {decode_error}")

            # 4. store
            store_matches = self._store_lookup(c2pa_path, sha, watermark, notes)

        # 5. verdict
        cred_verdict = classify_credentials(credentials)
        hard = [m for m in store_matches if m.binding in ("hard", "hash")]
        soft = [m for m in store_matches if m.binding == "soft"]
        found = [w for w in watermark if w.found]
        partial = False
        if found and cred_verdict is None and not hard and container is not None:
            keys = {k.key_id: k for k in self.keyring}
            for j, w in enumerate(watermark):
                # A mark only an issued payload could confirm is too weak to show in a gap's few
                # seconds: its absence there is no evidence that the gap was not marked.
                if not w.found or w.store_confirmed:
                    continue
                gaps = _confirmed_gaps(path, container, w, keys[w.key_id], stats, self.limits, deadline)
                if gaps:
                    partial = True
                    watermark[j] = _refine_boundaries(
                        path, container, w, keys[w.key_id], gaps, self.limits, deadline
                    )
                    spans = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in gaps[:4])
                    notes.append(f"No trace of the watermark in audible audio at {spans} (checked separately).")
                    break
        if cred_verdict is not None:
            verdict = cred_verdict
        elif hard:
            verdict = classify_credentials(hard[0].credentials) or Verdict.CREDENTIALS_TAMPERED
        elif partial:
            verdict = Verdict.PARTIALLY_MARKED
        elif soft:
            verdict = Verdict.CREDENTIALS_RECOVERED_BY_WATERMARK
        elif found:
            verdict = Verdict.WATERMARK_ONLY
        elif container is None or (decode_error and not stats.frames):
            message = container_error or decode_error or "unreadable file"
            return self._error_report(display, message, size_bytes=size, sha256=sha, container=container,
                                      credentials=credentials, notes=notes)
        else:
            verdict = Verdict.NO_EVIDENCE
        cred_text = credentials if cred_verdict is not None else (hard[0].credentials if hard else None)
        if container_error and verdict is not Verdict.ERROR:
            notes.append(f"Container: {container_error}")
        explanation = explain(
            verdict,
            credentials=cred_text,
            watermark=watermark,
            store=hard or soft,
            keys_checked=len(self.keyring),
            watermark_analysed=any(w.windows for w in watermark),
        )
        return VerificationReport(
            file=display,
            verdict=verdict,
            explanation=explanation,
            size_bytes=size,
            sha256=sha,
            container=container,
            credentials=credentials,
            watermark=watermark,
            store=store_matches,
            notes=notes,
            trust_anchors=_count_certs(self.trust_pem),
        )

    def _c2pa_path(self, path: Path, display: str, container: ContainerInfo | None, alias_dir: Path) -> Path:
        """The path to hand to the C2PA reader: the file itself, or (when its name's extension
        lies about the content, or it has none) a link named with the right extension, since the
        reader picks the format from the extension. A sidecar next to the file comes along."""
        if container is None:
            return path
        if path.suffix.lower() == container.extension:
            return path
        alias = alias_dir / ("asset" + container.extension)
        try:
            os.symlink(os.path.abspath(path), alias)
        except OSError:
            shutil.copyfile(path, alias)
        for sidecar in (path.with_suffix(".c2pa"), Path(str(path) + ".c2pa")):
            if sidecar.is_file():
                with contextlib.suppress(OSError):
                    os.symlink(os.path.abspath(sidecar), alias.with_suffix(".c2pa"))
                    os.symlink(os.path.abspath(sidecar), Path(str(alias) + ".c2pa"))
                break
        return alias

    def _read_credentials(self, path: Path, notes: list[str], manifest_bytes: bytes | None = None) -> Any | None:
        from provenance.c2pa.read import read_credentials

        try:
            return read_credentials(path, trust_anchors_pem=self.trust_pem or None, manifest_bytes=manifest_bytes)
        except Exception as exc:  # the reader promises not to raise; a verifier must not trust that
            log.exception("reading credentials failed for %s", path)
            notes.append(f"Content Credentials could not be read ({type(exc).__name__}).")
            return None

    def _store_lookup(self, path: Path, sha: str, watermark: list[WatermarkResult], notes: list[str]) -> list[StoreMatch]:
        from provenance.watermark import SOFT_BINDING_ALG

        wanted: list[tuple[str, str]] = []
        for w in watermark:
            if w.found:
                wanted.extend((SOFT_BINDING_ALG, p) for p in w.payloads)
        try:
            store = self._get_store()
        except Exception as exc:
            log.exception("opening the manifest store failed")
            notes.append(f"The manifest store could not be opened ({type(exc).__name__}); no records were looked up.")
            return []
        if store is None:
            if wanted:
                notes.append("No manifest store is configured: the watermark payload was not looked up.")
            return []
        matches: list[StoreMatch] = []
        seen: set[str] = set()
        try:
            records = [(store.find_by_payload(alg, payload), "soft") for alg, payload in wanted]
            records += [(r, "hash") for r in store.find_by_asset_hash(sha)]
        except Exception as exc:
            log.exception("store lookup failed")
            notes.append(f"The manifest store lookup failed ({type(exc).__name__}).")
            return []
        for record, how in records:
            if record is None or record.id in seen:
                continue
            seen.add(record.id)
            cred = self._read_credentials(path, notes, manifest_bytes=record.manifest)
            ok = classify_credentials(cred) in (Verdict.CREDENTIALS_VALID, Verdict.CREDENTIALS_UNTRUSTED)
            binding = ("hash" if how == "hash" else "hard") if ok else "soft"
            if how == "hash" and not ok:
                continue  # same bytes but the manifest does not validate: nothing to recover
            matches.append(
                StoreMatch(
                    record_id=record.id,
                    payload=record.payload,
                    algorithm=record.algorithm,
                    binding=binding,
                    record=record.to_dict(without_manifest=True),
                    credentials=cred,
                )
            )
        # Hard bindings first: they are the stronger statement.
        matches.sort(key=lambda m: 0 if m.binding in ("hard", "hash") else 1)
        return matches


def verify(
    path_or_stream: str | os.PathLike[str] | IO[bytes],
    *,
    settings: Any | None = None,
    keyring: Sequence[Any] | None = None,
    trust_anchors: Sequence[str | Path] = (),
    limits: VerifyLimits | None = None,
    name: str | None = None,
) -> VerificationReport:
    """Verify one file (a path, or a binary stream) and return its :class:`VerificationReport`.

    ``settings`` default to :func:`provenance.core.config.load_settings`; ``keyring`` (watermark
    keys) to :func:`load_keyring`; ``trust_anchors`` are extra PEM files trusted in addition to the
    configuration. Bad input never raises: it yields verdict ``error`` with a message.
    """
    with Verifier(settings, keyring, extra_trust_anchors=trust_anchors, limits=limits) as v:
        return v.verify(path_or_stream, name=name)


__all__ = ["Verifier", "VerifyLimits", "classify_credentials", "load_keyring", "verify"]
