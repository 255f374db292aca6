"""Audio-visual sync benchmark: onsets of generated soundtracks vs. known visual events.

For every video listed in ``EVENTS.json`` (see ``shared/video/README.md``) the built-in
generator (or another one) makes a soundtrack; onsets are detected in that soundtrack and
matched one-to-one to the listed visual event times. Reported per video and pooled over the
synthetic and the real videos:

* median and 95th percentile absolute timing error of matched onsets (ms);
* recall (events that got an onset) and precision (onsets that belong to an event);
* a global audio-visual offset: the lag maximising the cross-correlation of the visual
  motion-change envelope and the audio onset envelope (positive = audio late);
* where the video has its own (non-silent) audio: the same measures for the original
  track, and our onsets against the original onsets.

Onsets: per-band rise above each band's own recent background (about 20 log-spaced bands,
21 ms window, 2.5 ms hop), above an adaptive threshold (local median + 8 MAD), finds candidates; each is refined on a 1 ms energy envelope to the point where the
level first rises 10% of the way from the preceding background to the attack peak, and kept
if that rise is at least 6 dB (an audible attack).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import stft

from provenance.core.audio import Audio

TOLERANCE_S = 0.1
"""Largest |onset - event| that counts as a match, seconds."""
TARGETS = {
    "synthetic_median_abs_error_ms": 10.0,
    "synthetic_p95_abs_error_ms": 40.0,
    "synthetic_recall": 0.95,
    "synthetic_precision": 0.9,
    "real_recall": 0.8,
    "median_abs_offset_ms": 40.0,
}
_HOP = 120  # 2.5 ms at 48 kHz
_NFFT = 1024
_ENV_RATE = 100.0  # Hz, for the cross-correlation envelopes
_MAX_LAG_S = 0.5


# ----------------------------------------------------------------------------- onsets
@lru_cache(maxsize=4)
def _band_matrix(nfft: int, sr: int, bands: int = 24, min_bins: int = 4) -> np.ndarray:
    """(bands, bins) averaging matrix: log-spaced bands 40 Hz - 16 kHz, each at least
    ``min_bins`` FFT bins wide (narrower low bands are merged: their energy would flicker)."""
    freqs = np.fft.rfftfreq(nfft, 1 / sr)
    edges = np.geomspace(40.0, min(16_000.0, sr / 2), bands + 1)
    rows = []
    lo = edges[0]
    for hi in edges[1:]:
        sel = (freqs >= lo) & (freqs < hi)
        if sel.sum() < min_bins and hi < edges[-1]:
            continue  # widen this band into the next one
        row = sel.astype(np.float64)
        rows.append(row / max(row.sum(), 1.0))
        lo = hi
    return np.array(rows)


def onset_envelope(audio: Audio) -> tuple[np.ndarray, np.ndarray]:
    """(times_s, strength): how far the spectrum rises above its own recent background.

    For each of ~20 log-spaced bands (2.5 ms hop, 21 ms window), the level in dB is compared
    with its median over the preceding 20-200 ms; rises beyond 6 dB are summed over bands.
    A noise bed's flicker stays under 6 dB and adds nothing, so a low thump under broadband
    hiss counts as much as a bright click over silence."""
    x = audio.mono().astype(np.float64)
    sr = audio.sample_rate
    hop = max(1, int(round(_HOP * sr / 48_000)))
    nfft = max(256, int(round(_NFFT * sr / 48_000)))
    _, t, z = stft(x, fs=sr, nperseg=nfft, noverlap=nfft - hop, boundary="zeros", padded=True)
    level = 10 * np.log10(1e-12 + _band_matrix(nfft, sr) @ (np.abs(z) ** 2))  # (bands, frames)
    from numpy.lib.stride_tricks import sliding_window_view

    past, gap = int(round(0.18 * sr / hop)), int(round(0.02 * sr / hop))
    padded = np.concatenate([np.repeat(level[:, :1], past + gap, axis=1), level], axis=1)
    background = np.median(sliding_window_view(padded, past, axis=1)[:, : level.shape[1]], axis=2)
    strength = np.maximum(level - background - 6.0, 0.0).sum(axis=0)
    return t, strength


def _refine(x: np.ndarray, sr: int, t_peak: float) -> tuple[float, float]:
    """(onset time, rise in dB) near a flux peak: the onset is where the 1 ms envelope first
    rises 10% of the way from the background before it to the attack maximum."""
    win = max(1, sr // 1000)
    a = max(0, int((t_peak - 0.04) * sr))
    b = min(len(x), int((t_peak + 0.02) * sr))
    if b - a < 4 * win:
        return t_peak, 0.0
    seg = np.abs(x[a:b])
    env = np.convolve(seg, np.ones(win) / win, mode="same")
    pre = env[: max(1, len(env) // 4)]
    background = float(np.percentile(pre, 90))  # the top of the background's own ripple
    peak_i = int(np.argmax(env))
    rise_db = 20 * np.log10((env[peak_i] + 1e-12) / (background + 1e-12))
    level = background + 0.1 * (env[peak_i] - background)
    above = np.nonzero(env[: peak_i + 1] >= level)[0]
    if above.size == 0:
        return t_peak, rise_db
    # the first sample of the last run that stays above the level up to the peak
    runs = np.split(above, np.nonzero(np.diff(above) > 1)[0] + 1)
    return (a + int(runs[-1][0])) / sr, rise_db


def detect_onsets(audio: Audio, *, min_gap_s: float = 0.05, min_rise_db: float = 6.0, k_mad: float = 8.0) -> np.ndarray:
    """Onset times (s) in ``audio``.

    A flux peak is an onset candidate when it stands ``k_mad`` median absolute deviations
    above the median flux of the surrounding half second; it is kept when the level then
    rises at least ``min_rise_db`` above the background just before it (an audible attack,
    not a ripple in a noise bed). Onsets closer than ``min_gap_s`` are one onset.
    """
    times, flux = onset_envelope(audio)
    if flux.size < 3 or not np.any(flux):
        return np.zeros(0)
    hop_s = float(times[1] - times[0]) if len(times) > 1 else 0.0025
    half = max(1, int(0.25 / hop_s))
    from numpy.lib.stride_tricks import sliding_window_view

    windows = sliding_window_view(np.pad(flux, half, mode="reflect"), 2 * half + 1)[: len(flux)]
    local_med = np.median(windows, axis=1)
    local_mad = np.median(np.abs(windows - local_med[:, None]), axis=1)
    threshold = np.maximum(local_med + k_mad * local_mad, max(6.0, 0.02 * float(flux.max())))
    # rising edges only: the strength must come up from below half the threshold within the
    # last 20 ms, so the ringing decay of one hit is not counted as more hits
    back = max(1, int(round(0.02 / hop_s)))
    ahead = max(1, int(round(0.01 / hop_s)))
    peaks = []
    i = back
    while i < len(flux):
        if flux[i] >= threshold[i] and np.min(flux[i - back : i]) < 0.5 * threshold[i]:
            j = i + int(np.argmax(flux[i : i + ahead + 1]))
            peaks.append(j)
            i = j + back
        else:
            i += 1
    x = audio.mono().astype(np.float64)
    candidates = [(float(times[i]), float(flux[i])) for i in peaks]
    found: list[tuple[float, float]] = []
    for t_peak, strength in candidates:
        t, rise = _refine(x, audio.sample_rate, t_peak)
        if rise >= min_rise_db:
            found.append((t, strength))
    onsets: list[tuple[float, float]] = []
    for t, strength in sorted(found):
        if onsets and t - onsets[-1][0] < min_gap_s:
            if strength > onsets[-1][1]:
                onsets[-1] = (onsets[-1][0], strength)  # same attack: keep the earlier time
            continue
        onsets.append((t, strength))
    return np.asarray([t for t, _ in onsets])


# ----------------------------------------------------------------------------- matching
@dataclass(frozen=True)
class Matching:
    errors_s: tuple[float, ...]
    """Signed onset - event for each matched event, seconds."""
    n_events: int
    n_onsets: int

    @property
    def matched(self) -> int:
        return len(self.errors_s)

    @property
    def recall(self) -> float:
        return self.matched / self.n_events if self.n_events else float("nan")

    @property
    def precision(self) -> float:
        return self.matched / self.n_onsets if self.n_onsets else float("nan")


def match(events_s: np.ndarray, onsets_s: np.ndarray, tolerance_s: float = TOLERANCE_S) -> Matching:
    """One-to-one matching, closest pairs first, within ``tolerance_s``."""
    pairs = sorted(
        (abs(o - e), i, j) for i, e in enumerate(events_s) for j, o in enumerate(onsets_s) if abs(o - e) <= tolerance_s
    )
    used_e: set[int] = set()
    used_o: set[int] = set()
    errors = []
    for _, i, j in pairs:
        if i in used_e or j in used_o:
            continue
        used_e.add(i)
        used_o.add(j)
        errors.append(float(onsets_s[j] - events_s[i]))
    return Matching(tuple(errors), len(events_s), len(onsets_s))


# ----------------------------------------------------------------------------- offset
def _to_grid(times: np.ndarray, values: np.ndarray, duration_s: float) -> np.ndarray:
    """Max-pool (times, values) into bins of 1/_ENV_RATE seconds."""
    n = int(np.ceil(duration_s * _ENV_RATE)) + 1
    grid = np.zeros(n)
    idx = np.clip(np.round(np.asarray(times) * _ENV_RATE).astype(int), 0, n - 1)
    np.maximum.at(grid, idx, np.asarray(values, dtype=np.float64))
    return grid


def _salient(x: np.ndarray, k_mad: float = 4.0) -> np.ndarray:
    """Keep the local maxima that stand out (median + k MAD over a 1 s window), zero elsewhere."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 3:
        return x
    half = max(1, min(len(x) // 2, 25))
    from numpy.lib.stride_tricks import sliding_window_view

    w = sliding_window_view(np.pad(x, half, mode="reflect"), 2 * half + 1)[: len(x)]
    med = np.median(w, axis=1)
    mad = np.median(np.abs(w - med[:, None]), axis=1)
    peak = np.zeros_like(x)
    core = (x[1:-1] >= x[:-2]) & (x[1:-1] >= x[2:]) & (x[1:-1] > med[1:-1] + k_mad * mad[1:-1] + 1e-9)
    peak[1:-1][core] = x[1:-1][core] - med[1:-1][core]
    return peak


def visual_envelope(motion) -> np.ndarray:
    """Visual onset strength per frame: salient peaks of the frame-to-frame acceleration of the
    tracked objects (no sub-frame fitting, no impact rules) and of sudden brightenings, each
    scaled to its own maximum; the optical-flow change stands in when nothing is tracked."""
    accel = getattr(motion, "acceleration", None)
    parts = [_salient(accel)] if accel is not None and np.any(accel) else [_salient(motion.change)]
    if getattr(motion, "appear", None) is not None:
        parts.append(_salient(motion.appear))
    out = np.zeros(len(motion.times_s))
    for p in parts:
        if p.max() > 0:
            out = np.maximum(out, p / p.max())
    return out


def av_offset(visual_times: np.ndarray, visual_env: np.ndarray, audio: Audio, duration_s: float) -> float:
    """Lag (s, + = audio late) maximising the cross-correlation of visual and audio onset envelopes."""
    at, strength = onset_envelope(audio)
    rising = np.maximum(np.diff(strength, prepend=strength[:1]), 0.0)  # peaks at the attacks
    a = _to_grid(at, _salient(rising, 8.0), duration_s)
    v = _to_grid(visual_times, visual_env, duration_s)
    # a 30 ms bump on both keeps a frame of jitter from splitting a peak
    kernel = np.hanning(5)
    a = np.convolve(a, kernel, mode="same")
    v = np.convolve(v, kernel, mode="same")
    a = (a - a.mean()) / (a.std() + 1e-12)
    v = (v - v.mean()) / (v.std() + 1e-12)
    max_lag = int(_MAX_LAG_S * _ENV_RATE)
    lags = np.arange(-max_lag, max_lag + 1)
    n = len(a)
    corr = np.array([np.dot(v[max(0, -k) : n - max(0, k)], a[max(0, k) : n - max(0, -k)]) for k in lags])
    i = int(np.argmax(corr))
    shift = 0.0
    if 0 < i < len(corr) - 1:
        den = corr[i - 1] - 2 * corr[i] + corr[i + 1]
        if den < 0:
            shift = 0.5 * (corr[i - 1] - corr[i + 1]) / den
    return float((lags[i] + shift) / _ENV_RATE)


# ----------------------------------------------------------------------------- benchmark
@dataclass
class VideoResult:
    file: str
    kind: str
    events: int
    onsets: int
    matched: int
    recall: float
    precision: float
    median_abs_error_ms: float
    p95_abs_error_ms: float
    av_offset_ms: float
    errors_ms: list[float] = field(default_factory=list)
    generate_s: float = 0.0
    original_audio: dict | None = None
    """Original track (if it has sound): its onsets vs events, and ours vs its onsets."""


def _met_text(met: bool | None) -> str:
    """The table's "met" cell: yes, NO, or n/a for a target without data."""
    return "n/a" if met is None else "yes" if met else "NO"


@dataclass
class SyncReport:
    videos: list[VideoResult]
    summary: dict
    targets: dict = field(default_factory=lambda: dict(TARGETS))
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"settings": self.settings, "targets": self.targets, "summary": self.summary,
                "videos": [asdict(v) for v in self.videos]}

    def targets_met(self) -> dict[str, bool | None]:
        """Target name -> met, or None where the measure has no value (no data for it: no real
        video for ``real_recall``). Not measured is not missed: a set without real videos
        reported real_recall as a missed target. A value missing through a failure (no onset
        found) leaves recall at 0, which is missed."""
        out: dict[str, bool | None] = {}
        for key, target in self.targets.items():
            val = self.summary.get(key)
            if val is None or not np.isfinite(val):
                out[key] = None
                continue
            higher = "recall" in key or "precision" in key
            out[key] = bool((val >= target) if higher else (abs(val) <= target))
        return out

    def passed(self) -> bool:
        """Every target with a value is met, and at least one has a value (a set with nothing
        to measure verifies nothing)."""
        met = self.targets_met().values()
        return False not in met and True in met

    def markdown(self) -> str:
        s = self.summary
        lines = [
            "# Audio-visual sync benchmark",
            "",
            f"Generator `{self.settings.get('generator')}`, prompt {self.settings.get('prompt')!r}, "
            f"seed {self.settings.get('seed')}, match tolerance {self.settings.get('tolerance_ms')} ms.",
            "",
            "| video | kind | events | onsets | matched | recall | precision | median abs err (ms) | p95 abs err (ms) | AV offset (ms) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for v in self.videos:
            lines.append(
                f"| {v.file} | {v.kind} | {v.events} | {v.onsets} | {v.matched} | {_num(v.recall, '.2f')} | "
                f"{_num(v.precision, '.2f')} | {_num(v.median_abs_error_ms, '.1f')} | {_num(v.p95_abs_error_ms, '.1f')} | "
                f"{_num(v.av_offset_ms, '+.1f')} |"
            )
        lines += ["", "| measure | value | target | met |", "|---|---|---|---|"]
        met = self.targets_met()
        for key, target in self.targets.items():
            val = s.get(key, float("nan"))
            higher = "recall" in key or "precision" in key
            lines.append(f"| {key} | {_num(val, '.3f')} | {'>=' if higher else '<='} {target} | {_met_text(met[key])} |")
        orig = [v for v in self.videos if v.original_audio]
        if orig:
            lines += ["", "Original audio tracks (where present and not silent):", "",
                      "| video | original onsets | orig. recall vs events | orig. median abs err (ms) | ours vs original: matched | median abs diff (ms) |",
                      "|---|---|---|---|---|---|"]
            for v in orig:
                o = v.original_audio
                lines.append(
                    f"| {v.file} | {o['onsets']} | {_num(o['recall_vs_events'], '.2f')} | "
                    f"{_num(o['median_abs_error_ms_vs_events'], '.1f')} | "
                    f"{o['ours_matched_to_original']}/{o['onsets']} | {_num(o['median_abs_diff_ours_vs_original_ms'], '.1f')} |"
                )
        return "\n".join(lines) + "\n"


def _num(value: float | None, spec: str) -> str:
    """``value`` formatted by ``spec``, or ``n/a`` where it could not be measured (``sync.json``
    holds null there; the table printed ``nan``)."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return format(value, spec)


def _stats(errors_s: list[float]) -> tuple[float, float]:
    if not errors_s:
        return float("nan"), float("nan")
    a = np.abs(np.asarray(errors_s)) * 1000
    return float(np.median(a)), float(np.percentile(a, 95))


def _original_audio(path: Path, events: np.ndarray, ours: np.ndarray, tolerance_s: float) -> dict | None:
    from provenance.core.io import audio_info, read_audio, video_start_s

    try:
        audio = read_audio(path)
        # the track's own time, put on the picture's timeline as the events and ours are
        shift = audio_info(path).start_s - video_start_s(path)
    except Exception:
        return None
    if audio.frames == 0 or float(np.max(np.abs(audio.samples))) < 1e-4:
        return None  # silent track (e.g. the mecavideo clip): nothing to compare
    onsets = detect_onsets(audio) + shift
    vs_events = match(events, onsets, tolerance_s)
    vs_ours = match(onsets, ours, tolerance_s)
    med, _ = _stats(list(vs_events.errors_s))
    med_ours, _ = _stats(list(vs_ours.errors_s))
    return {
        "onsets": len(onsets),
        "recall_vs_events": vs_events.recall,
        "median_abs_error_ms_vs_events": med,
        "ours_matched_to_original": vs_ours.matched,
        "median_abs_diff_ours_vs_original_ms": med_ours,
    }


def load_cue_sheet(path: Path) -> list[dict[str, Any]]:
    """The videos and their visual event times from an ``EVENTS.json`` (a list of objects with
    ``file`` and ``events``, each event with ``t`` in seconds); :class:`ConfigError` naming the
    file and the first fault otherwise."""
    from provenance.core.errors import ConfigError

    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("cue sheet not found (the videos folder needs an EVENTS.json)", path=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the cue sheet: {exc}", path=path) from None
    if not isinstance(entries, list) or not entries:
        raise ConfigError("the cue sheet must be a non-empty list of videos", path=path)
    for i, entry in enumerate(entries):
        where = f"video {i + 1}"
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise ConfigError(f"{where}: needs a \"file\" name", path=path)
        events = entry.get("events")
        if not isinstance(events, list) or not all(
            isinstance(e, dict) and isinstance(e.get("t"), (int, float)) and not isinstance(e.get("t"), bool)
            and math.isfinite(e["t"]) for e in events
        ):
            raise ConfigError(f"{where} ({entry['file']}): \"events\" must be a list of {{\"t\": seconds}}", path=path)
        if not (path.parent / entry["file"]).is_file():
            raise ConfigError(f"{where}: video {entry['file']} not found beside the cue sheet", path=path)
    return entries


def run_sync_benchmark(
    videos_dir: str | Path,
    *,
    prompt: str = "",
    negative_prompt: str = "",
    seed: int = 0,
    generator: str = "builtin",
    tolerance_s: float = TOLERANCE_S,
    progress=None,
) -> SyncReport:
    """Generate a soundtrack for each video in ``videos_dir/EVENTS.json`` and score its sync."""
    from v2a_core.analysis import analyze
    from v2a_core.pipeline import generate_soundtrack
    from v2a_core.video import probe

    videos_dir = Path(videos_dir)
    entries = load_cue_sheet(videos_dir / "EVENTS.json")
    results: list[VideoResult] = []
    for k, entry in enumerate(entries):
        path = videos_dir / entry["file"]
        # EVENTS.json gives frame times on the file's own timestamps; a soundtrack starts with the
        # first picture (real_movie_hello.mp4's picture starts 33 ms in)
        events = np.array([e["t"] for e in entry["events"]], dtype=np.float64) - probe(path).start_s
        t0 = time.perf_counter()
        track = generate_soundtrack(path, prompt=prompt, negative_prompt=negative_prompt, seed=seed, generator=generator)
        gen_s = time.perf_counter() - t0
        onsets = detect_onsets(track.mix)
        m = match(events, onsets, tolerance_s)
        med, p95 = _stats(list(m.errors_s))
        analysis = analyze(path)  # the visual motion envelope, independent of the cue sheet
        offset = av_offset(analysis.motion.times_s, visual_envelope(analysis.motion), track.mix, analysis.duration_s)
        orig = _original_audio(path, events, onsets, tolerance_s) if entry.get("has_audio") else None
        results.append(
            VideoResult(
                file=entry["file"],
                kind=entry.get("kind", "unknown"),
                events=len(events),
                onsets=len(onsets),
                matched=m.matched,
                recall=m.recall,
                precision=m.precision,
                median_abs_error_ms=med,
                p95_abs_error_ms=p95,
                av_offset_ms=offset * 1000,
                errors_ms=[round(e * 1000, 2) for e in m.errors_s],
                generate_s=round(gen_s, 2),
                original_audio=orig,
            )
        )
        if progress:
            progress(k + 1, len(entries), entry["file"])
    return SyncReport(results, _summary(results), settings={
        "generator": generator, "prompt": prompt, "negative_prompt": negative_prompt, "seed": seed,
        "tolerance_ms": tolerance_s * 1000, "videos_dir": str(videos_dir),
    })


def _summary(results: list[VideoResult]) -> dict:
    out: dict = {}
    for kind in ("synthetic", "real"):
        rows = [r for r in results if r.kind == kind]
        if not rows:
            continue
        errors = [e / 1000 for r in rows for e in r.errors_ms]
        med, p95 = _stats(errors)
        events = sum(r.events for r in rows)
        onsets = sum(r.onsets for r in rows)
        matched = sum(r.matched for r in rows)
        out[f"{kind}_median_abs_error_ms"] = med
        out[f"{kind}_p95_abs_error_ms"] = p95
        out[f"{kind}_recall"] = matched / events if events else float("nan")
        out[f"{kind}_precision"] = matched / onsets if onsets else float("nan")
    offsets = [abs(r.av_offset_ms) for r in results]
    out["median_abs_offset_ms"] = float(np.median(offsets)) if offsets else float("nan")
    return out
