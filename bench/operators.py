"""Benchmark one operator three ways on the local cluster: our library, kopf, a bare loop.

All three do the same job (`controller/examples/parents.py`): every `Parent` gets one child
ConfigMap (owner reference) and then `status.childName`. Each runs in its own process
against its own fresh `sympozium localcluster`, while this process creates the parents
and watches them, so the figures differ only by what the operators do. A fourth phase
measures the memory of our operator with many ConfigMaps in its cache.
The figures are printed, never asserted: they are for spotting regressions and trade-offs.

    .venv/bin/python bench/operators.py [--parents N] [--cached N] [--only NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import ssl
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import localcluster_process
import psutil  # type: ignore[import-untyped]
from localcluster_process import LocalCluster

if TYPE_CHECKING:
    from controller.client import Client
    from controller.manager import Manager, Options

OPERATORS = ("ours", "kopf", "bare")
PHASES = (*OPERATORS, "rss")
NAMESPACE = "default"
GROUP = "example.sympozium.dev"  # the example's; checked against it when it is loaded
PARENTS = f"/apis/{GROUP}/v1/namespaces/{NAMESPACE}/parents"
ALL_PARENTS = f"/apis/{GROUP}/v1/parents"
CONFIGMAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
REQUEST_TIMEOUT = 30.0  # one request; a stuck server must not stall the run
START_TIMEOUT = 60.0  # a server or an operator becoming ready
STOP_TIMEOUT = 15.0
WATCH_TIMEOUT = 600  # timeoutSeconds asked of the server; the watchers resume after it
SAMPLE_INTERVAL = 0.05  # RSS sampling period of the operator process
SETTLE = 1.0  # seconds after the last reconcile before counting writes and children
MAX_RECORDED_FAILURES = 3
TARGET_VS_KOPF = 5.0  # ours >= 5x kopf's parents/s
TARGET_VS_BARE = 0.8  # ours >= 80% of the bare loop's parents/s
TARGET_RSS_MIB = 150.0  # ours with --cached ConfigMaps in its cache
SCRIPT = Path(__file__).resolve()

Obj = dict[str, Any]
log = logging.getLogger("bench")
_background: set[asyncio.Task[None]] = set()  # keeps fire-and-forget tasks referenced


# --- the library under test -------------------------------------------------------------------


def _example() -> Any:
    """controller/examples/parents.py, the operator under test (its CRD, reconciler, build)."""
    from controller.examples import parents

    if parents.GROUP != GROUP:
        raise RuntimeError(f"the example's API group is {parents.GROUP}, not {GROUP}")
    return parents


# --- connecting -------------------------------------------------------------------------------


@dataclass
class Endpoint:
    """An API server as a kubeconfig describes it: URL, bearer token, CA."""

    url: str
    token: str
    ssl_context: ssl.SSLContext

    @classmethod
    def of(cls, found: localcluster_process.Kubeconfig | LocalCluster) -> Endpoint:
        return cls(found.url, found.token, found.ssl_context)

    def session(self, connections: int, *, streaming: bool = False) -> aiohttp.ClientSession:
        """`connections` keep-alive connections; a streaming session has no overall timeout."""
        timeout = (
            aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT)
            if streaming
            else aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        )
        return aiohttp.ClientSession(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            connector=aiohttp.TCPConnector(limit=connections, ssl=self.ssl_context),
            timeout=timeout,
        )


@dataclass
class Failures:
    """Counts failed requests and keeps the first few verbatim, to report bugs exactly."""

    count: int = 0
    samples: list[str] = field(default_factory=list)

    def add(self, request: str, detail: str) -> None:
        self.count += 1
        if len(self.samples) < MAX_RECORDED_FAILURES:
            self.samples.append(f"{request} -> {detail[:600]}")


async def _request(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    failures: Failures,
    ok: tuple[int, ...],
    body: Obj | None = None,
    content_type: str = "application/json",
) -> Obj | None:
    """One request, fully read; failures are recorded, not raised, so a phase keeps its figures."""
    label = f"{method} {path}"
    data = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": content_type}
    try:
        async with session.request(
            method,
            path,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
        ) as response:
            text = await response.text()
            if response.status not in ok:
                failures.add(label, f"HTTP {response.status} {text}")
                return None
            parsed: Obj = json.loads(text)
            return parsed
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        failures.add(label, f"{type(exc).__name__}: {exc}")
        return None


async def follow(
    session: aiohttp.ClientSession,
    path: str,
    on_event: Callable[[str, Obj], None],
    failures: Failures,
    resource_version: str = "",
) -> None:
    """Lists `path` (unless given a resourceVersion), then watches it until cancelled.

    Resumes from the last resourceVersion when the server ends a stream, and relists on
    410 Gone; listed objects are reported as `LISTED` events.
    """
    version = resource_version
    while True:
        if not version:
            listing = await _request(session, "GET", path, failures, (200,))
            if listing is None:
                await asyncio.sleep(0.5)
                continue
            for item in listing.get("items") or []:
                on_event("LISTED", item)
            version = str(listing["metadata"]["resourceVersion"])
        params = {
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_TIMEOUT),
        }
        label = f"GET {path}?watch=true"
        try:
            async with session.get(path, params=params) as response:
                if response.status == 410:
                    version = ""
                    continue
                if response.status != 200:
                    failures.add(label, f"HTTP {response.status} {await response.text()}")
                    await asyncio.sleep(0.5)
                    continue
                async for line in response.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind = str(event.get("type", ""))
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") != 410:
                            failures.add(label, f"watch ERROR event {json.dumps(obj)}")
                        version = ""
                        break
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    if kind != "BOOKMARK":
                        on_event(kind, obj)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            failures.add(label, f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.5)


def parent_body(name: str) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Parent",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"message": f"hello from {name}"},
    }


def child_name(parent_name: str) -> str:
    return f"{parent_name}-child"  # what the example operator names it


# --- the operators under test (each runs as `--run-operator NAME` in its own process) ---------


def _report(**figures: Any) -> None:
    """An operator process writes two JSON lines to stdout: once ready, and as it exits
    (`calls`: how many times it ran its reconcile or handler)."""
    print(json.dumps(figures), flush=True)


def _reconciles(manager: Manager) -> int:
    """Reconciles our controller ran, from its Prometheus registry."""
    total = 0.0
    for metric in manager.registry.collect():
        for sample in metric.samples:
            if sample.name == "controller_runtime_reconcile_total":
                total += sample.value
    return int(total)


def _own_rss() -> int:
    return int(psutil.Process().memory_info().rss)


def _stop_event() -> asyncio.Event:
    """Set on SIGTERM/SIGINT, or when the benchmark that started us is gone (no orphans)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    parent = os.getppid()

    async def orphan_watch() -> None:
        while not stop.is_set() and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        stop.set()

    task = asyncio.create_task(orphan_watch())
    _background.add(task)
    task.add_done_callback(_background.discard)
    return stop


