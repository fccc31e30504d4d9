"""Two electors against the real local API server: one leader at a time, and a clean hand-over."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from controller.client import Client
from controller.leaderelection import LEASE_KIND, LeaderElector
from tests.integration.conftest import RunningCluster

Obj = dict[str, Any]
LEASE_NAME = "test-leader"
SHORT = {"lease_duration": 2.0, "renew_deadline": 1.5, "retry_period": 0.3}


class RecordingClient:
    """Forwards to the real client and notes when each successful write was *sent*.

    The send time is a lower bound on when any other elector can have seen the write,
    so a takeover earlier than `last_write_sent + lease_duration` would break the protocol.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.last_write_sent = 0.0

    async def get(self, kind: tuple[str, str], name: str, namespace: str | None = None) -> Obj:
        return await self.client.get(kind, name, namespace)

    async def create(self, obj: Obj) -> Obj:
        sent = asyncio.get_running_loop().time()
        written = await self.client.create(obj)
        self.last_write_sent = sent
        return written

    async def update(self, obj: Obj) -> Obj:
        sent = asyncio.get_running_loop().time()
        written = await self.client.update(obj)
        self.last_write_sent = sent
        return written


@dataclass
class Candidate:
    identity: str
    client: RecordingClient
    elector: LeaderElector
    leading: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.elector.run())

    async def stop(self) -> None:
        """Cancels run() and waits for it, like a manager shutting down."""
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class Timeline:
    """Leader work intervals (identity, start, end) on the event loop's monotonic clock."""

    def __init__(self) -> None:
        self.starts: dict[str, float] = {}
        self.intervals: list[tuple[str, float, float]] = []

    def work(self, candidate: Callable[[], Candidate]) -> Callable[[], Any]:
        async def lead() -> None:
            loop = asyncio.get_running_loop()
            start = self.starts[candidate().identity] = loop.time()
            candidate().leading.set()
            try:
                await asyncio.Event().wait()
            finally:
                self.intervals.append((candidate().identity, start, loop.time()))

        return lead

    def assert_never_overlapping(self) -> None:
        ordered = sorted(self.intervals, key=lambda interval: interval[1])
        for (_, _, end), (_, start, _) in itertools.pairwise(ordered):
            assert end <= start, f"leader intervals overlap: {ordered}"


@pytest.fixture
async def clients(cluster: RunningCluster) -> AsyncIterator[list[Client]]:
    opened = [await Client.connect(kubeconfig=str(cluster.kubeconfig)) for _ in range(2)]
    yield opened
    for client in opened:
        await client.close()


def candidates(
    clients: list[Client], namespace: str, timeline: Timeline, **options: Any
) -> list[Candidate]:
    made: list[Candidate] = []
    for index, client in enumerate(clients):
        identity = f"candidate-{index}"
        recording = RecordingClient(client)

        def me(i: int = index) -> Candidate:
            return made[i]

        elector = LeaderElector(
            recording,
            namespace=namespace,
            name=LEASE_NAME,
            identity=identity,
            on_started_leading=timeline.work(me),
            **options,
        )
        made.append(Candidate(identity, recording, elector))
    return made


async def first_leader(group: list[Candidate]) -> tuple[Candidate, Candidate]:
    waits = [asyncio.create_task(c.leading.wait()) for c in group]
    try:
        await asyncio.wait(waits, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    leaders = [c for c in group if c.leading.is_set()]
    assert len(leaders) == 1, "expected exactly one leader"
    (leader,) = leaders
    (standby,) = [c for c in group if c is not leader]
    return leader, standby


async def read_lease(client: Client, namespace: str) -> Obj:
    return await client.get(LEASE_KIND, LEASE_NAME, namespace)


async def test_one_leader_and_takeover_only_after_expiry(
    clients: list[Client], namespace: str
) -> None:
    timeline = Timeline()
    group = candidates(clients, namespace, timeline, release_on_cancel=False, **SHORT)
    for c in group:
        c.start()
    try:
        leader, standby = await first_leader(group)

        # Over several renewals the leader keeps the lease and the standby never starts.
        for _ in range(10):
            await asyncio.sleep(SHORT["retry_period"])
            assert leader.elector.is_leader
            assert not standby.elector.is_leader
            assert not standby.leading.is_set()
        spec = (await read_lease(clients[0], namespace))["spec"]
        assert spec["holderIdentity"] == leader.identity
        assert spec["leaseDurationSeconds"] == 2
        assert spec["leaseTransitions"] == 0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", spec["renewTime"])

        # Killed without releasing: the standby must wait out the lease on its own clock.
        await leader.stop()
        await asyncio.wait_for(standby.leading.wait(), 15)
        takeover = timeline.starts[standby.identity]
        assert takeover >= leader.client.last_write_sent + SHORT["lease_duration"]

        spec = (await read_lease(clients[0], namespace))["spec"]
        assert spec["holderIdentity"] == standby.identity
        assert spec["leaseTransitions"] == 1
    finally:
        for c in group:
            await c.stop()
    timeline.assert_never_overlapping()
    assert [who for who, _, _ in sorted(timeline.intervals, key=lambda i: i[1])] == [
        leader.identity,
        standby.identity,
    ]


async def test_release_hands_over_before_the_lease_would_expire(
    clients: list[Client], namespace: str
) -> None:
    # A longer lease than the retry period by far, so "handed over" and "expired" differ plainly.
    timing = {"lease_duration": 6.0, "renew_deadline": 4.0, "retry_period": 0.3}
    timeline = Timeline()
    group = candidates(clients, namespace, timeline, release_on_cancel=True, **timing)
    for c in group:
        c.start()
    try:
        leader, standby = await first_leader(group)
        await leader.stop()
        released_at = asyncio.get_running_loop().time()
        assert not leader.elector.is_leader
        await asyncio.wait_for(standby.leading.wait(), 15)
        takeover = timeline.starts[standby.identity]
        assert takeover < leader.client.last_write_sent + timing["lease_duration"]
        assert takeover >= released_at - timing["retry_period"]

        spec = (await read_lease(clients[0], namespace))["spec"]
        assert spec["holderIdentity"] == standby.identity
        assert spec["leaseTransitions"] == 1
    finally:
        for c in group:
            await c.stop()
    timeline.assert_never_overlapping()
    spec = (await read_lease(clients[0], namespace))["spec"]
    assert spec["holderIdentity"] == ""  # the second leader released on shutdown too
    assert spec["leaseDurationSeconds"] == 1
