"""The tool executor's rules: clamping, truncation, claims, and running one command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from agent import executor
from agent.executor import (
    OUTPUT_LIMIT,
    _Limited,
    _scan_and_claim,
    claim,
    clamp_timeout,
    command_line,
    execute,
    request_id,
    truncate,
)
from agent.protocol import ExecRequest


@pytest.mark.parametrize(
    ("given", "expected"),
    [(None, 30), (0, 30), (-5, 30), (1, 1), (30, 30), (120, 120), (121, 120), (10_000, 120)],
)
def test_clamp_timeout(given: int | None, expected: int) -> None:
    assert clamp_timeout(given) == expected


def test_truncate() -> None:
    assert truncate("abc", 5) == "abc"
    assert truncate("x" * 60000) == "x" * OUTPUT_LIMIT
    assert len(truncate("é" * 60000)) == OUTPUT_LIMIT


def test_limited_keeps_characters_not_bytes() -> None:
    sink = _Limited(limit=4)
    for _ in range(10):
        sink.add("é€".encode())  # 2 + 3 bytes
    assert sink.text() == "é€é€"
    ascii_sink = _Limited(limit=3)
    ascii_sink.add(b"abcdefghijklmnop")
    assert ascii_sink.text() == "abc"


@pytest.mark.parametrize(
    ("name", "ident"),
    [
        ("exec-request-abc.json", "abc"),
        ("exec-request-call_1.2.json", "call_1.2"),
        ("exec-request-.json", None),
        ("exec-result-abc.json", None),
        ("exec-request-abc.json.tmp", None),
    ],
)
def test_request_id(name: str, ident: str | None) -> None:
    assert request_id(name) == ident


def test_command_line_joins_args_verbatim() -> None:
    assert command_line(ExecRequest(id="1", command="ls")) == "ls"
    assert command_line(ExecRequest(id="1", command="echo", args=["a b", "$X"])) == "echo a b $X"


def test_claim_is_exclusive(tmp_path: Path) -> None:
    assert claim(tmp_path, "a")
    assert not claim(tmp_path, "a")
    assert claim(tmp_path, "b")
    assert (tmp_path / ".claim-a").is_dir()


def _request(tools: Path, ident: str, body: str, age: float = 0.0) -> Path:
    path = tools / f"exec-request-{ident}.json"
    path.write_text(body)
    if age:
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
    return path


def test_scan_claims_up_to_the_limit_oldest_first(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    for index, age in enumerate([3.0, 5.0, 1.0]):
        _request(tools, f"r{index}", json.dumps({"id": f"r{index}", "command": "true"}), age)
    done, claimed = _scan_and_claim(tools, set(), 2, set())
    assert not done
    assert [c.ident for c in claimed] == ["r1", "r0"]
    # the next scan only finds the one left; claimed ones are never claimed again
    _, claimed = _scan_and_claim(tools, set(), 5, set())
    assert [c.ident for c in claimed] == ["r2"]
    assert _scan_and_claim(tools, set(), 5, set())[1] == []


def test_scan_skips_in_flight_and_stops_at_done(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    _request(tools, "a", json.dumps({"id": "a", "command": "true"}))
    assert _scan_and_claim(tools, {"a"}, 4, set())[1] == []
    (tmp_path / "done").touch()
    assert _scan_and_claim(tools, set(), 4, set()) == (True, [])
    assert not (tools / ".claim-a").exists()


def test_scan_waits_for_a_fresh_half_written_request(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    _request(tools, "fresh", '{"id": "fre')
    _request(tools, "stale", '{"id": "sta', age=60)
    _request(tools, "", "{}")
    unrecoverable: set[str] = set()
    _, claimed = _scan_and_claim(tools, set(), 4, unrecoverable)
    assert [c.ident for c in claimed] == ["stale"]
    assert unrecoverable == {"exec-request-.json"}


async def test_execute_runs_in_the_workdir_with_env_and_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKILL_GREETING", "hello")
    workdir = tmp_path / "new" / "workspace"
    request = ExecRequest(
        id="x",
        command='echo "$SKILL_GREETING" "$(pwd)"; cat; echo err >&2; exit 3',
        work_dir=str(workdir),
        stdin="from stdin",
    )
    result = await execute(request, "x")
    assert result.exit_code == 3
    assert result.stdout == f"hello {workdir}\nfrom stdin"
    assert result.stderr == "err\n"
    assert result.timed_out is None
    assert workdir.is_dir()


async def test_execute_maps_the_workdir_through_the_pod_mounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALCLUSTER_MOUNTS", json.dumps({"/workspace": str(tmp_path)}))
    result = await execute(ExecRequest(id="m", command="pwd", work_dir="/workspace/sub"), "m")
    assert result.stdout.strip() == str(tmp_path / "sub")


async def test_execute_cuts_outputs() -> None:
    request = ExecRequest(
        id="big", command="head -c 200000 /dev/zero | tr '\\0' a; head -c 70000 /dev/zero >&2"
    )
    result = await execute(request, "big")
    assert result.exit_code == 0
    assert result.stdout == "a" * OUTPUT_LIMIT
    assert len(result.stderr) == OUTPUT_LIMIT


async def test_execute_kills_the_process_group_on_timeout(tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    request = ExecRequest(
        id="slow",
        command=f"(sleep 1.5; touch {marker}) & echo started; sleep 60",
        timeout=1,
    )
    result = await execute(request, "slow")
    assert result.exit_code == 124
    assert result.timed_out is True
    assert result.stdout == "started\n"
    assert "timed out after 1s" in result.stderr
    # the background child was in the group: it never gets to touch the marker
    await asyncio.sleep(1.5)
    assert not marker.exists()


def test_flags_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPC_PATH", "/x")
    monkeypatch.setenv("TOOL_EXECUTOR_CONCURRENCY", "7")
    parser = argparse.ArgumentParser()
    executor.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.ipc_path, args.concurrency, args.poll_interval) == ("/x", 7, 0.2)
