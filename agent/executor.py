"""The skill sidecar's tool executor (`sympozium agent tool-executor`).

It polls `tools/` under the IPC root (~0.2 s) for `exec-request-<id>.json`, claims each
request with `mkdir tools/.claim-<id>` (atomic: several sidecars sharing the volume never
run one request twice), runs `bash -c "<command> <args...>"` (`sh -c` without bash) in
the request's workDir (mapped through `pod_path()`), with the request's stdin and this
process's environment (so the skill's SKILL_* parameters reach the command), and writes
`exec-result-<id>.json` atomically before removing the request.

The timeout is clamped to 1-120 s (30 when unset); on expiry the whole process group is
killed and the result says exit code 124, timedOut true. stdout and stderr are each cut
at 51200 characters. A request that cannot be read gets exit code 2 with the reason in
stderr. It exits 0 when `/ipc/done` appears (after the requests in flight), and promptly
on SIGTERM (killing what runs and reporting it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from agent import sidecar
from agent.logs import configure_logging, kv
from agent.protocol import DONE_FILE, ExecRequest, ExecResult, pod_path, write_atomic

__all__ = ["add_arguments", "run"]

log = logging.getLogger("sympozium.tool-executor")

REQUEST_PREFIX = "exec-request-"
RESULT_PREFIX = "exec-result-"
CLAIM_PREFIX = ".claim-"
SUFFIX = ".json"

DEFAULT_TIMEOUT = 30
MIN_TIMEOUT = 1
MAX_TIMEOUT = 120
OUTPUT_LIMIT = 51200  # characters, for stdout and for stderr
TIMEOUT_EXIT_CODE = 124
BAD_REQUEST_EXIT_CODE = 2
TERMINATED_EXIT_CODE = 143
UNSETTLED_GRACE = 1.0  # seconds a request that is not yet JSON may still be being written
PIPE_GRACE = 2.0  # seconds to drain the pipes once the command exited or was killed
_READ_CHUNK = 65536


# ---- pure helpers


def clamp_timeout(timeout: int | None) -> int:
    """Seconds a command may run: unset or non-positive -> 30, else within 1..120."""
    if timeout is None or timeout <= 0:
        return DEFAULT_TIMEOUT
    return max(MIN_TIMEOUT, min(MAX_TIMEOUT, timeout))


def truncate(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """At most `limit` characters."""
    return text if len(text) <= limit else text[:limit]


def request_id(name: str) -> str | None:
    """The id in `exec-request-<id>.json`; None for other names or an empty id."""
    if not (name.startswith(REQUEST_PREFIX) and name.endswith(SUFFIX)):
        return None
    ident = name[len(REQUEST_PREFIX) : -len(SUFFIX)]
    return ident or None


def command_line(request: ExecRequest) -> str:
    """`<command> <args...>` joined with spaces, as the shell gets it."""
    return " ".join([request.command, *(request.args or [])])


def shell() -> str:
    return shutil.which("bash") or shutil.which("sh") or "/bin/sh"


class _Limited:
    """Keeps the first bytes of a stream that can hold `limit` characters; drops the rest."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self._max_bytes = limit * 4  # no UTF-8 character is longer
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        room = self._max_bytes - self._size
        if room > 0:
            kept = chunk[:room]
            self._chunks.append(kept)
            self._size += len(kept)

    def text(self) -> str:
        return truncate(b"".join(self._chunks).decode("utf-8", errors="replace"), self._limit)


# ---- claiming (runs in worker threads)


@dataclass(frozen=True)
class Claimed:
    ident: str
    path: Path
    body: bytes | None  # None: unreadable


def claim(tools: Path, ident: str) -> bool:
    """Atomically claim a request; False when another executor already did."""
    try:
        (tools / f"{CLAIM_PREFIX}{ident}").mkdir()
    except FileExistsError:
        return False
    return True


def _settled(body: bytes, mtime: float) -> bool:
    """A request is ready when it is JSON, or has not changed for a while (then it is bad)."""
    try:
        json.loads(body)
    except ValueError:
        return time.time() - mtime >= UNSETTLED_GRACE
    return True


