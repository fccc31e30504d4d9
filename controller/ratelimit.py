"""Rate limiters deciding how long a failed item waits before it is retried.

They mirror client-go's workqueue rate limiters: ``when`` both answers and
records (each call is one more failure), ``forget`` clears an item's history
once it succeeds, and ``retries`` reports how many failures are on record.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Protocol

__all__ = [
    "BucketRateLimiter",
    "ItemExponentialFailureRateLimiter",
    "MaxOfRateLimiter",
    "RateLimiter",
    "default_controller_rate_limiter",
]


class RateLimiter(Protocol):
    """What a rate-limited queue asks of its limiter."""

    def when(self, item: Hashable) -> float:
        """Record a failure of ``item`` and return the seconds to wait before retrying it."""
        ...

    def forget(self, item: Hashable) -> None:
        """Drop ``item``'s failure history, typically after it was processed successfully."""
        ...

    def retries(self, item: Hashable) -> int:
        """Return how many failures of ``item`` are on record."""
        ...


class ItemExponentialFailureRateLimiter:
    """Per-item exponential backoff: ``base * 2**failures``, capped at ``cap`` seconds.

    Backs off a persistently failing item without slowing down the others.
    """

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        if base < 0 or cap < 0:
            raise ValueError("base and cap must be non-negative")
        self._base = base
        self._cap = cap
        self._failures: dict[Hashable, int] = {}

    @property
    def base(self) -> float:
        return self._base

    @property
    def cap(self) -> float:
        return self._cap

    def when(self, item: Hashable) -> float:
        exponent = self._failures.get(item, 0)
        self._failures[item] = exponent + 1
        try:
            backoff = self._base * 2.0**exponent
        except OverflowError:  # beyond float range: long past the cap anyway
            return self._cap
        return min(backoff, self._cap)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def retries(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """Overall token bucket: ``burst`` retries at once, then ``qps`` per second.

    It is shared by all items, so it bounds the total retry rate when many items
    fail together (where per-item backoff alone would let them all through).
    Like golang.org/x/time/rate's reservations, each call takes a token even if
    the bucket is empty, so successive callers are spaced ``1/qps`` apart.
    """

    def __init__(
        self,
        qps: float = 10.0,
        burst: int = 100,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if qps <= 0:
            raise ValueError("qps must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._qps = qps
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    @property
    def qps(self) -> float:
        return self._qps

    @property
    def burst(self) -> int:
        return self._burst

    def when(self, item: Hashable) -> float:
        if math.isinf(self._qps):
            return 0.0
        now = self._clock()
        elapsed = max(0.0, now - self._last)  # a clock stepping back refills nothing
        self._last = max(now, self._last)
        self._tokens = min(float(self._burst), self._tokens + elapsed * self._qps)
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self._qps

    def forget(self, item: Hashable) -> None:
        """Nothing to forget: the bucket keeps no per-item state."""

    def retries(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """Waits as long as the strictest of its limiters says.

    Every limiter is consulted on each ``when`` so that all of them record the failure.
    """

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self._limiters = limiters

    @property
    def limiters(self) -> tuple[RateLimiter, ...]:
        return self._limiters

    def when(self, item: Hashable) -> float:
        return max([limiter.when(item) for limiter in self._limiters])

    def forget(self, item: Hashable) -> None:
        for limiter in self._limiters:
            limiter.forget(item)

    def retries(self, item: Hashable) -> int:
        return max(limiter.retries(item) for limiter in self._limiters)


def default_controller_rate_limiter() -> MaxOfRateLimiter:
    """controller-runtime's default: 5ms..1000s per-item backoff, overall 10 qps with burst 100."""
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(base=0.005, cap=1000.0),
        BucketRateLimiter(qps=10.0, burst=100),
    )
