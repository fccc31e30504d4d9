"""Images, command lines and real processes with their logs and leftover records."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from localcluster.node.logs import LogWriter
from localcluster.node.runtime import (
    ENTRY_POINT,
    ContainerError,
    command_line,
    exit_code,
    image_allowed,
    is_sympozium,
    kill_leftovers,
    repository,
    spawn,
    start_time,
)

ALLOWED = ("*sympozium*", "busybox*")


def test_images() -> None:
    assert repository("docker.io/library/busybox:1.36@sha256:abc") == "busybox"
    assert image_allowed("ghcr.io/sympozium-ai/sympozium:latest", ALLOWED)
    assert image_allowed("busybox", ALLOWED)
    assert image_allowed("docker.io/library/busybox:1.36", ALLOWED)
    assert not image_allowed("nginx:1.27", ALLOWED)
    assert not image_allowed("busybox", ("*sympozium*",))
    assert is_sympozium("sympozium:dev") and not is_sympozium("busybox")


def test_command_lines() -> None:
    image = "ghcr.io/sympozium-ai/sympozium:latest"
    assert command_line(image, ["sympozium", "--help"], []) == [str(ENTRY_POINT), "--help"]
    assert command_line(image, [], ["localcluster"]) == [str(ENTRY_POINT), "localcluster"]
    assert command_line(image, ["python", "-c", "x"], []) == [sys.executable, "-c", "x"]
    assert command_line("busybox", ["sh", "-c"], ["echo"]) == ["sh", "-c", "echo"]
    assert command_line("busybox", [], []) == ["sh"]
    assert command_line("busybox", [], ["sleep", "1"]) == ["sleep", "1"]
    with pytest.raises(ContainerError) as caught:
        command_line("other:1", [], [])
    assert caught.value.reason == "CreateContainerError"


def test_exit_codes() -> None:
    assert exit_code(0) == 0 and exit_code(3) == 3
    assert exit_code(-signal.SIGKILL) == 137 and exit_code(-signal.SIGTERM) == 143


async def test_a_process_logs_exits_and_unrecords(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "0.log")
    exited: list[bool] = []
    process = await spawn(
        ["/bin/sh", "-c", "echo out; echo err >&2; exit 4"],
        {"PATH": "/usr/bin:/bin"},
        tmp_path,
        writer,
        tmp_path / "records",
        lambda: exited.append(True),
    )
    assert process.container_id == f"local://{process.pid}"
    assert await process.wait() == 4
    assert exited == [True]
    records = tmp_path / "records"
    assert not records.exists() or not list(records.iterdir())
    writer.close()
    text = (tmp_path / "0.log").read_text()
    assert " stdout F out\n" in text and " stderr F err\n" in text


async def test_the_group_is_signalled_and_dies_with_its_leader(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "0.log")
    process = await spawn(
        ["/bin/sh", "-c", "sleep 60 & echo $!; wait"],
        {"PATH": "/usr/bin:/bin"},
        tmp_path,
        writer,
        None,
        lambda: None,
    )
    process.signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 5) == 143


async def test_start_errors(tmp_path: Path) -> None:
    with pytest.raises(ContainerError) as caught:
        await spawn(
            ["/no/such/program"], {}, tmp_path, LogWriter(tmp_path / "0.log"), None, lambda: None
        )
    assert caught.value.reason == "StartError"


async def test_leftovers_are_killed_only_if_still_the_same_process(tmp_path: Path) -> None:
    records = tmp_path / "records"
    process = await spawn(
        ["sleep", "60"],
        {"PATH": "/usr/bin:/bin"},
        tmp_path,
        LogWriter(tmp_path / "0.log"),
        records,
        lambda: None,
    )
    (records / "999999999").write_text("1")  # a pid that does not exist
    (records / "1").write_text("not-its-start-time")
    assert start_time(process.pid) == (records / str(process.pid)).read_text()
    assert kill_leftovers(records) == 1
    assert await asyncio.wait_for(process.wait(), 5) == 137
    assert not list(records.iterdir())
