"""Background model: per-pixel temporal median of frames sampled around each frame.

The median is taken over samples from ``window_s`` before to ``window_s`` after the
frame (a centred window), within the same scene, and, per pixel, only over samples in
which that pixel was not moving. An object that keeps moving through the same place (a
drumstick, a ball bouncing as it comes to rest) therefore never enters the background,
while an object at rest does: only moving things are tracked.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_DILATE = np.ones((5, 5), np.uint8)
_MOTION_LOOKBACK_S = (0.04, 0.12, 0.25)

# Compare-exchange pairs of an optimal median-of-9 network (Paeth); p[4] ends as the median.
_MEDIAN9 = (
    (1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8),
    (0, 3), (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2),
)


def median_of_samples(samples: list[np.ndarray]) -> np.ndarray:
    """Per-pixel median of uint8 images (exact); a sorting network when there are 9 (fast path)."""
    if len(samples) == 1:
        return samples[0]
    if len(samples) < 9:
        # pad with alternating black/white: the median of the padded set is the median of
        # the samples (the lower one of the middle pair for an even count)
        pad = 9 - len(samples)
        lo = np.zeros_like(samples[0])
        hi = np.full_like(samples[0], 255)
        samples = list(samples) + [lo if i % 2 == 0 else hi for i in range(pad)]
    if len(samples) == 9:
        p = [s.copy() for s in samples]
        for i, j in _MEDIAN9:
            lo = np.minimum(p[i], p[j])
            np.maximum(p[i], p[j], out=p[j])
            p[i] = lo
        return p[4]
    stack = np.stack(samples)
    return np.median(stack, axis=0).astype(np.uint8)


def masked_median(samples: list[np.ndarray], moving: list[np.ndarray]) -> np.ndarray:
    """Per-pixel median of ``samples`` over the samples where ``moving`` is 0.

    Moving samples are replaced alternately by 0 and 255, which leaves the median of the
    whole set equal to the median of the static ones (exactly when the number of moving
    samples is even); pixels moving in every sample fall back to the plain median.
    """
    plain = median_of_samples(samples)
    if len(samples) < 3:
        return plain
    flip = np.zeros(samples[0].shape[:2], np.uint8)
    still = np.zeros(samples[0].shape[:2], np.uint8)
    filled = []
    for img, mov in zip(samples, moving):
        fill = np.where(flip[..., None] == 1, np.uint8(255), np.uint8(0))
        filled.append(np.where(mov[..., None] > 0, fill, img))
        flip ^= mov
        still += mov == 0
    med = median_of_samples(filled)
    return np.where(still[..., None] > 0, med, plain)


@dataclass
class _Sample:
    time_s: float
    scene: int
    image: np.ndarray
    moving: np.ndarray
    """uint8 0/1: pixels moving at the sample's time (changed since the previous frame)."""
    serial: int


class CentredMedianBackground:
    """Holds sampled frames and answers the background for a frame time (within one scene).

    ``add`` is called for every decoded frame in time order; it keeps one sample per
    ``step_s``. ``ready_until`` says up to which time frames can be asked for, because
    their whole window has been seen. Old samples are dropped, so memory is bounded.
    """

    def __init__(self, *, window_s: float = 0.8, step_s: float = 0.2, scale: int = 2) -> None:
        self.scale = scale
        self.window_s = window_s
        self.step_s = step_s
        self._samples: list[_Sample] = []
        self._last_sample_t = -np.inf
        self._last_scene = -1
        self._cache_key: tuple[int, ...] | None = None
        self._cache: np.ndarray | None = None
        self._newest_t = -np.inf
        self._serial = 0
        self._recent: list[tuple[float, int, np.ndarray]] = []

    def add(self, time_s: float, scene: int, image: np.ndarray, *, reduced: bool = False) -> None:
        """Offer the frame at ``time_s``; ``image`` is reduced by ``scale`` before it is kept,
        unless ``reduced`` says it already is."""
        if self.scale > 1 and not reduced:
            h, w = image.shape[:2]
            image = cv2.resize(image, (w // self.scale, h // self.scale), interpolation=cv2.INTER_AREA)
        self._newest_t = time_s
        if self._recent and self._recent[-1][1] != scene:
            self._recent.clear()
        self._recent.append((time_s, scene, image))
        while self._recent and self._recent[0][0] < time_s - _MOTION_LOOKBACK_S[-1] - 0.05:
            self._recent.pop(0)
        if scene != self._last_scene or time_s - self._last_sample_t >= self.step_s - 1e-9:
            # moving = changed within the last quarter second; comparing with one frame back
            # would miss the uniform inside of an object sliding along itself
            moving = np.zeros(image.shape[:2], np.uint8)
            for back in _MOTION_LOOKBACK_S:
                old = min(self._recent, key=lambda r: abs(r[0] - (time_s - back)))
                if old[0] < time_s:
                    d = cv2.absdiff(image, old[2]).max(axis=2)
                    moving |= (d > 10).astype(np.uint8)
            moving = cv2.dilate(moving, _DILATE)
            self._serial += 1
            self._samples.append(_Sample(time_s, scene, image, moving, self._serial))
            self._last_sample_t = time_s
            self._last_scene = scene

    def ready_until(self) -> float:
        """Frames up to this time have their full window of samples."""
        return self._newest_t - self.window_s

    def background(self, time_s: float, scene: int) -> np.ndarray:
        """Median of the scene's samples within the window around ``time_s``, at 1/``scale`` size."""
        lo, hi = time_s - self.window_s - 1e-9, time_s + self.window_s + 1e-9
        chosen = [i for i, s in enumerate(self._samples) if s.scene == scene and lo <= s.time_s <= hi]
        if not chosen:  # a scene shorter than one step: use its nearest sample
            same = [i for i, s in enumerate(self._samples) if s.scene == scene]
            chosen = [min(same, key=lambda i: abs(self._samples[i].time_s - time_s))]
        if len(chosen) > 9:  # keep 9 evenly spread samples for the fast exact median
            idx = np.linspace(0, len(chosen) - 1, 9).round().astype(int)
            chosen = [chosen[i] for i in idx]
        key = tuple(self._samples[i].serial for i in chosen)
        if key != self._cache_key:
            self._cache = masked_median(
                [self._samples[i].image for i in chosen], [self._samples[i].moving for i in chosen]
            )
            self._cache_key = key
        assert self._cache is not None
        # forget samples no later frame can use
        keep_from = time_s - self.window_s - self.step_s
        if self._samples and self._samples[0].time_s < keep_from:
            self._samples = [s for s in self._samples if s.time_s >= keep_from or s.scene > scene]
        return self._cache
