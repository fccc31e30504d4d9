"""Container logs on disk, and the `pods/log` endpoint that serves them.

Every run of a container writes `DATA_DIR/node/logs/<namespace>_<pod>_<uid>/<container>/<run>.log`
(`run` is the container's restartCount when it started) in containerd's CRI format, one
entry per line:

    2026-01-02T03:04:05.123456789Z stdout F hello

`F` ends a line; `P` is a piece of a line longer than 16 KiB (or the unterminated rest at
exit is written as `F`). Keeping the time and stream in the file is what lets
`timestamps`, `sinceSeconds` and `sinceTime` work from the file alone, after a node
restart too. The two newest runs of a container are kept (the current and `previous`);
nothing is rotated, the files go when the pod is deleted.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from localcluster.errors import bad_request

Obj = dict[str, Any]

MAX_ENTRY = 16 * 1024  # containerd splits longer lines into P pieces of this size
_READ_CHUNK = 64 * 1024
_FOLLOW_POLL = 1.0  # seconds between checks of a followed file that gets no notification
_KEEP_RUNS = 2


def format_timestamp(ns: int) -> str:
    """RFC 3339 with exactly nine fractional digits, as the kubelet prints them."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


_TIMESTAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def parse_timestamp(raw: bytes) -> int | None:
    """Nanoseconds since the epoch of a UTC RFC 3339 timestamp, None if malformed."""
    match = _TIMESTAMP.match(raw)
    if match is None:
        return None
    whole = time.strptime(match.group(1).decode(), "%Y-%m-%dT%H:%M:%S")
    fraction = (match.group(2) or b"").decode().ljust(9, "0")
    return calendar.timegm(whole) * 1_000_000_000 + int(fraction or 0)


@dataclass(frozen=True)
class Entry:
    """One line of a log file."""

    timestamp: bytes  # as written, e.g. b"2026-01-02T03:04:05.123456789Z"
    stream: str
    partial: bool
    content: bytes

    @property
    def nanos(self) -> int:
        return parse_timestamp(self.timestamp) or 0

    def render(self, timestamps: bool) -> bytes:
        text = self.content if self.partial else self.content + b"\n"
        return self.timestamp + b" " + text if timestamps else text


def parse_entry(line: bytes) -> Entry | None:
    """An entry from one file line (without its newline); None for a line that is not one."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        return None
    content = parts[3] if len(parts) == 4 else b""
    return Entry(parts[0], parts[1].decode(), parts[2] == b"P", content)


def encode_entry(timestamp_ns: int, stream: str, partial: bool, content: bytes) -> bytes:
    tag = b"P" if partial else b"F"
    return b"%s %s %s %s\n" % (
        format_timestamp(timestamp_ns).encode(),
        stream.encode(),
        tag,
        content,
    )


# ---- writing


class LogWriter:
    """Appends a container's stdout and stderr to one file, entry by entry.

    Data is split into entries at newlines as it arrives (writes are small appends, fine
    on the event loop); readers following the file are woken after every write.
    """

    def __init__(self, path: Path, clock: Any = time.time_ns) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self._file: IO[bytes] | None = open(path, "ab")  # noqa: SIM115 - closed in close()
        self._pending: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self._changed = asyncio.Event()
        self.closed = False

    def feed(self, stream: str, data: bytes) -> None:
        buffer = self._pending[stream]
        buffer += data
        now = self._clock()
        out: list[bytes] = []
        while True:
            newline = buffer.find(b"\n")
            if newline < 0:
                while len(buffer) >= MAX_ENTRY:
                    out.append(encode_entry(now, stream, True, bytes(buffer[:MAX_ENTRY])))
                    del buffer[:MAX_ENTRY]
                break
            line = bytes(buffer[:newline])
            del buffer[: newline + 1]
            while len(line) > MAX_ENTRY:
                out.append(encode_entry(now, stream, True, line[:MAX_ENTRY]))
                line = line[MAX_ENTRY:]
            out.append(encode_entry(now, stream, False, line))
        if out:
            self._write(b"".join(out))

    def _write(self, data: bytes) -> None:
        if self._file is None:
            return
        self._file.write(data)
        self._file.flush()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_changed(self, timeout: float) -> None:  # noqa: ASYNC109
        if self.closed:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def close(self) -> None:
        """Writes what is left of unterminated lines as whole lines, then closes."""
        if self.closed:
            return
        now = self._clock()
        rest = b"".join(
            encode_entry(now, stream, False, bytes(buffer))
            for stream, buffer in self._pending.items()
            if buffer
        )
        if rest:
            self._write(rest)
        if self._file is not None:
            self._file.close()
            self._file = None
        self.closed = True
        self._notify()


# ---- layout


def pod_log_dir(root: Path, namespace: str, name: str, uid: str) -> Path:
    return root / f"{namespace}_{name}_{uid}"


def uid_of_log_dir(path: Path) -> str:
    """The pod uid a log directory belongs to (uids have no underscores)."""
    return path.name.rsplit("_", 1)[-1]


def runs(container_dir: Path) -> list[tuple[int, Path]]:
    """The container's log files, oldest run first."""
    found: list[tuple[int, Path]] = []
    with contextlib.suppress(FileNotFoundError):
        for entry in container_dir.iterdir():
            stem, dot, ext = entry.name.partition(".")
            if dot and ext == "log" and stem.isdigit():
                found.append((int(stem), entry))
    return sorted(found)


