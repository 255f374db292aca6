"""Per-client token buckets for the public read endpoints."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate_per_min`` requests per minute per client, with bursts up to ``burst``.

    Bounded memory: at most ``max_clients`` buckets; the least recently used are dropped
    (a dropped client simply starts again with a full bucket).
    """

    def __init__(self, rate_per_min: float, burst: int, *, max_clients: int = 10_000) -> None:
        self.rate_per_s = rate_per_min / 60.0
        self.burst = max(1, int(burst))
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def acquire(self, client: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; returns 0 when allowed, else seconds until it would be."""
        if not self.enabled:
            return 0.0
        now = time.monotonic()
        with self._lock:
            b = self._buckets.pop(client, None) or _Bucket(float(self.burst), now)
            b.tokens = min(float(self.burst), b.tokens + (now - b.updated) * self.rate_per_s)
            b.updated = now
            wait = 0.0
            if b.tokens >= cost:
                b.tokens -= cost
            else:
                wait = (cost - b.tokens) / self.rate_per_s
            self._buckets[client] = b  # re-insert: dict order is recency order
            while len(self._buckets) > self.max_clients:
                self._buckets.pop(next(iter(self._buckets)))
            return wait
