"""The local node against a real local cluster: pods run as local processes.

Each cluster here is started with `--allow-image busybox*`, so busybox commands run on
the host's /bin/sh, next to the Sympozium image (this installation). Most tests share
one cluster (bind mounts when running as root); the fallback mount mode and node
restarts get clusters of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from controller import Client, NotFound
from tests.integration.conftest import Kubectl, RunningCluster, start_cluster
from tests.integration.http import Http

Obj = dict[str, Any]
T = TypeVar("T")
POD = ("v1", "Pod")
SYMPOZIUM_IMAGE = "ghcr.io/sympozium-ai/sympozium:latest"


def start_node_cluster(data_dir: Path, env: dict[str, str] | None = None) -> RunningCluster:
    """`start_cluster`, with busybox allowed and extra environment for the node."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return start_cluster(data_dir, extra_args=("--allow-image", "busybox*"), env=env)


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    running = start_node_cluster(tmp_path_factory.mktemp("node") / "data")
    yield running
    running.stop()


@pytest.fixture
def kc(node_cluster: RunningCluster, tmp_path: Path) -> Kubectl:
    return Kubectl(node_cluster, tmp_path / "kubectl-cache")


@pytest.fixture
def ns(kc: Kubectl) -> str:
    name = f"n-{uuid.uuid4().hex[:10]}"
    kc("create", "namespace", name)
    return name


@pytest.fixture
async def client(node_cluster: RunningCluster) -> AsyncIterator[Client]:
    connected = await Client.connect(kubeconfig=str(node_cluster.kubeconfig))
    yield connected
    await connected.close()


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    within: float = 30.0,
    what: str = "condition",
    show: Callable[[], Awaitable[object]] | None = None,
) -> T:
    """The first truthy result of `check`; fails after `within` s, with `show()` if given."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(NotFound):
            result = await check()
            if result:
                return result
        if time.monotonic() > deadline:
            shown = await show() if show is not None else ""
            raise AssertionError(f"{what} not met within {within}s {shown}")
        await asyncio.sleep(0.1)


def status_of(client: Client, namespace: str, name: str) -> Callable[[], Awaitable[object]]:
    async def show() -> object:
        with contextlib.suppress(NotFound):
            return json.dumps((await client.get(POD, name, namespace)).get("status"), indent=1)
        return "(no such pod)"

    return show


def pod(name: str, namespace: str, *containers: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"containers": list(containers), **spec},
    }


def shell(script: str, name: str = "main", **extra: Any) -> Obj:
    return {"name": name, "image": "busybox:1.36", "command": ["sh", "-c", script], **extra}


async def phase_of(client: Client, namespace: str, name: str, *phases: str) -> Obj | None:
    found = await client.get(POD, name, namespace)
    return found if (found.get("status") or {}).get("phase") in phases else None


async def finished(client: Client, namespace: str, name: str) -> Obj:
    return await eventually(
        lambda: phase_of(client, namespace, name, "Succeeded", "Failed"),
        what=f"{name} finished",
        show=status_of(client, namespace, name),
    )


async def running(client: Client, namespace: str, name: str) -> Obj:
    return await eventually(
        lambda: phase_of(client, namespace, name, "Running"),
        what=f"{name} running",
        show=status_of(client, namespace, name),
    )


async def waiting_reason(client: Client, namespace: str, name: str, reason: str) -> bool:
    """Whether the pod's first container waits with `reason`."""
    found = await client.get(POD, name, namespace)
    statuses = (found.get("status") or {}).get("containerStatuses") or [{}]
    return ((statuses[0].get("state") or {}).get("waiting") or {}).get("reason") == reason


