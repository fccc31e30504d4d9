"""Containers as local processes: which images may run, what runs for them, the process.

The "image" is this machine. Only images matching the `--allow-image` globs (default
`*sympozium*`) run. For the Sympozium image, `sympozium` means this installation's entry
point (`Path(sys.executable).parent / "sympozium"`) and `python`/`python3` its
interpreter; a container without a command runs `sympozium`. For `busybox*` (when
allowed) commands come from the host (`sh` is `/bin/sh`) and no command means `sh`.
Any other allowed image needs an explicit command.

Each container is its own process group (`setsid`), so signals reach everything it
started, and when its main process exits the rest of the group is killed, as a
container's pid namespace would be. stdout and stderr are pipes read on the event loop
into the log file. Every live process is recorded as `DATA_DIR/node/processes/<pid>`
(holding its kernel start time), so a node that died without stopping its pods kills
the leftovers when it starts again, without ever hitting a reused pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from localcluster.node.logs import LogWriter
from localcluster.node.status import now

log = logging.getLogger("localcluster.node")

VENV_BIN = Path(sys.executable).parent
ENTRY_POINT = VENV_BIN / "sympozium"
DEFAULT_PATH = f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PUMP_GRACE = 2.0  # seconds to drain pipes still held open by an escaped grandchild


class ContainerError(Exception):
    """A container that cannot start; `reason` is the waiting reason the API shows."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# ---- images


def repository(image: str) -> str:
    """`docker.io/library/busybox:1.36@sha256:..` -> `busybox`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def short_name(image: str) -> str:
    """The image without the Docker Hub prefixes, so `busybox*` matches either spelling."""
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if image.startswith(prefix):
            return image[len(prefix) :]
    if image.startswith("library/"):
        return image[len("library/") :]
    return image


def image_allowed(image: str, allowed: Iterable[str]) -> bool:
    names = {image, short_name(image)}
    return any(fnmatch.fnmatchcase(name, glob) for glob in allowed for name in names)


def is_sympozium(image: str) -> bool:
    return "sympozium" in repository(image)


def not_runnable(image: str) -> ContainerError:
    return ContainerError(
        "ErrImagePull",
        f'image "{image}" cannot run on the local node: only images matching '
        "--allow-image globs run, as local processes",
    )


def command_line(image: str, command: list[str], args: list[str]) -> list[str]:
    """What to exec for a container: its command and args, with the image's defaults."""
    if command:
        argv = [*command, *args]
    elif is_sympozium(image):
        argv = ["sympozium", *args]
    elif repository(image) == "busybox":
        argv = [*(args or ["sh"])]
    else:
        raise ContainerError(
            "CreateContainerError",
            f'image "{image}" has no known entry point on the local node: set the container command',
        )
    if is_sympozium(image):
        program = PurePosixPath(argv[0]).name
        if program == "sympozium":
            argv[0] = str(ENTRY_POINT)
        elif program in ("python", "python3"):
            argv[0] = sys.executable
    return argv


def image_env(image: str) -> dict[str, str]:
    """Variables an image would set: a PATH, and unbuffered output for Python."""
    env = {"PATH": DEFAULT_PATH, "HOME": "/root"}
    if is_sympozium(image):
        env["PYTHONUNBUFFERED"] = "1"
    return env


# ---- process records (for leftovers of a node that died)


def start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/<pid>/stat), None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


def kill_leftovers(records: Path) -> int:
    """Kills the process groups an earlier run of the node left behind; returns how many."""
    killed = 0
    if not records.is_dir():
        return 0
    for record in records.iterdir():
        with contextlib.suppress(ValueError, OSError):
            pid = int(record.name)
            recorded = record.read_text().strip()
            if recorded and start_time(pid) == recorded:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                    killed += 1
        with contextlib.suppress(OSError):
            record.unlink()
    return killed


# ---- processes


def exit_code(returncode: int) -> int:
    """A shell-style exit code: 128 + signal for a killed process, as runtimes report."""
    return 128 - returncode if returncode < 0 else returncode


class Process:
    """One running container process and the tasks that copy its output to the log."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        writer: LogWriter,
        record: Path | None,
        on_exit: Callable[[], None],
    ) -> None:
        self.pid = proc.pid
        self.started_at = now()
        self.container_id = f"local://{proc.pid}"
        self.writer = writer
        self._proc = proc
        self._record = record
        self._on_exit = on_exit
        self.exit_code: int | None = None
        self._done = asyncio.create_task(self._finish(), name=f"process-{proc.pid}")

    async def _pump(self, reader: asyncio.StreamReader | None, stream: str) -> None:
        if reader is None:
            return
        while True:
            data = await reader.read(65536)
            if not data:
                return
            self.writer.feed(stream, data)

    async def _finish(self) -> int:
        pumps = asyncio.gather(
            self._pump(self._proc.stdout, "stdout"), self._pump(self._proc.stderr, "stderr")
        )
        try:
            returncode = await self._proc.wait()
            self.signal(signal.SIGKILL)  # what the container started dies with it
            try:
                await asyncio.wait_for(asyncio.shield(pumps), _PUMP_GRACE)
            except TimeoutError:
                pumps.cancel()
            self.exit_code = exit_code(returncode)
            return self.exit_code
        finally:
            if not pumps.done():
                pumps.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pumps
            if self._record is not None:
                with contextlib.suppress(OSError):
                    self._record.unlink()
            self._on_exit()

    async def wait(self) -> int:
        return await asyncio.shield(self._done)

    @property
    def running(self) -> bool:
        return not self._done.done()

    def signal(self, sig: int) -> None:
        """Signals the container's whole process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


async def spawn(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    writer: LogWriter,
    records: Path | None,
    on_exit: Callable[[], None],
) -> Process:
    """Starts a container process; raises ContainerError("StartError") if exec fails."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    except (OSError, ValueError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ContainerError(
            "StartError", f"failed to start container process {argv[0]!r}: {detail}"
        ) from None
    record = None if records is None else write_record(records, proc.pid)
    return Process(proc, writer, record, on_exit)


def write_record(records: Path, pid: int) -> Path | None:
    """Notes a live process (pid and start time) for `kill_leftovers`."""
    started = start_time(pid)
    if started is None:
        return None
    records.mkdir(parents=True, exist_ok=True)
    record = records / str(pid)
    record.write_text(started)
    return record
