"""Benchmark the local cluster's API server against kmock's in-memory Kubernetes emulator.

Both servers run as their own processes and are driven by the same client code in this
process, so the figures differ only by what the servers do: the local cluster speaks TLS,
authenticates and fsyncs every write batch to SQLite, while kmock keeps plain dicts in memory.
The figures are printed, never asserted: they are for spotting regressions and trade-offs.

    .venv/bin/python bench/apiserver.py [--creates N] [--watch-changes M] [--only NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import ssl
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import localcluster_process
import psutil  # type: ignore[import-untyped]
from yarl import URL

SERVERS = ("localcluster", "kmock")
NAMESPACE = "default"
COLLECTION = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
REQUEST_TIMEOUT = 30.0  # one request; a stuck server must not stall the run
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
SAMPLE_INTERVAL = 0.05  # RSS sampling period of the server process
MAX_RECORDED_FAILURES = 3
SCRIPT = Path(__file__).resolve()

Obj = dict[str, Any]


# --- the servers under test -------------------------------------------------------------------


@dataclass
class Target:
    """Where and how to reach one running server."""

    name: str
    url: str
    headers: dict[str, str]
    ssl_context: ssl.SSLContext | None
    process: asyncio.subprocess.Process
    log_path: Path
    startup_seconds: float

    def session(self, timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientSession:
        """One keep-alive connection per session, so "N clients" means N connections."""
        connector = aiohttp.TCPConnector(limit=1, ssl=self.ssl_context or True)
        return aiohttp.ClientSession(
            base_url=self.url,
            headers=self.headers,
            connector=connector,
            timeout=timeout or aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
        )


def _require_loopback(url: str) -> None:
    """The benchmark must never send its load anywhere but this machine."""
    host = URL(url).host
    if host not in ("127.0.0.1", "localhost"):
        raise RuntimeError(f"refusing to benchmark a non-loopback server: {url}")


@contextlib.asynccontextmanager
async def run_localcluster(workdir: Path) -> AsyncIterator[Target]:
    """Start `sympozium localcluster` as a user would; it is ready once its kubeconfig exists."""
    async with localcluster_process.running(
        workdir / "localcluster",
        workdir / "localcluster.log",
        start_timeout=START_TIMEOUT,
        stop_timeout=STOP_TIMEOUT,
    ) as cluster:
        yield Target(
            name="localcluster",
            url=cluster.url,
            headers={"Authorization": f"Bearer {cluster.token}"},
            ssl_context=cluster.ssl_context,
            process=cluster.process,
            log_path=cluster.log_path,
            startup_seconds=cluster.startup_seconds,
        )


@contextlib.asynccontextmanager
async def run_kmock(workdir: Path, keep_log: bool) -> AsyncIterator[Target]:
    """Start this script's `--serve-kmock` mode, so kmock gets its own process and CPU like ours."""
    log_path = workdir / "kmock.log"
    started = time.perf_counter()
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            "--serve-kmock",
            *(["--kmock-keep-log"] if keep_log else []),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        try:
            assert process.stdout is not None
            try:
                line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
            except TimeoutError:
                line = b""
            if not line:
                raise RuntimeError(f"kmock did not start (see {log_path})")
            url = str(json.loads(line)["url"])
            _require_loopback(url)
            yield Target(
                name="kmock",
                url=url.rstrip("/"),
                headers={},
                ssl_context=None,
                process=process,
                log_path=log_path,
                startup_seconds=time.perf_counter() - started,
            )
        finally:
            await localcluster_process.stop(process, STOP_TIMEOUT)