def _scan_and_claim(
    tools: Path, skip: set[str], limit: int, unrecoverable: set[str]
) -> tuple[bool, list[Claimed]]:
    """Whether `done` exists (looked at first), and up to `limit` requests newly claimed."""
    done = (tools.parent / DONE_FILE).exists()
    if done or limit <= 0:
        return done, []
    candidates: list[tuple[float, str, Path]] = []
    try:
        entries = os.scandir(tools)
    except OSError:
        return done, []
    with entries:
        for entry in entries:
            name = entry.name
            if not (name.startswith(REQUEST_PREFIX) and name.endswith(SUFFIX)):
                continue
            ident = request_id(name)
            if ident is None:
                if name not in unrecoverable:
                    unrecoverable.add(name)
                    log.warning(kv("request_skipped", file=name, reason="no id in the file name"))
                continue
            if ident in skip:
                continue
            try:
                mtime = entry.stat().st_mtime
            except OSError:
                continue
            candidates.append((mtime, ident, Path(entry.path)))
    candidates.sort()
    claimed: list[Claimed] = []
    for mtime, ident, path in candidates:
        if len(claimed) >= limit:
            break
        try:
            body: bytes | None = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError:
            body = None
        if body is not None and not _settled(body, mtime):
            continue
        if claim(tools, ident):
            claimed.append(Claimed(ident, path, body))
    return done, claimed


def _make_workdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _finish(tools: Path, request_path: Path, result: ExecResult) -> None:
    write_atomic(tools / f"{RESULT_PREFIX}{result.id}{SUFFIX}", result.to_json())
    request_path.unlink(missing_ok=True)


# ---- logging


# ---- running one command


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def _pump(stream: asyncio.StreamReader | None, sink: _Limited) -> None:
    if stream is None:
        return
    while chunk := await stream.read(_READ_CHUNK):
        sink.add(chunk)


async def _feed(stream: asyncio.StreamWriter | None, data: bytes) -> None:
    if stream is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stream.write(data)
        await stream.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stream.close()
        await stream.wait_closed()


async def execute(request: ExecRequest, ident: str) -> ExecResult:
    """Run one request to its result (a killed process group on timeout or cancellation)."""
    timeout = clamp_timeout(request.timeout)
    workdir = pod_path(request.work_dir or "/workspace")
    try:
        await asyncio.to_thread(_make_workdir, workdir)
    except OSError as error:
        return ExecResult(id=ident, exit_code=1, stderr=f"workDir {request.work_dir}: {error}")
    try:
        process = await asyncio.create_subprocess_exec(
            shell(),
            "-c",
            command_line(request),
            cwd=workdir,
            stdin=asyncio.subprocess.PIPE
            if request.stdin is not None
            else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, killed as a whole
            env=dict(os.environ),
        )
    except OSError as error:
        return ExecResult(id=ident, exit_code=127, stderr=f"cannot start the shell: {error}")
    stdout, stderr = _Limited(), _Limited()
    io = [
        asyncio.create_task(_pump(process.stdout, stdout)),
        asyncio.create_task(_pump(process.stderr, stderr)),
    ]
    if request.stdin is not None:
        io.append(asyncio.create_task(_feed(process.stdin, request.stdin.encode("utf-8"))))
    timed_out = False
    try:
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            timed_out = True
            _kill_group(process)
            await process.wait()
        # A background child may still hold the pipes; read what comes quickly, then stop.
        _, still_open = await asyncio.wait(io, timeout=PIPE_GRACE)
        for task in still_open:
            task.cancel()
    except asyncio.CancelledError:
        _kill_group(process)
        raise
    finally:
        for task in io:
            task.cancel()
        await asyncio.gather(*io, return_exceptions=True)
    if timed_out:
        note = f"command timed out after {timeout}s"
        err = stderr.text()
        return ExecResult(
            id=ident,
            exit_code=TIMEOUT_EXIT_CODE,
            stdout=stdout.text(),
            stderr=truncate(f"{err}\n{note}" if err else note),
            timed_out=True,
        )
    code = process.returncode if process.returncode is not None else 1
    if code < 0:  # killed by a signal: report it the way a shell would
        code = 128 - code
    return ExecResult(id=ident, exit_code=code, stdout=stdout.text(), stderr=stderr.text())


# ---- the executor