def run_path(container_dir: Path, run: int) -> Path:
    return container_dir / f"{run}.log"


def prune_runs(container_dir: Path, keep: int = _KEEP_RUNS) -> None:
    """Drops all but the `keep` newest runs (the current one and `previous`)."""
    for _, path in runs(container_dir)[:-keep]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# ---- reading


def tail_offset(f: IO[bytes], lines: int) -> int:
    """The offset where the last `lines` lines of the file start (read from the end)."""
    f.seek(0, os.SEEK_END)
    end = f.tell()
    if lines <= 0:
        return end
    position = end
    newlines = 0
    # A final newline ends the last line rather than starting an empty one.
    skip_last = True
    while position > 0:
        size = min(_READ_CHUNK, position)
        position -= size
        f.seek(position)
        block = f.read(size)
        for i in range(len(block) - 1, -1, -1):
            if block[i] != 0x0A:
                continue
            if skip_last and position + i == end - 1:
                continue
            newlines += 1
            if newlines == lines:
                return position + i + 1
        skip_last = False
    return 0


def iter_entries(data: bytes) -> Iterator[Entry]:
    for line in data.split(b"\n"):
        if line:
            entry = parse_entry(line)
            if entry is not None:
                yield entry


@dataclass(frozen=True)
class LogOptions:
    """The query of a `pods/log` request, parsed."""

    container: str = ""
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since_ns: int | None = None
    limit_bytes: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str], now_ns: int | None = None) -> LogOptions:
        now_ns = time.time_ns() if now_ns is None else now_ns
        since_ns: int | None = None
        if query.get("sinceSeconds"):
            seconds = _int(query, "sinceSeconds")
            if seconds < 1:
                raise bad_request("sinceSeconds: Invalid value: must be greater than 0")
            since_ns = now_ns - seconds * 1_000_000_000
        if query.get("sinceTime"):
            if since_ns is not None:
                raise bad_request("at most one of `sinceTime` or `sinceSeconds` may be specified")
            since_ns = _parse_since_time(query["sinceTime"])
        tail = _int(query, "tailLines") if query.get("tailLines") else None
        limit = _int(query, "limitBytes") if query.get("limitBytes") else None
        if limit is not None and limit < 1:
            raise bad_request("limitBytes: Invalid value: must be greater than 0")
        return cls(
            container=query.get("container", ""),
            follow=_bool(query.get("follow")),
            previous=_bool(query.get("previous")),
            timestamps=_bool(query.get("timestamps")),
            tail_lines=None if tail is None or tail < 0 else tail,
            since_ns=since_ns,
            limit_bytes=limit,
        )


