"""The node `localcluster`: binds pods, runs them as local processes, reports their status.

A controller on Pods binds every unscheduled pod to this node (there is one node and
no scheduler) and keeps one `PodWorker` per bound pod, like the kubelet's pod workers.
A worker prepares the volumes, runs the init containers in order (each must exit 0;
native sidecars, init containers with `restartPolicy: Always`, start and keep running),
then all regular containers together, restarting them as the pod's restartPolicy says
with the upstream CrashLoopBackOff (10 s, doubling to 5 min, reset after a run of 10
min). When the regular containers are done for good the sidecars are stopped and the
pod is Succeeded or Failed. Status is written by one loop per pod, always the latest
state, so bursts of changes coalesce.

Deleting a bound pod sets its deletionTimestamp; the worker then SIGTERMs each
container's process group (regular containers first, then sidecars), SIGKILLs what is
left after `deletionGracePeriodSeconds`, and deletes the pod with grace period 0. No
status is written while a pod is terminating.

When the node starts it kills processes an earlier, crashed run left behind; a pod
that was Running then (its processes are gone) becomes Failed with reason
`NodeRestart`; Pending pods start normally. Stopping the node kills every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import shutil
import signal
import sys
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller import (
    Client,
    Conflict,
    EventRecorder,
    Invalid,
    NotFound,
    Request,
    Result,
    SharedInformer,
)
from localcluster.node import env as envs
from localcluster.node import mounts as isolation
from localcluster.node import probes, runtime, volumes
from localcluster.node.logs import LogService, pod_log_dir, tail_text, uid_of_log_dir
from localcluster.node.status import (
    LOST_REASON,
    NODE_NAME,
    ContainerRecord,
    Snapshot,
    build_status,
    lost_status,
    now,
    pod_phase,
)
from localcluster.node.volumes import NodePaths, PodVolumes

log = logging.getLogger("localcluster.node")

POD = ("v1", "Pod")
Obj = dict[str, Any]
TERMINAL = ("Succeeded", "Failed")
SHUTDOWN_GRACE = 3.0  # seconds each process gets when the whole node stops


@dataclass
class NodeOptions:
    data_dir: Path
    allowed_images: tuple[str, ...]
    mount_mode: str = "auto"  # auto, bind or env (see mounts.py)
    api_port: int = 0
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    retry_initial: float = 1.0  # a container that cannot be configured or pulled yet
    retry_max: float = 30.0
    volume_refresh: float = 60.0  # seconds between rewrites of configMap/secret volumes


class Backoff:
    """Doubling delays from `initial` up to `maximum`."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.delay = 0.0

    def next(self) -> float:
        self.delay = self.initial if self.delay == 0 else min(self.delay * 2, self.maximum)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


