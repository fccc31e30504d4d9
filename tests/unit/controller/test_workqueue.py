from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import pytest

from controller.ratelimit import ItemExponentialFailureRateLimiter
from controller.workqueue import NoopMetrics, QueueMetrics, RateLimitingQueue, ShutDown


@dataclass(frozen=True)
class Key:
    """Stands in for the controller's Request(namespace, name)."""

    namespace: str
    name: str


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class RecordingMetrics:
    events: list[tuple[Any, ...]] = field(default_factory=list)

    def on_add(self, item: Hashable) -> None:
        self.events.append(("add", item))

    def on_get(self, item: Hashable, waited_seconds: float) -> None:
        self.events.append(("get", item, waited_seconds))

    def on_done(self, item: Hashable, worked_seconds: float) -> None:
        self.events.append(("done", item, worked_seconds))

    def on_depth(self, n: int) -> None:
        self.events.append(("depth", n))

    def on_retry(self, item: Hashable) -> None:
        self.events.append(("retry", item))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [event[1:] for event in self.events if event[0] == kind]


class FixedLimiter:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        self.failures[item] = self.failures.get(item, 0) + 1
        return self.delay

    def forget(self, item: Hashable) -> None:
        self.failures.pop(item, None)

    def retries(self, item: Hashable) -> int:
        return self.failures.get(item, 0)


def queue(**kwargs: Any) -> RateLimitingQueue[str]:
    return RateLimitingQueue(**kwargs)


async def get_now(q: RateLimitingQueue[Any]) -> Any:
    """Get an item that must already be queued (or arrive promptly)."""
    return await asyncio.wait_for(q.get(), 2)


async def assert_blocks(q: RateLimitingQueue[Any], seconds: float = 0.02) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(q.get(), seconds)


# ---- adding and getting


async def test_fifo_order() -> None:
    q = queue()
    for item in "abc":
        q.add(item)
    assert len(q) == 3
    assert [await get_now(q) for _ in range(3)] == ["a", "b", "c"]
    assert len(q) == 0


async def test_items_can_be_request_keys() -> None:
    q: RateLimitingQueue[Key] = RateLimitingQueue()
    q.add(Key("ns", "a"))
    q.add(Key("ns", "a"))
    assert len(q) == 1
    assert await get_now(q) == Key("ns", "a")


async def test_dedup_while_waiting() -> None:
    q = queue()
    q.add("a")
    q.add("b")
    q.add("a")
    q.add("a")
    assert len(q) == 2
    assert [await get_now(q), await get_now(q)] == ["a", "b"]
    await assert_blocks(q)


async def test_add_during_processing_requeues_once_on_done() -> None:
    q = queue()
    q.add("a")
    assert await get_now(q) == "a"
    for _ in range(3):
        q.add("a")
    assert len(q) == 0  # not handed out while a worker holds it
    await assert_blocks(q)
    q.done("a")
    assert len(q) == 1
    assert await get_now(q) == "a"
    q.done("a")
    assert len(q) == 0
    await assert_blocks(q)


async def test_done_without_new_adds_does_not_requeue() -> None:
    q = queue()
    q.add("a")
    await get_now(q)
    q.done("a")
    assert len(q) == 0


async def test_done_for_an_item_not_processing_is_ignored() -> None:
    q = queue()
    q.done("never-seen")
    q.add("a")
    q.done("a")  # queued, not processing: must not queue it twice
    assert len(q) == 1
    assert await get_now(q) == "a"
    await assert_blocks(q)


async def test_get_blocks_until_add() -> None:
    q = queue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    q.add("a")
    assert await asyncio.wait_for(getter, 2) == "a"


async def test_item_is_never_handed_to_two_workers() -> None:
    q = queue()
    q.add("a")
    first = await get_now(q)
    second = asyncio.create_task(q.get())
    q.add("a")
    await asyncio.sleep(0.01)
    assert not second.done()
    q.done(first)
    assert await asyncio.wait_for(second, 2) == "a"


async def test_each_add_wakes_one_waiting_worker() -> None:
    q = queue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.add("a")
    q.add("b")
    await asyncio.sleep(0.01)
    done = [task for task in getters if task.done()]
    assert sorted(task.result() for task in done) == ["a", "b"]
    q.add("c")
    assert sorted(await asyncio.wait_for(asyncio.gather(*getters), 2)) == ["a", "b", "c"]