def host_file(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


# ---- running pods


async def test_a_failing_busybox_pod(client: Client, kc: Kubectl, ns: str) -> None:
    await client.create(pod("fails", ns, shell("echo hello; exit 3"), restartPolicy="Never"))
    done = await finished(client, ns, "fails")
    assert done["spec"]["nodeName"] == "localcluster"
    status = done["status"]
    assert status["phase"] == "Failed"
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    assert status["podIP"] == "127.0.0.1" and status["startTime"]
    assert kc("logs", "fails", "-n", ns).stdout == "hello\n"
    stamped = kc("logs", "fails", "-n", ns, "--timestamps").stdout
    assert stamped.endswith("Z hello\n") and stamped[:4].isdigit()


async def test_the_sympozium_image_runs_this_installation(
    client: Client, kc: Kubectl, ns: str
) -> None:
    container = {"name": "cli", "image": SYMPOZIUM_IMAGE, "command": ["sympozium", "--help"]}
    await client.create(pod("cli", ns, container, restartPolicy="Never"))
    done = await finished(client, ns, "cli")
    assert done["status"]["phase"] == "Succeeded"
    assert "usage: sympozium" in kc("logs", "cli", "-n", ns).stdout
    state = done["status"]["containerStatuses"][0]
    assert state["state"]["terminated"]["reason"] == "Completed"
    assert state["containerID"].startswith("local://")


async def test_volumes_appear_at_their_mount_paths(client: Client, kc: Kubectl, ns: str) -> None:
    kc("create", "configmap", "cfg", "-n", ns, "--from-literal=key=from-configmap")
    kc("create", "secret", "generic", "sec", "-n", ns, "--from-literal=password=s3cret")
    mounts = [
        {"name": "cfg", "mountPath": "/etc/cfg"},
        {"name": "sec", "mountPath": "/etc/sec"},
        {"name": "scratch", "mountPath": "/scratch"},
        {"name": "info", "mountPath": "/etc/podinfo"},
    ]
    spec = pod(
        "vols",
        ns,
        shell(
            "cat /etc/cfg/key; echo; cat /etc/sec/password; echo; cat /scratch/from-init;"
            " cat /etc/podinfo/labels; echo; touch /etc/cfg/new 2>/dev/null || echo read-only",
            volumeMounts=mounts,
        ),
        restartPolicy="Never",
        initContainers=[
            shell(
                "echo written-by-init > /scratch/from-init",
                name="init",
                volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
            )
        ],
        volumes=[
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "sec", "secret": {"secretName": "sec"}},
            {"name": "scratch", "emptyDir": {}},
            {
                "name": "info",
                "downwardAPI": {
                    "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
                },
            },
        ],
    )
    await client.create(spec)
    done = await finished(client, ns, "vols")
    assert kc("logs", "vols", "-n", ns, "-c", "main").stdout == (
        'from-configmap\ns3cret\nwritten-by-init\napp="vols"\nread-only\n'
    )
    assert done["status"]["phase"] == "Succeeded"
    init = done["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["exitCode"] == 0
    conditions = {c["type"]: c["status"] for c in done["status"]["conditions"]}
    assert conditions["Initialized"] == "True" and conditions["PodScheduled"] == "True"


async def test_environment_from_every_source(client: Client, kc: Kubectl, ns: str) -> None:
    kc("create", "configmap", "cfg", "-n", ns, "--from-literal=color=blue")
    kc("create", "secret", "generic", "sec", "-n", ns, "--from-literal=token=t0k3n")
    container = shell(
        'echo "$COLOR $TOKEN $POD $NAMESPACE $APP $NODE $IP $GREETING $S_token"; pwd',
        env=[
            {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "GREETING", "value": "hi-$(POD)"},
        ],
        envFrom=[{"secretRef": {"name": "sec"}, "prefix": "S_"}],
        workingDir="/tmp",
    )
    await client.create(pod("env", ns, container, restartPolicy="Never"))
    await finished(client, ns, "env")
    assert kc("logs", "env", "-n", ns).stdout == (
        f"blue t0k3n env {ns} env localcluster 127.0.0.1 hi-env t0k3n\n/tmp\n"
    )


async def test_a_missing_configmap_waits_then_runs(client: Client, kc: Kubectl, ns: str) -> None:
    container = shell(
        "echo $V",
        env=[{"name": "V", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "v"}}}],
    )
    await client.create(pod("waits", ns, container, restartPolicy="Never"))

    await eventually(
        lambda: waiting_reason(client, ns, "waits", "CreateContainerConfigError"),
        what="CreateContainerConfigError",
    )
    kc("create", "configmap", "later", "-n", ns, "--from-literal=v=arrived")
    done = await finished(client, ns, "waits")
    assert done["status"]["phase"] == "Succeeded"
    assert kc("logs", "waits", "-n", ns).stdout == "arrived\n"


