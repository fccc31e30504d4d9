"""Controllers under a manager against the real local cluster over HTTPS."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from controller import Client, Manager, NotFound, Options, Request, Result
from controller.examples.parents import CONFIGMAP, PARENT, build, install_crd
from tests.integration.conftest import RunningCluster


@pytest.fixture
async def client(cluster: RunningCluster) -> AsyncIterator[Client]:
    connected = await Client.connect(kubeconfig=str(cluster.kubeconfig))
    await install_crd(connected)
    yield connected
    await connected.close()


@pytest.fixture
async def ns(client: Client) -> str:
    name = f"c-{uuid.uuid4().hex[:10]}"
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def parent(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": PARENT[0],
        "kind": "Parent",
        "metadata": {"name": name, "namespace": namespace},
    }


async def eventually(check: Any, within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        try:
            result = await check()
            if result:
                return result
        except NotFound:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(manager: Manager) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(manager.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_example_operator_creates_children_and_restores_deleted_ones(
    client: Client, ns: str
) -> None:
    manager = await build(client, Options(health_port=0))
    async with running(manager):
        for i in range(3):
            await client.create(parent(f"p{i}", ns))

        async def all_ready() -> bool:
            parents = (await client.list(PARENT, ns)).items
            return len(parents) == 3 and all(
                (p.get("status") or {}).get("childName") for p in parents
            )

        await eventually(all_ready)
        child = await client.get(CONFIGMAP, "p1-child", ns)
        assert child["metadata"]["ownerReferences"][0]["name"] == "p1"
        # Deleting an owned child triggers its owner's reconcile, which recreates it.
        await client.delete(CONFIGMAP, "p1-child", ns)
        recreated = await eventually(lambda: client.get(CONFIGMAP, "p1-child", ns))
        assert recreated["metadata"]["uid"] != child["metadata"]["uid"]
        assert manager.health is not None
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{manager.health.port}/metrics") as response:
                metrics = await response.text()
            async with http.get(f"http://127.0.0.1:{manager.health.port}/readyz") as response:
                assert response.status == 200
        assert (
            'controller_runtime_reconcile_total{controller="parents",result="success"}' in metrics
        )
        assert "workqueue_adds_total" in metrics


async def test_requeue_after_and_error_backoff(client: Client, ns: str) -> None:
    calls: dict[str, list[float]] = {"slow": [], "flaky": []}

    async def reconcile(request: Request) -> Result | None:
        if request.namespace != ns:
            return None
        calls.setdefault(request.name, []).append(time.monotonic())
        if request.name == "slow" and len(calls["slow"]) < 3:
            return Result(requeue_after=0.3)
        if request.name == "flaky" and len(calls["flaky"]) < 6:
            raise RuntimeError("transient failure")
        return None

    manager = Manager(client, Options(health_port=None))
    await manager.controller("probe").for_(CONFIGMAP, namespace=ns).complete(reconcile)
    async with running(manager):
        await client.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "slow", "namespace": ns}}
        )
        await client.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "flaky", "namespace": ns},
            }
        )
        await eventually(
            lambda: asyncio.sleep(0, len(calls["slow"]) >= 3 and len(calls["flaky"]) >= 6)
        )
    slow = calls["slow"]
    assert all(b - a >= 0.25 for a, b in itertools.pairwise(slow))
    flaky = calls["flaky"]
    gaps = [b - a for a, b in itertools.pairwise(flaky)]
    # Per-item exponential backoff, 5 ms doubling: the waits are at least 5+10+20+40+80 ms
    # (lower bounds only: a loaded machine can only make them longer).
    assert len(gaps) == 5 and gaps[-1] >= 0.075 and sum(gaps) >= 0.145


def _operator(cluster: RunningCluster, identity: str, *extra: str) -> subprocess.Popen[bytes]:
    """The example operator in its own process, with leader election, so it can be killed."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller.examples.parents",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--leader-election",
            "--identity",
            identity,
            "--health-port",
            "0",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_children_stay_unique_while_the_manager_is_killed_and_restarted(
    cluster: RunningCluster, client: Client, ns: str
) -> None:
    total = 500
    operator = _operator(cluster, "fault-1")
    try:
        for batch in range(0, total, 50):
            await asyncio.gather(
                *(client.create(parent(f"p{i}", ns)) for i in range(batch, batch + 50))
            )
            if batch % 150 == 100:
                operator.send_signal(signal.SIGKILL)
                operator.wait()
                operator = _operator(cluster, f"fault-{batch}")

        async def all_reconciled() -> bool:
            parents = (await client.list_all(PARENT, ns)).items
            return len(parents) == total and all(
                (p.get("status") or {}).get("childName") for p in parents
            )

        await eventually(all_reconciled, within=120)
    finally:
        operator.send_signal(signal.SIGTERM)
        operator.wait(timeout=30)
    children = (await client.list_all(CONFIGMAP, ns)).items
    owners = [
        c["metadata"]["ownerReferences"][0]["name"]
        for c in children
        if c["metadata"].get("ownerReferences")
    ]
    assert sorted(owners) == sorted(f"p{i}" for i in range(total))


async def test_leader_hand_over_after_the_leader_is_killed(
    cluster: RunningCluster, client: Client, ns: str
) -> None:
    lease = ("--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "0.4")
    lease_kind = ("coordination.k8s.io/v1", "Lease")

    async def holder() -> str:
        try:
            got = await client.get(lease_kind, "parents-operator", "default")
        except NotFound:
            return ""
        return str(got["spec"].get("holderIdentity") or "")

    first = _operator(cluster, f"a-{ns}", *lease)
    second: subprocess.Popen[bytes] | None = None
    try:
        await eventually(lambda: _is(holder(), f"a-{ns}"))
        second = _operator(cluster, f"b-{ns}", *lease)
        await client.create(parent("before", ns))
        await eventually(lambda: _reconciled(client, "before", ns))
        await asyncio.sleep(1.0)
        assert await holder() == f"a-{ns}"  # the standby never took over while the leader renewed
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        await eventually(lambda: _is(holder(), f"b-{ns}"), within=20)
        # Takeover waits for the lease to expire as the standby observed it (3 s), not for
        # the default 15 s lease: a generous bound, as the machine may be loaded.
        assert time.monotonic() - killed_at < 12
        await client.create(parent("after", ns))
        await eventually(lambda: _reconciled(client, "after", ns))
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)


async def _is(value: Any, expected: str) -> bool:
    return bool(await value == expected)


async def _reconciled(client: Client, name: str, namespace: str) -> bool:
    got = await client.get(PARENT, name, namespace)
    return bool((got.get("status") or {}).get("childName"))
