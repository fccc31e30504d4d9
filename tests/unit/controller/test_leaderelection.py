"""LeaderElector against an in-memory Lease store that enforces resourceVersion preconditions."""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from controller.errors import AlreadyExists, Conflict, NotFound, ServerError
from controller.leaderelection import LEASE_KIND, LeaderElector, micro_time

Obj = dict[str, Any]
NS, NAME = "kube-system", "my-controller"
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class LeaseStore:
    """The API server's side: one Lease table with optimistic concurrency."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Obj] = {}
        self._rv = 0
        self._written = asyncio.Event()

    async def next_write(self) -> None:
        await self._written.wait()

    def lease(self) -> Obj:
        return self.objects[(NS, NAME)]

    def spec(self) -> Obj:
        spec: Obj = self.lease()["spec"]
        return spec

    def _next_rv(self) -> str:
        self._rv += 1
        self._written.set()
        self._written = asyncio.Event()
        return str(self._rv)

    def get(self, namespace: str | None, name: str) -> Obj:
        try:
            return copy.deepcopy(self.objects[(namespace or "", name)])
        except KeyError:
            raise NotFound(404, "NotFound", f'leases "{name}" not found') from None

    def create(self, obj: Obj) -> Obj:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        if key in self.objects:
            raise AlreadyExists(409, "AlreadyExists", "already exists")
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = self._next_rv()
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def update(self, obj: Obj) -> Obj:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        current = self.objects.get(key)
        if current is None:
            raise NotFound(404, "NotFound", "not found")
        if obj["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", "the object has been modified")
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = self._next_rv()
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def overwrite_spec(self, **fields: Any) -> None:
        """Another party edits the Lease behind every elector's back."""
        lease = self.lease()
        lease["spec"] = {**lease["spec"], **fields}
        lease["metadata"]["resourceVersion"] = self._next_rv()


class Link:
    """One elector's connection to the store; can be cut to simulate a partition."""

    def __init__(self, store: LeaseStore) -> None:
        self.store = store
        self.down = False
        self.before_write: Callable[[], Awaitable[None]] | None = None

    def _check(self) -> None:
        if self.down:
            raise ServerError(503, "ServiceUnavailable", "connection refused")

    async def get(self, kind: tuple[str, str], name: str, namespace: str | None = None) -> Obj:
        assert kind == LEASE_KIND
        self._check()
        return self.store.get(namespace, name)

    async def _before_write(self) -> None:
        """Runs the race hook once, between this elector's read and its write."""
        if self.before_write is not None:
            hook, self.before_write = self.before_write, None
            await hook()

    async def create(self, obj: Obj) -> Obj:
        self._check()
        await self._before_write()
        return self.store.create(obj)

    async def update(self, obj: Obj) -> Obj:
        self._check()
        await self._before_write()
        return self.store.update(obj)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Status:
    def __init__(self) -> None:
        self.history: list[bool] = []

    def set_leading(self, leading: bool) -> None:
        self.history.append(leading)


def is_leader(e: LeaderElector) -> bool:
    """Read through a call, so mypy does not carry narrowing of the property across awaits."""
    return e.is_leader


def elector(link: Link, identity: str, **kwargs: Any) -> LeaderElector:
    return LeaderElector(link, namespace=NS, name=NAME, identity=identity, **kwargs)


FAST = {"lease_duration": 1.0, "renew_deadline": 0.5, "retry_period": 0.02}


