"""Moving blobs: connected regions of the foreground mask, with position, size and colour."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_OPEN = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
MAX_BLOBS = 16


@dataclass(frozen=True)
class Blob:
    """One foreground region in analysis pixels."""

    cx: float
    cy: float
    area: float
    """Pixels."""
    bbox: tuple[int, int, int, int]
    """x, y, width, height."""
    colour: tuple[float, float, float]
    """Mean Y, U, V (0..255)."""
    touches_border: bool
    label: int
    """Label of the blob in the label image returned with it."""


def foreground_mask(yuv: np.ndarray, background: np.ndarray, *, luma_thr: int, chroma_thr: int) -> np.ndarray:
    """uint8 0/1 mask of pixels that differ from the background in luma or chroma."""
    dy, du, dv = cv2.split(cv2.absdiff(yuv, background))
    _, my = cv2.threshold(dy, luma_thr, 1, cv2.THRESH_BINARY)
    _, mc = cv2.threshold(cv2.max(du, dv), chroma_thr, 1, cv2.THRESH_BINARY)
    return cv2.morphologyEx(cv2.bitwise_or(my, mc), cv2.MORPH_OPEN, _OPEN)


def find_blobs(mask: np.ndarray, yuv: np.ndarray, *, min_area: float) -> tuple[list[Blob], np.ndarray]:
    """Connected components of ``mask`` larger than ``min_area`` pixels (the MAX_BLOBS largest),
    and the int32 label image they index.

    ``mask`` may be smaller than ``yuv`` by an integer factor; blobs and labels are returned
    at the size of ``yuv``.
    """
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    f = yuv.shape[1] // mask.shape[1]
    if f > 1:
        labels = cv2.resize(labels, (yuv.shape[1], yuv.shape[0]), interpolation=cv2.INTER_NEAREST)
        stats = stats.copy()
        stats[:, :4] *= f
        stats[:, cv2.CC_STAT_AREA] *= f * f
        centroids = (centroids + 0.5) * f - 0.5
    if n <= 1:
        return [], labels
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(areas)[::-1][:MAX_BLOBS]
    order = [int(i) + 1 for i in order if areas[i] * f * f >= min_area]
    if not order:
        return [], labels
    h, w = yuv.shape[:2]
    out = []
    for i in order:
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        roi = (labels[y : y + bh, x : x + bw] == i).astype(np.uint8)
        mean = cv2.mean(yuv[y : y + bh, x : x + bw], mask=roi)
        out.append(
            Blob(
                cx=float(centroids[i, 0]),
                cy=float(centroids[i, 1]),
                area=float(stats[i, cv2.CC_STAT_AREA]),
                bbox=(x, y, bw, bh),
                colour=(float(mean[0]), float(mean[1]), float(mean[2])),
                touches_border=x <= 0 or y <= 0 or x + bw >= w or y + bh >= h,
                label=i,
            )
        )
    return out, labels