async def test_cancelled_getter_does_not_lose_a_wakeup() -> None:
    q = queue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)  # both waiting, first in line
    q.add("a")  # wakes the first ...
    first.cancel()  # ... which is cancelled before it can take the item
    assert await asyncio.wait_for(second, 2) == "a"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_cancelled_waiting_getter_is_forgotten() -> None:
    q = queue()
    cancelled = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    q.add("a")
    assert await get_now(q) == "a"


def test_adds_need_no_running_loop() -> None:
    """Items may be added before the loop runs; the delayed-add timer starts with get()."""
    q = queue()
    q.add("a")
    q.add_after("b", 0.01)

    async def consume() -> list[str]:
        return [await get_now(q), await get_now(q)]

    assert asyncio.run(consume()) == ["a", "b"]


# ---- delayed adds


async def test_add_after_orders_by_deadline() -> None:
    q = queue()
    q.add_after("slow", 0.06)
    q.add_after("fast", 0.01)
    q.add_after("middle", 0.03)
    assert len(q) == 0
    assert [await get_now(q) for _ in range(3)] == ["fast", "middle", "slow"]


async def test_add_after_waits() -> None:
    q = queue()
    q.add_after("a", 0.05)
    await asyncio.sleep(0.01)
    assert len(q) == 0
    assert await get_now(q) == "a"


async def test_add_after_non_positive_delay_adds_now() -> None:
    q = queue()
    q.add_after("a", 0)
    q.add_after("b", -1)
    assert len(q) == 2
    assert [await get_now(q), await get_now(q)] == ["a", "b"]


async def test_add_after_earlier_deadline_wins() -> None:
    q = queue()
    q.add_after("a", 60)
    q.add_after("a", 0.01)  # brought forward
    assert await get_now(q) == "a"
    q.done("a")

    q.add_after("b", 0.01)
    q.add_after("b", 0.03)  # a later deadline does not push it back, nor add it twice
    assert await get_now(q) == "b"
    q.done("b")
    await assert_blocks(q, 0.06)


async def test_add_after_deduplicates_with_queued_items() -> None:
    q = queue()
    q.add("a")
    q.add_after("a", 0.01)
    await asyncio.sleep(0.03)
    assert len(q) == 1


async def test_delayed_item_arriving_while_processing_is_requeued_after_done() -> None:
    q = queue()
    q.add("a")
    await get_now(q)
    q.add_after("a", 0.01)
    await asyncio.sleep(0.03)
    assert len(q) == 0
    q.done("a")
    assert await get_now(q) == "a"


async def test_timer_task_exits_when_nothing_is_delayed() -> None:
    q = queue()
    q.add_after("a", 0.01)
    q.add_after("b", 0.02)
    await get_now(q)
    await get_now(q)
    await asyncio.sleep(0.01)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    q.add_after("c", 0.01)  # and it starts again when needed
    assert await get_now(q) == "c"


async def test_many_updates_to_one_delayed_item() -> None:
    q = queue()
    for i in range(500):
        q.add_after("a", 10 - i * 0.0199)  # ever earlier: the last is ~0.05s
    q.add_after("b", 0.01)
    assert await get_now(q) == "b"
    assert await get_now(q) == "a"
    await assert_blocks(q, 0.05)


# ---- rate limiting


async def test_add_rate_limited_uses_the_limiters_delay() -> None:
    limiter = FixedLimiter(0.02)
    q = queue(rate_limiter=limiter)
    q.add_rate_limited("a")
    assert len(q) == 0
    assert q.num_requeues("a") == 1
    assert await get_now(q) == "a"


async def test_add_rate_limited_backs_off_and_forget_resets() -> None:
    limiter = ItemExponentialFailureRateLimiter(base=0.001, cap=1.0)
    q = queue(rate_limiter=limiter)
    for expected in (1, 2, 3):
        q.add_rate_limited("a")
        assert q.num_requeues("a") == expected
        assert await get_now(q) == "a"
        q.done("a")
    q.forget("a")
    assert q.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(0.001)


async def test_default_rate_limiter() -> None:
    q = queue()
    q.add_rate_limited("a")  # 5ms under controller-runtime's default
    assert q.num_requeues("a") == 1
    assert await get_now(q) == "a"


