"""The built-in Job controller against a real local cluster, through kubectl and a client.

The controller is tested on its own: most pods here are bound to `NODE`, a node that does
not exist, so the local node (which runs only pods bound to itself or to nobody) leaves
them alone and `FakeNode` writes their status as a kubelet would. The tests at the end
run the Sympozium image on the real node, and skip while the node runs nothing.
`tests/integration/workloads/test_deployments.py` uses the helpers defined here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from controller import Client, NotFound
from controller.conditions import rfc3339
from tests.integration.conftest import Kubectl, RunningCluster, start_cluster

Obj = dict[str, Any]
POD = ("v1", "Pod")
JOB = ("batch/v1", "Job")
NODE = "test-node"
SYMPOZIUM_IMAGE = "sympozium:dev"
T = TypeVar("T")


async def connect(cluster: RunningCluster) -> Client:
    return await Client.connect(kubeconfig=str(cluster.kubeconfig))


async def eventually(
    check: Callable[[], Awaitable[T]], within: float = 30.0, what: str = "condition"
) -> T:
    """The first truthy result of `check`, polled; fails after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(NotFound):
            result = await check()
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {within}s")
        await asyncio.sleep(0.1)


async def stays(
    check: Callable[[], Awaitable[bool]], seconds: float = 2.0, what: str = "condition"
) -> None:
    """Asserts `check` holds throughout `seconds` (for "nothing more happens")."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert await check(), f"{what} stopped holding"
        await asyncio.sleep(0.1)


def container(name: str = "main", image: str = "busybox:1.36", **extra: Any) -> Obj:
    return {"name": name, "image": image, **extra}


def condition(obj: Obj, type_: str) -> Obj | None:
    for found in (obj.get("status") or {}).get("conditions") or ():
        if found.get("type") == type_:
            return dict(found)
    return None


class FakeNode:
    """Plays the kubelet for pods bound to `NODE` in one namespace."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    async def pods(self, selector: str = "") -> list[Obj]:
        listed = await self.client.list(POD, self.namespace, label_selector=selector)
        return sorted(listed.items, key=lambda p: str(p["metadata"]["creationTimestamp"]))

    async def _status(self, pod: Obj, status: Obj) -> Obj:
        patched: Obj = await self.client.patch(
            POD,
            pod["metadata"]["name"],
            {"status": status},
            namespace=self.namespace,
            subresource="status",
        )
        return patched

    async def run(self, pod: Obj, *, ready: bool = True, ip: str = "127.0.0.1") -> Obj:
        """Marks the pod Running (and Ready), listening at `ip`."""
        now = rfc3339()
        ready_text = "True" if ready else "False"
        return await self._status(
            pod,
            {
                "phase": "Running",
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "hostIP": "127.0.0.1",
                "startTime": now,
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": ready_text, "lastTransitionTime": now},
                    {"type": "Ready", "status": ready_text, "lastTransitionTime": now},
                ],
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "image": c["image"],
                        "imageID": "",
                        "ready": ready,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": now}},
                    }
                    for c in pod["spec"]["containers"]
                ],
            },
        )

    async def finish(self, pod: Obj, exit_code: int = 0) -> Obj:
        """Ends the pod: Succeeded on exit code 0, else Failed."""
        now = rfc3339()
        return await self._status(
            pod,
            {
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "PodCompleted",
                        "lastTransitionTime": now,
                    }
                ],
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "image": c["image"],
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "terminated": {
                                "exitCode": exit_code,
                                "reason": "Completed" if exit_code == 0 else "Error",
                                "startedAt": now,
                                "finishedAt": now,
                            }
                        },
                    }
                    for c in pod["spec"]["containers"]
                ],
            },
        )

    async def remove_terminating(self) -> int:
        """Deletes pods being deleted at once, as a kubelet does once they have stopped."""
        removed = 0
        for pod in await self.pods():
            if pod["metadata"].get("deletionTimestamp"):
                with contextlib.suppress(NotFound):
                    await self.client.delete(
                        POD, pod["metadata"]["name"], self.namespace, grace_period_seconds=0
                    )
                    removed += 1
        return removed

    @contextlib.asynccontextmanager
    async def kubelet(self, *, ready: bool = True) -> AsyncIterator[None]:
        """In the background: runs every new pod (Ready), removes every stopping one."""

        async def loop() -> None:
            while True:
                for pod in await self.pods():
                    if pod["spec"].get("nodeName") != NODE:
                        continue
                    if pod["metadata"].get("deletionTimestamp"):
                        with contextlib.suppress(NotFound):
                            await self.client.delete(
                                POD, pod["metadata"]["name"], self.namespace, grace_period_seconds=0
                            )
                    elif (pod.get("status") or {}).get("phase", "Pending") == "Pending":
                        with contextlib.suppress(NotFound):
                            await self.run(pod, ready=ready)
                await asyncio.sleep(0.1)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
