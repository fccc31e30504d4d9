from __future__ import annotations

from collections.abc import Hashable

import pytest

from controller.ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FixedLimiter:
    """Returns a fixed delay and counts calls, to see what MaxOf delegates."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        self.calls[item] = self.calls.get(item, 0) + 1
        return self.delay

    def forget(self, item: Hashable) -> None:
        self.calls.pop(item, None)

    def retries(self, item: Hashable) -> int:
        return self.calls.get(item, 0)


# ---- per-item exponential backoff


def test_exponential_doubles_from_base() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(6)]
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08, 0.16])
    assert limiter.retries("a") == 6


def test_exponential_is_capped() -> None:
    limiter = ItemExponentialFailureRateLimiter(base=0.005, cap=1000.0)
    delays = [limiter.when("a") for _ in range(25)]
    # 0.005 * 2**17 = 655.36 is the last step under the cap.
    assert delays[17] == pytest.approx(655.36)
    assert delays[18:] == [1000.0] * 7


def test_exponential_survives_huge_failure_counts() -> None:
    limiter = ItemExponentialFailureRateLimiter(base=0.005, cap=1000.0)
    for _ in range(3000):  # 2.0**1024 overflows a float
        delay = limiter.when("a")
    assert delay == 1000.0
    assert limiter.retries("a") == 3000


def test_exponential_tracks_items_independently() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    limiter.when("a")
    limiter.when("a")
    assert limiter.when("b") == pytest.approx(0.005)
    assert limiter.retries("a") == 2
    assert limiter.retries("b") == 1
    assert limiter.retries("c") == 0


def test_exponential_forget_resets() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    for _ in range(5):
        limiter.when("a")
    limiter.forget("a")
    assert limiter.retries("a") == 0
    assert limiter.when("a") == pytest.approx(0.005)
    limiter.forget("never-seen")  # harmless


def test_exponential_rejects_negative_settings() -> None:
    with pytest.raises(ValueError):
        ItemExponentialFailureRateLimiter(base=-1)
    with pytest.raises(ValueError):
        ItemExponentialFailureRateLimiter(cap=-1)


# ---- overall token bucket


def test_bucket_allows_burst_then_spaces_by_qps() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10, burst=3, clock=clock)
    assert [limiter.when(i) for i in range(3)] == [0.0, 0.0, 0.0]
    # Every further caller reserves the next token: 0.1s apart at 10 qps.
    assert [limiter.when(i) for i in range(3, 6)] == pytest.approx([0.1, 0.2, 0.3])


def test_bucket_refills_over_time() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=10, burst=2, clock=clock)
    limiter.when("a")
    limiter.when("b")
    assert limiter.when("c") == pytest.approx(0.1)
    clock.advance(0.1)  # pays back c's reservation
    assert limiter.when("d") == pytest.approx(0.1)
    clock.advance(0.35)  # 0.1 for d, then 2.5 tokens: capped at the burst of 2
    assert limiter.when("e") == 0.0
    assert limiter.when("f") == 0.0
    assert limiter.when("g") == pytest.approx(0.1)


def test_bucket_ignores_a_clock_stepping_back() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=1, burst=1, clock=clock)
    assert limiter.when("a") == 0.0
    clock.advance(-10)
    assert limiter.when("b") == pytest.approx(1.0)


def test_bucket_is_not_per_item() -> None:
    limiter = BucketRateLimiter(qps=1, burst=1, clock=FakeClock())
    assert limiter.when("a") == 0.0
    assert limiter.when("a") == pytest.approx(1.0)
    assert limiter.retries("a") == 0
    limiter.forget("a")  # keeps no per-item state, so nothing changes
    assert limiter.when("a") == pytest.approx(2.0)


def test_bucket_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        BucketRateLimiter(qps=0)
    with pytest.raises(ValueError):
        BucketRateLimiter(burst=0)


# ---- max of


def test_max_of_takes_the_longest_and_consults_all() -> None:
    short, long = FixedLimiter(0.5), FixedLimiter(2.0)
    limiter = MaxOfRateLimiter(short, long)
    assert limiter.when("a") == 2.0
    assert short.calls == {"a": 1}
    assert long.calls == {"a": 1}
    assert limiter.limiters == (short, long)


def test_max_of_retries_and_forget() -> None:
    exponential = ItemExponentialFailureRateLimiter()
    other = FixedLimiter(0.0)
    limiter = MaxOfRateLimiter(exponential, other)
    limiter.when("a")
    other.when("a")
    assert limiter.retries("a") == 2
    limiter.forget("a")
    assert limiter.retries("a") == 0
    assert exponential.retries("a") == 0


def test_max_of_needs_a_limiter() -> None:
    with pytest.raises(ValueError):
        MaxOfRateLimiter()


# ---- default


def test_default_is_controller_runtimes() -> None:
    limiter = default_controller_rate_limiter()
    exponential, bucket = limiter.limiters
    assert isinstance(exponential, ItemExponentialFailureRateLimiter)
    assert (exponential.base, exponential.cap) == (0.005, 1000.0)
    assert isinstance(bucket, BucketRateLimiter)
    assert (bucket.qps, bucket.burst) == (10.0, 100)


def test_default_backs_off_per_item_within_the_burst() -> None:
    limiter = default_controller_rate_limiter()
    assert [limiter.when("a") for _ in range(4)] == pytest.approx([0.005, 0.01, 0.02, 0.04])
    assert limiter.when("b") == pytest.approx(0.005)
    assert limiter.retries("a") == 4
    limiter.forget("a")
    assert limiter.when("a") == pytest.approx(0.005)


def test_limiters_satisfy_the_protocol() -> None:
    limiters: list[RateLimiter] = [
        ItemExponentialFailureRateLimiter(),
        BucketRateLimiter(),
        MaxOfRateLimiter(BucketRateLimiter()),
        default_controller_rate_limiter(),
    ]
    for limiter in limiters:
        assert limiter.when("x") >= 0