# ---- shutdown


async def test_shutdown_wakes_every_waiting_getter() -> None:
    q = queue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shutdown()
    results = await asyncio.wait_for(asyncio.gather(*getters, return_exceptions=True), 2)
    assert all(isinstance(result, ShutDown) for result in results)
    assert q.shutting_down


async def test_shutdown_stops_immediately() -> None:
    q = queue()
    q.add("a")
    q.add("b")
    q.add_after("c", 0.01)
    q.shutdown()
    with pytest.raises(ShutDown):
        await q.get()  # even though items were queued
    q.add("d")
    q.add_after("e", 0)
    q.add_rate_limited("f")
    assert len(q) == 0
    await asyncio.sleep(0.03)
    assert len(q) == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}  # the timer was cancelled
    q.shutdown()  # idempotent


async def test_done_after_shutdown_is_allowed_and_does_not_requeue() -> None:
    q = queue()
    q.add("a")
    await get_now(q)
    q.add("a")
    q.shutdown()
    q.done("a")
    assert len(q) == 0
    with pytest.raises(ShutDown):
        await q.get()


async def test_shutdown_with_drain_waits_for_done() -> None:
    q = queue()
    q.add("a")
    q.add("b")
    held = [await get_now(q), await get_now(q)]
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    drain = asyncio.create_task(q.shutdown_with_drain())
    await asyncio.sleep(0.01)
    assert not drain.done()
    with pytest.raises(ShutDown):
        await waiter  # no new work starts while draining
    q.add("d")  # ignored
    assert len(q) == 0
    q.done(held[0])
    await asyncio.sleep(0.01)
    assert not drain.done()
    q.done(held[1])
    await asyncio.wait_for(drain, 2)
    with pytest.raises(ShutDown):
        await q.get()


async def test_shutdown_with_drain_when_idle_returns_at_once() -> None:
    q = queue()
    q.add("a")  # queued but not processing: abandoned
    await asyncio.wait_for(q.shutdown_with_drain(), 2)
    await asyncio.wait_for(q.shutdown_with_drain(), 2)  # and again
    with pytest.raises(ShutDown):
        await q.get()


async def test_shutdown_with_drain_after_shutdown_still_waits_for_done() -> None:
    q = queue()
    q.add("a")
    await get_now(q)
    q.shutdown()
    drain = asyncio.create_task(q.shutdown_with_drain())
    await asyncio.sleep(0.01)
    assert not drain.done()
    q.done("a")
    await asyncio.wait_for(drain, 2)


async def test_drain_finishes_when_cancelled_workers_call_done() -> None:
    """As a controller stops: cancel the workers, then drain; their `finally: done` ends it."""
    q = queue()
    for item in "abcdef":
        q.add(item)
    started = asyncio.Event()

    async def worker() -> None:
        while True:
            item = await q.get()
            try:
                started.set()
                await asyncio.sleep(60)
            finally:
                q.done(item)

    workers = [asyncio.create_task(worker()) for _ in range(2)]
    await started.wait()
    for task in workers:
        task.cancel()
    await asyncio.wait_for(q.shutdown_with_drain(), 2)
    await asyncio.gather(*workers, return_exceptions=True)


# ---- metrics


async def test_metrics_hooks() -> None:
    clock = FakeClock()
    metrics = RecordingMetrics()
    q = queue(metrics=metrics, clock=clock, rate_limiter=FixedLimiter(0))
    q.add("a")
    q.add("a")  # deduplicated: not an add
    q.add("b")
    assert metrics.of("add") == [("a",), ("b",)]
    assert metrics.of("depth") == [(1,), (2,)]

    clock.now += 2
    await get_now(q)
    assert metrics.of("get") == [("a", 2.0)]
    assert metrics.of("depth")[-1] == (1,)

    clock.now += 3
    q.add("a")  # while processing: queued time counts from here
    q.done("a")
    assert metrics.of("done") == [("a", 3.0)]
    clock.now += 1
    assert await get_now(q) == "b"
    assert await get_now(q) == "a"
    assert metrics.of("get")[1:] == [("b", 6.0), ("a", 1.0)]

    q.add_rate_limited("c")
    q.add_after("d", 0)
    assert metrics.of("retry") == [("c",), ("d",)]


