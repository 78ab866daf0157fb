"""Per-principal rate limiting: a token bucket per caller (429 with Retry-After when empty).

Off when the rate is 0 (the default, for loopback development use).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tools.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate_per_second: float, burst: int) -> None:
        self.rate = rate_per_second
        self.burst = max(1, burst)
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def check(self, principal: str) -> None:
        """Take one token for ``principal`` or raise RateLimited saying when to retry."""
        if not self.enabled:
            return
        now = time.monotonic()
        bucket = self._buckets.setdefault(principal, _Bucket(float(self.burst), now))
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1:
            wait = (1 - bucket.tokens) / self.rate
            raise RateLimited(
                f"too many requests: the limit is {self.rate:g} per second (bursts of {self.burst}); retry after "
                f"{max(1, round(wait))} s",
                {"ratePerSecond": self.rate, "burst": self.burst},
                retry_after=wait,
            )
        bucket.tokens -= 1