class Work:
    """Leader work that records when it runs and how it ended."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False
        self.stopped_calls = 0

    async def run(self) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    def on_stopped(self) -> None:
        self.stopped_calls += 1


def test_micro_time_has_six_fractional_digits() -> None:
    dt = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert micro_time(dt) == "2026-01-02T03:04:05.123456Z"
    assert micro_time(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00.000000Z"


@pytest.mark.parametrize(
    "durations",
    [
        {"lease_duration": 10.0, "renew_deadline": 10.0},
        {"renew_deadline": 2.0, "retry_period": 2.0},
        {"lease_duration": 3.0, "renew_deadline": 2.0, "retry_period": 0.0},
    ],
)
def test_rejects_unsafe_timing(durations: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        elector(Link(LeaseStore()), "a", **durations)


def test_rejects_empty_identity() -> None:
    with pytest.raises(ValueError):
        elector(Link(LeaseStore()), "")


async def test_creates_missing_lease() -> None:
    store = LeaseStore()
    a = elector(Link(store), "a", lease_duration=15.0)
    assert await a.try_acquire_or_renew()
    lease = store.lease()
    assert lease["apiVersion"] == "coordination.k8s.io/v1"
    assert lease["kind"] == "Lease"
    spec = store.spec()
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert MICRO_TIME.match(spec["acquireTime"])
    assert MICRO_TIME.match(spec["renewTime"])
    assert a.observed_holder == "a"


async def test_renew_keeps_acquire_time_and_transitions() -> None:
    store = LeaseStore()
    a = elector(Link(store), "a")
    assert await a.try_acquire_or_renew()
    first = copy.deepcopy(store.lease())
    assert await a.try_acquire_or_renew()
    second = store.lease()
    assert second["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    assert second["spec"]["acquireTime"] == first["spec"]["acquireTime"]
    assert second["spec"]["renewTime"] >= first["spec"]["renewTime"]
    assert second["spec"]["leaseTransitions"] == 0


async def test_fractional_duration_rounds_up_in_the_record() -> None:
    store = LeaseStore()
    a = elector(Link(store), "a", lease_duration=2.5, renew_deadline=2.0, retry_period=0.5)
    assert await a.try_acquire_or_renew()
    assert store.spec()["leaseDurationSeconds"] == 3


async def test_does_not_take_a_held_lease_before_it_expires_locally() -> None:
    store, clock = LeaseStore(), FakeClock()
    a = elector(Link(store), "a", clock=clock)
    b = elector(Link(store), "b", clock=clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.now += 14.9
    assert not await b.try_acquire_or_renew()
    assert store.spec()["holderIdentity"] == "a"


async def test_takes_over_after_local_expiry_and_counts_the_transition() -> None:
    store, clock = LeaseStore(), FakeClock()
    a = elector(Link(store), "a", clock=clock)
    b = elector(Link(store), "b", clock=clock)
    assert await a.try_acquire_or_renew()
    acquired_by_a = store.spec()["acquireTime"]
    assert not await b.try_acquire_or_renew()
    clock.now += 15.01
    assert await b.try_acquire_or_renew()
    spec = store.spec()
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1
    assert spec["acquireTime"] >= acquired_by_a


async def test_expiry_ignores_the_remote_timestamps() -> None:
    """A renewTime far in the past (a skewed clock) does not let a candidate in early."""
    store, clock = LeaseStore(), FakeClock()
    a = elector(Link(store), "a", clock=clock)
    b = elector(Link(store), "b", clock=clock)
    assert await a.try_acquire_or_renew()
    store.overwrite_spec(renewTime="2001-01-01T00:00:00.000000Z")
    assert not await b.try_acquire_or_renew()
    clock.now += 10
    assert not await b.try_acquire_or_renew()


async def test_each_renewal_restarts_the_candidates_wait() -> None:
    store, clock = LeaseStore(), FakeClock()
    a = elector(Link(store), "a", clock=clock)
    b = elector(Link(store), "b", clock=clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock.now += 10
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()  # sees a new record: expiry restarts now
    clock.now += 10
    assert not await b.try_acquire_or_renew()
    clock.now += 5.01
    assert await b.try_acquire_or_renew()


async def test_losing_the_write_race_is_a_conflict_not_an_error() -> None:
    store, clock = LeaseStore(), FakeClock()
    a = elector(Link(store), "a", clock=clock)
    b_link = Link(store)
    b = elector(b_link, "b", clock=clock)
    assert await a.try_acquire_or_renew()
    assert await a.release()

    async def a_wins_meanwhile() -> None:
        assert await a.try_acquire_or_renew()

    b_link.before_write = a_wins_meanwhile
    assert not await b.try_acquire_or_renew()
    assert store.spec()["holderIdentity"] == "a"


async def test_losing_the_create_race_is_not_an_error() -> None:
    store = LeaseStore()
    a = elector(Link(store), "a")
    b_link = Link(store)
    b = elector(b_link, "b")

    async def a_creates_meanwhile() -> None:
        assert await a.try_acquire_or_renew()

    b_link.before_write = a_creates_meanwhile
    assert not await b.try_acquire_or_renew()
    assert store.spec()["holderIdentity"] == "a"


async def test_release_hands_over_at_once() -> None:
    store, clock = LeaseStore(), FakeClock()
    a = elector(Link(store), "a", clock=clock)
    b = elector(Link(store), "b", clock=clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert await a.release()
    spec = store.spec()
    assert spec["holderIdentity"] == ""
    assert spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 0
    assert MICRO_TIME.match(spec["renewTime"])
    assert await b.try_acquire_or_renew()  # no clock advance needed
    assert store.spec()["holderIdentity"] == "b"
    assert store.spec()["leaseTransitions"] == 1


async def test_release_of_a_lease_we_do_not_hold_does_nothing() -> None:
    store = LeaseStore()
    a = elector(Link(store), "a")
    b = elector(Link(store), "b")
    assert not await b.release()
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    assert not await b.release()
    assert store.spec()["holderIdentity"] == "a"


async def test_run_leads_then_releases_on_cancel() -> None:
    store, work, status = LeaseStore(), Work(), Status()
    a = elector(
        Link(store),
        "a",
        on_started_leading=work.run,
        on_stopped_leading=work.on_stopped,
        metrics=status,
        **FAST,
    )
    task = asyncio.create_task(a.run())
    await asyncio.wait_for(work.started.wait(), 5)
    assert a.is_leader
    assert status.history[-1:] == [True]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert work.cancelled
    assert work.stopped_calls == 1
    assert not is_leader(a)
    assert status.history[-1:] == [False]
    assert store.spec()["holderIdentity"] == ""


async def test_cancel_without_release_keeps_the_record() -> None:
    store, work = LeaseStore(), Work()
    a = elector(
        Link(store),
        "a",
        on_started_leading=work.run,
        on_stopped_leading=work.on_stopped,
        release_on_cancel=False,
        **FAST,
    )
    task = asyncio.create_task(a.run())
    await asyncio.wait_for(work.started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert work.cancelled
    assert work.stopped_calls == 1
    assert store.spec()["holderIdentity"] == "a"


async def test_run_keeps_renewing() -> None:
    store, work = LeaseStore(), Work()
    a = elector(Link(store), "a", on_started_leading=work.run, **FAST)
    task = asyncio.create_task(a.run())
    await asyncio.wait_for(work.started.wait(), 5)
    await asyncio.wait_for(store.next_write(), 5)  # a renewal
    assert a.is_leader
    assert store.spec()["holderIdentity"] == "a"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_failing_to_renew_stops_the_work_and_returns() -> None:
    store, work = LeaseStore(), Work()
    link = Link(store)
    a = elector(link, "a", on_started_leading=work.run, on_stopped_leading=work.on_stopped, **FAST)
    task = asyncio.create_task(a.run())
    await asyncio.wait_for(work.started.wait(), 5)
    link.down = True
    await asyncio.wait_for(task, 5)  # returns (no exception): leadership is lost
    assert work.cancelled
    assert work.stopped_calls == 1
    assert not is_leader(a)
    # Not released: the server was unreachable, and the record still names "a".
    assert store.spec()["holderIdentity"] == "a"


async def test_seeing_another_holder_steps_down_without_waiting_for_the_deadline() -> None:
    store, work = LeaseStore(), Work()
    slow = {"lease_duration": 60.0, "renew_deadline": 50.0, "retry_period": 0.02}
    a = elector(
        Link(store), "a", on_started_leading=work.run, on_stopped_leading=work.on_stopped, **slow
    )
    task = asyncio.create_task(a.run())
    await asyncio.wait_for(work.started.wait(), 5)
    store.overwrite_spec(holderIdentity="intruder")
    await asyncio.wait_for(task, 5)
    assert work.cancelled
    assert work.stopped_calls == 1
    assert store.spec()["holderIdentity"] == "intruder"


async def test_failing_work_is_raised_and_the_lease_released() -> None:
    store = LeaseStore()
    stopped: list[bool] = []

    async def boom() -> None:
        raise RuntimeError("controller crashed")

    a = elector(
        Link(store),
        "a",
        on_started_leading=boom,
        on_stopped_leading=lambda: stopped.append(True),
        **FAST,
    )
    with pytest.raises(RuntimeError, match="controller crashed"):
        await asyncio.wait_for(a.run(), 5)
    assert stopped == [True]
    assert store.spec()["holderIdentity"] == ""


async def test_work_that_returns_keeps_the_lease() -> None:
    store = LeaseStore()
    done = asyncio.Event()

    async def quick() -> None:
        done.set()

    a = elector(Link(store), "a", on_started_leading=quick, **FAST)
    task = asyncio.create_task(a.run())
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.wait_for(store.next_write(), 5)  # a renewal
    assert a.is_leader
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_acquire_retries_through_server_errors() -> None:
    store, work = LeaseStore(), Work()
    link = Link(store)
    link.down = True
    a = elector(link, "a", on_started_leading=work.run, **FAST)
    task = asyncio.create_task(a.run())
    await asyncio.sleep(0.1)
    assert not is_leader(a)
    link.down = False
    await asyncio.wait_for(work.started.wait(), 5)
    assert a.is_leader
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_standby_takes_over_after_the_leader_is_cancelled() -> None:
    store = LeaseStore()
    intervals: list[tuple[str, float, float]] = []
    leading: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}
    loop = asyncio.get_running_loop()

    def work_for(identity: str) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            start = loop.time()
            leading[identity].set()
            try:
                await asyncio.Event().wait()
            finally:
                intervals.append((identity, start, loop.time()))

        return work

    electors = {
        i: elector(Link(store), i, on_started_leading=work_for(i), **FAST) for i in ("a", "b")
    }
    tasks = {i: asyncio.create_task(e.run()) for i, e in electors.items()}
    done, _ = await asyncio.wait(
        [asyncio.create_task(ev.wait()) for ev in leading.values()],
        timeout=5,
        return_when=asyncio.FIRST_COMPLETED,
    )
    assert done
    first = "a" if leading["a"].is_set() else "b"
    second = "b" if first == "a" else "a"
    assert not electors[second].is_leader

    tasks[first].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[first]
    await asyncio.wait_for(leading[second].wait(), 5)
    tasks[second].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[second]

    intervals.sort(key=lambda interval: interval[1])
    assert [i for i, _, _ in intervals] == [first, second]
    assert intervals[0][2] <= intervals[1][1]
    # Created by the first (0), taken by the second after the release (1), released again.
    assert store.spec()["leaseTransitions"] == 1
    assert store.spec()["holderIdentity"] == ""
