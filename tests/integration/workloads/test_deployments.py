"""The built-in Deployment and Service controllers against a real local cluster.

As in `test_jobs.py` (whose helpers these are), pods are bound to a node that does not
exist and `FakeNode` plays the kubelet, so the controllers are tested alone; the test at
the end serves HTTP from a real pod on the local node, and skips while it runs nothing.
Services are checked the way a client uses them: connect to the address the Service
records, reach a pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from controller import Client
from tests.integration.conftest import Kubectl, free_port, start_cluster
from tests.integration.workloads.test_jobs import (
    NODE,
    SYMPOZIUM_IMAGE,
    FakeNode,
    Obj,
    apply,
    bound_or_skip,
    client,
    condition,
    container,
    eventually,
    get,
    node,
    stays,
)

__all__ = ["client", "node"]  # fixtures shared with test_jobs.py

ADDRESS = "localcluster.sympozium.ai/address-"


def deployment(name: str, replicas: int = 2, *, pod_spec: Obj | None = None, **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": pod_spec or {"nodeName": NODE, "containers": [container()]},
            },
            **spec,
        },
    }


def live(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


async def count(node: FakeNode, n: int, *, running: bool = True) -> list[Obj]:
    """Waits for exactly `n` pods not being deleted (all Running, unless told otherwise)."""

    async def exactly() -> list[Obj]:
        pods = live(await node.pods())
        started = all(p["status"]["phase"] == "Running" for p in pods) or not running
        return pods if len(pods) == n and started else []

    return await eventually(exactly, what=f"{n} pods")


async def rollout(kubectl: Kubectl, namespace: str, name: str) -> None:
    await asyncio.to_thread(
        kubectl, "rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=60s"
    )


# ---- Deployments


async def test_a_deployment_keeps_its_replicas_running(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    async with node.kubelet():
        apply(kubectl, namespace, deployment("web"))
        pods = await count(node, 2)
        await rollout(kubectl, namespace, "web")
        created = get(kubectl, "deployment", "web", namespace)
        assert created is not None
        uid = created["metadata"]["uid"]
        hashes = {p["metadata"]["labels"]["pod-template-hash"] for p in pods}
        assert len(hashes) == 1
        (template_hash,) = hashes
        for pod in pods:
            assert re.fullmatch(rf"web-{template_hash}-[a-z0-9]{{5}}", pod["metadata"]["name"])
            assert pod["metadata"]["labels"] == {"app": "web", "pod-template-hash": template_hash}
            (owner,) = pod["metadata"]["ownerReferences"]
            assert owner == {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "web",
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }

        async def settled() -> Obj:
            found = get(kubectl, "deployment", "web", namespace) or {}
            status = found.get("status") or {}
            return found if status.get("availableReplicas") == 2 else {}

        running = await eventually(settled, what="2 available replicas")
        status = running["status"]
        assert status["observedGeneration"] == running["metadata"]["generation"]
        assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"]) == (2, 2, 2)
        assert "unavailableReplicas" not in status
        available = condition(running, "Available")
        progressing = condition(running, "Progressing")
        assert available is not None and available["status"] == "True"
        assert progressing is not None
        assert (progressing["status"], progressing["reason"]) == ("True", "NewReplicaSetAvailable")
        row = kubectl("get", "deployment", "web", "-n", namespace, "--no-headers").stdout.split()
        assert row[1:4] == ["2/2", "2", "2"]

        victim = pods[0]["metadata"]["name"]
        kubectl("delete", "pod", victim, "-n", namespace, "--wait=false")

        async def replaced() -> list[Obj]:
            pods = live(await node.pods())
            names = {p["metadata"]["name"] for p in pods}
            return pods if len(pods) == 2 and victim not in names else []

        await eventually(replaced, what="the deleted pod replaced")
        await count(node, 2)
        await stays(
            lambda: _exactly(node, 2), seconds=1.0, what="no more than the replicas asked for"
        )


async def _exactly(node: FakeNode, n: int) -> bool:
    return len(live(await node.pods())) == n


async def test_a_template_change_replaces_every_pod(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    async with node.kubelet():
        apply(kubectl, namespace, deployment("roll", 3))
        old = {p["metadata"]["name"] for p in await count(node, 3)}
        await rollout(kubectl, namespace, "roll")
        kubectl("set", "image", "deployment/roll", "main=busybox:1.37", "-n", namespace)

        async def all_new() -> list[Obj]:
            pods = await node.pods()
            fresh = [p for p in pods if p["metadata"]["name"] not in old]
            return fresh if len(pods) == 3 and len(fresh) == 3 else []

        pods = await eventually(all_new, what="every pod replaced")
        await rollout(kubectl, namespace, "roll")
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:1.37"}
        assert len({p["metadata"]["labels"]["pod-template-hash"] for p in pods}) == 1
        rolled = get(kubectl, "deployment", "roll", namespace)
        assert rolled is not None
        assert rolled["status"]["updatedReplicas"] == 3
        assert rolled["status"]["observedGeneration"] == rolled["metadata"]["generation"] == 2


async def test_a_rolling_update_keeps_ready_pods_until_new_ones_are_ready(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    async with node.kubelet():
        apply(kubectl, namespace, deployment("careful", 2))
        old = {p["metadata"]["name"] for p in await count(node, 2)}
        await rollout(kubectl, namespace, "careful")
    # From now on new pods start but never become ready: the old ones must stay.
    kubectl("set", "image", "deployment/careful", "main=busybox:1.37", "-n", namespace)

    async def surged() -> list[Obj]:
        pods = await node.pods()
        return [p for p in pods if p["metadata"]["name"] not in old]

    (new,) = await eventually(surged, what="one surge pod")
    await node.run(new, ready=False)

    async def old_kept() -> bool:
        pods = live(await node.pods())
        return {p["metadata"]["name"] for p in pods} >= old

    await stays(old_kept, seconds=1.5, what="old ready pods kept while the new one is unready")
    status = (get(kubectl, "deployment", "careful", namespace) or {})["status"]
    assert status["updatedReplicas"] == 1
    assert status["replicas"] == 3
    async with node.kubelet():
        await node.run(new, ready=True)
        await rollout(kubectl, namespace, "careful")


async def test_scaling_and_replacing_finished_pods(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    async with node.kubelet():
        apply(kubectl, namespace, deployment("scaled", 1))
        await count(node, 1)
        kubectl("scale", "deployment/scaled", "--replicas=3", "-n", namespace)
        pods = await count(node, 3)
        kubectl("scale", "deployment/scaled", "--replicas=2", "-n", namespace)
        pods = await count(node, 2)

        failed = pods[0]["metadata"]["name"]
        await node.finish(pods[0], exit_code=1)

        async def replaced() -> bool:
            pods = live(await node.pods())
            names = {p["metadata"]["name"] for p in pods}
            return len(pods) == 2 and failed not in names

        await eventually(replaced, what="the failed pod replaced")
        await rollout(kubectl, namespace, "scaled")


async def test_the_recreate_strategy_stops_old_pods_first(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    async with node.kubelet():
        apply(kubectl, namespace, deployment("again", 2, strategy={"type": "Recreate"}))
        old_hash = (await count(node, 2))[0]["metadata"]["labels"]["pod-template-hash"]
        await rollout(kubectl, namespace, "again")
        kubectl("set", "env", "deployment/again", "MODE=new", "-n", namespace)

        async def new_pods() -> list[Obj]:
            pods = live(await node.pods())
            hashes = {p["metadata"]["labels"]["pod-template-hash"] for p in pods}
            return pods if len(pods) == 2 and old_hash not in hashes else []

        await eventually(new_pods, what="the pods recreated")
        await rollout(kubectl, namespace, "again")


async def test_deployment_pods_are_not_duplicated_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    running = start_cluster(data)
    try:
        kubectl = Kubectl(running, tmp_path / "cache")
        kubectl("create", "namespace", "restarts")
        apply(kubectl, "restarts", deployment("steady", 3))
        async with _client(running.kubeconfig) as connected:
            pods = await count(FakeNode(connected, "restarts"), 3, running=False)
            before = {p["metadata"]["name"] for p in pods}
        running.stop()
        running = start_cluster(data)
        async with _client(running.kubeconfig) as connected:
            node = FakeNode(connected, "restarts")

            async def same() -> bool:
                return {p["metadata"]["name"] for p in await node.pods()} == before

            await stays(same, seconds=2.0, what="the same pods after a restart")
    finally:
        running.stop()


@contextlib.asynccontextmanager
async def _client(kubeconfig: Path) -> AsyncIterator[Client]:
    connected = await Client.connect(kubeconfig=str(kubeconfig))
    try:
        yield connected
    finally:
        await connected.close()


# ---- Services


class Echo:
    """A TCP server standing in for a pod's process: answers `<tag>:<what it got>`."""

    def __init__(self, tag: str) -> None:
        self.tag = tag.encode()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Echo:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1024):
                writer.write(self.tag + b":" + data)
                await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def ask(address: str, message: bytes = b"ping") -> bytes:
    """One request through the Service's address; b"" if the connection was refused or closed."""
    host, _, port = address.rpartition(":")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
    except OSError:
        return b""
    try:
        writer.write(message)
        await writer.drain()
        writer.write_eof()
        return await asyncio.wait_for(reader.read(1024), 5)
    except OSError:
        return b""
    finally:
        writer.close()


