"""Coarse scene cues: brightness, colour, sky, motion texture."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from v2a_core.types import SceneCues

_THUMB_WIDTH = 80


@dataclass(frozen=True)
class LookSample:
    """Colour statistics of one frame (0..1 fractions)."""

    time_s: float
    brightness: float
    saturation: float
    blue: float
    green: float
    warm: float
    sky: float


def look(time_s: float, yuv: np.ndarray) -> LookSample:
    h, w = yuv.shape[:2]
    tw = min(_THUMB_WIDTH, w)
    th = max(4, int(round(h * tw / w)))
    small = cv2.resize(yuv, (tw, th), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(small, cv2.COLOR_YUV2BGR)
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    hue, sat, val = hsv[..., 0].astype(np.int16), hsv[..., 1] / 255.0, hsv[..., 2] / 255.0
    saturated = (sat > 0.25) & (val > 0.15)
    blue = saturated & (hue >= 85) & (hue <= 130)  # OpenCV hue is 0..180
    green = saturated & (hue >= 35) & (hue < 85)
    warm = (sat > 0.4) & (val > 0.45) & ((hue < 25) | (hue > 165))
    top = slice(0, max(1, th // 3))
    # blue and bright only: a white wall or ceiling looks just like an overcast sky
    sky = blue[top] & (val[top] > 0.45)
    return LookSample(
        time_s=time_s,
        brightness=float(small[..., 0].mean() / 255.0),
        saturation=float(sat.mean()),
        blue=float(blue.mean()),
        green=float(green.mean()),
        warm=float(warm.mean()),
        sky=float(sky.mean()),
    )


def summarise(
    looks: list[LookSample],
    *,
    foreground: np.ndarray,
    turbulence: np.ndarray,
    camera: np.ndarray,
    flicker: np.ndarray,
) -> SceneCues:
    """Scene cues from the colour samples and per-frame motion arrays of one stretch of video."""

    def mean(vals: list[float] | np.ndarray) -> float:
        arr = np.asarray(vals, dtype=np.float64)
        return float(arr.mean()) if arr.size else 0.0

    return SceneCues(
        brightness=mean([s.brightness for s in looks]),
        saturation=mean([s.saturation for s in looks]),
        blue=mean([s.blue for s in looks]),
        green=mean([s.green for s in looks]),
        warm=mean([s.warm for s in looks]),
        sky=mean([s.sky for s in looks]),
        motion=mean(foreground),
        turbulence=mean(turbulence),
        camera_motion=float(np.median(camera)) if len(camera) else 0.0,
        flicker=mean(flicker),
    )
