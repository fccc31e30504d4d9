"""Log files: the CRI line format, tailing, filters, following, and which run is served."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

from localcluster.errors import StatusError
from localcluster.node.logs import (
    MAX_ENTRY,
    LogOptions,
    LogService,
    LogWriter,
    choose_container,
    format_timestamp,
    iter_entries,
    parse_entry,
    parse_timestamp,
    pick_run,
    prune_runs,
    runs,
    stream_file,
    tail_offset,
    tail_text,
)

Obj = dict[str, Any]
SECOND = 1_000_000_000
T0 = 1_767_225_600 * SECOND  # 2026-01-01T00:00:00Z


def ticking(start: int = T0) -> Any:
    counter = itertools.count()
    return lambda: start + next(counter) * SECOND


async def collect(path: Path, options: LogOptions, writer: LogWriter | None = None) -> bytes:
    return b"".join([chunk async for chunk in stream_file(path, options, writer)])


def test_timestamps_round_trip() -> None:
    assert format_timestamp(T0 + 5) == "2026-01-01T00:00:00.000000005Z"
    assert parse_timestamp(b"2026-01-01T00:00:00.000000005Z") == T0 + 5
    assert parse_timestamp(b"2026-01-01T00:00:01Z") == T0 + SECOND
    assert parse_timestamp(b"2026-01-01T00:00:01.5Z") == T0 + SECOND + SECOND // 2
    assert parse_timestamp(b"yesterday") is None


async def test_writer_splits_lines_and_streams(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "0.log", clock=ticking())
    writer.feed("stdout", b"one\ntw")
    writer.feed("stderr", b"oops\n")
    writer.feed("stdout", b"o\nthree")
    writer.close()
    lines = (tmp_path / "0.log").read_bytes().splitlines()
    assert lines == [
        b"2026-01-01T00:00:00.000000000Z stdout F one",
        b"2026-01-01T00:00:01.000000000Z stderr F oops",
        b"2026-01-01T00:00:02.000000000Z stdout F two",
        b"2026-01-01T00:00:03.000000000Z stdout F three",  # the unterminated rest at exit
    ]
    assert await collect(tmp_path / "0.log", LogOptions()) == b"one\noops\ntwo\nthree\n"


async def test_long_lines_become_partial_entries(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "0.log")
    writer.feed("stdout", b"x" * (MAX_ENTRY * 2 + 10) + b"\n")
    writer.close()
    entries = list(iter_entries((tmp_path / "0.log").read_bytes()))
    assert [e.partial for e in entries] == [True, True, False]
    assert await collect(tmp_path / "0.log", LogOptions()) == b"x" * (MAX_ENTRY * 2 + 10) + b"\n"


def test_parse_entry() -> None:
    entry = parse_entry(b"2026-01-01T00:00:00.000000000Z stderr P a b c")
    assert entry is not None
    assert (entry.stream, entry.partial, entry.content) == ("stderr", True, b"a b c")
    assert entry.render(False) == b"a b c"
    assert entry.render(True) == b"2026-01-01T00:00:00.000000000Z a b c"
    empty = parse_entry(b"2026-01-01T00:00:00.000000000Z stdout F")
    assert empty is not None and empty.render(False) == b"\n"
    assert parse_entry(b"garbage") is None


def test_tail_offset(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"".join(b"line%d\n" % i for i in range(10_000)))
    with open(path, "rb") as f:
        for lines in (0, 1, 3, 9_999, 10_000, 20_000):
            f.seek(tail_offset(f, lines))
            got = f.read().splitlines()
            assert len(got) == min(lines, 10_000)
            if got:
                assert got[-1] == b"line9999"
    path.write_bytes(b"")
    with open(path, "rb") as f:
        assert tail_offset(f, 5) == 0


async def test_filters(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = LogWriter(path, clock=ticking())
    for i in range(5):
        writer.feed("stdout", b"line %d\n" % i)
    writer.close()
    assert await collect(path, LogOptions(tail_lines=2)) == b"line 3\nline 4\n"
    assert await collect(path, LogOptions(tail_lines=0)) == b""
    assert await collect(path, LogOptions(limit_bytes=8)) == b"line 0\nl"
    assert await collect(path, LogOptions(since_ns=T0 + 3 * SECOND)) == b"line 3\nline 4\n"
    assert (
        await collect(path, LogOptions(tail_lines=1, timestamps=True))
        == b"2026-01-01T00:00:04.000000000Z line 4\n"
    )
    assert tail_text(path, lines=2) == "line 3\nline 4\n"
    assert await collect(tmp_path / "missing.log", LogOptions()) == b""


def test_options_from_query() -> None:
    options = LogOptions.from_query(
        {"container": "c", "follow": "true", "tailLines": "5", "sinceSeconds": "10"},
        now_ns=T0,
    )
    assert options == LogOptions(
        container="c", follow=True, tail_lines=5, since_ns=T0 - 10 * SECOND
    )
    assert LogOptions.from_query({"tailLines": "-1"}).tail_lines is None
    assert LogOptions.from_query({"sinceTime": "2026-01-01T00:00:00Z"}).since_ns == T0
    for bad in ({"tailLines": "x"}, {"limitBytes": "0"}, {"sinceSeconds": "0"}):
        with pytest.raises(StatusError):
            LogOptions.from_query(bad)


async def test_follow_streams_until_the_writer_closes(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = LogWriter(path)
    writer.feed("stdout", b"first\n")
    received: list[bytes] = []

    async def follow() -> None:
        async for chunk in stream_file(path, LogOptions(follow=True), writer):
            received.append(chunk)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    assert received == [b"first\n"]
    writer.feed("stdout", b"second\n")
    await asyncio.sleep(0.05)
    assert received == [b"first\n", b"second\n"]
    assert not task.done()
    writer.close()
    await asyncio.wait_for(task, 2)


def test_runs_are_pruned_to_the_current_and_previous(tmp_path: Path) -> None:
    for run in range(4):
        (tmp_path / f"{run}.log").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert [r for r, _ in runs(tmp_path)] == [0, 1, 2, 3]
    prune_runs(tmp_path, 2)
    assert [r for r, _ in runs(tmp_path)] == [2, 3]


POD: Obj = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
    "spec": {
        "initContainers": [{"name": "init"}],
        "containers": [{"name": "a"}, {"name": "b"}],
    },
    "status": {"containerStatuses": [{"name": "a", "state": {"running": {}}}]},
}


def test_choose_container() -> None:
    with pytest.raises(StatusError) as caught:
        choose_container(POD, "")
    assert caught.value.message == (
        "a container name must be specified for pod p, choose one of: [a b]"
        " or one of the init containers: [init]"
    )
    with pytest.raises(StatusError, match="container c is not valid for pod p"):
        choose_container(POD, "c")
    assert choose_container(POD, "a") == ("a", {"name": "a", "state": {"running": {}}})
    assert choose_container(POD, "init") == ("init", None)
    single = {"metadata": {"name": "s"}, "spec": {"containers": [{"name": "only"}]}}
    assert choose_container(single, "") == ("only", None)


def test_pick_run(tmp_path: Path) -> None:
    found = [(0, tmp_path / "0.log"), (1, tmp_path / "1.log")]
    running: Obj = {"state": {"running": {}}}
    assert pick_run(found, running, False, "p", "c") == tmp_path / "1.log"
    assert pick_run(found, running, True, "p", "c") == tmp_path / "0.log"
    backing_off = {
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1}},
    }
    assert pick_run(found, backing_off, False, "p", "c") == tmp_path / "1.log"
    assert pick_run(found, backing_off, True, "p", "c") == tmp_path / "1.log"
    with pytest.raises(StatusError, match='previous terminated container "c" in pod "p" not found'):
        pick_run(found[:1], running, True, "p", "c")
    with pytest.raises(StatusError, match="is waiting to start: trying and failing to pull image"):
        pick_run([], {"state": {"waiting": {"reason": "ErrImagePull"}}}, False, "p", "c")
    with pytest.raises(StatusError, match="is waiting to start: ContainerCreating"):
        pick_run([], None, False, "p", "c")


async def test_service_serves_the_current_run(tmp_path: Path) -> None:
    service = LogService(tmp_path)
    writer = service.open("ns", "p", "u", "a", 0)
    writer.feed("stdout", b"hello\n")
    service.closed(writer)
    assert service.writers == {}
    assert await service.serve(POD, {"container": "a"}) == b"hello\n"
    assert await service.serve(POD, {"container": "a", "timestamps": "true"}) != b"hello\n"