async def serve_kmock(keep_log: bool) -> None:
    """The child side of `run_kmock`: an emulator that knows v1 configmaps, until SIGTERM."""
    from kmock import KubernetesEmulator, ResourceInfo, Server

    class Emulator(KubernetesEmulator):
        """Forgets finished requests, as a server would.

        kmock logs every request for test assertions and rescans that log to match each new
        one, so its cost per request grows with all requests served (2000 creates take
        minutes); that measures the test log, not serving objects.
        """

        async def _handle(self, request: Any) -> Any:
            try:
                return await super()._handle(request)
            finally:
                for log in [self._requests, *(p._requests for p in self._payloads)]:
                    with contextlib.suppress(ValueError):
                        log.remove(request)  # kmock's Request compares by identity

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    parent = os.getppid()
    emulator = KubernetesEmulator() if keep_log else Emulator()
    async with emulator, Server(emulator, host="127.0.0.1") as server:
        # Declared resources are what kmock serves in discovery and accepts for list/watch.
        emulator.resources["v1/configmaps"] = ResourceInfo(
            kind="ConfigMap",
            singular="configmap",
            namespaced=True,
            verbs={"create", "get", "list", "watch", "update", "patch", "delete"},
        )
        print(json.dumps({"url": str(server.url)}), flush=True)
        # Also stop if the benchmark died without signalling: an orphan must not linger.
        while not stopping.is_set() and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)


# --- measuring the server process -------------------------------------------------------------


