"""Token buckets per API key for callback creation.

Each creation starts a workflow, so a runaway client would flood Temporal and the staff queue; a bucket
lets honest bursts through (a phone agent saving a batch) while capping the sustained rate. The buckets
live in the API process: with several API replicas the effective limit is per replica, which is the
usual trade for not paying a shared-store round trip on every create.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if rate_per_minute <= 0 or burst < 1:
            raise ValueError("the rate must be positive and the burst at least 1")
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[object, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: object) -> float:
        """Take one token for `key`. Returns 0 when granted, else the seconds until a token is back."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._drop_full(now)
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate

    def _drop_full(self, now: float) -> None:
        """Forget buckets that have refilled: they are indistinguishable from new ones."""
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.burst:
                del self._buckets[key]


def retry_after_header(wait_seconds: float) -> str:
    """Whole seconds, rounded up, never 0 (a client told 0 would retry at once and be refused again)."""
    return str(max(1, math.ceil(wait_seconds)))