async def client(cluster: RunningCluster) -> AsyncIterator[Client]:
    connected = await Client.connect(kubeconfig=str(cluster.kubeconfig))
    yield connected
    await connected.close()


@pytest.fixture
def node(client: Client, namespace: str) -> FakeNode:
    return FakeNode(client, namespace)


def get(kubectl: Kubectl, kind: str, name: str, namespace: str) -> Obj | None:
    result = kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return None
    found: Obj = json.loads(result.stdout)
    return found


def apply(kubectl: Kubectl, namespace: str, *objects: Obj) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin="\n---\n".join(map(json.dumps, objects)))


async def wait_for(kubectl: Kubectl, namespace: str, target: str, condition: str) -> None:
    """`kubectl wait --for=condition=...`, off the event loop (a FakeNode may be running)."""
    await asyncio.to_thread(
        kubectl,
        "wait",
        "-n",
        namespace,
        f"--for=condition={condition}",
        target,
        "--timeout=60s",
        timeout=90,
    )


def table_row(kubectl: Kubectl, kind: str, name: str, namespace: str) -> list[str]:
    out = kubectl("get", kind, name, "-n", namespace, "--no-headers").stdout
    return out.split()


# ---- Jobs


def job(name: str, *, container_spec: Obj | None = None, bound: bool = True, **spec: Any) -> Obj:
    pod_spec: Obj = {"restartPolicy": "Never", "containers": [container_spec or container()]}
    if bound:
        pod_spec["nodeName"] = NODE
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"spec": pod_spec}, **spec},
    }


