"""Impacts: abrupt changes of velocity on a track, timed between frames by trajectory fitting.

An impact (bounce, hit, collision, landing) is a corner in a trajectory: the position is
continuous, the velocity jumps. Around each candidate corner we fit, by least squares, a
continuous piecewise-quadratic model with a shared acceleration and a velocity jump at an
unknown time ``tc``::

    p(t) = a + c (t - tc)^2 + b1 (t - tc)   for t <  tc
    p(t) = a + c (t - tc)^2 + b2 (t - tc)   for t >= tc

(per screen coordinate; ``tc`` shared) and search ``tc`` on a 0.5 ms grid between the
neighbouring frames, refined by a parabola through the best three grid points. The fitted
``tc`` is the event time, with sub-frame accuracy. A free-falling, thrown or sliding
object follows this model exactly on both sides of the impact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from v2a_core.analysis.tracking import Track
from v2a_core.types import VisualEvent

#: Smallest velocity change that counts as an impact, frame heights per second.
MIN_DELTA_V = 0.3
#: Smallest speed (before or after) for an impact, frame heights per second.
MIN_SPEED = 0.15
_GRID_S = 0.0005
#: Each side of a candidate corner is fitted over the points within this time of it (at least
#: three): a fixed time, not a number of frames, so that at 120 fps the fit is not 25 ms
#: long, against position noise that does not shrink with the frame period.
_SIDE_S = 0.09
#: The refit of an accepted corner takes the points within this time of it (or six frame
#: periods, at most ``_MAX_WINDOW_S``), up to the neighbouring corners.
_REFIT_SIDE_S = 0.25
_MAX_WINDOW_S = 0.35
#: A longer interval between two observations is a tracking gap (stronger evidence needed).
_MAX_GAP_S = 0.05
#: Two accepted corners closer than this are one (the best explained is kept).
_MIN_CORNER_GAP_S = 0.045


@dataclass(frozen=True)
class ImpactFit:
    time_s: float
    position: np.ndarray
    """(2,) position at the impact, frame heights."""
    velocity_before: np.ndarray
    velocity_after: np.ndarray
    rms: float
    """Residual of the fit, frame heights."""
    acceleration: np.ndarray = field(default_factory=lambda: np.zeros(2))
    """(2,) acceleration shared by both sides, frame heights per second squared (zero when
    the fit had no quadratic term)."""
    span_s: float = 0.0
    """Time from the first to the last point of the fit, seconds."""


def _design(t: np.ndarray, tc: np.ndarray, quadratic: bool) -> np.ndarray:
    """(G, m, k) design matrices for candidate times ``tc`` (G,) and sample times ``t`` (m,)."""
    d = t[None, :] - tc[:, None]
    before = np.where(d < 0, d, 0.0)
    after = np.where(d >= 0, d, 0.0)
    cols = [np.ones_like(d), before, after]
    if quadratic:
        cols.append(d * d)
    return np.stack(cols, axis=-1)


def fit_impact(t: np.ndarray, p: np.ndarray, lo: float, hi: float, *, quadratic: bool | None = None) -> ImpactFit | None:
    """Best corner time in [lo, hi] for points ``p`` (m, 2) at times ``t`` (m,); None if underdetermined."""
    if hi <= lo:
        hi = lo + _GRID_S
    grid = np.arange(lo, hi + _GRID_S / 2, _GRID_S)
    n_before = (t[None, :] < grid[:, None]).sum(axis=1)
    n_after = len(t) - n_before
    grid = grid[(n_before >= 2) & (n_after >= 2)]
    if grid.size == 0:
        return None
    if quadratic is None:
        quadratic = len(t) >= 6
    X = _design(t, grid, quadratic)
    XtX = np.einsum("gmk,gml->gkl", X, X)
    XtY = np.einsum("gmk,mc->gkc", X, p)
    try:
        beta = np.linalg.solve(XtX + 1e-12 * np.eye(X.shape[-1]), XtY)
    except np.linalg.LinAlgError:
        return None
    resid = np.einsum("gmk,gkc->gmc", X, beta) - p[None]
    sse = (resid**2).sum(axis=(1, 2))
    i = int(np.argmin(sse))
    tc = float(grid[i])
    if 0 < i < len(grid) - 1:  # parabolic refinement between grid points
        y0, y1, y2 = sse[i - 1], sse[i], sse[i + 1]
        denom = y0 - 2 * y1 + y2
        if denom > 0:
            tc += float(np.clip(0.5 * (y0 - y2) / denom, -1, 1)) * _GRID_S
    b = beta[i]
    return ImpactFit(
        time_s=tc,
        position=b[0],
        velocity_before=b[1],
        velocity_after=b[2],
        rms=float(np.sqrt(sse[i] / max(1, p.size))),
        acceleration=2.0 * b[3] if quadratic else np.zeros(p.shape[1]),
        span_s=float(t[-1] - t[0]),
    )


def _reliable(track: Track, max_error: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times, positions (analysis px) and areas of observations fit for timing.

    Dropped: matches cut by the frame border and poor matches (the object turned, deformed
    or was occluded), whose positions do not follow the object's centre.
    """
    errors = np.array([o.error for o in track.obs])
    # a match much worse than the track's usual one is off by a pixel or more
    limit = min(max_error, 3.0 * float(np.median(errors)) + 3.0) if len(errors) else max_error
    obs = [o for o in track.obs if not o.touches_border and o.error <= limit]
    t = np.array([o.time_s for o in obs], dtype=np.float64)
    p = np.array([[o.x, o.y] for o in obs], dtype=np.float64).reshape(-1, 2)
    area = np.array([o.area for o in obs], dtype=np.float64)
    return t, p, area