class Executor:
    def __init__(self, root: Path, poll: float, concurrency: int) -> None:
        self._root = root
        self._tools = root / "tools"
        self._poll = poll
        self._concurrency = concurrency
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._unrecoverable: set[str] = set()

    async def serve(self, stop: asyncio.Event) -> int:
        try:
            while not stop.is_set():
                room = self._concurrency - len(self._inflight)
                done, claimed = await asyncio.to_thread(
                    _scan_and_claim, self._tools, set(self._inflight), room, self._unrecoverable
                )
                if done:
                    log.info(kv("done_seen", in_flight=len(self._inflight)))
                    await self._wait_inflight(stop)
                    if not stop.is_set():
                        log.info(kv("exiting", reason="done"))
                        return 0
                    break
                for item in claimed:
                    task = asyncio.create_task(self._handle(item), name=f"exec-{item.ident}")
                    self._inflight[item.ident] = task
                    task.add_done_callback(self._forget)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._poll)
            log.info(kv("terminating", in_flight=len(self._inflight)))
            return 0
        finally:
            tasks = list(self._inflight.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, task: asyncio.Task[None]) -> None:
        for ident, running in list(self._inflight.items()):
            if running is task:
                del self._inflight[ident]

    async def _wait_inflight(self, stop: asyncio.Event) -> None:
        while self._inflight and not stop.is_set():
            stopping = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait(
                    [stopping, *self._inflight.values()], return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                stopping.cancel()

    async def _handle(self, item: Claimed) -> None:
        request: ExecRequest | None = None
        reason = ""
        if item.body is None:
            reason = "the request file cannot be read"
        else:
            try:
                request = ExecRequest.model_validate_json(item.body)
            except ValidationError as error:
                reason = _describe(error)
        if request is None:
            log.warning(kv("bad_request", id=item.ident, reason=reason))
            result = ExecResult(
                id=item.ident,
                exit_code=BAD_REQUEST_EXIT_CODE,
                stderr=f"invalid exec request: {reason}",
            )
            await asyncio.to_thread(_finish, self._tools, item.path, result)
            return
        if request.id != item.ident:
            log.warning(kv("id_mismatch", file_id=item.ident, body_id=request.id))
        log.info(
            kv(
                "exec_start",
                id=item.ident,
                command=request.command,
                timeout=clamp_timeout(request.timeout),
            )
        )
        try:
            result = await execute(request, item.ident)
        except asyncio.CancelledError:
            result = ExecResult(
                id=item.ident,
                exit_code=TERMINATED_EXIT_CODE,
                stderr="the tool executor was terminated before the command finished",
            )
            await asyncio.to_thread(_finish, self._tools, item.path, result)
            raise
        except Exception as error:  # never let one request take the executor down
            log.exception(kv("exec_error", id=item.ident, error=repr(error)))
            result = ExecResult(id=item.ident, exit_code=1, stderr=f"tool executor error: {error}")
        await asyncio.to_thread(_finish, self._tools, item.path, result)
        log.info(
            kv(
                "exec_done",
                id=item.ident,
                exit_code=result.exit_code,
                timed_out=bool(result.timed_out),
            )
        )


def _describe(error: ValidationError) -> str:
    parts = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"]) or "body"
        parts.append(f"{location}: {problem['msg']}")
    return "; ".join(parts)


# ---- entry points


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    sidecar.add_ipc_path_argument(parser)
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=env("TOOL_EXECUTOR_POLL_INTERVAL", "0.2"),
        help="seconds between scans of tools/ (TOOL_EXECUTOR_POLL_INTERVAL)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=env("TOOL_EXECUTOR_CONCURRENCY", "4"),
        help="requests run at once (TOOL_EXECUTOR_CONCURRENCY)",
    )


async def run(args: argparse.Namespace) -> int:
    configure_logging()
    root = sidecar.ipc_root(args)
    tools = root / "tools"
    try:
        await asyncio.to_thread(tools.mkdir, parents=True, exist_ok=True)
    except OSError as error:
        log.error(kv("bad_config", field="IPC_PATH", path=root, reason=error))
        return 1
    concurrency = max(1, args.concurrency)
    log.info(kv("starting", ipc=root, concurrency=concurrency, shell=shell()))
    return await sidecar.serve_until_signal(
        Executor(root, max(args.poll_interval, 0.01), concurrency).serve
    )


def main(argv: list[str] | None = None) -> int:
    return sidecar.main("sympozium agent tool-executor", add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