async def test_logs_follow_streams_until_the_container_exits(
    client: Client, kc: Kubectl, ns: str
) -> None:
    script = "echo first; sleep 2; echo second; sleep 1; echo third"
    await client.create(pod("talks", ns, shell(script), restartPolicy="Never"))
    await running(client, ns, "talks")
    follower = kc.popen("logs", "-f", "talks", "-n", ns)
    try:
        assert follower.stdout is not None
        started = time.monotonic()
        assert follower.stdout.readline() == "first\n"
        assert follower.stdout.readline() == "second\n"
        assert follower.stdout.readline() == "third\n"
        assert follower.wait(timeout=20) == 0
        assert time.monotonic() - started >= 1.0  # it streamed, not one read at the end
    finally:
        if follower.poll() is None:
            follower.kill()
        follower.wait()


async def test_deleting_a_running_pod_kills_its_process(
    client: Client, kc: Kubectl, ns: str
) -> None:
    marker = f"{1000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 1000}"
    container = {"name": "main", "image": "busybox:1.36", "command": ["sleep", marker]}
    await client.create(pod("sleeper", ns, container))
    live = await running(client, ns, "sleeper")
    assert live["status"]["containerStatuses"][0]["ready"] is True
    pids = processes_with(f"sleep\0{marker}")
    assert len(pids) == 1
    started = time.monotonic()
    kc("delete", "pod", "sleeper", "-n", ns, "--timeout=30s")
    assert time.monotonic() - started < 15  # SIGTERM did it, not the 30 s grace period
    assert not processes_with(f"sleep\0{marker}")
    with pytest.raises(NotFound):
        await client.get(POD, "sleeper", ns)


async def test_a_pod_ignoring_sigterm_is_killed_after_its_grace_period(
    client: Client, kc: Kubectl, ns: str
) -> None:
    container = shell("trap '' TERM; while true; do sleep 0.2; done")
    await client.create(pod("stubborn", ns, container, terminationGracePeriodSeconds=2))
    await running(client, ns, "stubborn")
    started = time.monotonic()
    kc("delete", "pod", "stubborn", "-n", ns, "--timeout=30s")
    assert 1.5 <= time.monotonic() - started < 15


async def test_an_image_the_node_cannot_run(client: Client, kc: Kubectl, ns: str) -> None:
    await client.create(pod("nginx", ns, {"name": "web", "image": "nginx:1.27"}))

    async def pulling() -> Obj | None:
        found = await client.get(POD, "nginx", ns)
        statuses = (found.get("status") or {}).get("containerStatuses") or [{}]
        waiting = (statuses[0].get("state") or {}).get("waiting") or {}
        return found if waiting.get("reason") == "ErrImagePull" else None

    found = await eventually(pulling, what="ErrImagePull")
    waiting = found["status"]["containerStatuses"][0]["state"]["waiting"]
    assert "cannot run on the local node" in waiting["message"]
    assert found["status"]["phase"] == "Pending"
    result = kc("logs", "nginx", "-n", ns, check=False)
    assert result.returncode != 0 and "is waiting to start" in result.stderr


async def test_a_new_image_ends_err_image_pull(client: Client, kc: Kubectl, ns: str) -> None:
    container = {"name": "main", "image": "nginx:1.27", "command": ["echo", "now it runs"]}
    await client.create(pod("fixed", ns, container, restartPolicy="Never"))
    await eventually(
        lambda: waiting_reason(client, ns, "fixed", "ErrImagePull"), what="ErrImagePull"
    )
    kc("set", "image", "pod/fixed", "main=busybox:1.36", "-n", ns)
    done = await finished(client, ns, "fixed")
    assert done["status"]["phase"] == "Succeeded"
    assert kc("logs", "fixed", "-n", ns).stdout == "now it runs\n"


