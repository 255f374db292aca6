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
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
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

    def result(self, analysed_s: float) -> WatermarkResult:
        """The key's result over every window read; ``analysed_s``: seconds of audio decoded."""
        # Bonferroni over the windows searched: each window is one more chance of a false alarm.
        p = min(1.0, self.min_p * max(1, self.windows))
        found = self.found_windows > 0 and (self.threshold <= 0.0 or p <= self.threshold)
        segs = merge_segments(self.segments) if found else ()
        return WatermarkResult(
            key_id=self.key.key_id,
            found=found,
            p_value=p,
            payloads=tuple(pl for pl, _ in self.payloads.most_common()) if found else (),
            segments=segs,
            analysed_s=analysed_s,
            coverage=coverage(segs, analysed_s),
            bit_confidence=float(np.mean(self.bit_conf)) if self.bit_conf else 0.0,
            windows=self.windows,
            store_confirmed=found and self.store_confirmed_windows == self.found_windows,
            speed=self.warp[0] if found else 1.0,
            pitch_semitones=self.warp[1] if found else 0.0,
        )


def _store_failed(failures: list[str], exc: StoreError, doing: str) -> None:
    """Record the store's failure in ``failures``; log it only the first time it is seen, since
    every later window of the file would log the same fault again."""
    if exc.message not in failures:
        log.warning("%s failed: %s", doing, exc)
    failures.append(exc.message)


def _unnamed(det: Any, known: Any, store_failed: list[str]) -> bool:
    """Whether a detection names no issued payload: none decoded, or one the store never issued."""
    if det.payload is None:
        return True
    try:
        return not known.find([det.payload])
    except StoreError as exc:
        _store_failed(store_failed, exc, "looking up a decoded payload")
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


_Detection = tuple[_KeySearch, Any, float]
"""One key's detection in a window or sub-window, with the window's start on the audio's timeline (s)."""