async def _until_stopped(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    """Waits for `stop` (or `task` ending on its own, whose error then propagates)."""
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({stopper, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def build_parents_operator(client: Client, options: Options, workers: int) -> Manager:
    """`parents.build` with another worker count: the same controller and reconciler."""
    from controller import GENERATION_CHANGED
    from controller.manager import Manager

    parents = _example()
    if workers == 4:
        built: Manager = await parents.build(client, options)  # the example as it ships
        return built
    manager = Manager(client, options)
    await (
        manager.controller("parents")
        .for_(parents.PARENT, GENERATION_CHANGED)
        .owns(parents.CONFIGMAP)
        .with_workers(workers)
        .complete(parents.ParentReconciler(client, manager.cache))
    )
    return manager


async def serve_ours(kubeconfig: Path, workers: int) -> None:
    """Our library: the example operator, ready once its informers have synced."""
    from controller.client import Client
    from controller.manager import Options

    stop = _stop_event()
    client = await Client.connect(kubeconfig=str(kubeconfig))
    try:
        manager = await build_parents_operator(client, Options(health_port=None), workers)
        task = asyncio.create_task(manager.run())
        if not await manager.informers.wait_for_cache_sync(START_TIMEOUT):
            raise RuntimeError("the informers did not sync")
        _report(ready=True)
        await _until_stopped(stop, task)
        _report(calls=_reconciles(manager))
    finally:
        await client.close()


async def serve_kopf(kubeconfig: Path) -> None:
    """kopf doing the same: an on.create handler makes the child, then sets status.childName.

    kopf logs in through its default login handlers, which read $KUBECONFIG (set by the
    benchmark). kopf brings no API client for handlers, so the child is POSTed with plain
    aiohttp, like the bare loop does: kopf's figure is its framework, not a client library.
    """
    import kopf

    stop = _stop_event()
    endpoint = Endpoint.of(localcluster_process.read_kubeconfig(kubeconfig))
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # no Events per handled object
    settings.watching.server_timeout = WATCH_TIMEOUT
    settings.watching.client_timeout = WATCH_TIMEOUT + 60
    settings.watching.connect_timeout = REQUEST_TIMEOUT
    settings.networking.request_timeout = REQUEST_TIMEOUT
    calls = 0

    async with endpoint.session(100) as session:
        # kopf's default registry: it brings the default login handlers ($KUBECONFIG).
        @kopf.on.create(GROUP, "v1", "parents")
        async def create_child(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
            nonlocal calls
            calls += 1
            name = str(body.metadata.name)
            child: Obj = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": child_name(name)},
                "data": {"message": str(body.spec.get("message", ""))},
            }
            kopf.adopt(child, owner=body)  # owner reference, namespace (and the owner's labels)
            path = f"/api/v1/namespaces/{body.metadata.namespace}/configmaps"
            async with session.post(path, json=child) as response:
                if response.status not in (200, 201, 409):
                    text = await response.text()
                    raise kopf.TemporaryError(f"HTTP {response.status} {text}", delay=1)
            patch.status["childName"] = child_name(name)

        ready = asyncio.Event()
        task = asyncio.create_task(
            kopf.operator(
                settings=settings,
                standalone=True,
                clusterwide=True,
                ready_flag=ready,
                stop_flag=stop,
            )
        )
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({waiter, task}, timeout=START_TIMEOUT, return_when="FIRST_COMPLETED")
        waiter.cancel()
        if not ready.is_set():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise RuntimeError("kopf did not become ready")
        _report(ready=True)
        await _until_stopped(stop, task)
        _report(calls=calls)


async def serve_bare(kubeconfig: Path, concurrency: int) -> None:
    """No library: list+watch parents, POST the child, merge-PATCH the status; N in flight."""
    stop = _stop_event()
    endpoint = Endpoint.of(localcluster_process.read_kubeconfig(kubeconfig))
    failures = Failures()
    queue: asyncio.Queue[Obj] = asyncio.Queue()
    taken: set[tuple[str, str]] = set()
    calls = 0

    def offer(kind: str, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        if kind == "DELETED" or (obj.get("status") or {}).get("childName") or key in taken:
            return
        taken.add(key)
        queue.put_nowait(obj)

    async def handle(session: aiohttp.ClientSession, parent: Obj) -> bool:
        nonlocal calls
        calls += 1
        meta = parent["metadata"]
        name, namespace = str(meta["name"]), str(meta["namespace"])
        child: Obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": child_name(name),
                "namespace": namespace,
                "ownerReferences": [
                    {
                        "apiVersion": parent["apiVersion"],
                        "kind": parent["kind"],
                        "name": name,
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "data": {"message": str((parent.get("spec") or {}).get("message", ""))},
        }
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        if await _request(session, "POST", path, failures, (200, 201, 409), child) is None:
            return False
        status = {"status": {"childName": child_name(name)}}
        path = f"/apis/{GROUP}/v1/namespaces/{namespace}/parents/{name}/status"
        merge = "application/merge-patch+json"
        return await _request(session, "PATCH", path, failures, (200,), status, merge) is not None

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            parent = await queue.get()
            for attempt in range(5):
                if await handle(session, parent):
                    break
                log.error(
                    "handling %s failed (attempt %d); %d failed requests so far, the first: %s",
                    parent["metadata"]["name"],
                    attempt + 1,
                    failures.count,
                    failures.samples[:1],
                )
                await asyncio.sleep(0.2 * 2**attempt)

    async with endpoint.session(concurrency) as session, endpoint.session(1, streaming=True) as w:
        listing = await _request(w, "GET", ALL_PARENTS, failures, (200,))
        if listing is None:
            raise RuntimeError(f"cannot list parents: {failures.samples}")
        for item in listing.get("items") or []:
            offer("LISTED", item)
        version = str(listing["metadata"]["resourceVersion"])
        tasks = [asyncio.create_task(worker(session)) for _ in range(concurrency)]
        tasks.append(asyncio.create_task(follow(w, ALL_PARENTS, offer, failures, version)))
        _report(ready=True)
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        _report(calls=calls)


async def serve_cache(kubeconfig: Path) -> None:
    """Our example operator with every ConfigMap of the cluster in its (owns) informer."""
    from controller.client import Client
    from controller.manager import Options

    stop = _stop_event()
    client = await Client.connect(kubeconfig=str(kubeconfig))
    try:
        manager: Manager = await _example().build(client, Options(health_port=None))
        gc.collect()
        baseline = _own_rss()
        began = time.perf_counter()
        task = asyncio.create_task(manager.run())
        if not await manager.informers.wait_for_cache_sync(START_TIMEOUT):
            raise RuntimeError("the informers did not sync")
        sync_seconds = time.perf_counter() - began
        synced = _own_rss()
        gc.collect()
        _report(
            ready=True,
            baseline_rss=baseline,
            synced_rss=synced,
            collected_rss=_own_rss(),
            sync_seconds=sync_seconds,
            cached={i.name: len(i.store) for i in manager.informers.informers},
        )
        await _until_stopped(stop, task)
    finally:
        await client.close()


def run_operator(args: argparse.Namespace) -> int:
    """The child side: `--run-operator NAME --kubeconfig PATH`; logs go to stderr."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    kubeconfig = Path(args.kubeconfig)
    servers = {
        "ours": lambda: serve_ours(kubeconfig, args.workers),
        "kopf": lambda: serve_kopf(kubeconfig),
        "bare": lambda: serve_bare(kubeconfig, args.workers),
        "cache": lambda: serve_cache(kubeconfig),
    }
    asyncio.run(servers[args.run_operator]())
    return 0


# --- processes: the local cluster and the operators -------------------------------------------


@dataclass
class Operator:
    """One running operator process, what it announced when ready, and (once it has been
    stopped) what it reported as it exited."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    announced: Obj
    final: Obj = field(default_factory=dict)


@contextlib.asynccontextmanager
async def run_operator_process(
    name: str, cluster: LocalCluster, workdir: Path, workers: int
) -> AsyncIterator[Operator]:
    """This script's `--run-operator NAME` as a child process, once it says it is ready."""
    log_path = workdir / f"{name}.log"
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig))  # kopf's login reads it
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            "--run-operator",
            name,
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--workers",
            str(workers),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            env=env,
        )
        try:
            assert process.stdout is not None
            try:
                line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
            except TimeoutError:
                line = b""
            if not line:
                raise RuntimeError(f"operator {name} did not start (see {log_path})")
            operator = Operator(name, process, log_path, json.loads(line))
            yield operator
        finally:
            await localcluster_process.stop(process, STOP_TIMEOUT)
        with contextlib.suppress(TimeoutError, ValueError):
            rest = await asyncio.wait_for(process.stdout.read(), STOP_TIMEOUT)
            for last in rest.splitlines()[-1:]:
                operator.final = json.loads(last)


class ProcessMonitor:
    """Samples a process's RSS and reads the kernel's high-water mark; counts its CPU."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._cpu_start = self._cpu_seconds()
        self.peak_rss = 0
        self._task: asyncio.Task[None] | None = None

    def _cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        return int(self._process.memory_info().rss)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                self.peak_rss = max(self.peak_rss, self.rss())
            await asyncio.sleep(SAMPLE_INTERVAL)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def finish(self) -> tuple[float, float | None]:
        """(peak RSS MiB, CPU seconds since the monitor started); call before stopping it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            self.peak_rss = max(
                self.peak_rss, self.rss(), localcluster_process.high_water_mark(self._process.pid)
            )
            cpu: float | None = self._cpu_seconds() - self._cpu_start
        except psutil.Error:
            cpu = None
        return self.peak_rss / (1024 * 1024), cpu


# --- the workload -----------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no data, so a missing figure never looks like zero."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


class ReconcileWatcher:
    """Watches the parents and stamps when each one's status.childName first appears."""

    def __init__(self, failures: Failures) -> None:
        self.failures = failures
        self.reconciled: dict[str, float] = {}

    def on_event(self, kind: str, obj: Obj) -> None:
        now = time.perf_counter()
        name = str((obj.get("metadata") or {}).get("name", ""))
        found = (obj.get("status") or {}).get("childName")
        if found and name not in self.reconciled:
            self.reconciled[name] = now
            if found != child_name(name):
                self.failures.add(f"{kind} parent {name}", f"status.childName is {found!r}")

    async def wait_for(
        self, names: list[str], limit: float, operator: asyncio.subprocess.Process
    ) -> bool:
        """True once every name is reconciled; False after `limit` seconds or if the
        operator process exits."""
        deadline = time.perf_counter() + limit
        pending = set(names)
        while True:
            pending.difference_update(self.reconciled.keys() & pending)
            if not pending:
                return True
            if time.perf_counter() > deadline or operator.returncode is not None:
                return False
            await asyncio.sleep(0.05)


async def install_crd(endpoint: Endpoint) -> None:
    """The example's CRD, served once a list of parents answers 200."""
    failures = Failures()
    async with endpoint.session(1) as session:
        crd = _example().CRD
        if await _request(session, "POST", CRDS, failures, (200, 201, 409), crd) is None:
            raise RuntimeError(f"cannot create the CRD: {failures.samples}")
        deadline = time.perf_counter() + START_TIMEOUT
        while await _request(session, "GET", f"{PARENTS}?limit=1", failures, (200,)) is None:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the CRD is not served: {failures.samples}")
            await asyncio.sleep(0.1)


async def create_objects(
    endpoint: Endpoint,
    clients: int,
    bodies: list[Obj],
    path: str,
    created: dict[str, float] | None = None,
) -> dict[str, Any]:
    """`clients` connections POST the bodies from one shared queue; `created` gets each
    object's response time (perf_counter)."""
    sessions = [endpoint.session(1) for _ in range(clients)]
    failures = Failures()
    scratch = Failures()
    # Open and handshake every connection first: TLS setup is not throughput.
    await asyncio.gather(*(_request(s, "GET", "/version", scratch, (200,)) for s in sessions))
    pending: Iterator[Obj] = iter(bodies)
    done: dict[str, float] = {} if created is None else created

    async def creator(session: aiohttp.ClientSession) -> None:
        for body in pending:
            if await _request(session, "POST", path, failures, (200, 201), body) is not None:
                done[body["metadata"]["name"]] = time.perf_counter()

    try:
        began = time.perf_counter()
        await asyncio.gather(*(creator(s) for s in sessions))
        elapsed = time.perf_counter() - began
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    return {
        "began": began,
        "created": len(bodies) - failures.count,
        "per_second": (len(bodies) - failures.count) / elapsed if elapsed > 0 else None,
        "failures": failures.count,
        "failure_samples": failures.samples,
    }


async def list_all(session: aiohttp.ClientSession, path: str, failures: Failures) -> list[Obj]:
    items: list[Obj] = []
    token = ""
    while True:
        query = f"?limit=500&continue={token}" if token else "?limit=500"
        page = await _request(session, "GET", path + query, failures, (200,))
        if page is None:
            return items
        items += page.get("items") or []
        token = str((page.get("metadata") or {}).get("continue") or "")
        if not token:
            return items


async def _resource_version(endpoint: Endpoint, failures: Failures) -> int | None:
    """The server's latest resourceVersion: one counter, advanced by every write."""
    async with endpoint.session(1) as session:
        listing = await _request(session, "GET", f"{PARENTS}?limit=1", failures, (200,))
    try:
        return int(listing["metadata"]["resourceVersion"]) if listing else None
    except (KeyError, TypeError, ValueError):
        return None


def _log_errors(path: Path) -> tuple[int, list[str]]:
    """ERROR/CRITICAL log lines and tracebacks an operator wrote, and the first few of them."""
    count, samples = 0, list[str]()
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"):
                count += 1
                if len(samples) < MAX_RECORDED_FAILURES:
                    samples.append(line[:600])
    return count, samples


async def bench_operator(
    name: str, cluster: LocalCluster, workdir: Path, args: argparse.Namespace, result: Obj
) -> None:
    """Install the CRD, start the operator, create the parents, wait until all are reconciled."""
    endpoint = Endpoint.of(cluster)
    await install_crd(endpoint)
    failures = Failures()  # the benchmark's own watch, and what it verifies
    watcher = ReconcileWatcher(failures)
    watch_session = endpoint.session(1, streaming=True)
    watch_task: asyncio.Task[None] | None = None
    operator_log: Path | None = None
    try:
        async with endpoint.session(1) as session:
            listing = await _request(session, "GET", PARENTS, failures, (200,))
        if listing is None:
            raise RuntimeError(f"cannot list parents: {failures.samples}")
        version = str(listing["metadata"]["resourceVersion"])
        watch_task = asyncio.create_task(
            follow(watch_session, PARENTS, watcher.on_event, failures, version)
        )
        progress(f"{name}: starting the operator")
        async with run_operator_process(name, cluster, workdir, args.workers) as operator:
            operator_log = operator.log_path
            # One parent per creator first: it proves the operator and the watch work end to
            # end and warms every connection; the clock starts after.
            warmup = [f"warmup-{i}" for i in range(args.clients)]
            await create_objects(endpoint, args.clients, [parent_body(n) for n in warmup], PARENTS)
            if not await watcher.wait_for(warmup, START_TIMEOUT, operator.process):
                raise RuntimeError(f"{name} did not reconcile the warm-up parents")
            writes_before = await _resource_version(endpoint, failures)
            monitor = ProcessMonitor(operator.process.pid)
            server = ProcessMonitor(cluster.process.pid)
            monitor.start()
            load_cpu = time.process_time()
            names = [f"p-{i:05d}" for i in range(args.parents)]
            created: dict[str, float] = {}
            progress(f"{name}: creating {args.parents} parents from {args.clients} clients")
            creates = await create_objects(
                endpoint, args.clients, [parent_body(n) for n in names], PARENTS, created
            )
            result["creates"] = creates
            all_done = await watcher.wait_for(list(created), args.timeout, operator.process)
            result["operator_peak_rss_mib"], result["operator_cpu_s"] = await monitor.finish()
            result["server_cpu_s"] = (await server.finish())[1]
            result["load_cpu_s"] = time.process_time() - load_cpu
            await asyncio.sleep(SETTLE)  # writes an operator makes after the status count too
            writes_after = await _resource_version(endpoint, failures)
            async with endpoint.session(1) as session:
                configmaps = await list_all(session, CONFIGMAPS, failures)
            exit_code = operator.process.returncode
        calls = operator.final.get("calls")
        reconciled = {n: watcher.reconciled[n] for n in names if n in watcher.reconciled}
        latencies = [max(0.0, reconciled[n] - created[n]) for n in reconciled if n in created]
        children = {
            str(cm["metadata"]["name"])
            for cm in configmaps
            if any(
                ref.get("kind") == "Parent" and ref.get("controller")
                for ref in cm["metadata"].get("ownerReferences") or []
            )
        }
        span = max(reconciled.values()) - creates["began"] if reconciled else 0.0
        result.update(
            {
                "parents": len(names),
                "reconciled": len(reconciled),
                "all_reconciled": all_done,
                "children_missing": sum(child_name(n) not in children for n in names),
                "seconds": span,
                "parents_per_second": len(reconciled) / span if span > 0 else None,
                "p50_ms": ms(percentile(latencies, 0.50)),
                "p99_ms": ms(percentile(latencies, 0.99)),
                "max_ms": ms(max(latencies)) if latencies else None,
                "operator_exit_code_early": exit_code,
                # Every write takes the next resourceVersion; the parent's create is one.
                "writes_per_parent": (
                    (writes_after - writes_before) / len(names)
                    if writes_after is not None and writes_before is not None and names
                    else None
                ),
                "calls_per_parent": (
                    calls / (len(names) + len(warmup)) if isinstance(calls, int) else None
                ),
            }
        )
    finally:
        if watch_task is not None:
            watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch_task
        await watch_session.close()
        result["failures"] = failures.count
        result["failure_samples"] = failures.samples
        if operator_log is not None:
            result["operator_log_errors"], result["operator_log_samples"] = _log_errors(
                operator_log
            )


async def bench_rss(
    cluster: LocalCluster, workdir: Path, args: argparse.Namespace, result: Obj
) -> None:
    """Create --cached ConfigMaps, then start our operator and read its RSS once synced."""
    endpoint = Endpoint.of(cluster)
    await install_crd(endpoint)
    progress(f"rss: creating {args.cached} ConfigMaps from {args.cache_clients} clients")
    bodies = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"cached-{i:05d}", "namespace": NAMESPACE},
            "data": {"message": "hello", "index": str(i)},
        }
        for i in range(args.cached)
    ]
    result["creates"] = await create_objects(endpoint, args.cache_clients, bodies, CONFIGMAPS)
    progress("rss: starting our operator and waiting for its cache to sync")
    async with run_operator_process("cache", cluster, workdir, args.workers) as operator:
        announced = operator.announced
        monitor = ProcessMonitor(operator.process.pid)
        mib = 1024 * 1024
        result.update(
            {
                "baseline_rss_mib": announced["baseline_rss"] / mib,
                "synced_rss_mib": announced["synced_rss"] / mib,
                "collected_rss_mib": announced["collected_rss"] / mib,
                "sync_s": announced["sync_seconds"],
                "cached": announced["cached"],
                "rss_now_mib": monitor.rss() / mib,  # read from outside, as a check
                "peak_rss_mib": (await monitor.finish())[0],
            }
        )
    result["operator_log_errors"], result["operator_log_samples"] = _log_errors(operator.log_path)