async def test_active_deadline_fails_the_pod(client: Client, ns: str) -> None:
    container = {"name": "main", "image": "busybox:1.36", "command": ["sleep", "1000"]}
    await client.create(pod("deadline", ns, container, activeDeadlineSeconds=2))
    done = await finished(client, ns, "deadline")
    assert done["status"]["phase"] == "Failed"
    assert done["status"]["reason"] == "DeadlineExceeded"
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143


async def test_log_errors_name_the_containers(
    client: Client, node_cluster: RunningCluster, ns: str
) -> None:
    spec = pod(
        "two", ns, shell("echo a", name="a"), shell("echo b", name="b"), restartPolicy="Never"
    )
    await client.create(spec)
    await finished(client, ns, "two")
    http = Http(node_cluster)
    try:
        base = f"/api/v1/namespaces/{ns}/pods/two/log"
        status, body, _ = await http.request("GET", base)
        assert status == 400
        assert body["message"] == (
            "a container name must be specified for pod two, choose one of: [a b]"
        )
        status, body, _ = await http.request("GET", base + "?container=b")
        assert (status, body) == (200, "b\n")
        status, body, _ = await http.request("GET", base + "?container=b&previous=true")
        assert status == 400 and "previous terminated container" in body["message"]
    finally:
        await http.close()


async def test_restart_on_failure_with_backoff(client: Client, kc: Kubectl, ns: str) -> None:
    script = "if [ -f /data/once ]; then echo second run; exit 0; fi; touch /data/once; echo first run; exit 1"
    spec = pod(
        "retry",
        ns,
        shell(script, volumeMounts=[{"name": "data", "mountPath": "/data"}]),
        restartPolicy="OnFailure",
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    await client.create(spec)

    await eventually(
        lambda: waiting_reason(client, ns, "retry", "CrashLoopBackOff"), what="CrashLoopBackOff"
    )
    assert (await client.get(POD, "retry", ns))["status"]["phase"] == "Running"
    done = await finished(client, ns, "retry")
    status = done["status"]["containerStatuses"][0]
    assert done["status"]["phase"] == "Succeeded" and status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert kc("logs", "retry", "-n", ns).stdout == "second run\n"
    assert kc("logs", "retry", "-n", ns, "--previous").stdout == "first run\n"


async def test_sidecars_start_first_and_stop_last(client: Client, kc: Kubectl, ns: str) -> None:
    sidecar = shell(
        "echo up > /shared/sidecar; exec sleep 1000",
        name="helper",
        restartPolicy="Always",
        volumeMounts=[{"name": "shared", "mountPath": "/shared"}],
    )
    main = shell("cat /shared/sidecar", volumeMounts=[{"name": "shared", "mountPath": "/shared"}])
    spec = pod(
        "sidecar",
        ns,
        main,
        restartPolicy="Never",
        initContainers=[sidecar],
        volumes=[{"name": "shared", "emptyDir": {}}],
        terminationGracePeriodSeconds=5,
    )
    await client.create(spec)
    done = await finished(client, ns, "sidecar")
    assert done["status"]["phase"] == "Succeeded"
    assert kc("logs", "sidecar", "-n", ns, "-c", "main").stdout == "up\n"
    helper = done["status"]["initContainerStatuses"][0]
    assert helper["state"]["terminated"]["exitCode"] == 143  # SIGTERM at the end


async def test_readiness_probes_gate_ready(client: Client, ns: str) -> None:
    container = shell(
        "sleep 2; touch /data/ready; sleep 1000",
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
        readinessProbe={"exec": {"command": ["test", "-f", "/data/ready"]}, "periodSeconds": 1},
    )
    spec = pod(
        "probed",
        ns,
        container,
        volumes=[{"name": "data", "emptyDir": {}}],
        terminationGracePeriodSeconds=1,
    )
    await client.create(spec)
    live = await running(client, ns, "probed")
    assert live["status"]["containerStatuses"][0]["ready"] is False

    async def ready() -> bool:
        found = await client.get(POD, "probed", ns)
        conditions = {c["type"]: c["status"] for c in found["status"]["conditions"]}
        return conditions.get("Ready") == "True"

    await eventually(ready, what="Ready", show=status_of(client, ns, "probed"))
    await client.delete(POD, "probed", ns)


async def test_a_failing_liveness_probe_kills_the_container(client: Client, ns: str) -> None:
    container = {
        "name": "main",
        "image": "busybox:1.36",
        "command": ["sleep", "1000"],
        "livenessProbe": {
            "exec": {"command": ["false"]},
            "periodSeconds": 1,
            "failureThreshold": 2,
        },
    }
    await client.create(pod("unhealthy", ns, container, restartPolicy="Never"))
    done = await finished(client, ns, "unhealthy")
    assert done["status"]["phase"] == "Failed"
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143


# ---- other clusters: the env fallback, node restarts


async def test_env_mode_exports_the_mount_table(tmp_path: Path) -> None:
    cluster = start_node_cluster(tmp_path / "data", env={"LOCALCLUSTER_NODE_MOUNTS": "env"})
    kc = Kubectl(cluster, tmp_path / "cache")
    client = await Client.connect(kubeconfig=str(cluster.kubeconfig))
    try:
        kc("create", "configmap", "cfg", "--from-literal=key=value")
        container = shell(
            'echo "$LOCALCLUSTER_MOUNTS"; cat key',
            workingDir="/etc/app-config",
            volumeMounts=[{"name": "cfg", "mountPath": "/etc/app-config"}],
        )
        spec = pod(
            "env-mode",
            "default",
            container,
            restartPolicy="Never",
            volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}],
        )
        await client.create(spec)
        done = await finished(client, "default", "env-mode")
        assert done["status"]["phase"] == "Succeeded"
        table_line, value = kc("logs", "env-mode").stdout.splitlines()
        table = json.loads(table_line)
        assert list(table) == ["/etc/app-config"]
        assert value == "value" == host_file(Path(table["/etc/app-config"], "key"))
        assert host_file(Path("/etc/app-config")) is None  # nothing was mounted or made
    finally:
        await client.close()
        cluster.stop()


