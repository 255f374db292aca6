"""Stage 2: stream the frames once and produce a :class:`~v2a_core.types.VisualAnalysis`.

Per frame (at the analysis size, long side 320 px):

* scene cuts: luma histogram distance and the share of changed pixels between frames
  a brightening of the whole picture that returns to the same picture (a flash) is no cut;
* motion energy: mean absolute luma change, whole frame and left/centre/right thirds;
* foreground: difference from a centred temporal-median background, split into blobs that
  a tracker follows; each finished track is searched for impacts (sub-frame timing, see
  :mod:`v2a_core.analysis.impacts`);
* appearances: pixels that change at once after being still (flashes, lights, text);
* optical flow (DIS) on a 3 x 3 grid: camera motion, turbulence, and the change of flow
  that marks impacts, used as the visual envelope for audio-visual sync checks;
* colour look every 0.25 s for the scene cues.

Frames are processed about one background window (0.8 s) after they are decoded; only
that window is buffered, so memory stays flat however long the video is.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from v2a_core.analysis.background import CentredMedianBackground
from v2a_core.analysis.blobs import find_blobs, foreground_mask
from v2a_core.analysis.flow import FlowMeter
from v2a_core.analysis.impacts import detect_impacts
from v2a_core.analysis.rhythm import estimate_rhythm
from v2a_core.analysis.scene import LookSample, look, summarise
from v2a_core.analysis.tracking import Track, Tracker
from v2a_core.types import Frame, MotionEnvelope, Scene, VisualAnalysis, VisualEvent
from v2a_core.video.decode import DEFAULT_MAX_SIDE, iter_frames, prefetch, probe

#: progress(done_s, total_s): seconds of video analysed so far and in all (total may be 0 if unknown).
ProgressFn = Callable[[float, float], None]


@dataclass(frozen=True)
class AnalysisSettings:
    max_side: int = DEFAULT_MAX_SIDE
    """Long side of analysis frames, pixels."""
    background_window_s: float = 3.0
    """Half-width of the background median window, seconds: an object must stay put about
    this long to become background."""
    background_step_s: float = 0.5
    luma_threshold: int = 20
    """Minimum luma difference from the background for a foreground pixel (0..255)."""
    chroma_threshold: int = 14
    min_blob_fraction: float = 0.00008
    """Smallest tracked blob, fraction of the frame area."""
    appear_min_fraction: float = 0.004
    """Smallest sudden appearance that makes an event, fraction of the frame area."""
    step_threshold: int = 25
    """Luma/chroma change (0..255) that counts a pixel as changed between two frames."""
    look_every_s: float = 0.25
    max_duration_s: float | None = None


class _Series:
    """Per-frame measurements (a few floats per frame)."""

    def __init__(self) -> None:
        self.t: list[float] = []
        self.scene: list[int] = []
        self.energy: list[float] = []
        self.regions: list[tuple[float, float, float]] = []
        self.fg: list[float] = []
        self.appear: list[float] = []
        self.appear_xy: list[tuple[float, float]] = []
        self.change: list[float] = []
        self.camera: list[float] = []
        self.turbulence: list[float] = []
        self.flicker: list[float] = []
        self.accel: list[float] = []


def _thumb_hist(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A small luma picture (at most 160 px wide) and its 32-bin histogram, for cut detection."""
    if luma.shape[1] > 160:
        luma = cv2.resize(luma, (160, max(4, luma.shape[0] * 160 // luma.shape[1])), interpolation=cv2.INTER_AREA)
    hist = np.bincount((luma >> 3).ravel(), minlength=32).astype(np.float64)
    return luma, hist / hist.sum()


def _is_cut(prev: tuple[np.ndarray, np.ndarray], cur: tuple[np.ndarray, np.ndarray]) -> bool:
    diff = cv2.absdiff(prev[0], cur[0])
    changed = float((diff > 40).mean())
    hist_l1 = float(np.abs(prev[1] - cur[1]).sum())
    return changed > 0.75 or (changed > 0.5 and (hist_l1 > 0.3 or float(diff.mean()) > 45))


#: Longest flash, seconds: a brightening of the whole picture that returns to the same
#: picture within this time is no scene cut.
FLASH_MAX_S = 0.25


def _brighter(prev: tuple[np.ndarray, np.ndarray], cur: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether the picture got brighter: nearly every clearly changed pixel gained luma (a flash;
    a cut to another picture darkens some pixels and brightens others)."""
    d = cur[0].astype(np.int16) - prev[0].astype(np.int16)
    changed = int(np.count_nonzero(np.abs(d) > 40))
    return changed > 0 and np.count_nonzero(d > 40) >= 0.9 * changed


def analyze(
    path: str | Path,
    *,
    settings: AnalysisSettings = AnalysisSettings(),
    progress: ProgressFn | None = None,
) -> VisualAnalysis:
    """Analyse the video at ``path`` in one streaming pass."""
    info = probe(path)
    frames = _FramePass(settings)
    frames.stream(path, info.duration_s, progress)

    assert frames.last_t is not None  # iter_frames raises when nothing decodes
    duration = frames.last_t + frames.last_shown
    series = frames.series
    times = np.asarray(series.t, dtype=np.float64)
    all_events = _visual_events(times, series, frames.events, frames.cuts, settings.appear_min_fraction)
    motion = _motion_envelope(times, series)
    scenes = _scenes(times, frames.cuts, duration, frames.looks, series, motion.foreground)
    overall = summarise(
        frames.looks,
        foreground=motion.foreground,
        turbulence=np.asarray(series.turbulence),
        camera=np.asarray(series.camera),
        flicker=np.asarray(series.flicker),
    )
    rhythm = estimate_rhythm(times, motion.energy, [e.time_s for e in all_events if e.kind != "cut"], duration)
    return VisualAnalysis(
        video=info,
        duration_s=float(duration),
        frame_count=frames.n_frames,
        analysis_size=frames.size,
        events=tuple(all_events),
        cuts=tuple(frames.cuts),
        scenes=tuple(scenes),
        motion=motion,
        rhythm=rhythm,
        cues=overall,
    )


class _FramePass:
    """The streaming half of :func:`analyze`: decodes the frames, finds the cuts as frames
    arrive, and measures each frame once the background model has its whole window.

    It holds the per-frame series and what one measured frame leaves for the next."""

    def __init__(self, settings: AnalysisSettings) -> None:
        s = settings
        self.settings = settings
        self.bg = CentredMedianBackground(window_s=s.background_window_s, step_s=s.background_step_s)
        self.tracker = Tracker()
        self.flow = FlowMeter()
        self.series = _Series()
        self.looks: list[LookSample] = []
        self.events: list[VisualEvent] = []
        """Impacts of the tracks analysed so far, in the order they were found."""
        self.cuts: list[float] = []
        """Scene cut times, seconds."""
        self.size: tuple[int, int] = (0, 0)
        """(width, height) of the analysis frames, pixels."""
        self.n_frames = 0
        self.last_t: float | None = None
        """Time of the last decoded frame, seconds."""
        self.last_shown = 0.0
        """How long the last decoded frame is shown, seconds."""
        # carried from one measured frame to the next (reset where a scene starts)
        self.prev: Frame | None = None
        self.prev_scene = -1
        self.prev_still: np.ndarray | None = None
        """uint8 0/1: pixels that did not change into the previous frame."""
        self.prev_regional: np.ndarray | None = None
        """(9, 2) regional flow of the last flow measurement, frame heights per second."""
        self.last_look = -np.inf
        """Time of the last colour look, seconds."""
        self.noise_bg: np.ndarray | None = None
        """The background whose compression noise ``noise`` is (compared by identity)."""
        self.noise = 0.0
        """Median luma difference (0..255) between a frame and that background."""
        self.flow_t: float | None = None
        """Time of the last flow measurement in this scene, seconds."""

    def stream(self, path: str | Path, total_s: float, progress: ProgressFn | None) -> None:
        """Decode ``path`` and measure every frame; ``total_s`` (seconds, 0 if unknown) goes to ``progress``."""
        s = self.settings
        self._pending: deque[tuple[Frame, int]] = deque()
        self._scene = 0
        self._last_arrival: tuple[np.ndarray, np.ndarray] | None = None
        self._before_flash: tuple[np.ndarray, np.ndarray] | None = None
        self._held: list[tuple[Frame, tuple[np.ndarray, np.ndarray]]] = []
        for fr in prefetch(iter_frames(path, max_side=s.max_side, max_duration_s=s.max_duration_s)):
            self.n_frames += 1
            self.size = (fr.yuv.shape[1], fr.yuv.shape[0])
            self.last_t, self.last_shown = fr.time_s, fr.shown_s
            self._arrive(fr, _thumb_hist((fr.half if fr.half is not None else fr.yuv)[..., 0]))
            if progress is not None:
                progress(fr.time_s, total_s)
        while self._held:  # the picture never came back: the brightening was a cut
            self._confirm_cut()  # (the frames after it may hold another)
        while self._pending:
            self._measure(*self._pending.popleft())
        self._run_tracks(self.tracker.finish())

    def _arrive(self, fr: Frame, arrival: tuple[np.ndarray, np.ndarray]) -> None:
        """Find the cuts as frames arrive, then pass each frame on with its scene number.

        A change of picture that brightens it (a flash, lightning) is held back until the
        picture either returns to what it was before (within ``FLASH_MAX_S``: a flash, no
        cut; the brightening is an appearance on its frame) or does not (a cut at its start).
        """
        if self._held:
            before = self._before_flash
            assert before is not None
            self._held.append((fr, arrival))
            if not _is_cut(before, arrival):  # the same picture as before the flash
                held, self._held = self._held, []
                for f, _ in held:
                    self._release(f)
            elif fr.time_s - self._held[0][0].time_s > FLASH_MAX_S or not _brighter(before, arrival):
                self._confirm_cut()
            self._last_arrival = arrival
            return
        last = self._last_arrival
        self._last_arrival = arrival
        if last is not None and _is_cut(last, arrival):
            if _brighter(last, arrival):
                self._before_flash = last
                self._held = [(fr, arrival)]
                return
            self._scene += 1
            self.cuts.append(fr.time_s)
        self._release(fr)

    def _confirm_cut(self) -> None:
        """The held brightening was a cut: its first frame starts a scene; the frames after it
        are looked at again for cuts of their own."""
        held, self._held = self._held, []
        (first, arrival), rest = held[0], held[1:]
        self._scene += 1
        self.cuts.append(first.time_s)
        self._release(first)
        self._last_arrival = arrival
        for f, a in rest:
            self._arrive(f, a)

    def _release(self, fr: Frame) -> None:
        """Add a frame of scene ``self._scene`` to the background model and measure the frames it makes ready."""
        scene = self._scene
        if fr.half is not None and self.bg.scale == 2:
            self.bg.add(fr.time_s, scene, fr.half, reduced=True)
        else:
            self.bg.add(fr.time_s, scene, fr.yuv)
        pending = self._pending
        pending.append((fr, scene))
        while pending and (pending[0][0].time_s <= self.bg.ready_until() or pending[0][1] < scene):
            self._measure(*pending.popleft())

    def _run_tracks(self, tracks: list[Track], until_s: float = np.inf) -> None:
        """Add the impacts of ``tracks`` before ``until_s`` (seconds) to the events."""
        for tr in tracks:
            self.events.extend(detect_impacts(tr, width=self.size[0], height=self.size[1], until_s=until_s))

    def _measure(self, fr: Frame, scene: int) -> None:
        """Append one frame's row to every series (frames come in time order)."""
        new_scene = self.prev is None or scene != self.prev_scene
        self.series.t.append(fr.time_s)
        self.series.scene.append(scene)
        if new_scene:
            self._start_scene()
        else:
            assert self.prev is not None
            self._measure_change(fr.yuv, self.prev.yuv)
        self._follow_objects(fr, scene, new_scene)
        self._measure_flow(fr, new_scene)
        # every scene gets a look of its own, however short: a flash cut to another place
        # would otherwise take the colours of whatever the last look saw
        if new_scene or fr.time_s - self.last_look >= self.settings.look_every_s:
            self.looks.append(look(fr.time_s, fr.half if fr.half is not None else fr.yuv))
            self.last_look = fr.time_s
        self.prev = fr
        self.prev_scene = scene

    def _start_scene(self) -> None:
        """The first frame of a scene has nothing to be compared with: zero change, and the
        appearance and flow history starts afresh."""
        series = self.series
        series.energy.append(0.0)
        series.regions.append((0.0, 0.0, 0.0))
        series.appear.append(0.0)
        series.appear_xy.append((0.0, 0.0))
        series.flicker.append(0.0)
        self.prev_still = None
        self.prev_regional = None
        self.flow.reset()

    def _measure_change(self, yuv: np.ndarray, prev_yuv: np.ndarray) -> None:
        """Motion energy (whole frame and thirds), flicker and appearances since the previous frame."""
        w = yuv.shape[1]
        d = cv2.absdiff(yuv, prev_yuv)
        dy, du, dv = cv2.split(d)
        third = w // 3
        energy = cv2.mean(dy)[0] / 255.0
        self.series.energy.append(energy)
        self.series.regions.append(
            tuple(cv2.mean(dy[:, a:b])[0] / 255.0 for a, b in ((0, third), (third, w - third), (w - third, w)))
        )
        self.series.flicker.append(abs(cv2.mean(yuv[..., 0])[0] - cv2.mean(prev_yuv[..., 0])[0]) / 255.0)
        dmax = cv2.max(cv2.max(dy, du), dv)
        self._measure_appearance(yuv[..., 0], prev_yuv[..., 0], du, dv, dmax)

    def _measure_appearance(
        self, luma: np.ndarray, prev_luma: np.ndarray, du: np.ndarray, dv: np.ndarray, dmax: np.ndarray
    ) -> None:
        """Share (0..1) and centre (-1..+1) of the pixels that change at once after being still;
        ``du``/``dv``/``dmax``: absolute chroma and largest change since the previous frame (0..255)."""
        s = self.settings
        h, w = luma.shape
        # only pixels that get brighter count as appearing: lights, flashes, text on
        # a screen; something vanishing or an object jumping away makes no sound
        brighter = cv2.subtract(luma, prev_luma)
        darker = cv2.subtract(prev_luma, luma)
        _, lit = cv2.threshold(brighter, s.step_threshold, 1, cv2.THRESH_BINARY)
        _, recoloured = cv2.threshold(cv2.max(du, dv), s.step_threshold, 1, cv2.THRESH_BINARY)
        _, not_darker = cv2.threshold(darker, s.step_threshold // 2, 1, cv2.THRESH_BINARY_INV)
        changed = cv2.bitwise_or(lit, cv2.bitwise_and(recoloured, not_darker))
        still_before = self.prev_still
        step = cv2.bitwise_and(changed, still_before) if still_before is not None else None
        count = cv2.countNonZero(step) if step is not None else 0
        frac = count / float(w * h)
        self.series.appear.append(frac)
        if count:
            m = cv2.moments(step, binaryImage=True)
            self.series.appear_xy.append((m["m10"] / m["m00"] / w * 2 - 1, m["m01"] / m["m00"] / h * 2 - 1))
        else:
            self.series.appear_xy.append((0.0, 0.0))
        _, still = cv2.threshold(dmax, s.step_threshold // 2, 1, cv2.THRESH_BINARY_INV)
        self.prev_still = still

    def _follow_objects(self, fr: Frame, scene: int, new_scene: bool) -> None:
        """Foreground share, blobs, tracking, and the impacts of the tracks that ended or grew long."""
        yuv = fr.yuv
        h, w = yuv.shape[:2]
        mask = self._foreground_mask(fr, scene)
        fg = cv2.countNonZero(mask) / float(mask.size)
        self.series.fg.append(fg)
        if fg < 0.5:
            blobs, labels = find_blobs(mask, yuv, min_area=max(4.0, self.settings.min_blob_fraction * w * h))
        else:
            blobs, labels = [], None
        self._run_tracks(self.tracker.update(fr.time_s, yuv, blobs, labels, skip=new_scene or fg >= 0.5))
        self._measure_acceleration(fr.time_s, h)
        for tr in self.tracker.long_tracks():
            cut_at = tr.obs[-20].time_s
            self._run_tracks([tr], until_s=cut_at)
            tr.obs = tr.obs[-20:]
            tr.emitted_until_s = cut_at

    def _foreground_mask(self, fr: Frame, scene: int) -> np.ndarray:
        """0/1 mask, at the background model's size, of the pixels that differ from the background."""
        s = self.settings
        background = self.bg.background(fr.time_s, scene)
        small = fr.half if fr.half is not None and fr.half.shape == background.shape else cv2.resize(
            fr.yuv, (background.shape[1], background.shape[0]), interpolation=cv2.INTER_AREA
        )
        if self.noise_bg is not background:
            # compression noise level of this background, from a sparse pixel sample
            diff = cv2.absdiff(small[::2, ::2, 0], background[::2, ::2, 0])
            self.noise = float(np.median(diff))
            self.noise_bg = background
        noise = self.noise
        return foreground_mask(
            small,
            background,
            luma_thr=int(max(s.luma_threshold, 6 * noise + 4)),
            chroma_thr=int(max(s.chroma_threshold, 4 * noise + 4)),
        )

    def _measure_acceleration(self, t: float, h: int) -> None:
        """Add each track's velocity change over its last three observations (frame heights per
        second) to the frame in their middle; ``t``: this frame's time, ``h``: its height, pixels."""
        series = self.series
        series.accel.append(0.0)
        for tr in self.tracker.active:
            if len(tr.obs) >= 3 and tr.obs[-1].time_s == t:
                o0, o1, o2 = tr.obs[-3:]
                if o2.time_s - o0.time_s < 0.2:
                    v1 = np.subtract((o1.x, o1.y), (o0.x, o0.y)) / (o1.time_s - o0.time_s)
                    v2 = np.subtract((o2.x, o2.y), (o1.x, o1.y)) / (o2.time_s - o1.time_s)
                    k = bisect.bisect_left(series.t, o1.time_s)
                    if k < len(series.accel):
                        series.accel[k] += float(np.hypot(*(v2 - v1))) / h

    def _measure_flow(self, fr: Frame, new_scene: bool) -> None:
        """Change of regional flow, camera speed and turbulence (frame heights per second)."""
        series = self.series
        # optical flow, at most 15 times a second (a coarse cue; it costs a millisecond a frame)
        if new_scene:
            self.flow_t = None
        last_flow = self.flow_t
        due = last_flow is None or fr.time_s - last_flow >= 1.0 / 15 - 1e-3
        flow_luma = fr.half[..., 0] if fr.half is not None and fr.half.shape[1] >= 96 else fr.yuv[..., 0]
        summary = self.flow.measure(flow_luma, fr.time_s - last_flow if last_flow is not None else 0.0) if due else None
        if due:
            self.flow_t = fr.time_s
        if summary is None:
            series.change.append(0.0)
            series.camera.append(series.camera[-1] if (series.camera and not due) else 0.0)
            series.turbulence.append(series.turbulence[-1] if (series.turbulence and not due) else 0.0)
        else:
            prev_reg = self.prev_regional
            change = float(np.abs(summary.regional - prev_reg).sum(axis=1).mean()) if prev_reg is not None else 0.0
            self.prev_regional = summary.regional
            series.change.append(change)
            series.camera.append(summary.median_speed)
            series.turbulence.append(summary.turbulence)


def _visual_events(
    times: np.ndarray, series: _Series, impacts: list[VisualEvent], cuts: list[float], appear_min_fraction: float
) -> list[VisualEvent]:
    """Merged impacts, the appearances they do not explain, and the cuts, in time order."""
    scene_ids = np.asarray(series.scene)
    appear_events = _appear_events(times, scene_ids, np.asarray(series.appear), series.appear_xy, appear_min_fraction)
    merged = _merge_impacts(sorted(impacts, key=lambda e: e.time_s))
    all_events = merged + _drop_near(appear_events, merged, window_s=max(0.07, 1.5 * _median_dt(times)))
    all_events += [
        VisualEvent(time_s=c, kind="cut", strength=1.0, x=0.0, y=0.0, size=1.0, reason="scene cut") for c in cuts
    ]
    all_events.sort(key=lambda e: e.time_s)
    return all_events


def _motion_envelope(times: np.ndarray, series: _Series) -> MotionEnvelope:
    """The per-frame series as float32 arrays, one row per frame at ``times`` (seconds)."""
    # the change measured at frame k compares the motion into frame k with the motion into
    # frame k-1: it is centred on frame k-1
    change = np.asarray(series.change, dtype=np.float32)
    change = np.append(change[1:], np.float32(0.0)) if len(change) else change
    return MotionEnvelope(
        times_s=times,
        energy=np.asarray(series.energy, dtype=np.float32),
        region_energy=np.asarray(series.regions, dtype=np.float32).reshape(-1, 3),
        change=change,
        foreground=np.asarray(series.fg, dtype=np.float32),
        appear=np.asarray(series.appear, dtype=np.float32),
        acceleration=np.asarray(series.accel, dtype=np.float32),
    )


def _scenes(
    times: np.ndarray,
    cuts: list[float],
    duration: float,
    looks: list[LookSample],
    series: _Series,
    foreground: np.ndarray,
) -> list[Scene]:
    """One :class:`Scene` per stretch between cuts (times in seconds). Every stretch starts with a
    look of its own (its first frame); the first look stands in only if frame times fall before 0."""
    bounds = [0.0, *cuts, duration]
    scenes = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        sel = (times >= a) & (times < b)
        scenes.append(
            Scene(
                start_s=a,
                end_s=b,
                cues=summarise(
                    [lk for lk in looks if a <= lk.time_s < b] or looks[:1],
                    foreground=foreground[sel],
                    turbulence=np.asarray(series.turbulence)[sel],
                    camera=np.asarray(series.camera)[sel],
                    flicker=np.asarray(series.flicker)[sel],
                ),
            )
        )
    return scenes


def _median_dt(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / 30


def _appear_events(
    times: np.ndarray, scenes: np.ndarray, appear: np.ndarray, xy: list[tuple[float, float]], min_frac: float
) -> list[VisualEvent]:
    """Frames where a patch of still pixels changes at once (a flash, a light, text appearing)."""
    out: list[VisualEvent] = []
    n = len(appear)
    last_t = -np.inf
    for k in range(1, n):
        if scenes[k] != scenes[k - 1] or appear[k] < min_frac:
            continue
        window = (times >= times[k] - 1.0) & (times <= times[k] + 1.0)
        base = float(np.median(appear[window]))
        if appear[k] < 3.0 * base or appear[k] < 2.0 * appear[k - 1]:
            continue
        if k + 1 < n and appear[k + 1] > appear[k]:
            continue
        if times[k] - last_t < 0.1:
            continue
        last_t = times[k]
        x, y = xy[k]
        out.append(
            VisualEvent(
                time_s=float(times[k]),
                kind="appear",
                strength=float(np.clip(np.sqrt(appear[k] / 0.05), 0.1, 1.0)),
                x=x,
                y=y,
                size=float(appear[k]),
                timing="frame",
                reason=f"{appear[k] * 100:.1f}% of the frame changes at once",
            )
        )
    return out


def _merge_impacts(events: list[VisualEvent], window_s: float = 0.04) -> list[VisualEvent]:
    """One event per physical impact: a collision is seen by both objects' tracks."""
    out: list[VisualEvent] = []
    group: list[VisualEvent] = []

    def flush() -> None:
        if not group:
            return
        if len(group) == 1:
            out.append(group[0])
        else:
            fits = [e for e in group if e.timing == "subframe-fit"] or group
            best = max(group, key=lambda e: e.strength)
            out.append(
                VisualEvent(
                    time_s=float(np.mean([e.time_s for e in fits])),
                    kind="impact",
                    strength=best.strength,
                    x=float(np.mean([e.x for e in group])),
                    y=float(np.mean([e.y for e in group])),
                    size=float(sum(e.size for e in group)),
                    speed=max(e.speed for e in group),
                    timing=fits[0].timing,
                    track_id=best.track_id,
                    reason=f"{len(group)} tracked objects change velocity together (collision)",
                )
            )
        group.clear()

    for e in events:
        if group and e.time_s - group[0].time_s > window_s:
            flush()
        group.append(e)
    flush()
    return out


def _drop_near(events: list[VisualEvent], anchors: list[VisualEvent], *, window_s: float) -> list[VisualEvent]:
    """Events not explained by an anchor in the ``window_s`` before them.

    A hit makes things light up in the next frame (a drum glows after the stick lands):
    the sub-frame impact is the better time, the frame-timed change is dropped.
    """
    if not anchors:
        return events
    at = np.array([a.time_s for a in anchors])
    return [e for e in events if not np.any((at >= e.time_s - window_s) & (at <= e.time_s + 0.005))]
