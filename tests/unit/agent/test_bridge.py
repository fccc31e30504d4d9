"""The ipc-bridge's routing, dedup and exit rules, in process and without NATS."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path

import pytest

from agent import bridge
from agent.bridge import (
    TOPIC_COMPLETED,
    TOPIC_EXEC_REQUEST,
    TOPIC_MESSAGE,
    TOPIC_SCHEDULE,
    TOPIC_SPAWN,
    TOPIC_STREAM,
    Dedup,
    Route,
    exec_result_name,
    result_failed,
    route_for,
)
from agent.protocol import IPC_DIRS, write_atomic


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("output/result.json", Route(TOPIC_COMPLETED, result=True)),
        ("output/stream-0.json", Route(TOPIC_STREAM, rewritable=True)),
        ("output/stream-12.json", Route(TOPIC_STREAM, rewritable=True)),
        ("messages/send-1700000000.json", Route(TOPIC_MESSAGE)),
        ("schedules/schedule-1700000000.json", Route(TOPIC_SCHEDULE)),
        ("spawn/child.json", Route(TOPIC_SPAWN)),
        ("tools/exec-request-abc.json", Route(TOPIC_EXEC_REQUEST)),
        ("output/status.json", None),
        ("output/result.json.tmp", None),
        ("output/.tmp-x.json", None),
        ("messages/.tmp-send-1.json", None),
        ("messages/other.json", None),
        ("tools/exec-result-abc.json", None),
        ("tools/mcp-request-1.json", None),
        ("input/followup-1.json", None),
        ("input/task.json", None),
        ("spawn/sub/x.json", None),
        ("result.json", None),
    ],
)
def test_route_for(path: str, route: Route | None) -> None:
    assert route_for(path) == route


def test_dedup_handles_a_file_once() -> None:
    dedup = Dedup()
    assert dedup.wants("messages/send-1.json", (10, 5), rewritable=False)
    dedup.handled("messages/send-1.json", (10, 5))
    assert not dedup.wants("messages/send-1.json", (10, 5), rewritable=False)
    assert not dedup.wants("messages/send-1.json", (11, 6), rewritable=False)  # rewrite ignored


def test_dedup_handles_stream_rewrites_again() -> None:
    dedup = Dedup()
    dedup.handled("output/stream-0.json", (10, 5))
    assert not dedup.wants("output/stream-0.json", (10, 5), rewritable=True)
    assert dedup.wants("output/stream-0.json", (11, 5), rewritable=True)
    assert dedup.wants("output/stream-0.json", (10, 7), rewritable=True)


def test_dedup_retries_a_rejected_file_only_when_it_changes() -> None:
    dedup = Dedup()
    dedup.rejected("output/result.json", (10, 3))
    assert not dedup.wants("output/result.json", (10, 3), rewritable=False)
    assert dedup.wants("output/result.json", (12, 40), rewritable=False)
    dedup.handled("output/result.json", (12, 40))
    assert not dedup.wants("output/result.json", (13, 41), rewritable=False)


@pytest.mark.parametrize(
    ("body", "failed"),
    [
        (b'{"status":"error","error":"x"}', True),
        (b'{"status":"success","response":"x"}', False),
        (b"[]", False),
        (b"garbage", False),
    ],
)
def test_result_failed(body: bytes, failed: bool) -> None:
    assert result_failed(body) is failed


def test_exec_result_name() -> None:
    assert exec_result_name({"id": "call_1-a.b"}, 42) == "exec-result-call_1-a.b.json"
    assert exec_result_name({"id": "../../etc/passwd"}, 42) == "exec-result-42.json"
    assert exec_result_name({"id": 7}, 42) == "exec-result-42.json"
    assert exec_result_name(["x"], 42) == "exec-result-42.json"


def test_scan_sees_done_and_only_routed_files(tmp_path: Path) -> None:
    bridge._make_dirs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(IPC_DIRS)
    (tmp_path / "output" / "result.json").write_text("{}")
    (tmp_path / "output" / "notes.txt").write_text("x")
    (tmp_path / "tools" / "exec-result-1.json").write_text("{}")
    (tmp_path / "spawn" / "dir.json").mkdir()
    done, found = bridge._scan(tmp_path)
    assert not done
    assert [path for path, _ in found] == ["output/result.json"]
    (tmp_path / "done").touch()
    assert bridge._scan(tmp_path)[0]


def _args(root: Path, **overrides: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bridge.add_arguments(parser)
    args = parser.parse_args(
        ["--agent-run-id", "run-1", "--instance-name", "inst", "--ipc-path", str(root)]
    )
    args.event_bus_url = ""
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_flags_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_RUN_ID", "from-env")
    monkeypatch.setenv("INSTANCE_NAME", "inst-env")
    monkeypatch.setenv("AGENT_NAMESPACE", "ns")
    monkeypatch.setenv("EVENT_BUS_URL", "nats://nats:4222")
    monkeypatch.setenv("IPC_PATH", "/somewhere")
    monkeypatch.setenv("BRIDGE_EXIT_DELAY", "0.5")
    parser = argparse.ArgumentParser()
    bridge.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.agent_run_id, args.instance_name, args.namespace) == ("from-env", "inst-env", "ns")
    assert (args.event_bus_url, args.ipc_path, args.exit_delay) == (
        "nats://nats:4222",
        "/somewhere",
        0.5,
    )
    assert parser.parse_args(["--agent-run-id", "flag"]).agent_run_id == "flag"


async def test_missing_run_id_is_a_config_error(tmp_path: Path) -> None:
    assert await bridge.run(_args(tmp_path, agent_run_id="")) == 2


async def test_without_a_bus_the_bridge_logs_and_exits_after_the_result(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sympozium.ipc-bridge")
    task = asyncio.create_task(bridge.run(_args(tmp_path, exit_delay=0.2)))
    await asyncio.sleep(0.1)  # files written before or after the start are all handled
    write_atomic(tmp_path / "messages" / "send-1.json", '{"channel":"slack","text":"hi"}')
    write_atomic(tmp_path / "schedules" / "schedule-1.json", "{broken")
    write_atomic(tmp_path / "output" / "result.json", '{"status":"error","error":"boom"}')
    assert await asyncio.wait_for(task, 30) == 0
    would = [r.getMessage() for r in caplog.records if "event=would_publish" in r.getMessage()]
    assert any("topic=channel.message.send" in m for m in would)
    assert any("topic=agent.run.completed" in m for m in would)
    assert any("topic=agent.run.failed" in m for m in would)
    assert not any("schedule.upsert" in m for m in would)
    assert any(
        "event=invalid_json path=schedules/schedule-1.json" in r.getMessage()
        for r in caplog.records
    )


async def test_done_after_the_result_ends_the_linger(tmp_path: Path) -> None:
    # With an hour's linger only the done sentinel can end the run.
    task = asyncio.create_task(bridge.run(_args(tmp_path, exit_delay=3600.0)))
    await asyncio.sleep(0.1)
    write_atomic(tmp_path / "output" / "result.json", json.dumps({"status": "success"}))
    (tmp_path / "done").touch()
    assert await asyncio.wait_for(task, 30) == 0


async def test_done_without_a_result_does_not_end_the_bridge(tmp_path: Path) -> None:
    stop = asyncio.Event()
    (tmp_path / "done").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "done").touch()
    bridge._make_dirs(tmp_path)
    server = bridge.Bridge(_args(tmp_path, exit_delay=0.0), tmp_path)
    task = asyncio.create_task(server.serve(stop))
    for _ in range(10):  # several scans see done, none may end the run
        await asyncio.sleep(0.06)
        assert not task.done()
    stop.set()  # what SIGTERM does
    assert await asyncio.wait_for(task, 30) == 0


async def test_publisher_keeps_order_and_marks_the_result() -> None:
    publisher = bridge.Publisher({"agentRunID": "r"}, enabled=False)
    runner = asyncio.create_task(publisher.run())
    try:
        for index in range(3):
            publisher.enqueue(
                bridge.Outgoing(
                    topic=TOPIC_STREAM,
                    data=b"{}",
                    path=f"output/stream-{index}.json",
                    msg_id=str(index),
                    traceparent=None,
                    completes_result=index == 2,
                )
            )
        assert publisher.pending == 3
        await asyncio.wait_for(publisher.wait_idle(), 30)
        assert publisher.idle
        assert publisher.result_published.is_set()
    finally:
        runner.cancel()