def go_duration(seconds: float) -> str:
    """`5m0s`, `40s`: durations as the kubelet's messages print them."""
    whole = int(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


class Wakeup:
    """Wakes every waiter at once (a pod changed); waiting is bounded by a timeout."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


async def wait_exited(
    processes: Iterable[runtime.Process], deadline: float, interrupt: asyncio.Event
) -> None:
    """Until the processes exit, `deadline` (loop time) passes or `interrupt` is set."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Future[Any]] = {asyncio.ensure_future(p.wait()) for p in processes}
    interrupted = asyncio.ensure_future(interrupt.wait())
    try:
        while pending and not interrupt.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return
            _, still = await asyncio.wait(
                {*pending, interrupted}, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            pending = still - {interrupted}
    finally:
        interrupted.cancel()
        for future in pending:
            future.cancel()


def pod_ref(pod: Obj) -> Obj:
    meta = pod.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")},
    }


class Node:
    """The Pod reconciler plus everything the pod workers share."""

    def __init__(
        self, client: Client, informer: SharedInformer, options: NodeOptions, mount_mode: str
    ) -> None:
        self.client = client
        self.informer = informer
        self.options = options
        self.mount_mode = mount_mode
        self.paths = NodePaths(options.data_dir / "node")
        self.logs = LogService(self.paths.logs)
        self.mount_points = isolation.MountPoints()
        self.events = EventRecorder(client, "kubelet", NODE_NAME)
        self.scheduler_events = EventRecorder(client, "default-scheduler")
        self.workers: dict[str, PodWorker] = {}
        self.token_source: volumes.TokenSource | None = None  # None: placeholder tokens

    # ---- API helpers

    async def fetch(self, kind: str, namespace: str, name: str) -> Obj | None:
        """A namespaced core/v1 object, None if it does not exist."""
        try:
            found: Obj = await self.client.get(("v1", kind), name, namespace)
        except NotFound:
            return None
        return found

    def cached(self, key: str) -> Obj | None:
        return self.informer.store.get(key)

    def service_env(self, pod_name: str) -> dict[str, str]:
        port = str(self.options.api_port)
        return {
            "HOSTNAME": pod_name,
            "KUBERNETES_SERVICE_HOST": envs.HOST_IP,
            "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBERNETES_PORT": f"tcp://{envs.HOST_IP}:{port}",
        }

    # ---- the reconcile

    async def reconcile(self, request: Request) -> Result | None:
        key = str(request)
        pod = self.cached(key)
        worker = self.workers.get(key)
        if pod is None:
            if worker is not None:
                await self._forget(key, worker)
            self._remove_files(request.namespace, request.name, keep_uid=None)
            return None
        meta = pod["metadata"]
        uid = str(meta.get("uid", ""))
        if worker is not None and worker.uid != uid:
            await self._forget(key, worker)  # the pod was replaced by one of the same name
            worker = None
            self._remove_files(request.namespace, request.name, keep_uid=uid)
        spec = pod.get("spec") or {}
        node_name = spec.get("nodeName")
        if not node_name:
            if not meta.get("deletionTimestamp") and spec.get("schedulerName") in (
                None,
                "",
                "default-scheduler",
            ):
                await self._bind(pod)
            return None
        if node_name != NODE_NAME:
            return None
        if meta.get("deletionTimestamp"):
            if worker is not None and not worker.stopped:
                worker.terminate(int(meta.get("deletionGracePeriodSeconds") or 0))
            else:
                await self.delete_now(pod)
            return None
        phase = (pod.get("status") or {}).get("phase")
        if worker is not None:
            worker.update(pod)
        elif phase == "Running":
            await self._mark_lost(pod)
        elif phase not in TERMINAL:
            worker = PodWorker(self, pod)
            self.workers[key] = worker
            worker.start()
        return None

    async def _bind(self, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.client.patch(
                POD,
                meta["name"],
                {"spec": {"nodeName": NODE_NAME}},
                namespace=meta["namespace"],
                field_manager="localcluster-node",
            )
        except (NotFound, Invalid, Conflict) as exc:
            log.info("could not bind pod %s/%s: %s", meta["namespace"], meta["name"], exc)
            return
        self.scheduler_events.event(
            pod_ref(pod),
            "Normal",
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {NODE_NAME}",
        )

    async def delete_now(self, pod: Obj) -> None:
        """Deletes a pod whose processes are gone (grace period 0, this very pod only)."""
        meta = pod["metadata"]
        with contextlib.suppress(NotFound, Conflict):
            await self.client.delete(
                POD,
                meta["name"],
                meta["namespace"],
                grace_period_seconds=0,
                preconditions={"uid": meta.get("uid")},
            )

    async def _mark_lost(self, pod: Obj) -> None:
        meta = pod["metadata"]
        log.info("pod %s/%s was running before the node restarted", meta["namespace"], meta["name"])
        for _ in range(5):
            body = dict(pod, apiVersion="v1", kind="Pod", status=lost_status(pod))
            try:
                await self.client.update_status(body, field_manager="localcluster-node")
            except Conflict:
                fresh = await self.fetch("Pod", meta["namespace"], meta["name"])
                if fresh is None or fresh["metadata"].get("uid") != meta.get("uid"):
                    return
                if (fresh.get("status") or {}).get("phase") != "Running":
                    return
                pod = fresh
                continue
            except NotFound:
                return
            self.events.event(pod_ref(pod), "Warning", LOST_REASON, "the local node restarted")
            return

    async def _forget(self, key: str, worker: PodWorker) -> None:
        await worker.close()
        if self.workers.get(key) is worker:
            del self.workers[key]
        self._remove_pod_files(worker.namespace, worker.name, worker.uid)

    def _remove_pod_files(self, namespace: str, name: str, uid: str) -> None:
        volumes.remove_pod(self.paths, uid)
        shutil.rmtree(pod_log_dir(self.paths.logs, namespace, name, uid), ignore_errors=True)

    def _remove_files(self, namespace: str, name: str, keep_uid: str | None) -> None:
        """Removes logs and volumes of earlier pods of this name (deleted while we were down)."""
        for directory in self.paths.logs.glob(f"{namespace}_{name}_*"):
            uid = uid_of_log_dir(directory)
            if uid != keep_uid and directory.name == f"{namespace}_{name}_{uid}":
                self._remove_pod_files(namespace, name, uid)

    # ---- lifetime

    async def run(self) -> None:
        """Cleans up after pods deleted while the node was down, then idles until stopped."""
        try:
            if await self.informer.wait_for_sync():
                self._housekeeping()
            await asyncio.Event().wait()
        finally:
            await self.shutdown()

    def _housekeeping(self) -> None:
        live = {str(p["metadata"].get("uid")) for p in self.informer.store.list_readonly()}
        if self.paths.pods.is_dir():
            for directory in self.paths.pods.iterdir():
                if directory.name not in live:
                    shutil.rmtree(directory, ignore_errors=True)
        if self.paths.logs.is_dir():
            for directory in self.paths.logs.iterdir():
                if uid_of_log_dir(directory) not in live:
                    shutil.rmtree(directory, ignore_errors=True)

    async def shutdown(self) -> None:
        """Stops every pod's processes: the node goes away with the cluster process.

        No status is written on the way down: the next start of the node reports the
        pods that were running as lost, whatever way the node ended.
        """
        workers = list(self.workers.values())
        for worker in workers:
            worker.terminating = True
            worker.cancel_tasks()
        await asyncio.gather(*(w.kill_processes(SHUTDOWN_GRACE) for w in workers))
        for worker in workers:
            await worker.close()
        self.workers.clear()
        await self.events.close()
        await self.scheduler_events.close()


class PodWorker:
    """Runs one pod: volumes, init containers, containers, restarts, status, termination."""

    def __init__(self, node: Node, pod: Obj) -> None:
        self.node = node
        self.pod = pod
        meta = pod["metadata"]
        self.namespace = str(meta["namespace"])
        self.name = str(meta["name"])
        self.uid = str(meta.get("uid", ""))
        self.key = f"{self.namespace}/{self.name}"
        spec = pod.get("spec") or {}
        self.restart_policy = str(spec.get("restartPolicy") or "Always")
        init = spec.get("initContainers") or []
        self.init_records = [
            ContainerRecord(
                str(c.get("name")),
                str(c.get("image", "")),
                init=True,
                sidecar=c.get("restartPolicy") == "Always",
                state={"waiting": {"reason": "PodInitializing"}},
            )
            for c in init
        ]
        first = "PodInitializing" if init else "ContainerCreating"
        self.records = [
            ContainerRecord(
                str(c.get("name")), str(c.get("image", "")), state={"waiting": {"reason": first}}
            )
            for c in spec.get("containers") or ()
        ]
        self.start_time = now()
        self._started_at = time.monotonic()
        self.sandbox_ready = False
        self.initialized = False
        self.final: tuple[str, str, str] | None = None  # (phase, reason, message)
        self.stopped = False  # no process runs, and none will
        self.terminating = False
        self.volumes = PodVolumes()
        self.processes: dict[str, runtime.Process] = {}
        self.exec_env: dict[str, dict[str, str]] = {}
        self.started: dict[str, asyncio.Event] = {
            r.name: asyncio.Event() for r in self.init_records if r.sidecar
        }
        self.wakeup = Wakeup()
        self.dirty = asyncio.Event()
        self._kill_now = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._status: asyncio.Task[None] | None = None
        self._deadline: asyncio.Task[None] | None = None
        self._deadline_seconds: int | None = None
        self._termination: asyncio.Task[None] | None = None
        self._written: Obj | None = None  # the pod as our last status write left it

    # ---- entry points from the node

    def start(self) -> None:
        self._status = asyncio.create_task(self._status_loop(), name=f"pod-status {self.key}")
        self._spawn(self._run(), f"pod {self.key}")
        self._arm_deadline()
        self.changed()

    def update(self, pod: Obj) -> None:
        """A newer version of the pod (e.g. a new image): retry what waits for it."""
        spec_changed = pod.get("spec") != self.pod.get("spec")
        self.pod = pod
        if spec_changed:
            self.wakeup.fire()
        self._arm_deadline()

    def terminate(self, grace: int) -> None:
        """Stops the pod for its deletion, then deletes it; repeated calls are harmless."""
        if grace <= 0:
            self._kill_now.set()
        if self._termination is None:
            self._termination = asyncio.create_task(
                self._terminate_then_delete(grace), name=f"pod-terminate {self.key}"
            )

    async def close(self) -> None:
        """The pod is gone: kill anything left, stop all tasks."""
        self._kill_now.set()
        self.cancel_tasks()
        if self._termination is not None:
            self._termination.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._termination
        await self.kill_processes(0)
        if self._status is not None:
            self._status.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._status

    def cancel_tasks(self) -> None:
        """Stops the lifecycle (no more starts or restarts); processes keep running."""
        for task in list(self._tasks):
            task.cancel()
        if self._deadline is not None:
            self._deadline.cancel()

    # ---- helpers

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("pod %s: %s failed", self.key, task.get_name(), exc_info=task.exception())

    def changed(self) -> None:
        self.dirty.set()

    def event(self, kind: str, reason: str, message: str) -> None:
        self.node.events.event(pod_ref(self.pod), kind, reason, message)

    def spec_of(self, name: str) -> Obj:
        spec = self.pod.get("spec") or {}
        for group in ("initContainers", "containers"):
            for container in spec.get(group) or ():
                if container.get("name") == name:
                    found: Obj = container
                    return found
        raise KeyError(name)

    def record(self, name: str) -> ContainerRecord:
        return next(r for r in (*self.init_records, *self.records) if r.name == name)

    # ---- the lifecycle

    async def _run(self) -> None:
        await self._prepare_volumes()
        sidecars: list[ContainerRecord] = []
        for record in self.init_records:
            if record.sidecar:
                sidecars.append(record)
                self._spawn(self._supervise(record), f"sidecar {self.key}/{record.name}")
                await self.started[record.name].wait()
                continue
            if await self._supervise(record) != 0:  # only returns a failure under Never
                await self._stop_containers(sidecars)
                self._finish()
                return
        self.initialized = True
        self.changed()
        await asyncio.gather(
            *(
                self._spawn(self._supervise(r), f"container {self.key}/{r.name}")
                for r in self.records
            )
        )
        await self._stop_containers(sidecars)
        self._finish()

    def _finish(self) -> None:
        self.stopped = True
        self.cancel_tasks()
        self.changed()

    async def _prepare_volumes(self) -> None:
        backoff = Backoff(self.node.options.retry_initial, self.node.options.retry_max)
        while True:
            try:
                self.volumes = await volumes.prepare(
                    self.pod, self.node.paths, self.node.fetch, self.node.token_source
                )
                break
            except Exception as exc:  # a missing source, or the API briefly away: retried
                if not isinstance(exc, volumes.VolumeError):
                    log.warning("pod %s: preparing volumes: %r", self.key, exc)
                self.event("Warning", "FailedMount", f"MountVolume.SetUp failed: {exc}")
                await self.wakeup.wait(backoff.next())
        (self.node.paths.pod_dir(self.uid) / "work").mkdir(parents=True, exist_ok=True)
        self.sandbox_ready = True
        self.changed()
        if any(
            kind in v
            for v in (self.pod.get("spec") or {}).get("volumes") or ()
            for kind in ("configMap", "secret", "projected", "downwardAPI")
        ):
            self._spawn(self._refresh_volumes(), f"volumes {self.key}")

    async def _refresh_volumes(self) -> None:
        while True:
            await asyncio.sleep(self.node.options.volume_refresh)
            try:
                await volumes.refresh(
                    self.pod, self.node.paths, self.node.fetch, self.node.token_source
                )
            except Exception as exc:  # the next refresh tries again
                log.info("pod %s: volume refresh: %r", self.key, exc)

    def _policy(self, record: ContainerRecord) -> str:
        if record.sidecar:
            return "Always"
        if record.init:
            return "Never" if self.restart_policy == "Never" else "OnFailure"
        return self.restart_policy

    async def _supervise(self, record: ContainerRecord) -> int:
        """Runs a container until its restart policy is done with it; its last exit code."""
        policy = self._policy(record)
        options = self.node.options
        backoff = Backoff(options.backoff_initial, options.backoff_max)
        while True:
            code, ran_for = await self._run_once(record)
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                return code
            if ran_for >= 2 * options.backoff_max:
                backoff.reset()
            delay = backoff.next()
            record.waiting(
                "CrashLoopBackOff",
                f"back-off {go_duration(delay)} restarting failed container={record.name} "
                f"pod={self.name}_{self.namespace}({self.uid})",
            )
            self.changed()
            self.event(
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {record.name} in pod "
                f"{self.name}_{self.namespace}({self.uid})",
            )
            await asyncio.sleep(delay)
            record.restart_count += 1

    async def _run_once(self, record: ContainerRecord) -> tuple[int, float]:
        """One run of a container: (exit code, seconds it ran)."""
        options = self.node.options
        retry = Backoff(options.retry_initial, options.retry_max)
        while True:
            container = self.spec_of(record.name)
            record.image = str(container.get("image", ""))
            try:
                process = await self._try_start(container, record)
                break
            except runtime.ContainerError as exc:
                if exc.reason == "StartError":
                    started = now()
                    record.terminated(
                        128,
                        reason="StartError",
                        message=exc.message,
                        started_at=started,
                        finished_at=started,
                    )
                    self.changed()
                    self.event("Warning", "Failed", f"Error: {exc.message}")
                    return 128, 0.0
                before = record.state.get("waiting")
                record.waiting(exc.reason, exc.message)
                if record.state["waiting"] != before:
                    self.changed()
                    self.event("Warning", "Failed", f"Error: {exc.message}")
                await self.wakeup.wait(retry.next())
        began = time.monotonic()
        record.running(process.started_at, process.container_id)
        record.started = "startupProbe" not in container
        record.ready = record.started and "readinessProbe" not in container
        if record.started and record.name in self.started:
            self.started[record.name].set()
        self.changed()
        self.event("Normal", "Started", f"Started container {record.name}")
        checks = self._start_probes(container, record, process)
        try:
            code = await process.wait()
        finally:
            for task in checks:
                task.cancel()
        self._record_exit(record, container, process, code)
        return code, time.monotonic() - began

    def _record_exit(
        self, record: ContainerRecord, container: Obj, process: runtime.Process, code: int
    ) -> None:
        if self.processes.get(record.name) is process:
            del self.processes[record.name]
        if "running" not in record.state or record.container_id != process.container_id:
            return
        message = ""
        if code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = tail_text(process.writer.path)
        record.terminated(code, message=message, started_at=process.started_at)
        self.changed()

    async def _try_start(self, container: Obj, record: ContainerRecord) -> runtime.Process:
        """`_start`, with unexpected failures (the API briefly away) made retryable."""
        try:
            return await self._start(container, record)
        except runtime.ContainerError:
            raise
        except Exception as exc:
            log.warning("pod %s: starting %s: %r", self.key, record.name, exc)
            raise runtime.ContainerError("CreateContainerError", str(exc)) from None

    async def _start(self, container: Obj, record: ContainerRecord) -> runtime.Process:
        node = self.node
        image = str(container.get("image", ""))
        if not runtime.image_allowed(image, node.options.allowed_images):
            raise runtime.not_runnable(image)
        base = {**runtime.image_env(image), **node.service_env(self.name)}
        try:
            env = await envs.build_env(self.pod, container, node.fetch, base)
        except envs.ConfigError as exc:
            raise runtime.ContainerError(exc.reason, str(exc)) from None
        command = envs.expand_all([str(c) for c in container.get("command") or ()], env)
        args = envs.expand_all([str(a) for a in container.get("args") or ()], env)
        argv = runtime.command_line(image, command, args)
        try:
            mounts = volumes.container_mounts(container, self.volumes, env)
        except volumes.VolumeError as exc:
            raise runtime.ContainerError("CreateContainerConfigError", str(exc)) from None
        work = node.paths.pod_dir(self.uid) / "work"
        cwd = work
        working_dir = str(container.get("workingDir") or "")
        held: list[Path] = []
        if node.mount_mode == isolation.BIND:
            protected = (node.paths.root, Path(sys.prefix), Path(sys.base_prefix), Path(argv[0]))
            bound, kept_out = isolation.split_shadowing(mounts, protected)
            try:
                held = node.mount_points.acquire(bound)
            except isolation.MountError as exc:
                raise runtime.ContainerError(exc.reason, str(exc)) from None
            argv = isolation.bind_command(argv, bound, working_dir or None)
            if kept_out:
                env.update(isolation.mounts_env(kept_out))
                for mount in kept_out:
                    if mount.container_path.rstrip("/") == "/tmp":
                        env["TMPDIR"] = str(mount.host_path)
        else:
            env.update(isolation.mounts_env(mounts))
            if argv[0].startswith("/"):
                argv[0] = isolation.translate(argv[0], mounts)
            cwd = _host_working_dir(working_dir, mounts, work)
        writer = node.logs.open(
            self.namespace, self.name, self.uid, record.name, record.restart_count
        )

        def exited() -> None:
            node.logs.closed(writer)
            node.mount_points.release(held)

        spawning = asyncio.ensure_future(
            runtime.spawn(argv, env, cwd, writer, node.paths.processes, exited)
        )
        try:
            process = await asyncio.shield(spawning)
        except asyncio.CancelledError:
            spawning.add_done_callback(_kill_spawned)
            raise
        except runtime.ContainerError:
            exited()
            raise
        self.processes[record.name] = process
        self.exec_env[record.name] = env
        return process

    def _start_probes(
        self, container: Obj, record: ContainerRecord, process: runtime.Process
    ) -> list[asyncio.Task[None]]:
        tasks: list[asyncio.Task[None]] = []
        env = self.exec_env.get(record.name, {})
        bind = self.node.mount_mode == isolation.BIND

        def check(probe: Obj) -> probes.Check:
            return probes.make_check(probe, container, env, process.pid, bind)

        def begin(name: str, coroutine: Coroutine[Any, Any, None]) -> None:
            tasks.append(asyncio.create_task(coroutine, name=f"{name} {self.key}/{record.name}"))

        def on_ready(ready: bool) -> None:
            if "running" in record.state and record.ready != ready:
                record.ready = ready
                self.changed()

        def on_alive(alive: bool) -> None:
            if not alive:
                self.event(
                    "Normal",
                    "Killing",
                    f"Container {record.name} failed liveness probe, will be restarted",
                )
                grace = self._probe_grace(container.get("livenessProbe") or {})
                begin("kill", self._kill_one(process, grace))

        def start_others() -> None:
            readiness = container.get("readinessProbe")
            if readiness:
                begin("readiness", probes.run_probe(readiness, check(readiness), on_ready))
            liveness = container.get("livenessProbe")
            if liveness:
                begin("liveness", probes.run_probe(liveness, check(liveness), on_alive))

        def on_started(started: bool) -> None:
            if not started:
                self.event("Warning", "Unhealthy", f"Startup probe failed for {record.name}")
                grace = self._probe_grace(container.get("startupProbe") or {})
                begin("kill", self._kill_one(process, grace))
                return
            if "running" not in record.state:
                return
            record.started = True
            record.ready = "readinessProbe" not in container
            if record.name in self.started:
                self.started[record.name].set()
            self.changed()
            start_others()

        startup = container.get("startupProbe")
        if startup:
            begin(
                "startup", probes.run_probe(startup, check(startup), on_started, until_success=True)
            )
        else:
            start_others()
        return tasks

    def _probe_grace(self, probe: Obj) -> float:
        value = probe.get("terminationGracePeriodSeconds")
        if value is None:
            value = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        return float(value or 0)

    async def _kill_one(self, process: runtime.Process, grace: float) -> None:
        process.signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        await wait_exited([process], loop.time() + grace, self._kill_now)
        process.signal(signal.SIGKILL)

    # ---- stopping

    async def _stop_containers(self, records: list[ContainerRecord]) -> None:
        """Stops sidecars once the regular containers are done (no restarts)."""
        names = {r.name for r in records}
        for task in list(self._tasks):
            if any(task.get_name().endswith(f"/{name}") for name in names):
                task.cancel()
        grace = float((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30) or 0)
        targets = [p for n, p in self.processes.items() if n in names]
        for process in targets:
            process.signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        await wait_exited(targets, loop.time() + grace, self._kill_now)
        for process in targets:
            process.signal(signal.SIGKILL)
        await self._settle(targets)

    async def _settle(self, targets: Iterable[runtime.Process]) -> None:
        """Waits for the processes, then records how they ended."""
        for process in list(targets):
            code = await process.wait()
            for name, running in list(self.processes.items()):
                if running is process:
                    with contextlib.suppress(KeyError):
                        self._record_exit(self.record(name), self.spec_of(name), process, code)
        self.changed()

    async def kill_processes(self, grace: float) -> None:
        """SIGTERM regular containers, then the rest; SIGKILL what outlives `grace`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        regular = {r.name for r in self.records}
        everything = list(self.processes.items())
        for group in (
            [p for n, p in everything if n in regular],
            [p for n, p in everything if n not in regular],
        ):
            for process in group:
                process.signal(signal.SIGTERM)
            await wait_exited(group, deadline, self._kill_now)
        for _, process in everything:
            process.signal(signal.SIGKILL)
        await self._settle(p for _, p in everything)

    async def _terminate_then_delete(self, grace: int) -> None:
        self.terminating = True
        self.cancel_tasks()
        for record in (*self.init_records, *self.records):
            if record.name in self.processes:
                self.event("Normal", "Killing", f"Stopping container {record.name}")
        await self.kill_processes(grace)
        self.stopped = True
        await self.node.delete_now(self.pod)

    def _arm_deadline(self) -> None:
        seconds = (self.pod.get("spec") or {}).get("activeDeadlineSeconds")
        if seconds == self._deadline_seconds or self.stopped:
            return
        self._deadline_seconds = seconds
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if isinstance(seconds, int) and seconds > 0:
            left = self._started_at + seconds - time.monotonic()
            self._deadline = asyncio.create_task(
                self._deadline_exceeded(max(left, 0.0)), name=f"pod-deadline {self.key}"
            )

    async def _deadline_exceeded(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.stopped or self.terminating:
            return
        self.final = (
            "Failed",
            "DeadlineExceeded",
            "Pod was active on the node longer than the specified deadline",
        )
        self.event("Normal", "DeadlineExceeded", self.final[2])
        for task in list(self._tasks):
            task.cancel()
        await self.kill_processes(self._probe_grace({}))
        for record in (*self.init_records, *self.records):
            if "terminated" not in record.state:
                record.terminated(137, reason="DeadlineExceeded", started_at="")
        self.stopped = True
        self.changed()

    # ---- status

    def snapshot(self) -> Snapshot:
        reason = message = ""
        if self.final is not None:
            phase, reason, message = self.final
        else:
            phase = pod_phase(
                self.restart_policy, self.initialized, self.init_records, self.records
            )
            if phase in TERMINAL and not self.stopped:
                phase = "Running" if self.initialized else "Pending"
        return Snapshot(
            phase=phase,
            start_time=self.start_time,
            init_records=self.init_records,
            records=self.records,
            sandbox_ready=self.sandbox_ready,
            initialized=self.initialized,
            reason=reason,
            message=message,
        )

    async def _status_loop(self) -> None:
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            try:
                await self._write_status()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pod %s: status update failed: %s", self.key, exc)
                await asyncio.sleep(1.0)
                self.dirty.set()

    def _base(self) -> Obj | None:
        """The newest version of the pod we know: the cache may not have our last write yet.

        Comparing against an older version could make a needed write look like a no-op.
        """
        cached = self.node.cached(self.key)
        written = self._written
        if cached is None or written is None:
            return cached
        if _version(written) > _version(cached):
            return copy.deepcopy(written)
        return cached

    async def _write_status(self) -> None:
        pod = self._base()
        for _ in range(5):
            if self.terminating or pod is None:
                return
            meta = pod["metadata"]
            if meta.get("uid") != self.uid or meta.get("deletionTimestamp"):
                return  # a status write would end a terminating pod early
            old = pod.get("status") or {}
            new = build_status(old, self.snapshot())
            if new == old:
                return
            body = dict(pod, apiVersion="v1", kind="Pod", status=new)
            try:
                self._written = await self.node.client.update_status(
                    body, field_manager="localcluster-node"
                )
                return
            except Conflict:
                pod = await self.node.fetch("Pod", self.namespace, self.name)
            except NotFound:
                return
        self.dirty.set()


def _version(pod: Obj) -> int:
    """A resourceVersion as a number (the local cluster's are); 0 if it is not one."""
    try:
        return int((pod.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _host_working_dir(working_dir: str, mounts: list[volumes.Mount], default: Path) -> Path:
    """Env mode: `workingDir` on the host (through the mounts); `default` if it is missing."""
    if not working_dir:
        return default
    translated = Path(isolation.translate(working_dir, mounts))
    return translated if translated.is_dir() else default


def _kill_spawned(spawning: asyncio.Future[runtime.Process]) -> None:
    """A process whose start was cancelled half-way must not live on untracked."""
    if not spawning.cancelled() and spawning.exception() is None:
        spawning.result().signal(signal.SIGKILL)