@dataclass
class _Scan:
    """What one :func:`scan_watermark` shares between its analysis windows, which are read on
    worker threads and collected, one window's detections at a time, on the calling thread."""

    searches: list[_KeySearch]
    limits: VerifyLimits
    stats: DecodeStats
    deadline: float | None
    known: Any | None
    listing: bool
    """Whether ``known`` can list the issued payloads (:class:`~provenance.watermark.known.IssuedList`)."""
    rejected: list[str] = field(default_factory=list)
    """Why the detector refused windows (too short, or a rate the watermark does not cover)."""
    failed: list[str] = field(default_factory=list)
    """Detector failures, as ``"<exception type> at <start> s"``."""
    store_failed: list[str] = field(default_factory=list)
    """The store's messages when matching the issued payloads failed."""
    issued_checks: list[tuple[int, bool, float]] = field(default_factory=list)
    """(candidates looked up, matched, match's bound) of each found window that looked some up."""
    silent: int = 0
    """Windows skipped as digital silence."""
    matched: int = 0
    """Windows matched against the issued payloads so far (all keys)."""
    searched: int = 0
    """Windows given the speed/pitch search so far (all keys)."""
    turns: threading.Condition = field(default_factory=threading.Condition)
    """Guards ``matched``, ``turn``, ``finished`` and ``aborted`` (windows are read, and matched,
    on several threads)."""
    turn: int = 0
    """Index of the first window (in the file's order) whose reads are not all done."""
    finished: set[int] = field(default_factory=set)
    """Windows done whose turn has not come yet (an earlier one is still being read)."""
    aborted: bool = False
    """Set when the scan stops early: no window waits for its turn any more."""
    window: threading.local = field(default_factory=threading.local)
    """The index of the window this thread is reading (``window.index``)."""

    def may_match(self) -> bool:
        """Whether one more window may be matched against the issued payloads (it counts).

        The budget is handed out in the file's order, whichever thread asks first: a window's
        thread waits until every earlier window has been read (and has taken what it needed),
        unless the budget is already spent, so the same file gives the same report."""
        budget = self.limits.issued_match_windows * max(1, len(self.searches))
        index = getattr(self.window, "index", None)
        with self.turns:
            while self.matched < budget and index is not None and self.turn < index and not self.aborted:
                if self.deadline is not None and time.monotonic() > self.deadline:
                    return False
                self.turns.wait(0.05)
            if self.matched >= budget:
                return False
            self.matched += 1
            return True

    def _window_done(self, index: int) -> None:
        """Window ``index`` has been read: the turn passes on over the windows done in order."""
        with self.turns:
            self.finished.add(index)
            while self.turn in self.finished:
                self.finished.remove(self.turn)
                self.turn += 1
            self.turns.notify_all()

    def abort(self) -> None:
        """Stop every wait for a turn (the scan ends early: deadline, interrupt, failure)."""
        with self.turns:
            self.aborted = True
            self.turns.notify_all()

    def check_deadline(self) -> None:
        """Raise :class:`DeadlineExceeded` once the time limit has passed (also called inside the
        detector's speed/pitch search, which takes seconds on a long window)."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DeadlineExceeded("verification exceeded its time limit while searching the watermark")

    def may_search(self) -> bool:
        """Whether one more window may have the speed/pitch search (it counts). Asked on the
        calling thread, in the file's order, as each window is handed to a worker."""
        self.searched += 1
        return self.searched <= self.limits.search_windows * max(1, len(self.searches))

    def read(
        self, s: _KeySearch, x: np.ndarray, offset_s: float, search: bool = True, whole: bool = True
    ) -> Any | None:
        """Key ``s``'s detection in ``x`` (mono samples starting ``offset_s`` seconds into the
        audio; a whole window, or a sub-window), or None when the detector could not read it."""
        from provenance.core.audio import Audio
        from provenance.watermark import detect
        from provenance.watermark.confirm import CONFIRM_P_VALUE

        try:
            audio = Audio(x[np.newaxis, :], self.stats.sample_rate)
            det = detect(audio, s.key, search=search, checkpoint=self.check_deadline)
            near = det.found or float(det.details.get("presence_p_value", 1.0)) <= CONFIRM_P_VALUE
            if (self.known is not None and (near or (self.listing and whole))
                    and _unnamed(det, self.known, self.store_failed) and self.may_match()):
                det = self.match_issued(s, audio, det, search, offset_s)
            return det
        except InputError as exc:
            # Too short for one watermark block, or a rate the watermark does not cover.
            self.rejected.append(exc.message)
        except DeadlineExceeded:
            raise
        except Exception as exc:  # a detector bug must not cost the rest of the report
            log.exception("watermark detector failed at %.1f s", offset_s)
            self.failed.append(f"{type(exc).__name__} at {offset_s:.0f} s")
        return None

    def match_issued(self, s: _KeySearch, audio: Any, det: Any, search: bool, offset_s: float) -> Any:
        """``det``, read again and matched against the issued payloads (``det`` itself when the
        store fails)."""
        from provenance.watermark import detect

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
            again = detect(audio, s.key, search=search and warped, known=self.known, checkpoint=self.check_deadline)
            det = dataclasses.replace(again, details={**det.details, **again.details})
        except StoreError as exc:
            _store_failed(self.store_failed, exc, f"matching issued payloads at {offset_s:.1f} s")
        return det

    def read_window(self, start: int, window: np.ndarray, search: list[bool], index: int | None = None
                    ) -> list[_Detection]:
        """Every key's detections in the analysis window starting at frame ``start``: the whole
        window's, each followed by its sub-windows' where the window needs refining; ``search``
        says, key by key, whether the whole window gets the speed/pitch search. ``index``: the
        window's place in the file's order (the issued-payload budget is handed out in it)."""
        sr = self.stats.sample_rate
        offset_s = start / sr
        out = []
        self.window.index = index
        try:
            for s, searched in zip(self.searches, search):
                det = self.read(s, window, offset_s, search=searched)
                if det is None:
                    continue
                out.append((s, det, offset_s))
                if needs_refinement(det, window, sr, self.limits):
                    out.extend(self.read_sub_windows(s, window, sr, offset_s))
        finally:
            self.window.index = None
            if index is not None:
                self._window_done(index)
        return out

    def read_sub_windows(self, s: _KeySearch, window: np.ndarray, sr: int, offset_s: float) -> list[_Detection]:
        """Key ``s``'s detections in short, overlapping sub-windows of ``window`` (sample rate
        ``sr``, Hz), until the deadline passes."""
        # A splice, or a mark too faint to show over the whole window: search again in short,
        # overlapping sub-windows, whose evidence is not diluted by unmarked audio and whose
        # segments place the boundaries better (each is one more test: see the correction).
        out = []
        sub, hop = int(self.limits.refine_window_s * sr), int(self.limits.refine_hop_s * sr)
        starts = list(range(0, max(1, window.shape[0] - sub + 1), hop))
        if starts[-1] + sub < window.shape[0]:
            starts.append(window.shape[0] - sub)
        for k in starts:
            if self.deadline is not None and time.monotonic() > self.deadline:
                break
            part = window[k : k + sub]
            if part.shape[0] < sub // 2 or float(np.max(np.abs(part))) < SILENCE_PEAK:
                continue
            # Sub-windows look for splices and faint marks on the timeline the whole window
            # was tested on; the speed and pitch search ran on the whole window.
            d2 = self.read(s, part, offset_s + k / sr, search=False, whole=False)
            if d2 is not None:
                out.append((s, d2, offset_s + k / sr))
        return out

    def read_all(self, chunks: Iterator[np.ndarray], threads: int) -> None:
        """Read every analysis window of the decoded ``chunks`` on up to ``threads`` threads,
        collecting the windows' detections as they complete."""
        from concurrent.futures import Future, ThreadPoolExecutor

        # Windows are analysed on up to ``threads`` threads (NumPy/SciPy release the GIL in the heavy
        # parts); at most ``threads + 1`` windows are in memory at once. The search budget is
        # handed out, and the windows' detections collected, in the file's order, whichever
        # thread finishes first: the same file gives the same report on any number of threads.
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            inflight: deque[Future[list[_Detection]]] = deque()
            submitted = 0
            try:
                for start, window in analysis_windows(chunks, self.stats, self.limits):
                    self.check_deadline()
                    if window.shape[0] == 0 or float(np.max(np.abs(window))) < SILENCE_PEAK:
                        self.silent += 1
                        continue
                    search = [self.may_search() for _ in self.searches]
                    inflight.append(pool.submit(self.read_window, start, window, search, submitted))
                    submitted += 1
                    while len(inflight) > max(1, threads):
                        self.collect(inflight.popleft().result())
                while inflight:
                    self.collect(inflight.popleft().result())
            finally:
                self.abort()  # a no-op once every window is collected
                for f in inflight:
                    f.cancel()

    def collect(self, results: list[_Detection]) -> None:
        """Add one window's detections to their keys' evidence."""
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
                self.issued_checks.append((int(det.details["issued_candidates"]), matched_here,
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

    def add_notes(self, notes: list[str]) -> None:
        """Say in ``notes`` what kept windows from being read or matched, and what the issued
        payloads named."""
        from provenance.watermark.embed import min_duration_s
        from provenance.watermark.known import false_match_bound

        if self.failed:
            notes.append(
                f"The watermark detector failed on {len(self.failed)} analysis window(s) ({self.failed[0]}); "
                "those parts were not checked."
            )
        if self.store_failed:
            notes.append(
                f"Matching the watermark against the manifest store's payloads failed ({self.store_failed[0]})."
            )
        matched_windows = sum(1 for _, hit, _ in self.issued_checks if hit)
        if matched_windows and self.known is not None:
            # Each match's own bound (its list candidates, or its correlation with every issued
            # codeword), and the list candidates of the windows that matched nothing.
            bound = sum(b for _, hit, b in self.issued_checks if hit) + false_match_bound(
                sum(n for n, hit, _ in self.issued_checks if not hit), self.known.count())
            notes.append(
                f"In {matched_windows} analysis window(s) the watermark's payload could not be decoded on its own "
                f"(too damaged, or in less audio than the {min_duration_s():.2f} s block that holds all of it) and was "
                "named by matching against the payloads the manifest store has issued (chance of a false match at "
                f"most {bound:.1e})."
            )
        if self.rejected and not any(s.windows for s in self.searches):
            notes.append(f"The watermark could not be checked: {self.rejected[0]}")
        elif self.silent and not any(s.windows for s in self.searches):
            notes.append("The audio is digital silence (below -96 dBFS): it cannot carry a watermark.")


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
    progress: Callable[[float], None] | None = None,
) -> list[WatermarkResult]:
    """Detect every key's mark window by window. ``known``: the manifest store's issued payloads
    (:class:`~provenance.watermark.known.KnownPayloads`), which name the payload of a mark found
    too damaged to decode on its own, or None. ``progress``, if given, is called with the share
    (0-1) of the audio decoded (of the container's duration, or of the length cap)."""
    from provenance.watermark.known import IssuedList

    searches = [_KeySearch(key=k) for k in keyring]
    chunks = iter_mono(
        path,
        container_format=container.format,
        deadline=deadline,
        max_duration_s=limits.max_duration_s,
        stats=stats,
    )
    if progress is not None:
        chunks = _reporting(chunks, stats, min(limits.max_duration_s, container.duration_s or math.inf), progress)
    scan = _Scan(searches=searches, limits=limits, stats=stats, deadline=deadline, known=known,
                 listing=isinstance(known, IssuedList))
    scan.read_all(chunks, threads)
    if progress is not None:
        progress(1.0)
    scan.add_notes(notes)
    if stats.frames == 0:
        raise FormatError("no audio could be decoded from the file")
    analysed_s = stats.frames / stats.sample_rate
    return [s.result(analysed_s) for s in searches]


def _reporting(chunks: Iterator[np.ndarray], stats: DecodeStats, total_s: float,
               progress: Callable[[float], None]) -> Iterator[np.ndarray]:
    """``chunks`` as they are, calling ``progress`` with the share of ``total_s`` seconds decoded
    (0 while the length is unknown: a stream without a duration)."""
    for chunk in chunks:
        yield chunk
        if stats.sample_rate and math.isfinite(total_s) and total_s > 0:
            progress(min(1.0, stats.frames / stats.sample_rate / total_s))


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