def service(name: str, selector: dict[str, str] | None, ports: list[Obj]) -> Obj:
    spec: Obj = {"ports": ports}
    if selector:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


async def recorded_address(kubectl: Kubectl, namespace: str, name: str, port: str) -> str:
    async def address() -> str:
        found = get(kubectl, "service", name, namespace) or {}
        annotations = found.get("metadata", {}).get("annotations") or {}
        return str(annotations.get(ADDRESS + port, ""))

    return await eventually(address, what=f"the address of {name}:{port}")


async def test_a_deployment_behind_a_service_is_reachable_at_its_recorded_address(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    echo = await Echo("web").start()
    try:
        pod_spec = {
            "nodeName": NODE,
            "containers": [container(ports=[{"name": "echo", "containerPort": echo.port}])],
        }
        async with node.kubelet():
            apply(
                kubectl,
                namespace,
                deployment("served", 1, pod_spec=pod_spec),
                service(
                    "served", {"app": "served"}, [{"name": "tcp", "port": 80, "targetPort": "echo"}]
                ),
            )
            (pod,) = await count(node, 1)
            address = await recorded_address(kubectl, namespace, "served", "tcp")
            assert re.fullmatch(r"127\.0\.0\.1:\d+", address)

            async def endpoints() -> Obj:
                found = get(kubectl, "endpoints", "served", namespace) or {}
                return found if found.get("subsets") else {}

            found = await eventually(endpoints, what="Endpoints with the ready pod")
            (subset,) = found["subsets"]
            (ready,) = subset["addresses"]
            assert ready["ip"] == "127.0.0.1"
            assert ready["targetRef"]["name"] == pod["metadata"]["name"]
            assert subset["ports"] == [{"name": "tcp", "port": echo.port, "protocol": "TCP"}]
            assert "notReadyAddresses" not in subset

            svc = get(kubectl, "service", "served", namespace)
            assert svc is not None
            assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.1"}]
            assert await ask(address) == b"web:ping"
            row = kubectl("get", "endpoints", "served", "-n", namespace, "--no-headers").stdout
            assert f"127.0.0.1:{echo.port}" in row
    finally:
        await echo.stop()


async def test_the_proxy_balances_fails_over_and_follows_readiness(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    first, second = await Echo("a").start(), await Echo("b").start()
    try:
        pods = [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"backend-{tag}", "labels": {"app": "pair"}},
                "spec": {
                    "nodeName": NODE,
                    "containers": [container(ports=[{"name": "echo", "containerPort": echo.port}])],
                },
            }
            for tag, echo in (("a", first), ("b", second))
        ]
        apply(
            kubectl,
            namespace,
            *pods,
            service("pair", {"app": "pair"}, [{"port": 7000, "targetPort": "echo"}]),
        )
        address = await recorded_address(kubectl, namespace, "pair", "7000")
        assert await ask(address) == b"", "no ready pod: the connection is closed"

        created = await node.pods()
        await node.run(created[0], ready=False)
        await node.run(created[1], ready=True)

        async def subsets() -> list[Obj]:
            found = get(kubectl, "endpoints", "pair", namespace) or {}
            subsets = found.get("subsets") or []
            return subsets if len(subsets) == 2 else []

        found = await eventually(subsets, what="one ready and one unready address")
        assert sorted(bool(s.get("addresses")) for s in found) == [False, True]
        assert sorted(bool(s.get("notReadyAddresses")) for s in found) == [False, True]

        await node.run(created[0], ready=True)

        async def both() -> bool:
            answers = {await ask(address) for _ in range(4)}
            return answers == {b"a:ping", b"b:ping"}

        await eventually(both, what="round robin over both pods")

        await first.stop()  # a pod that stopped listening: connections go to the other
        answers = {await ask(address) for _ in range(6)}
        assert answers == {b"b:ping"}

        kubectl("delete", "service", "pair", "-n", namespace)

        async def closed() -> bool:
            gone = get(kubectl, "endpoints", "pair", namespace) is None
            return gone and await ask(address) == b""

        await eventually(closed, what="the Endpoints and the proxy gone with the Service")
    finally:
        await first.stop()
        await second.stop()