def _bool(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _int(query: Mapping[str, str], name: str) -> int:
    try:
        return int(query[name])
    except ValueError:
        raise bad_request(f"{name}: Invalid value: {query[name]!r}: must be an integer") from None


def _parse_since_time(raw: str) -> int:
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"sinceTime: Invalid value: {raw!r}: not an RFC 3339 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


class _Budget:
    """What is left of `limitBytes`."""

    def __init__(self, limit: int | None) -> None:
        self.left = limit

    def take(self, data: bytes) -> bytes:
        if self.left is None:
            return data
        data = data[: self.left]
        self.left -= len(data)
        return data

    @property
    def spent(self) -> bool:
        return self.left is not None and self.left <= 0


def render(entries: Iterator[Entry], options: LogOptions) -> bytes:
    out = bytearray()
    for entry in entries:
        if options.since_ns is not None and entry.nanos < options.since_ns:
            continue
        out += entry.render(options.timestamps)
    return bytes(out)


def _open_log(path: Path) -> IO[bytes] | None:
    try:
        return open(path, "rb")  # the caller closes it
    except FileNotFoundError:
        return None


async def stream_file(
    path: Path, options: LogOptions, writer: LogWriter | None
) -> AsyncIterator[bytes]:
    """The rendered log of one run; with `follow` and a live writer, until the run ends."""
    budget = _Budget(options.limit_bytes)
    f = _open_log(path)
    if f is None:
        return
    with f:
        if options.tail_lines is not None:
            f.seek(tail_offset(f, options.tail_lines))
        else:
            f.seek(0)
        leftover = b""
        while True:
            live = options.follow and writer is not None and not writer.closed
            chunk = f.read(_READ_CHUNK)
            if chunk:
                data = leftover + chunk
                cut = data.rfind(b"\n") + 1
                leftover = data[cut:]
                rendered = budget.take(render(iter_entries(data[:cut]), options))
                if rendered:
                    yield rendered
                if budget.spent:
                    return
                continue
            if not live:
                return
            assert writer is not None
            await writer.wait_changed(_FOLLOW_POLL)


# ---- the endpoint


class LogService:
    """Serves `GET pods/<name>/log` from the files; knows which runs are still writing."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.writers: dict[Path, LogWriter] = {}

    def open(self, namespace: str, name: str, uid: str, container: str, run: int) -> LogWriter:
        container_dir = pod_log_dir(self.root, namespace, name, uid) / container
        writer = LogWriter(run_path(container_dir, run))
        prune_runs(container_dir, _KEEP_RUNS)
        self.writers[writer.path] = writer
        return writer

    def closed(self, writer: LogWriter) -> None:
        writer.close()
        if self.writers.get(writer.path) is writer:
            del self.writers[writer.path]

    async def serve(self, pod: Obj, query: dict[str, str]) -> web.StreamResponse | bytes:
        options = LogOptions.from_query(query)
        meta = pod.get("metadata") or {}
        name = str(meta.get("name", ""))
        container, status = choose_container(pod, options.container)
        container_dir = (
            pod_log_dir(self.root, str(meta.get("namespace", "")), name, str(meta.get("uid", "")))
            / container
        )
        path = pick_run(runs(container_dir), status, options.previous, name, container)
        writer = self.writers.get(path)
        body = stream_file(path, options, writer)
        if not options.follow:
            return b"".join([chunk async for chunk in body])
        return web.Response(body=body, content_type="text/plain")


def choose_container(pod: Obj, requested: str) -> tuple[str, Obj | None]:
    """The container a log request means, and its status; upstream's errors otherwise."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    regular = [str(c.get("name", "")) for c in spec.get("containers") or ()]
    init = [str(c.get("name", "")) for c in spec.get("initContainers") or ()]
    ephemeral = [str(c.get("name", "")) for c in spec.get("ephemeralContainers") or ()]
    if not requested:
        if len(regular) != 1:
            message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(regular)}]"
            if init:
                message += f" or one of the init containers: [{' '.join(init)}]"
            if ephemeral:
                message += f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
            raise bad_request(message)
        requested = regular[0]
    if requested not in (*regular, *init, *ephemeral):
        raise bad_request(f"container {requested} is not valid for pod {name}")
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for found in status.get(key) or ():
            if found.get("name") == requested:
                return requested, found
    return requested, None


def pick_run(
    found: list[tuple[int, Path]], status: Obj | None, previous: bool, pod: str, container: str
) -> Path:
    """The run a request means: the current one, or the one before it (`previous`).

    A container waiting to restart has no current run: like the kubelet, its last
    terminated run is both the current log and the previous one.
    """
    state = (status or {}).get("state") or {}
    waiting = state.get("waiting")
    if waiting is not None:
        if not found or not (status or {}).get("lastState", {}).get("terminated"):
            reason = waiting.get("reason") or "ContainerCreating"
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                detail = "trying and failing to pull image"
            else:
                detail = reason
            raise bad_request(
                f'container "{container}" in pod "{pod}" is waiting to start: {detail}'
            )
        return found[-1][1]
    if previous:
        if len(found) < 2:
            raise bad_request(
                f'previous terminated container "{container}" in pod "{pod}" not found'
            )
        return found[-2][1]
    if not found:
        raise bad_request(
            f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating'
        )
    return found[-1][1]


def tail_text(path: Path, lines: int = 80, max_bytes: int = 2048) -> str:
    """The end of a run's log as text: a failed container's fallback termination message."""
    try:
        with open(path, "rb") as f:
            f.seek(tail_offset(f, lines))
            data = f.read()
    except OSError:
        return ""
    text = b"".join(entry.render(False) for entry in iter_entries(data))
    return text[-max_bytes:].decode("utf-8", "replace")
