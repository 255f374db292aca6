"""Follow moving objects from frame to frame by masked template matching.

Objects are discovered as foreground blobs (difference from the background model). From
then on each track is followed by matching its appearance (the blob's pixels, masked to
its shape) in a search window around the predicted position, with sub-pixel peak
interpolation. Matching the object itself, not the foreground mask, keeps positions exact
when two objects touch (a collision merges their blobs), when an object bounces near the
spot where it later rests (the background then contains it), or when it lights up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from v2a_core.analysis.blobs import Blob

#: Most tracks followed at once (the largest new blobs win); bounds the cost per frame.
MAX_TRACKS = 12


@dataclass
class Observation:
    time_s: float
    x: float
    """Object centre, analysis pixels."""
    y: float
    area: float
    """Pixels of the object's template mask."""
    error: float
    """RMS difference between the template and the frame at the match (0..255)."""
    touches_border: bool
    colour: tuple[float, float, float]


@dataclass
class Track:
    id: int
    template: np.ndarray
    """uint8 (th, tw) luma appearance (chroma is subsampled and bleeds across edges, so
    it would pull matches away from neighbouring colours)."""
    mask: np.ndarray
    """uint8 (th, tw) 0/1 object pixels in the template."""
    offset: tuple[float, float]
    """Object centre relative to the template's top-left corner, pixels."""
    colour: tuple[float, float, float]
    obs: list[Observation] = field(default_factory=list)
    last_supported_s: float = -np.inf
    """Last time a foreground blob confirmed the object."""
    emitted_until_s: float = -np.inf
    """Impacts before this time were already reported (long tracks are analysed in parts)."""

    @property
    def last(self) -> Observation:
        return self.obs[-1]

    def velocity(self) -> tuple[float, float]:
        """Analysis pixels per second from the last two observations (0 if only one)."""
        if len(self.obs) < 2:
            return 0.0, 0.0
        a, b = self.obs[-2], self.obs[-1]
        dt = max(b.time_s - a.time_s, 1e-6)
        return (b.x - a.x) / dt, (b.y - a.y) / dt


def _subpixel(r: np.ndarray, i: int, j: int) -> tuple[float, float]:
    """Parabolic interpolation of the minimum of ``r`` at row i, column j."""

    def vertex(a: float, b: float, c: float) -> float:
        den = a - 2 * b + c
        return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den > 0 else 0.0

    dx = vertex(r[i, j - 1], r[i, j], r[i, j + 1]) if 0 < j < r.shape[1] - 1 else 0.0
    dy = vertex(r[i - 1, j], r[i, j], r[i + 1, j]) if 0 < i < r.shape[0] - 1 else 0.0
    return dx, dy