async def test_a_service_without_selector_proxies_to_its_own_endpoints(
    kubectl: Kubectl, namespace: str
) -> None:
    echo = await Echo("manual").start()
    try:
        apply(
            kubectl,
            namespace,
            service("manual", None, [{"name": "raw", "port": 9000}]),
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": "manual"},
                "subsets": [
                    {
                        "addresses": [{"ip": "127.0.0.1"}],
                        "ports": [{"name": "raw", "port": echo.port}],
                    }
                ],
            },
        )
        address = await recorded_address(kubectl, namespace, "manual", "raw")

        async def answered() -> bool:
            return await ask(address) == b"manual:ping"

        await eventually(answered, what="the hand-written endpoint reached")
    finally:
        await echo.stop()


async def test_a_proxy_keeps_its_address_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    running = start_cluster(data)
    try:
        kubectl = Kubectl(running, tmp_path / "cache")
        kubectl("create", "namespace", "restarts")
        apply(kubectl, "restarts", service("kept", {"app": "none"}, [{"port": 80}]))
        before = await recorded_address(kubectl, "restarts", "kept", "80")
        running.stop()
        running = start_cluster(data)
        kubectl = Kubectl(running, tmp_path / "cache")

        async def listening() -> bool:
            host, _, port = before.rpartition(":")
            with contextlib.suppress(OSError), socket.create_connection((host, int(port)), 1):
                return True
            return False

        await eventually(listening, what="the same address served again")
        assert await recorded_address(kubectl, "restarts", "kept", "80") == before
    finally:
        running.stop()


# ---- on the real node


async def test_a_sympozium_deployment_serves_http_through_its_service_on_the_node(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    port = free_port()
    server = container(
        image=SYMPOZIUM_IMAGE,
        command=["python", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        ports=[{"name": "http", "containerPort": port}],
    )
    apply(
        kubectl,
        namespace,
        deployment("site", 1, pod_spec={"containers": [server]}),
        service("site", {"app": "site"}, [{"name": "http", "port": 80, "targetPort": "http"}]),
    )
    await bound_or_skip(node)
    await rollout(kubectl, namespace, "site")
    address = await recorded_address(kubectl, namespace, "site", "http")

    def fetch() -> int:
        with urllib.request.urlopen(f"http://{address}/", timeout=5) as response:
            return int(response.status)

    deadline = time.monotonic() + 30
    while True:
        try:
            assert await asyncio.to_thread(fetch) == 200
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)  # Ready may come a moment before the socket listens