def _log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


async def run_all(args: argparse.Namespace) -> dict[str, Obj]:
    results: dict[str, Obj] = {}
    # SIGTERM unwinds like Ctrl-C, so the processes are stopped and the temporary data removed.
    main_task = asyncio.current_task()
    if main_task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    with tempfile.TemporaryDirectory(prefix="bench-controller-") as tmp:
        for name in [args.only] if args.only else PHASES:
            result = results.setdefault(name, {})
            workdir = Path(tmp) / name
            workdir.mkdir()
            deadline = asyncio.timeout(args.timeout + 2 * START_TIMEOUT)
            began = time.perf_counter()
            try:
                async with (
                    deadline,
                    localcluster_process.running(
                        workdir / "localcluster",
                        workdir / "localcluster.log",
                        start_timeout=START_TIMEOUT,
                        stop_timeout=STOP_TIMEOUT,
                    ) as cluster,
                ):
                    result["server_startup_s"] = cluster.startup_seconds
                    if name == "rss":
                        await bench_rss(cluster, workdir, args, result)
                    else:
                        await bench_operator(name, cluster, workdir, args, result)
            except Exception as exc:
                if isinstance(exc, TimeoutError) and deadline.expired():
                    result["error"] = "did not finish in time (see --timeout)"
                else:
                    result["error"] = f"{type(exc).__name__}: {exc}"
            result["phase_s"] = time.perf_counter() - began
            if "error" in result:
                progress(f"{name}: FAILED {result['error']}")
                for log_name in (f"{'cache' if name == 'rss' else name}.log", "localcluster.log"):
                    tail = _log_tail(workdir / log_name)
                    if tail:
                        progress(f"{name}: last lines of {log_name}:\n{tail}")
    return results