def _is_apex(fit: ImpactFit) -> bool:
    """The top of a throw or a swing, not a hit: a turn from moving up to moving down (on the
    screen, with little sideways change), or from moving against the fitted acceleration to
    moving with it (gravity, whatever way the picture is turned), whose velocity jump is no
    larger than what that acceleration changes across the fitted window. A smooth apex passes
    through zero speed gradually (a parabola has no jump at all; a swing, a slowed throw or a
    poorly followed object leaves a small one); a hit reverses the motion within a frame or
    two, far more than the acceleration can (a ball hitting a ceiling, a square bouncing at
    constant speed), and is kept in any direction."""
    acc = float(np.linalg.norm(fit.acceleration))
    dv = fit.velocity_after - fit.velocity_before
    if float(np.linalg.norm(dv)) >= acc * fit.span_s:
        return False  # sharp: more than the acceleration does across the window
    (bx, by), (ax, ay) = fit.velocity_before, fit.velocity_after
    if by < -0.05 and ay > 0.05 and abs(dv[0]) < 0.5 * abs(dv[1]):
        return True
    along = fit.acceleration / acc
    return float(fit.velocity_before @ along) < -0.05 and float(fit.velocity_after @ along) > 0.05


def _smooth_sse(t: np.ndarray, p: np.ndarray) -> float:
    """Residual sum of squares of one quadratic per coordinate (no corner)."""
    tt = t - t.mean()
    X = np.stack([np.ones_like(tt), tt, tt * tt], axis=1)
    beta, *_ = np.linalg.lstsq(X, p, rcond=None)
    return float(((X @ beta - p) ** 2).sum())


def _windows(t: np.ndarray) -> list[tuple[int, int]]:
    """For each interval ``k`` (between points k and k+1), the points ``[a, b)`` fitted around a
    corner in it: those within ``_SIDE_S`` of it on each side, and at least three a side."""
    n = len(t)
    out = []
    for k in range(n - 1):
        a = min(max(0, k - 2), int(np.searchsorted(t, t[k] - _SIDE_S - 1e-9, side="left")))
        b = max(min(n, k + 4), int(np.searchsorted(t, t[k + 1] + _SIDE_S + 1e-9, side="right")))
        out.append((a, b))
    return out


