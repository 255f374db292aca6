"""Dense optical flow (DIS) per frame pair, summarised on a 3 x 3 grid."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Width of the frames optical flow runs on, pixels (flow is a coarse cue here).
FLOW_WIDTH = 160


@dataclass(frozen=True)
class FlowSummary:
    regional: np.ndarray
    """(9, 2) mean flow of each grid cell, frame heights per second."""
    median_speed: float
    """Median flow speed over the frame, frame heights per second (camera motion)."""
    turbulence: float
    """1 - |mean flow| / mean |flow| over moving pixels: 0 coherent .. 1 chaotic; 0 if nothing moves."""


class FlowMeter:
    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        self._prev = None

    def measure(self, luma: np.ndarray, dt_s: float) -> FlowSummary | None:
        h, w = luma.shape
        fw = min(FLOW_WIDTH, w)
        fh = max(8, int(round(h * fw / w)))
        small = cv2.resize(luma, (fw, fh), interpolation=cv2.INTER_AREA) if fw != w else luma
        prev, self._prev = self._prev, small
        if prev is None or dt_s <= 0:
            return None
        flow = self._dis.calc(prev, small, None)  # pixels per frame interval
        flow = flow / (fh * dt_s)  # -> frame heights per second
        cells = cv2.resize(flow, (3, 3), interpolation=cv2.INTER_AREA).reshape(9, 2)
        sub = flow[::2, ::2]
        # np.hypot, not cv2.magnitude: OpenCV's result on these strided views varies in its last
        # bits with memory alignment, run to run, and so did the turbulence and speed read from it.
        speed = np.hypot(sub[..., 0], sub[..., 1])
        moving = speed > 0.05
        count = int(np.count_nonzero(moving))
        if count > 10:
            mean_vec = np.hypot(float(sub[..., 0][moving].sum()), float(sub[..., 1][moving].sum())) / count
            turb = 1.0 - mean_vec / (float(speed[moving].sum()) / count + 1e-9)
        else:
            turb = 0.0
        median_speed = float(np.partition(speed.ravel(), speed.size // 2)[speed.size // 2])
        return FlowSummary(cells.astype(np.float32), median_speed, float(np.clip(turb, 0, 1)))