# --- reporting --------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return float(a) / float(b)
    return None


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def render_table(results: dict[str, Obj], args: argparse.Namespace) -> str:
    lines: list[str] = []
    shown = [n for n in OPERATORS if n in results]
    if shown:
        rows = [
            ("parents/s", "parents_per_second", "{:.1f}"),
            ("reconcile latency p50 ms", "p50_ms", "{:.1f}"),
            ("reconcile latency p99 ms", "p99_ms", "{:.1f}"),
            ("reconcile latency max ms", "max_ms", "{:.1f}"),
            ("parents reconciled", "reconciled", "{}"),
            ("children missing", "children_missing", "{}"),
            ("server writes per parent", "writes_per_parent", "{:.2f}"),
            ("reconciles/handler calls per parent", "calls_per_parent", "{:.2f}"),
            (f"load creates/s ({args.clients} clients)", "creates.per_second", "{:.1f}"),
            ("operator CPU s", "operator_cpu_s", "{:.1f}"),
            ("operator peak RSS MiB", "operator_peak_rss_mib", "{:.1f}"),
            ("server CPU s", "server_cpu_s", "{:.1f}"),
            ("load generator CPU s", "load_cpu_s", "{:.1f}"),
            ("operator log errors", "operator_log_errors", "{}"),
            ("failed requests/checks (bench)", "failures", "{}"),
        ]
        header = f"{'operator (' + str(args.parents) + ' parents)':<38}"
        header += "".join(f"{n:>11}" for n in shown) + f"{'ours/kopf':>11}{'ours/bare':>11}"
        lines.append(header)
        for label, path, fmt in rows:
            values = {n: _dig(results[n], path) for n in shown}
            cells = "".join(f"{_cell(values[n], fmt):>11}" for n in shown)
            for other in ("kopf", "bare"):
                cells += f"{_cell(_ratio(values.get('ours'), values.get(other)), '{:.2f}'):>11}"
            lines.append(f"{label:<38}{cells}")
        ours = _dig(results.get("ours", {}), "parents_per_second")
        vs_kopf = _ratio(ours, _dig(results.get("kopf", {}), "parents_per_second"))
        vs_bare = _ratio(ours, _dig(results.get("bare", {}), "parents_per_second"))
        lines.append(
            f"target ours >= {TARGET_VS_KOPF:g}x kopf parents/s: "
            + ("-" if vs_kopf is None else f"{vs_kopf:.2f}x " + _verdict(vs_kopf >= TARGET_VS_KOPF))
        )
        lines.append(
            f"target ours >= {TARGET_VS_BARE:.0%} of bare parents/s: "
            + ("-" if vs_bare is None else f"{vs_bare:.0%} " + _verdict(vs_bare >= TARGET_VS_BARE))
        )
    if "rss" in results:
        rss = results["rss"]
        cached = rss.get("cached") or {}
        lines.append("")
        lines.append(f"our operator with {args.cached} ConfigMaps cached")
        lines.append(
            f"  ConfigMaps created/s ({args.cache_clients} clients): "
            f"{_cell(_dig(rss, 'creates.per_second'), '{:.1f}')}"
        )
        lines.append(f"  objects in its caches: {json.dumps(cached)}")
        lines.append(f"  cache sync s: {_cell(rss.get('sync_s'), '{:.2f}')}")
        lines.append(f"  RSS before start MiB: {_cell(rss.get('baseline_rss_mib'), '{:.1f}')}")
        synced = rss.get("synced_rss_mib")
        lines.append(
            f"  RSS after cache sync MiB: {_cell(synced, '{:.1f}')}   target < {TARGET_RSS_MIB:g}: "
            + ("-" if synced is None else _verdict(synced < TARGET_RSS_MIB))
        )
        lines.append(
            f"  RSS after gc.collect() MiB: {_cell(rss.get('collected_rss_mib'), '{:.1f}')}"
        )
        lines.append(f"  peak RSS MiB (VmHWM): {_cell(rss.get('peak_rss_mib'), '{:.1f}')}")
        lines.append(f"  operator log errors: {_cell(rss.get('operator_log_errors'), '{}')}")
    for name, result in results.items():
        if "error" in result:
            lines.append(f"{name}: ERROR {result['error']}")
        for sample in result.get("failure_samples") or []:
            lines.append(f"{name} failure: {sample}")
        for sample in _dig(result, "creates.failure_samples") or []:
            lines.append(f"{name} create failure: {sample}")
        for sample in result.get("operator_log_samples") or []:
            lines.append(f"{name} operator log: {sample}")
    return "\n".join(lines)


def _verdict(met: bool) -> str:
    return "(met)" if met else "(MISSED)"


def _dig(result: Obj, path: str) -> Any:
    value: Any = result
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parents", type=int, default=2000, help="parents created per operator")
    parser.add_argument("--cached", type=int, default=10000, help="ConfigMaps for the RSS phase")
    parser.add_argument("--only", choices=PHASES, help="run just one phase")
    parser.add_argument("--clients", type=int, default=4, help="concurrent creators of parents")
    parser.add_argument(
        "--cache-clients", type=int, default=8, help="concurrent creators of the cached ConfigMaps"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=8,
        help="our controller's workers, and the bare loop's requests in flight",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=240.0,
        help="seconds allowed for all parents to be reconciled, per operator",
    )
    parser.add_argument("--run-operator", choices=(*OPERATORS, "cache"), help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_operator:
        return run_operator(args)
    try:
        results = asyncio.run(run_all(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        progress("interrupted")
        return 130
    print(render_table(results, args))
    params = {
        k: getattr(args, k) for k in ("parents", "cached", "clients", "cache_clients", "workers")
    }
    print(
        json.dumps(
            {"benchmark": "controller", "params": params, "results": results},
            sort_keys=True,
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