class Tracker:
    """Discovers objects from blobs and follows them by template matching."""

    def __init__(
        self,
        *,
        max_gap_s: float = 0.2,
        max_error: float = 28.0,
        static_timeout_s: float = 1.0,
        max_track_len: int = 600,
    ) -> None:
        self.max_gap_s = max_gap_s
        self.max_error = max_error
        self.static_timeout_s = static_timeout_s
        self.max_track_len = max_track_len
        self.active: list[Track] = []
        self._next_id = 0

    # ------------------------------------------------------------------ matching
    def _match(self, tr: Track, yuv: np.ndarray, t: float) -> Observation | None:
        h, w = yuv.shape[:2]
        th, tw = tr.mask.shape
        last = tr.last
        vx, vy = tr.velocity()
        dt = t - last.time_s
        px, py = last.x + vx * dt, last.y + vy * dt
        # room for the velocity to reverse (bounce) or stop within one frame
        margin = int(np.ceil(2.0 * np.hypot(vx, vy) * dt + 3 + 0.25 * max(th, tw)))
        x0 = int(np.floor(px - tr.offset[0])) - margin
        y0 = int(np.floor(py - tr.offset[1])) - margin
        x1, y1 = x0 + tw + 2 * margin, y0 + th + 2 * margin
        cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if cx1 - cx0 < tw or cy1 - cy0 < th:
            return None
        region = yuv[cy0:cy1, cx0:cx1, 0]
        r = cv2.matchTemplate(region, tr.template, cv2.TM_SQDIFF, mask=tr.mask)
        _, _, (j, i), _ = cv2.minMaxLoc(r)
        n = float(tr.mask.sum())
        error = float(np.sqrt(max(r[i, j], 0.0) / max(n, 1.0)))
        if error > self.max_error:
            return None
        # the match must be unambiguous: elsewhere in the window the template fits clearly worse
        rad = max(2, int(0.25 * min(th, tw)))
        masked = r.copy()
        masked[max(0, i - rad) : i + rad + 1, max(0, j - rad) : j + rad + 1] = np.inf
        runner_up = float(masked.min()) if np.isfinite(masked).any() else np.inf
        if runner_up < 2.0 * r[i, j] + n * 4.0:  # +2 levels RMS: flat, textureless matches
            return None
        dx, dy = _subpixel(r, i, j)
        ox, oy = cx0 + j + dx, cy0 + i + dy  # template top-left in the frame
        touches = ox < 1 or oy < 1 or ox + tw > w - 1 or oy + th > h - 1
        return Observation(
            time_s=t,
            x=ox + tr.offset[0],
            y=oy + tr.offset[1],
            area=float(tr.mask.sum()),
            error=error,
            touches_border=touches,
            colour=tr.colour,
        )

    def _object_region(self, blob: Blob, yuv: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int, int]:
        """0/1 mask (with its top-left x, y) of the object a blob belongs to.

        A blob is only the part of an object that differs from the background; when an
        object keeps returning to the same place (a drumstick), the background holds most of
        it and the blob is a sliver. Flood-filling the frame from the blob over similar
        luma recovers the whole object; if the fill leaks into a large area the blob was a
        hole in the background model, and its own pixels are used.
        """
        h, w = yuv.shape[:2]
        x, y, bw, bh = blob.bbox
        own = (labels[y : y + bh, x : x + bw] == blob.label).astype(np.uint8)
        luma = yuv[..., 0]
        ys, xs = np.nonzero(own)
        k = len(ys) // 2
        seed = (int(x + xs[k]), int(y + ys[k]))
        tol = max(10, int(0.12 * int(luma[seed[1], seed[0]])))
        flood = np.zeros((h + 2, w + 2), np.uint8)
        flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
        area, _, _, rect = cv2.floodFill(luma.copy(), flood, seed, 0, tol, tol, flags)
        limit = max(6.0 * blob.area, 0.002 * w * h)
        if area <= limit and area >= 0.5 * blob.area:
            fx, fy, fw, fh = rect
            region = flood[1 + fy : 1 + fy + fh, 1 + fx : 1 + fx + fw].copy()
            # keep the blob's own pixels too (edges the fill tolerance missed)
            ux0, uy0 = min(fx, x), min(fy, y)
            ux1, uy1 = max(fx + fw, x + bw), max(fy + fh, y + bh)
            merged = np.zeros((uy1 - uy0, ux1 - ux0), np.uint8)
            merged[fy - uy0 : fy - uy0 + fh, fx - ux0 : fx - ux0 + fw] |= region
            merged[y - uy0 : y - uy0 + bh, x - ux0 : x - ux0 + bw] |= own
            return merged, ux0, uy0
        return own, x, y

    def _new_track(self, blob: Blob, yuv: np.ndarray, labels: np.ndarray, t: float) -> Track:
        h, w = yuv.shape[:2]
        region, rx, ry = self._object_region(blob, yuv, labels)
        rh, rw = region.shape
        x0, y0, x1, y1 = max(0, rx - 1), max(0, ry - 1), min(w, rx + rw + 1), min(h, ry + rh + 1)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        mask[ry - y0 : ry - y0 + rh, rx - x0 : rx - x0 + rw] = region
        m = cv2.moments(mask, binaryImage=True)
        # a one-pixel ring of surroundings pins down uniform objects (a plain bar sliding
        # along its length matches itself everywhere without its outline)
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
        cx, cy = x0 + m["m10"] / m["m00"], y0 + m["m01"] / m["m00"]
        tr = Track(
            id=self._next_id,
            template=yuv[y0:y1, x0:x1, 0].copy(),
            mask=mask,
            offset=(cx - x0, cy - y0),
            colour=blob.colour,
            last_supported_s=t,
        )
        self._next_id += 1
        touches = x0 <= 0 or y0 <= 0 or x1 >= w or y1 >= h
        tr.obs.append(Observation(t, cx, cy, float(mask.sum()), 0.0, touches, blob.colour))
        return tr

    # ------------------------------------------------------------------ per frame
    def update(
        self,
        t: float,
        yuv: np.ndarray,
        blobs: list[Blob],
        labels: np.ndarray | None,
        *,
        skip: bool = False,
    ) -> list[Track]:
        """Follow every track into the frame at ``t`` and start tracks for new blobs.

        ``labels`` is the label image the blobs index. ``skip``: the
        frame is unusable (scene cut, most of the frame changing); tracks coast.
        Returns the tracks that ended (for impact analysis).
        """
        finished: list[Track] = []
        if not skip:
            for tr in self.active:
                ob = self._match(tr, yuv, t)
                if ob is not None:
                    tr.obs.append(ob)
            claimed: set[int] = set()
            for tr in self.active:
                if tr.last.time_s != t:
                    continue
                radius = 0.5 * max(tr.mask.shape) + 3
                for k, b in enumerate(blobs):
                    if k not in claimed and np.hypot(b.cx - tr.last.x, b.cy - tr.last.y) <= radius:
                        claimed.add(k)
                        tr.last_supported_s = t
            if labels is not None:
                for k, b in enumerate(blobs):
                    if k in claimed or len(self.active) >= MAX_TRACKS:
                        continue
                    if any(np.hypot(b.cx - tr.last.x, b.cy - tr.last.y) <= 0.5 * max(tr.mask.shape) + 3 for tr in self.active):
                        continue  # part of a followed object (shadow of the background model)
                    self.active.append(self._new_track(b, yuv, labels, t))
        keep = []
        for tr in self.active:
            lost = t - tr.last.time_s > self.max_gap_s
            static = t - tr.last_supported_s > self.static_timeout_s
            (finished if lost or static else keep).append(tr)
        self.active = keep
        return finished

    def long_tracks(self) -> list[Track]:
        """Active tracks long enough to be analysed in part (bounded memory on long videos)."""
        return [tr for tr in self.active if len(tr.obs) > self.max_track_len]

    def finish(self) -> list[Track]:
        done, self.active = self.active, []
        return done