async def test_in_flight_gauges() -> None:
    clock = FakeClock()
    q = queue(clock=clock)
    assert q.unfinished_work_seconds() == 0
    assert q.longest_running_processor_seconds() == 0
    q.add("a")
    q.add("b")
    await get_now(q)
    clock.now += 4
    await get_now(q)
    clock.now += 1
    assert q.unfinished_work_seconds() == 5 + 1
    assert q.longest_running_processor_seconds() == 5
    q.done("a")
    assert q.unfinished_work_seconds() == 1
    assert q.longest_running_processor_seconds() == 1
    q.done("b")
    assert q.unfinished_work_seconds() == 0


def test_noop_metrics_is_queue_metrics() -> None:
    metrics: QueueMetrics = NoopMetrics()
    metrics.on_add("a")
    metrics.on_get("a", 0.0)
    metrics.on_done("a", 0.0)
    metrics.on_depth(0)
    metrics.on_retry("a")


# ---- concurrency


async def test_many_producers_and_workers() -> None:
    producers, adds_per_producer, keys, workers = 20, 2000, 50, 8
    rng = random.Random(1234)
    q: RateLimitingQueue[Key] = RateLimitingQueue()
    tick = itertools.count()  # logical time: the event loop runs one step at a time
    last_added: dict[Key, int] = {}
    last_started: dict[Key, int] = {}
    held: dict[Key, int] = {}  # key -> worker holding it
    processed = 0
    producing = True
    idle = asyncio.Event()  # set once producers are finished and no work is left
    all_keys = [Key("ns", f"k{i}") for i in range(keys)]

    async def produce(seed: int) -> None:
        local = random.Random(seed)
        for n in range(adds_per_producer):
            key = local.choice(all_keys)
            q.add(key)
            last_added[key] = next(tick)
            if n % 7 == 0:
                await asyncio.sleep(0)

    async def work(worker: int) -> None:
        nonlocal processed
        local = random.Random(worker)
        while True:
            try:
                key = await q.get()
            except ShutDown:
                return
            assert key not in held, f"{key} held by {held.get(key)} and {worker}"
            held[key] = worker
            last_started[key] = next(tick)
            processed += 1
            for _ in range(local.randrange(3)):
                await asyncio.sleep(0)
            del held[key]
            q.done(key)
            if not producing and not len(q) and not held:
                idle.set()

    worker_tasks = [asyncio.create_task(work(i)) for i in range(workers)]
    await asyncio.gather(*(produce(rng.randrange(1 << 30)) for _ in range(producers)))
    producing = False
    if not len(q) and not held:
        idle.set()
    async with asyncio.timeout(30):
        await idle.wait()
        await q.shutdown_with_drain()
        await asyncio.gather(*worker_tasks)

    assert set(last_added) == set(all_keys)
    for key, added in last_added.items():
        assert last_started[key] > added, f"{key} was added after its last processing started"
    assert keys <= processed <= producers * adds_per_producer
    assert len(q) == 0
    assert q.unfinished_work_seconds() == 0


async def test_many_workers_with_delayed_and_rate_limited_adds() -> None:
    q = queue(rate_limiter=ItemExponentialFailureRateLimiter(base=0.0005, cap=0.004))
    held: set[str] = set()
    attempts: dict[str, int] = {}
    succeeded: set[str] = set()
    all_succeeded = asyncio.Event()

    async def work() -> None:
        while True:
            try:
                key = await q.get()
            except ShutDown:
                return
            assert key not in held
            held.add(key)
            attempts[key] = attempts.get(key, 0) + 1
            await asyncio.sleep(0)
            held.discard(key)
            if attempts[key] < 4:
                q.add_rate_limited(key)  # fail three times ...
            else:
                q.forget(key)  # ... then succeed
                succeeded.add(key)
                if len(succeeded) == len(keys):
                    all_succeeded.set()
            q.done(key)

    keys = [f"k{i}" for i in range(30)]
    for i, key in enumerate(keys):
        q.add_after(key, (i % 5) * 0.002)
    workers = [asyncio.create_task(work()) for _ in range(6)]
    async with asyncio.timeout(30):
        await all_succeeded.wait()
        await q.shutdown_with_drain()
        await asyncio.gather(*workers)
    assert all(attempts[key] == 4 for key in keys)
    assert all(q.num_requeues(key) == 0 for key in keys)