async def lost_pods_fail(cluster: RunningCluster, marker: str) -> None:
    async with await Client.connect(kubeconfig=str(cluster.kubeconfig)) as client:
        failed = await finished(client, "default", "sleeper")
        assert failed["status"]["phase"] == "Failed"
        assert failed["status"]["reason"] == "NodeRestart"
        terminated = failed["status"]["containerStatuses"][0]["state"]["terminated"]
        assert terminated["reason"] == "ContainerStatusUnknown"
        assert not processes_with(f"sleep\0{marker}")
        await client.create(pod("after", "default", shell("echo fresh"), restartPolicy="Never"))
        assert (await finished(client, "default", "after"))["status"]["phase"] == "Succeeded"


async def start_sleeper(cluster: RunningCluster) -> str:
    marker = f"{2000 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 1000}"
    async with await Client.connect(kubeconfig=str(cluster.kubeconfig)) as client:
        container = {"name": "main", "image": "busybox:1.36", "command": ["sleep", marker]}
        await client.create(pod("sleeper", "default", container))
        await running(client, "default", "sleeper")
    assert processes_with(f"sleep\0{marker}")
    return marker


async def test_a_node_restart_fails_the_pods_it_was_running(tmp_path: Path) -> None:
    cluster = start_node_cluster(tmp_path / "data")
    try:
        marker = await start_sleeper(cluster)
        cluster.stop()
        assert not processes_with(f"sleep\0{marker}")  # a clean stop kills the processes
        cluster = start_node_cluster(tmp_path / "data")
        await lost_pods_fail(cluster, marker)
    finally:
        cluster.stop()


async def test_a_killed_node_kills_its_leftovers_when_it_starts(tmp_path: Path) -> None:
    cluster = start_node_cluster(tmp_path / "data")
    try:
        marker = await start_sleeper(cluster)
        cluster.process.send_signal(signal.SIGKILL)
        cluster.process.wait()
        assert processes_with(f"sleep\0{marker}")  # nobody stopped them
        cluster = start_node_cluster(tmp_path / "data")
        await lost_pods_fail(cluster, marker)
    finally:
        cluster.stop()