class ProcessMonitor:
    """Samples the server's RSS (with its children) and reads the kernel's high-water mark."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._cpu_start = self._cpu_seconds()
        self.peak_rss = 0

    def _cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def _sample(self) -> None:
        rss = 0
        for proc in [self._process, *self._process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                rss += int(proc.memory_info().rss)
        self.peak_rss = max(self.peak_rss, rss)

    async def run(self) -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                self._sample()
            await asyncio.sleep(SAMPLE_INTERVAL)

    def finish(self) -> tuple[int, float | None]:
        """(peak RSS bytes, CPU seconds used since the monitor started); call before stopping."""
        try:
            self._sample()
            cpu: float | None = self._cpu_seconds() - self._cpu_start
        except psutil.Error:
            cpu = None
        return max(self.peak_rss, localcluster_process.high_water_mark(self._process.pid)), cpu


# --- the workload -----------------------------------------------------------------------------


@dataclass
class Failures:
    """Counts failed requests and keeps the first few verbatim, to report server bugs exactly."""

    count: int = 0
    samples: list[str] = field(default_factory=list)

    def add(self, request: str, detail: str) -> None:
        self.count += 1
        if len(self.samples) < MAX_RECORDED_FAILURES:
            self.samples.append(f"{request} -> {detail[:600]}")


def configmap(name: str, **data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        # kmock files objects under the namespace in the body, not the URL's; ours accepts both.
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": data,
    }


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None for no data, so a missing figure never looks like zero."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


async def _request(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    failures: Failures,
    ok: tuple[int, ...],
    body: Obj | None = None,
) -> Obj | None:
    """One request, fully read; failures are recorded, not raised, so a phase keeps its figures."""
    label = f"{method} {path}" + (f" {json.dumps(body)}" if body is not None else "")
    try:
        async with session.request(method, path, json=body) as response:
            text = await response.text()
            if response.status not in ok:
                failures.add(label, f"HTTP {response.status} {text}")
                return None
            parsed: Obj = json.loads(text)
            return parsed
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        failures.add(label, f"{type(exc).__name__}: {exc}")
        return None


async def _warm_sessions(target: Target, count: int) -> list[aiohttp.ClientSession]:
    """Open and handshake every connection before the clock starts: TLS setup is not throughput."""
    sessions = [target.session() for _ in range(count)]
    scratch = Failures()
    await asyncio.gather(*(_request(s, "GET", "/version", scratch, (200,)) for s in sessions))
    return sessions


async def run_requests(
    target: Target,
    clients: int,
    items: list[str],
    call: Callable[[aiohttp.ClientSession, str, Failures], Awaitable[Obj | None]],
) -> dict[str, Any]:
    """`clients` connections pull items from one shared queue until it is empty."""
    sessions = await _warm_sessions(target, clients)
    pending: Iterator[str] = iter(items)
    latencies: list[float] = []
    failures = Failures()

    async def worker(session: aiohttp.ClientSession) -> None:
        for item in pending:
            began = time.perf_counter()
            if await call(session, item, failures) is not None:
                latencies.append(time.perf_counter() - began)

    try:
        began = time.perf_counter()
        await asyncio.gather(*(worker(s) for s in sessions))
        elapsed = time.perf_counter() - began
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    return {
        "ok": len(latencies),
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed if elapsed > 0 else None,
        "p50_ms": ms(percentile(latencies, 0.50)),
        "p99_ms": ms(percentile(latencies, 0.99)),
        "failures": failures.count,
        "failure_samples": failures.samples,
    }


async def create_one(session: aiohttp.ClientSession, name: str, failures: Failures) -> Obj | None:
    return await _request(session, "POST", COLLECTION, failures, (200, 201), configmap(name, k="v"))


async def get_one(session: aiohttp.ClientSession, name: str, failures: Failures) -> Obj | None:
    obj = await _request(session, "GET", f"{COLLECTION}/{name}", failures, (200,))
    if obj is not None and obj.get("data") != {"k": "v"}:
        failures.add(f"GET {COLLECTION}/{name}", f"unexpected object {json.dumps(obj)}")
        return None
    return obj


@dataclass
class Watcher:
    """One watch stream and what it received of the benchmark's changes."""

    expected: int
    failures: Failures
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    synced: asyncio.Event = field(default_factory=asyncio.Event)  # saw a probe: it is subscribed
    done: asyncio.Event = field(default_factory=asyncio.Event)
    latencies: list[float] = field(default_factory=list)
    last_receipt: float | None = None

    async def run(self, target: Target, params: dict[str, str], limit: float) -> None:
        timeout = aiohttp.ClientTimeout(total=limit, sock_connect=REQUEST_TIMEOUT)
        label = f"GET {COLLECTION}?{'&'.join(f'{k}={v}' for k, v in params.items())}"
        try:
            async with (
                target.session(timeout) as session,
                session.get(COLLECTION, params=params) as response,
            ):
                if response.status != 200:
                    self.failures.add(label, f"HTTP {response.status} {await response.text()}")
                    return
                self.connected.set()
                async for line in response.content:
                    if line.strip():
                        self._receive(label, line)
                self.failures.add(label, "the server ended the watch early")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.failures.add(label, f"{type(exc).__name__}: {exc}")
        finally:
            self.done.set()  # never leave the benchmark waiting on a dead stream

    def _receive(self, label: str, line: bytes) -> None:
        now = time.perf_counter()
        event = json.loads(line)
        obj = event.get("object") or {}
        if event.get("type") == "ERROR":
            self.failures.add(label, f"watch ERROR event {json.dumps(obj)}")
            return
        name = str((obj.get("metadata") or {}).get("name", ""))
        if name.startswith("probe-"):
            self.synced.set()
        elif name.startswith("w-") and event.get("type") == "ADDED":
            # The writer stamped perf_counter() at send time; same process, so the clock is shared.
            try:
                self.latencies.append(now - float(obj["data"]["t"]))
            except (KeyError, TypeError, ValueError):
                self.failures.add(label, f"event without the send time {json.dumps(event)}")
                return
            self.last_receipt = now
            if len(self.latencies) >= self.expected:
                self.done.set()