async def test_a_job_runs_one_pod_labelled_and_controlled_by_it(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    apply(kubectl, namespace, job("hello"))
    pods = await eventually(node.pods, what="a pod")
    created = get(kubectl, "job", "hello", namespace)
    assert created is not None
    uid = created["metadata"]["uid"]

    pod = pods[0]
    assert re.fullmatch(r"hello-[a-z0-9]{5}", pod["metadata"]["name"])
    assert pod["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": uid,
        "controller-uid": uid,
        "batch.kubernetes.io/job-name": "hello",
        "job-name": "hello",
    }
    assert pod["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "hello",
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert pod["spec"]["containers"][0]["image"] == "busybox:1.36"

    async def one_pod() -> bool:
        return len(await node.pods()) == 1

    await stays(one_pod, what="one pod at a time")
    status = (get(kubectl, "job", "hello", namespace) or {})["status"]
    assert status["active"] == 1
    assert status["startTime"]
    assert table_row(kubectl, "job", "hello", namespace)[1:3] == ["Running", "0/1"]


async def test_a_succeeded_pod_completes_the_job(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    apply(kubectl, namespace, job("done"))
    (pod,) = await eventually(node.pods, what="a pod")
    await node.run(pod)

    async def ready() -> bool:
        status = (get(kubectl, "job", "done", namespace) or {}).get("status") or {}
        return bool(status.get("ready") == 1)

    await eventually(ready, what="status.ready 1")
    await node.finish(pod, exit_code=0)
    await wait_for(kubectl, namespace, "job/done", "complete")

    finished = get(kubectl, "job", "done", namespace)
    assert finished is not None
    status = finished["status"]
    assert status["succeeded"] == 1
    assert "active" not in status and "failed" not in status
    assert status["completionTime"]
    complete = condition(finished, "Complete")
    assert complete is not None
    assert complete["status"] == "True"
    assert complete["reason"] == "CompletionsReached"
    assert complete["lastProbeTime"] and complete["lastTransitionTime"]
    assert table_row(kubectl, "job", "done", namespace)[1:3] == ["Complete", "1/1"]

    async def no_new_pods() -> bool:
        return [p["metadata"]["name"] for p in await node.pods()] == [pod["metadata"]["name"]]

    await stays(no_new_pods, what="a finished job starts no pods")
    events = kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"SuccessfulCreate", "Completed"} <= reasons


async def test_failed_pods_are_retried_until_the_backoff_limit(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    apply(kubectl, namespace, job("flaky", backoffLimit=1))
    (first,) = await eventually(node.pods, what="a pod")
    await node.finish(first, exit_code=1)

    async def a_retry() -> list[Obj]:
        pods = await node.pods()
        return [p for p in pods if p["metadata"]["name"] != first["metadata"]["name"]]

    (second,) = await eventually(a_retry, what="a second pod")
    failing = get(kubectl, "job", "flaky", namespace)
    assert failing is not None
    assert failing["status"]["failed"] == 1
    assert condition(failing, "Failed") is None

    await node.finish(second, exit_code=1)
    await wait_for(kubectl, namespace, "job/flaky", "failed")
    failed = get(kubectl, "job", "flaky", namespace)
    assert failed is not None
    assert failed["status"]["failed"] == 2
    assert "active" not in failed["status"]
    assert "completionTime" not in failed["status"]
    reason = condition(failed, "Failed")
    assert reason is not None
    assert reason["reason"] == "BackoffLimitExceeded"
    assert reason["message"] == "Job has reached the specified backoff limit"
    assert table_row(kubectl, "job", "flaky", namespace)[1:3] == ["Failed", "0/1"]

    async def two_pods() -> bool:
        return len(await node.pods()) == 2

    await stays(two_pods, what="a failed job starts no pods")


async def test_the_active_deadline_fails_the_job_and_stops_its_pods(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    apply(kubectl, namespace, job("slow", activeDeadlineSeconds=2))
    (pod,) = await eventually(node.pods, what="a pod")
    await node.run(pod)
    await wait_for(kubectl, namespace, "job/slow", "failed")
    failed = get(kubectl, "job", "slow", namespace)
    assert failed is not None
    reason = condition(failed, "Failed")
    assert reason is not None
    assert reason["reason"] == "DeadlineExceeded"

    async def stopping() -> bool:
        pods = await node.pods()
        return bool(pods) and all(p["metadata"].get("deletionTimestamp") for p in pods)

    await eventually(stopping, what="the pod told to stop")
    await node.remove_terminating()

    async def no_pods() -> bool:
        return not await node.pods()

    await eventually(no_pods, what="the pod gone")
    await stays(no_pods, what="no pods after the deadline")
    status = (get(kubectl, "job", "slow", namespace) or {})["status"]
    assert "failed" not in status, "pods the controller stopped are not failures"
    assert "active" not in status


async def test_completions_run_one_pod_after_another(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    apply(kubectl, namespace, job("twice", completions=2))
    (first,) = await eventually(node.pods, what="a pod")
    await node.finish(first)

    async def second_pod() -> list[Obj]:
        pods = await node.pods()
        return [p for p in pods if p["metadata"]["name"] != first["metadata"]["name"]]

    (second,) = await eventually(second_pod, what="a second pod")
    running = get(kubectl, "job", "twice", namespace)
    assert running is not None
    assert running["status"]["succeeded"] == 1
    assert condition(running, "Complete") is None
    await node.finish(second)
    await wait_for(kubectl, namespace, "job/twice", "complete")
    done = get(kubectl, "job", "twice", namespace)
    assert done is not None
    assert done["status"]["succeeded"] == 2
    assert len(await node.pods()) == 2


async def test_parallelism_runs_pods_side_by_side(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    apply(kubectl, namespace, job("wide", completions=3, parallelism=2))

    async def two() -> list[Obj]:
        pods = await node.pods()
        return pods if len(pods) == 2 else []

    first, second = await eventually(two, what="two pods at once")
    await node.finish(first)
    await node.finish(second)

    async def third() -> list[Obj]:
        pods = await node.pods()
        return pods if len(pods) == 3 else []

    pods = await eventually(third, what="a third pod (one completion left)")
    (last,) = [p for p in pods if p["status"]["phase"] == "Pending"]
    await node.finish(last)
    await wait_for(kubectl, namespace, "job/wide", "complete")
    assert len(await node.pods()) == 3


async def test_suspend_stops_the_pods_and_resume_starts_them(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    apply(kubectl, namespace, job("paused", suspend=True))

    async def no_pods() -> bool:
        return not await node.pods()

    async def suspended() -> bool:
        found = get(kubectl, "job", "paused", namespace)
        held = condition(found or {}, "Suspended")
        return held is not None and held["status"] == "True"

    await eventually(suspended, what="Suspended condition")
    await stays(no_pods, seconds=1.0, what="a suspended job runs nothing")
    assert table_row(kubectl, "job", "paused", namespace)[1] == "Suspended"

    kubectl("patch", "job", "paused", "-n", namespace, "-p", '{"spec":{"suspend":false}}')
    (pod,) = await eventually(node.pods, what="a pod once resumed")
    resumed = get(kubectl, "job", "paused", namespace)
    assert resumed is not None
    held = condition(resumed, "Suspended")
    assert held is not None
    assert (held["status"], held["reason"]) == ("False", "JobResumed")
    assert resumed["status"]["startTime"]

    await node.run(pod)
    kubectl("patch", "job", "paused", "-n", namespace, "-p", '{"spec":{"suspend":true}}')

    async def stopping() -> bool:
        pods = await node.pods()
        return bool(pods) and all(p["metadata"].get("deletionTimestamp") for p in pods)

    await eventually(stopping, what="the pod told to stop")
    await node.remove_terminating()
    await eventually(no_pods, what="the pod gone")
    await eventually(suspended, what="suspended again")
    status = (get(kubectl, "job", "paused", namespace) or {})["status"]
    assert "failed" not in status and "active" not in status


async def test_a_finished_job_is_deleted_after_its_ttl(
    kubectl: Kubectl, namespace: str, node: FakeNode, client: Client
) -> None:
    apply(kubectl, namespace, job("brief", ttlSecondsAfterFinished=1))
    (pod,) = await eventually(node.pods, what="a pod")
    listed = await client.list(JOB, namespace)
    # A watch sees every state, however briefly the finished Job lives.
    events = client.watch(JOB, namespace, resource_version=str(listed.resource_version))
    await node.finish(pod)
    seen: list[tuple[str, bool]] = []

    async def until_deleted() -> None:
        async for event in events:
            if event.type in ("MODIFIED", "DELETED"):
                complete = condition(event.object, "Complete")
                seen.append((event.type, complete is not None and complete["status"] == "True"))
            if event.type == "DELETED":
                return

    try:
        await asyncio.wait_for(until_deleted(), 30)
    finally:
        await events.aclose()
    assert seen[-1][0] == "DELETED"
    assert any(done for kind, done in seen if kind == "MODIFIED"), "Complete before deleted"


async def same_pods(node: FakeNode, names: set[str]) -> bool:
    return {p["metadata"]["name"] for p in await node.pods()} == names


async def test_the_job_controller_never_duplicates_pods_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    running = start_cluster(data)
    try:
        kubectl = Kubectl(running, tmp_path / "cache")
        kubectl("create", "namespace", "restarts")
        apply(kubectl, "restarts", job("steady"), job("later", completions=2))
        client = await Client.connect(kubeconfig=str(running.kubeconfig))
        try:
            node = FakeNode(client, "restarts")

            async def two_pods() -> list[Obj]:
                pods = await node.pods()
                return pods if len(pods) == 2 else []

            before = {p["metadata"]["name"] for p in await eventually(two_pods, what="pods")}
        finally:
            await client.close()
        for _ in range(2):
            running.stop()
            running = start_cluster(data)
            kubectl = Kubectl(running, tmp_path / "cache")
            client = await Client.connect(kubeconfig=str(running.kubeconfig))
            try:
                check = functools.partial(same_pods, FakeNode(client, "restarts"), before)
                await stays(check, seconds=2.0, what="the same pods after a restart")
            finally:
                await client.close()
        status = (get(kubectl, "job", "steady", "restarts") or {})["status"]
        assert status["active"] == 1
    finally:
        running.stop()


# ---- on the real node


async def bound_or_skip(node: FakeNode, within: float = 10.0) -> list[Obj]:
    """The pods once the local node took them; skips the test while it runs no pods."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pods = await node.pods()
        if pods and all(p["spec"].get("nodeName") for p in pods):
            return pods
        await asyncio.sleep(0.2)
    pytest.skip("the local node does not run pods yet")


async def test_a_sympozium_job_runs_to_completion_on_the_node(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    script = container(image=SYMPOZIUM_IMAGE, command=["python", "-c", "print('done')"])
    apply(kubectl, namespace, job("real", container_spec=script, bound=False))
    await bound_or_skip(node)
    await wait_for(kubectl, namespace, "job/real", "complete")
    (pod,) = await node.pods()
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0


async def test_a_failing_sympozium_job_exhausts_its_backoff_limit_on_the_node(
    kubectl: Kubectl, namespace: str, node: FakeNode
) -> None:
    script = container(image=SYMPOZIUM_IMAGE, command=["python", "-c", "raise SystemExit(3)"])
    apply(kubectl, namespace, job("broken", container_spec=script, bound=False, backoffLimit=1))
    await bound_or_skip(node)
    await wait_for(kubectl, namespace, "job/broken", "failed")
    failed = get(kubectl, "job", "broken", namespace)
    assert failed is not None
    assert failed["status"]["failed"] == 2
    reason = condition(failed, "Failed")
    assert reason is not None and reason["reason"] == "BackoffLimitExceeded"
    pods = await node.pods()
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
