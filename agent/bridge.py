"""The `ipc-bridge` sidecar: the agent pod's `/ipc` files <-> the NATS event bus.

It creates the IPC folders, polls them (os.scandir in a worker thread, ~50 ms), and
publishes each new file's bytes verbatim as the `data` of an envelope with metadata
`{agentRunID, instanceName}`:

| file | topic |
|---|---|
| `output/result.json` | `agent.run.completed` (+ `agent.run.failed` when its status is error) |
| `output/stream-*.json` | `agent.stream.chunk` (a rewrite is published again) |
| `messages/send-*.json` | `channel.message.send` |
| `schedules/schedule-*.json` | `schedule.upsert` |
| `spawn/*.json` | `agent.spawn.request` |
| `tools/exec-request-*.json` | `tool.exec.request` (mirror only) |

It subscribes `sympozium.agent.followup.<run>` (-> `input/followup-<nano>.json`) and
`sympozium.tool.exec.result.<run>` (-> `tools/exec-result-<id|nano>.json`).

Publishes are ordered, retried with backoff until acked (a NATS outage loses nothing),
and carry a `Nats-Msg-Id` so a retry is never stored twice. The bridge exits 0 two
seconds after `output/result.json` appeared once it is published, at once when `/ipc/done`
exists and the result is published, and promptly on SIGTERM (after a bounded flush).
Without an event bus URL it runs all the same and only logs what it would publish.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent import sidecar
from agent.logs import configure_logging, kv
from agent.protocol import DONE_FILE, IPC_DIRS, RESULT_FILE, write_atomic

if TYPE_CHECKING:
    from agent.eventbus import Envelope, EventBus

__all__ = ["add_arguments", "run"]

log = logging.getLogger("sympozium.ipc-bridge")

TOPIC_COMPLETED = "agent.run.completed"
TOPIC_FAILED = "agent.run.failed"
TOPIC_STREAM = "agent.stream.chunk"
TOPIC_MESSAGE = "channel.message.send"
TOPIC_SCHEDULE = "schedule.upsert"
TOPIC_SPAWN = "agent.spawn.request"
TOPIC_EXEC_REQUEST = "tool.exec.request"
TOPIC_FOLLOWUP = "agent.followup"  # + ".<run>"
TOPIC_EXEC_RESULT = "tool.exec.result"  # + ".<run>"

WATCHED_DIRS = ("output", "messages", "schedules", "spawn", "tools")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

Signature = tuple[int, int]  # (mtime_ns, size)


# ---- routing and dedup (pure)


@dataclass(frozen=True)
class Route:
    topic: str
    rewritable: bool = False  # a rewrite (new mtime/size) is published again
    result: bool = False


def route_for(relative: str) -> Route | None:
    """The route of a file `<dir>/<name>` under the IPC root; None when not published."""
    directory, _, name = relative.partition("/")
    if not name or "/" in name or name.startswith(".") or not name.endswith(".json"):
        return None
    if directory == "output":
        if name == "result.json":
            return Route(TOPIC_COMPLETED, result=True)
        if name.startswith("stream-"):
            return Route(TOPIC_STREAM, rewritable=True)
    elif directory == "messages" and name.startswith("send-"):
        return Route(TOPIC_MESSAGE)
    elif directory == "schedules" and name.startswith("schedule-"):
        return Route(TOPIC_SCHEDULE)
    elif directory == "spawn":
        return Route(TOPIC_SPAWN)
    elif directory == "tools" and name.startswith("exec-request-"):
        return Route(TOPIC_EXEC_REQUEST)
    return None


class Dedup:
    """Per-path memory: a file is handled once; a rewrite only for rewritable (stream) files.

    A file that could not be read as JSON was not handled: a later change of it (a writer
    that does not write atomically finishing its write) is looked at again.
    """

    def __init__(self) -> None:
        self._seen: dict[str, Signature] = {}
        self._rejected: set[str] = set()

    def wants(self, relative: str, signature: Signature, rewritable: bool) -> bool:
        previous = self._seen.get(relative)
        if previous is None:
            return True
        if previous == signature:
            return False
        return rewritable or relative in self._rejected

    def handled(self, relative: str, signature: Signature) -> None:
        self._seen[relative] = signature
        self._rejected.discard(relative)

    def rejected(self, relative: str, signature: Signature) -> None:
        self._seen[relative] = signature
        self._rejected.add(relative)


def result_failed(body: bytes) -> bool:
    """Whether a result.json body reports `status: error`."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("status") == "error"