async def run_watch(target: Target, watchers: int, changes: int, limit: float) -> dict[str, Any]:
    """`watchers` streams from the current resourceVersion while one client makes `changes`."""
    failures = Failures()
    (writer,) = await _warm_sessions(target, 1)
    streams = [Watcher(expected=changes, failures=failures) for _ in range(watchers)]
    tasks: list[asyncio.Task[None]] = []
    try:
        listing = await _request(writer, "GET", f"{COLLECTION}?limit=1", failures, (200,))
        params = {"watch": "true"}
        version = ((listing or {}).get("metadata") or {}).get("resourceVersion")
        if version:
            params["resourceVersion"] = str(version)  # kmock ignores it and replays all objects
        tasks = [asyncio.create_task(w.run(target, params, limit)) for w in streams]
        try:
            await asyncio.wait_for(
                asyncio.gather(*(w.connected.wait() for w in streams)), REQUEST_TIMEOUT
            )
        except TimeoutError:
            raise RuntimeError(f"watchers did not connect: {failures.samples}") from None
        # A 200 does not prove the server already subscribed the stream (kmock sends headers
        # first), so probe until every watcher has seen one: no change of the run is then missed.
        for attempt in range(20):
            await _request(
                writer, "POST", COLLECTION, failures, (200, 201), configmap(f"probe-{attempt}")
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(w.synced.wait() for w in streams)), 0.5)
                break
        else:
            raise RuntimeError("watchers never received a probe object")

        began = time.perf_counter()
        written = 0
        for i in range(changes):
            body = configmap(f"w-{i}", t=repr(time.perf_counter()))
            if await _request(writer, "POST", COLLECTION, failures, (200, 201), body) is not None:
                written += 1
        write_seconds = time.perf_counter() - began
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(w.done.wait() for w in streams)), REQUEST_TIMEOUT
            )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await writer.close()

    latencies = [lat for w in streams for lat in w.latencies]
    receipts = [w.last_receipt for w in streams if w.last_receipt is not None]
    span = max(receipts) - began if receipts else 0.0
    return {
        "written": written,
        "writer_per_second": written / write_seconds if write_seconds > 0 else None,
        "delivered": len(latencies),
        "missed": watchers * written - len(latencies),
        "events_per_second": len(latencies) / span if span > 0 else None,
        "p50_ms": ms(percentile(latencies, 0.50)),
        "p99_ms": ms(percentile(latencies, 0.99)),
        "failures": failures.count,
        "failure_samples": failures.samples,
    }


async def bench_server(target: Target, args: argparse.Namespace, result: dict[str, Any]) -> None:
    """All phases against one server; `result` fills in as they end, so a failure keeps the rest."""
    monitor = ProcessMonitor(target.process.pid)
    sampler = asyncio.create_task(monitor.run())
    client_cpu = time.process_time()  # a saturated client caps both servers' figures alike
    try:
        result["startup_s"] = target.startup_seconds
        names = [f"cm-{i}" for i in range(args.creates)]
        progress(f"{target.name}: {args.creates} creates from {args.clients} clients")
        result["creates"] = await run_requests(target, args.clients, names, create_one)
        progress(f"{target.name}: {args.creates} gets from {args.clients} clients")
        result["gets"] = await run_requests(target, args.clients, names, get_one)
        progress(f"{target.name}: {args.watch_changes} changes to {args.watchers} watchers")
        result["watch"] = await run_watch(target, args.watchers, args.watch_changes, args.timeout)
    finally:
        peak, cpu = monitor.finish()
        result["peak_rss_mib"] = peak / (1024 * 1024)
        result["server_cpu_s"] = cpu
        result["client_cpu_s"] = time.process_time() - client_cpu
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler


def _log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


