"""The tool executor as a real process on a real IPC folder."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.protocol import ExecResult, write_atomic

REPO = Path(__file__).resolve().parents[3]


class ExecutorProcess:
    def __init__(self, ipc: Path, log: Path, **env: str) -> None:
        self.ipc = ipc
        self.log = log
        with log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agent.executor"],
                cwd=REPO,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env={**os.environ, "IPC_PATH": str(ipc), **env},
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_log(self, needle: str, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while needle not in self.text():
            assert self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, f"{needle!r} never logged:\n{self.text()}"
            await asyncio.sleep(0.05)

    async def wait_exit(self, within: float = 60) -> int:
        try:
            return await asyncio.to_thread(self.process.wait, within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the executor did not exit:\n{self.text()}") from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def executors(tmp_path: Path) -> Iterator[list[ExecutorProcess]]:
    started: list[ExecutorProcess] = []
    yield started
    for process in started:
        process.close()


def request(ipc: Path, ident: str, **fields: Any) -> None:
    body = {"id": ident, "workDir": str(ipc.parent / "workspace"), **fields}
    write_atomic(ipc / "tools" / f"exec-request-{ident}.json", json.dumps(body))


async def result_of(ipc: Path, ident: str, within: float = 60) -> ExecResult:
    path = ipc / "tools" / f"exec-result-{ident}.json"
    deadline = time.monotonic() + within
    while not path.exists():
        assert time.monotonic() < deadline, f"no result for {ident}"
        await asyncio.sleep(0.05)
    return ExecResult.model_validate_json(path.read_text())


async def test_runs_a_command_and_writes_its_result(
    tmp_path: Path, executors: list[ExecutorProcess]
) -> None:
    ipc = tmp_path / "ipc"
    runner = ExecutorProcess(ipc, tmp_path / "executor.log", SKILL_TARGET="world")
    executors.append(runner)
    await runner.wait_log("event=starting")
    request(ipc, "c1", command="echo hello", args=["$SKILL_TARGET;", "pwd"], timeout=10)
    result = await result_of(ipc, "c1")
    assert result.exit_code == 0
    assert result.stdout == f"hello world\n{tmp_path / 'workspace'}\n"
    assert result.timed_out is None
    assert not (ipc / "tools" / "exec-request-c1.json").exists()

    write_atomic(ipc / "tools" / "exec-request-bad.json", '{"id": "bad", "timeout": "soon"}')
    bad = await result_of(ipc, "bad")
    assert bad.exit_code == 2
    assert "command" in bad.stderr and "timeout" in bad.stderr
    assert runner.process.poll() is None  # a malformed request never takes it down

    (ipc / "done").touch()
    assert await runner.wait_exit() == 0


async def test_two_executors_run_each_request_exactly_once(
    tmp_path: Path, executors: list[ExecutorProcess]
) -> None:
    ipc = tmp_path / "ipc"
    ledger = tmp_path / "ledger"
    for index in range(2):
        executors.append(ExecutorProcess(ipc, tmp_path / f"executor-{index}.log"))
    for runner in executors:
        await runner.wait_log("event=starting")
    ids = [f"r{index:02d}" for index in range(20)]
    for ident in ids:
        request(ipc, ident, command=f"echo {ident} >> {ledger}; sleep 0.05; echo {ident}")
    results = [await result_of(ipc, ident) for ident in ids]
    assert [r.stdout for r in results] == [f"{ident}\n" for ident in ids]
    assert sorted(ledger.read_text().split()) == ids  # each ran once, none twice
    (ipc / "done").touch()
    assert [await runner.wait_exit() for runner in executors] == [0, 0]
    # both took part, or the race was never run
    assert all("event=exec_done" in runner.text() for runner in executors)


async def test_a_timeout_reports_124(tmp_path: Path, executors: list[ExecutorProcess]) -> None:
    ipc = tmp_path / "ipc"
    runner = ExecutorProcess(ipc, tmp_path / "executor.log")
    executors.append(runner)
    request(ipc, "slow", command="echo begun; sleep 30", timeout=1)
    result = await result_of(ipc, "slow")
    assert (result.exit_code, result.timed_out, result.stdout) == (124, True, "begun\n")
    (ipc / "done").touch()
    assert await runner.wait_exit() == 0


async def test_done_waits_for_the_request_in_flight(
    tmp_path: Path, executors: list[ExecutorProcess]
) -> None:
    ipc = tmp_path / "ipc"
    gate = tmp_path / "gate"
    runner = ExecutorProcess(ipc, tmp_path / "executor.log")
    executors.append(runner)
    request(ipc, "held", command=f"while [ ! -e {gate} ]; do sleep 0.05; done; echo released")
    await runner.wait_log("event=exec_start id=held")
    (ipc / "done").touch()
    await runner.wait_log("event=done_seen")
    assert runner.process.poll() is None
    gate.touch()
    assert await runner.wait_exit() == 0
    assert (await result_of(ipc, "held")).stdout == "released\n"


async def test_sigterm_stops_it_and_reports_the_killed_command(
    tmp_path: Path, executors: list[ExecutorProcess]
) -> None:
    ipc = tmp_path / "ipc"
    runner = ExecutorProcess(ipc, tmp_path / "executor.log")
    executors.append(runner)
    request(ipc, "long", command="sleep 100", timeout=120)
    await runner.wait_log("event=exec_start id=long")
    runner.process.send_signal(signal.SIGTERM)
    assert await runner.wait_exit(within=30) == 0
    result = await result_of(ipc, "long", within=5)
    assert result.exit_code == 143
    assert "terminated" in result.stderr