def exec_result_name(data: object, nanos: int) -> str:
    """`exec-result-<id>.json` when the result names a safe id, else `exec-result-<nanos>.json`."""
    if isinstance(data, dict):
        ident = data.get("id")
        if isinstance(ident, str) and _SAFE_ID.match(ident):
            return f"exec-result-{ident}.json"
    return f"exec-result-{nanos}.json"


# ---- filesystem (runs in worker threads)


def _make_dirs(root: Path) -> None:
    for directory in IPC_DIRS:
        (root / directory).mkdir(parents=True, exist_ok=True)


def _scan(root: Path) -> tuple[bool, list[tuple[str, Signature]]]:
    """Whether `done` exists (looked at first), and every routed file with its signature."""
    done = (root / DONE_FILE).exists()
    found: list[tuple[str, Signature]] = []
    for directory in WATCHED_DIRS:
        try:
            entries = os.scandir(root / directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                relative = f"{directory}/{entry.name}"
                if route_for(relative) is None:
                    continue
                try:
                    if not entry.is_file():
                        continue
                    stat = entry.stat()
                except OSError:
                    continue
                found.append((relative, (stat.st_mtime_ns, stat.st_size)))
    return done, found


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


# ---- logging


# ---- publishing


@dataclass(frozen=True)
class Outgoing:
    topic: str
    data: bytes
    path: str
    msg_id: str
    traceparent: str | None
    completes_result: bool = False


class Publisher:
    """Publishes queued events in order, each retried with backoff until acked."""

    def __init__(self, metadata: dict[str, str], enabled: bool) -> None:
        self._metadata = metadata
        self._enabled = enabled
        self._queue: asyncio.Queue[Outgoing] = asyncio.Queue()
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._bus: EventBus | None = None
        self._bus_ready = asyncio.Event()
        self._ensure_stream = False
        self.result_published = asyncio.Event()

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def idle(self) -> bool:
        return self._pending == 0

    def set_bus(self, bus: EventBus) -> None:
        self._bus = bus
        self._bus_ready.set()

    def enqueue(self, item: Outgoing) -> None:
        self._pending += 1
        self._idle.clear()
        self._queue.put_nowait(item)

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            item = await self._queue.get()
            await self._publish(item)
            if item.completes_result:
                self.result_published.set()
            self._pending -= 1
            if self._pending == 0:
                self._idle.set()

    async def _publish(self, item: Outgoing) -> None:
        if not self._enabled:
            log.info(kv("would_publish", topic=item.topic, path=item.path, bytes=len(item.data)))
            return
        if self._bus is None:
            log.info(kv("publish_waiting_for_bus", topic=item.topic, path=item.path))
            await self._bus_ready.wait()
        assert self._bus is not None
        from nats.js.errors import NoStreamResponseError

        attempt = 0
        delay = 0.2
        while True:
            try:
                if self._ensure_stream:
                    await self._bus.ensure_stream(tries=1)
                    self._ensure_stream = False
                seq = await self._bus.publish(
                    item.topic,
                    item.data,
                    self._metadata,
                    traceparent=item.traceparent,
                    msg_id=item.msg_id,
                )
            except ValueError as error:  # not JSON: checked before queueing, never retried
                log.error(kv("publish_dropped", topic=item.topic, path=item.path, error=error))
                return
            except Exception as error:
                attempt += 1
                if isinstance(error, NoStreamResponseError):
                    self._ensure_stream = True  # a server that lost its store
                log.warning(
                    kv(
                        "publish_retry",
                        topic=item.topic,
                        path=item.path,
                        attempt=attempt,
                        delay=f"{delay:.1f}s",
                        error=repr(error),
                    )
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            log.info(
                kv("published", topic=item.topic, path=item.path, seq=seq, attempts=attempt + 1)
            )
            return


# ---- the bridge


class _Nanos:
    """Strictly increasing nanosecond stamps for file names."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = max(time.time_ns(), self._last + 1)
        return self._last


class Bridge:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self._root = root
        self._run_id: str = args.agent_run_id
        self._namespace: str = args.namespace or ""
        self._url: str = args.event_bus_url or ""
        self._traceparent: str | None = args.traceparent or None
        self._poll: float = max(args.poll_interval, 0.01)
        self._exit_delay: float = max(args.exit_delay, 0.0)
        self._flush_timeout: float = max(args.flush_timeout, 0.0)
        metadata = {"agentRunID": self._run_id, "instanceName": args.instance_name or ""}
        self._publisher = Publisher(metadata, enabled=bool(self._url))
        self._dedup = Dedup()
        self._nanos = _Nanos()
        self._bus: EventBus | None = None

    async def serve(self, stop: asyncio.Event) -> int:
        loop = asyncio.get_running_loop()
        tasks = [asyncio.create_task(self._publisher.run(), name="publisher")]
        if self._url:
            tasks.append(asyncio.create_task(self._connect(), name="connect"))
        result_seen_at: float | None = None
        try:
            while not stop.is_set():
                done, found = await asyncio.to_thread(_scan, self._root)
                if await self._handle(found):
                    result_seen_at = loop.time()
                if result_seen_at is not None and self._publisher.result_published.is_set():
                    if self._publisher.idle and done:
                        log.info(kv("exiting", reason="done"))
                        return 0
                    if self._publisher.idle and loop.time() - result_seen_at >= self._exit_delay:
                        log.info(kv("exiting", reason="result"))
                        return 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._poll)
            log.info(kv("terminating", pending=self._publisher.pending))
            _, found = await asyncio.to_thread(_scan, self._root)
            await self._handle(found)
            try:
                await asyncio.wait_for(self._publisher.wait_idle(), self._flush_timeout)
            except TimeoutError:
                log.error(kv("flush_incomplete", unpublished=self._publisher.pending))
            return 0
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._bus is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._bus.close(), 3)

    async def _handle(self, found: list[tuple[str, Signature]]) -> bool:
        """Queue what is new; True when result.json was queued now."""
        queued_result = False
        found.sort(key=lambda item: (item[0] == RESULT_FILE, item[1][0], item[0]))
        for relative, signature in found:
            route = route_for(relative)
            if route is None or not self._dedup.wants(relative, signature, route.rewritable):
                continue
            body = await asyncio.to_thread(_read, self._root / relative)
            if body is None:  # vanished between the scan and the read
                continue
            try:
                parsed = json.loads(body)
            except ValueError as error:
                self._dedup.rejected(relative, signature)
                log.warning(kv("invalid_json", path=relative, error=error))
                continue
            self._dedup.handled(relative, signature)
            base_id = f"{self._namespace}/{self._run_id}/{relative}"
            if route.rewritable:
                base_id += f"@{signature[0]}-{signature[1]}"
            traceparent = self._traceparent
            if route.topic == TOPIC_EXEC_REQUEST and isinstance(parsed, dict):
                meta = parsed.get("_meta")
                if isinstance(meta, dict) and isinstance(meta.get("traceparent"), str):
                    traceparent = meta["traceparent"]
            topics = [route.topic]
            if route.result and result_failed(body):
                topics.append(TOPIC_FAILED)
            for index, topic in enumerate(topics):
                self._publisher.enqueue(
                    Outgoing(
                        topic=topic,
                        data=body,
                        path=relative,
                        msg_id=f"{base_id}#{topic}",
                        traceparent=traceparent,
                        completes_result=route.result and index == len(topics) - 1,
                    )
                )
            log.info(kv("queued", path=relative, topics=",".join(topics)))
            if route.result:
                queued_result = True
        return queued_result

    async def _connect(self) -> None:
        from agent.eventbus import EventBus

        attempt = 0
        while True:
            try:
                bus = await EventBus.connect(
                    self._url, name=f"ipc-bridge-{self._run_id}", ensure_stream=False
                )
                break
            except Exception as error:
                attempt += 1
                log.warning(kv("connect_retry", attempt=attempt, error=repr(error)))
                await asyncio.sleep(min(0.5 * attempt, 5.0))
        self._bus = bus
        log.info(kv("connected", url=self._url))
        try:
            await bus.ensure_stream()
        except Exception as error:  # publishing retries; a missing stream is recreated then
            log.error(kv("stream_ensure_failed", error=repr(error)))
        followup = f"{TOPIC_FOLLOWUP}.{self._run_id}"
        exec_result = f"{TOPIC_EXEC_RESULT}.{self._run_id}"
        while True:
            try:
                await bus.subscribe(followup, self._on_followup)
                await bus.subscribe(exec_result, self._on_exec_result)
                break
            except Exception as error:
                log.warning(kv("subscribe_retry", error=repr(error)))
                await asyncio.sleep(1.0)
        log.info(kv("subscribed", subjects=f"sympozium.{followup},sympozium.{exec_result}"))
        self._publisher.set_bus(bus)

    async def _on_followup(self, envelope: Envelope) -> None:
        path = self._root / "input" / f"followup-{self._nanos.next()}.json"
        await asyncio.to_thread(write_atomic, path, envelope.data_json())
        log.info(kv("followup_written", path=f"input/{path.name}"))

    async def _on_exec_result(self, envelope: Envelope) -> None:
        name = exec_result_name(envelope.data, self._nanos.next())
        path = self._root / "tools" / name
        await asyncio.to_thread(write_atomic, path, envelope.data_json())
        log.info(kv("exec_result_written", path=f"tools/{name}"))


# ---- entry points


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--agent-run-id", default=env("AGENT_RUN_ID", ""), help="the AgentRun (AGENT_RUN_ID)"
    )
    parser.add_argument(
        "--instance-name",
        default=env("INSTANCE_NAME", ""),
        help="the SympoziumInstance (INSTANCE_NAME)",
    )
    parser.add_argument(
        "--namespace",
        default=env("AGENT_NAMESPACE", ""),
        help="the run's namespace (AGENT_NAMESPACE)",
    )
    parser.add_argument(
        "--event-bus-url",
        default=env("EVENT_BUS_URL", ""),
        help="NATS URL (EVENT_BUS_URL); empty: no bus, publishes are only logged",
    )
    sidecar.add_ipc_path_argument(parser)
    parser.add_argument(
        "--traceparent",
        default=env("TRACEPARENT", ""),
        help="W3C traceparent injected into published events (TRACEPARENT)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=env("BRIDGE_POLL_INTERVAL", "0.05"),
        help="seconds between scans of the IPC folders (BRIDGE_POLL_INTERVAL)",
    )
    parser.add_argument(
        "--exit-delay",
        type=float,
        default=env("BRIDGE_EXIT_DELAY", "2"),
        help="seconds to linger after result.json appeared (BRIDGE_EXIT_DELAY)",
    )
    parser.add_argument(
        "--flush-timeout",
        type=float,
        default=env("BRIDGE_FLUSH_TIMEOUT", "5"),
        help="on SIGTERM, seconds to finish pending publishes (BRIDGE_FLUSH_TIMEOUT)",
    )


async def run(args: argparse.Namespace) -> int:
    configure_logging()
    if not args.agent_run_id:
        log.error(kv("bad_config", field="AGENT_RUN_ID", reason="required"))
        return 2
    root = sidecar.ipc_root(args)
    try:
        await asyncio.to_thread(_make_dirs, root)
    except OSError as error:
        log.error(kv("bad_config", field="IPC_PATH", path=root, reason=error))
        return 1
    log.info(
        kv(
            "starting",
            run=args.agent_run_id,
            instance=args.instance_name,
            namespace=args.namespace,
            ipc=root,
            bus=args.event_bus_url or "none",
        )
    )
    return await sidecar.serve_until_signal(Bridge(args, root).serve)


def main(argv: list[str] | None = None) -> int:
    return sidecar.main("sympozium agent ipc-bridge", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