def _candidates(t: np.ndarray, p: np.ndarray, noise: float) -> list[tuple[int, ImpactFit]]:
    """Intervals ``k`` (between points k and k+1) whose neighbourhood is a corner, not a curve.

    For each interval, the points within ``_SIDE_S`` either side (at least three) are fitted
    twice: with one smooth quadratic per coordinate, and with the corner model of
    :func:`fit_impact` (the corner inside the interval). A corner is accepted where it
    explains the points much better and the velocity jump is at least ``MIN_DELTA_V``. The
    short window keeps neighbouring impacts out even when a ball bounces every few frames as
    it comes to rest; being a time, not a number of frames, it holds as many points at 120 fps
    as the position noise needs. ``noise`` is the smallest position noise to assume, frame
    heights.
    """
    n = len(t)
    if n < 5:
        return []
    dt = np.diff(t)
    v = np.diff(p, axis=0) / dt[:, None]
    windows = _windows(t)
    smooth = [_smooth_sse(t[a:b], p[a:b]) if b - a >= 5 else np.nan for a, b in windows]
    # the track's own position noise: most windows hold no corner, so the median smooth
    # residual (less the 3 parameters fitted per coordinate) measures how precisely this
    # object is followed
    rms = [np.sqrt(sse / (2 * (b - a - 3))) for sse, (a, b) in zip(smooth, windows) if np.isfinite(sse)]
    noise = max(noise, float(np.median(rms))) if rms else noise
    typical_dt = float(np.median(dt))
    found: list[tuple[int, ImpactFit, float]] = []
    for k in range(1, n - 2):
        a, b = windows[k]
        if b - a < 5 or t[b - 1] - t[a] > 2 * _MAX_WINDOW_S:
            continue
        # cheap pre-test: some change of velocity around this interval; across missing frames
        # also between the mean velocities of the two sides (a jittering object, its
        # velocity read across the gap, jumps too)
        jump = max(np.linalg.norm(v[k + 1] - v[k - 1]), np.linalg.norm(v[k] - v[k - 1]), np.linalg.norm(v[k + 1] - v[k]))
        if jump < 0.5 * MIN_DELTA_V:
            continue
        if dt[k] > 1.5 * typical_dt:
            before = (p[k] - p[a]) / (t[k] - t[a])
            after = (p[b - 1] - p[k + 1]) / (t[b - 1] - t[k + 1])
            if np.linalg.norm(after - before) < 0.5 * MIN_DELTA_V:
                continue
        tw, pw = t[a:b], p[a:b]
        fit = fit_impact(tw, pw, float(t[k]), float(t[k + 1]), quadratic=(b - a) >= 6)
        if fit is None:
            continue
        dv = float(np.linalg.norm(fit.velocity_after - fit.velocity_before))
        speed = float(max(np.linalg.norm(fit.velocity_before), np.linalg.norm(fit.velocity_after)))
        if dv < MIN_DELTA_V or speed < MIN_SPEED or _is_apex(fit):
            continue
        sse_corner = fit.rms**2 * pw.size
        floor = (noise**2) * pw.size
        gain = (smooth[k] + floor) / (sse_corner + floor)
        # across a tracking gap any curve looks like a corner: ask for much stronger evidence.
        # One missing frame is no gap: the frame of contact is often the one lost (the
        # template's ring of surroundings stops matching where the object touches a wall)
        if gain < (4.0 if dt[k] <= max(2.5 * typical_dt, _MAX_GAP_S) else 10.0):
            continue
        found.append((k, fit, gain))
    # one corner per neighbourhood: the best explained of the corners in adjacent intervals
    # or closer than _MIN_CORNER_GAP_S (at a high frame rate a corner fitted a frame or two
    # off still explains the points)
    out: list[tuple[int, ImpactFit]] = []
    for k, fit, gain in found:
        rivals = [
            (g, kk)
            for kk, _, g in found
            if kk != k and (abs(kk - k) <= 1 or abs(t[kk] - t[k]) <= _MIN_CORNER_GAP_S)
        ]
        if all(gain > g or (gain == g and k < kk) for g, kk in rivals):
            out.append((k, fit))
    return out


def detect_impacts(
    track: Track, *, width: int, height: int, until_s: float = np.inf, max_error: float = 24.0
) -> list[VisualEvent]:
    """Impacts of one track, in analysis frames of ``width`` x ``height`` pixels.

    Only impacts in ``[track.emitted_until_s, until_s)`` are returned.
    """
    t, p_px, area = _reliable(track, max_error)
    if len(t) < 5:
        return []
    p = p_px / float(height)  # frame heights: thresholds do not depend on resolution
    noise = 0.05 / float(height)  # template matching is good to a twentieth of a pixel at best
    cands = _candidates(t, p, noise)
    typical_dt = float(np.median(np.diff(t)))
    side = min(_MAX_WINDOW_S, max(_REFIT_SIDE_S, 6 * typical_dt))
    events: list[VisualEvent] = []
    for j, (k, local) in enumerate(cands):
        # refit on every point between the neighbouring corners for the most precise time
        first = cands[j - 1][0] + 1 if j > 0 else 0
        last = cands[j + 1][0] if j + 1 < len(cands) else len(t) - 1
        idx = [i for i in range(first, last + 1) if t[k] - side - 1e-9 <= t[i] <= t[k + 1] + side + 1e-9]
        fit = fit_impact(t[idx], p[idx], float(t[k]), float(t[k + 1])) if len(idx) > 6 else None
        if (
            fit is None
            or fit.rms > 2.0 * local.rms + noise
            or abs(fit.time_s - local.time_s) > 0.5 * (t[k + 1] - t[k])
            or np.linalg.norm(fit.velocity_after - fit.velocity_before) < MIN_DELTA_V
        ):
            fit = local  # the wider window holds something the model does not (a curve, a stop)
        dv = float(np.linalg.norm(fit.velocity_after - fit.velocity_before))
        speed = float(max(np.linalg.norm(fit.velocity_before), np.linalg.norm(fit.velocity_after)))
        time_s, pos, timing = fit.time_s, fit.position, "subframe-fit"
        if not (track.emitted_until_s <= time_s < until_s):
            continue
        x = float(np.clip(pos[0] * height / width * 2.0 - 1.0, -1, 1))
        y = float(np.clip(pos[1] * 2.0 - 1.0, -1, 1))
        events.append(
            VisualEvent(
                time_s=time_s,
                kind="impact",
                strength=float(np.clip(dv / 3.0, 0.05, 1.0)),
                x=x,
                y=y,
                size=float(np.median(area) / (width * height)),
                speed=speed,
                timing=timing,
                track_id=track.id,
                reason=f"tracked object changes velocity by {dv:.2f} frame heights/s",
            )
        )
    return events