async def run_all(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    # SIGTERM unwinds like Ctrl-C, so the servers are stopped and the temporary data removed.
    main_task = asyncio.current_task()
    if main_task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    starters: dict[str, Callable[[Path], contextlib.AbstractAsyncContextManager[Target]]] = {
        "localcluster": run_localcluster,
        "kmock": functools.partial(run_kmock, keep_log=args.kmock_keep_log),
    }
    with tempfile.TemporaryDirectory(prefix="bench-apiserver-") as tmp:
        for name in [args.only] if args.only else SERVERS:
            result = results.setdefault(name, {})
            workdir = Path(tmp) / name
            workdir.mkdir()
            log_path: Path | None = None
            deadline = asyncio.timeout(args.timeout)
            try:
                async with deadline, starters[name](workdir) as target:
                    log_path = target.log_path
                    await bench_server(target, args, result)
            except Exception as exc:
                if isinstance(exc, TimeoutError) and deadline.expired():
                    result["error"] = f"did not finish within --timeout {args.timeout:g}s"
                else:
                    result["error"] = f"{type(exc).__name__}: {exc}"
            if "error" in result:
                progress(f"{name}: FAILED {result['error']}")
                tail = _log_tail(log_path or workdir / f"{name}.log")
                if tail:
                    progress(f"{name}: last lines of the server log:\n{tail}")
    return results


# --- reporting --------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _dig(result: dict[str, Any], path: str) -> Any:
    value: Any = result
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def render_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    rows = [
        (f"creates/s ({args.clients} clients)", "creates.per_second", "{:.1f}"),
        ("create p50 ms", "creates.p50_ms", "{:.2f}"),
        ("create p99 ms", "creates.p99_ms", "{:.2f}"),
        (f"gets/s ({args.clients} clients)", "gets.per_second", "{:.1f}"),
        ("get p50 ms", "gets.p50_ms", "{:.2f}"),
        ("get p99 ms", "gets.p99_ms", "{:.2f}"),
        (f"watch events/s ({args.watchers} watchers)", "watch.events_per_second", "{:.1f}"),
        ("watch delivery p50 ms", "watch.p50_ms", "{:.2f}"),
        ("watch delivery p99 ms", "watch.p99_ms", "{:.2f}"),
        ("watch events missed", "watch.missed", "{}"),
        ("writer creates/s (1 client)", "watch.writer_per_second", "{:.1f}"),
        ("failed requests", "", "{}"),
        ("server peak RSS MiB", "peak_rss_mib", "{:.1f}"),
        ("server CPU s", "server_cpu_s", "{:.1f}"),
        ("client CPU s (this process)", "client_cpu_s", "{:.1f}"),
        ("startup s", "startup_s", "{:.2f}"),
    ]
    names = list(results)
    lines = [f"{'workload':<34}" + "".join(f"{n:>14}" for n in names)]
    for label, path, fmt in rows:
        cells = []
        for name in names:
            if path:
                value = _dig(results[name], path)
            else:
                counts = [
                    _dig(results[name], f"{p}.failures") for p in ("creates", "gets", "watch")
                ]
                value = (
                    sum(c for c in counts if c is not None)
                    if any(c is not None for c in counts)
                    else None
                )
            cells.append("-" if value is None else fmt.format(value))
        lines.append(f"{label:<34}" + "".join(f"{c:>14}" for c in cells))
    for name in names:
        if "error" in results[name]:
            lines.append(f"{name}: ERROR {results[name]['error']}")
        for phase in ("creates", "gets", "watch"):
            for sample in _dig(results[name], f"{phase}.failure_samples") or []:
                lines.append(f"{name} {phase} failure: {sample}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--creates", type=int, default=2000, help="objects created, then read back")
    parser.add_argument(
        "--watch-changes", type=int, default=1000, help="changes streamed to the watchers"
    )
    parser.add_argument("--only", choices=SERVERS, help="benchmark just one server")
    parser.add_argument(
        "--clients", type=int, default=4, help="concurrent connections for creates/gets"
    )
    parser.add_argument("--watchers", type=int, default=10, help="concurrent watch streams")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds allowed per server, all phases"
    )
    parser.add_argument(
        "--kmock-keep-log",
        action="store_true",
        help="stock kmock: keep its request log (slows quadratically; use a small --creates)",
    )
    parser.add_argument("--serve-kmock", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_kmock:
        asyncio.run(serve_kmock(args.kmock_keep_log))
        return 0
    try:
        results = asyncio.run(run_all(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        progress("interrupted")
        return 130
    print(render_table(results, args))
    params = {k: getattr(args, k) for k in ("creates", "watch_changes", "clients", "watchers")}
    print(
        json.dumps({"benchmark": "apiserver", "params": params, "results": results}, sort_keys=True)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
