"""The wire formats between an agent pod's containers and the controller.

One module owns them so the runner that writes a marker and the reconciler that reads
it can never drift apart: the stdout markers (`__SYMPOZIUM_RESULT__`...), and the
`/ipc` files exchanged by the agent, the IPC bridge and skill sidecars.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

RESULT_START = "__SYMPOZIUM_RESULT__"
RESULT_END = "__SYMPOZIUM_END__"
MEMORY_START = "__SYMPOZIUM_MEMORY__"
MEMORY_END = "__SYMPOZIUM_MEMORY_END__"

RESULT_TAIL_LINES = 80
MEMORY_TAIL_LINES = 100
RATE_LIMIT_LINE_MAX = 500

IPC_ROOT = "/ipc"
IPC_DIRS = ("input", "output", "spawn", "tools", "messages", "schedules")
DONE_FILE = "done"
RESULT_FILE = "output/result.json"

MOUNTS_ENV = "LOCALCLUSTER_MOUNTS"


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown keys from newer peers ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


class RunMetrics(WireModel):
    duration_ms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0


class AgentResult(WireModel):
    """What the agent container reports between the result markers and in `result.json`."""

    status: Literal["success", "error"]
    response: str | None = None
    error: str | None = None
    metrics: RunMetrics = Field(default_factory=RunMetrics)


class StreamChunk(WireModel):
    type: Literal["text"] = "text"
    content: str
    index: int = 0


class TraceMeta(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    trace_id: str | None = None
    span_id: str | None = None
    traceparent: str | None = None


class ExecRequest(WireModel):
    """`tools/exec-request-<id>.json`: a command for a skill sidecar to run."""

    id: str
    command: str
    args: list[str] | None = None
    work_dir: str = "/workspace"
    timeout: int = 30
    stdin: str | None = None
    meta: TraceMeta | None = Field(default=None, alias="_meta")


class ExecResult(WireModel):
    """`tools/exec-result-<id>.json`: what the sidecar saw."""

    id: str
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    timed_out: bool | None = None


class ChannelMessage(WireModel):
    """`messages/send-<nano>.json`."""

    channel: str
    chat_id: str | None = None
    text: str


class ScheduleRequest(WireModel):
    """`schedules/schedule-<nano>.json`."""

    name: str
    action: Literal["create", "update", "suspend", "resume", "delete"]
    schedule: str | None = None
    task: str | None = None


# ---- stdout markers


def result_marker(result: AgentResult) -> str:
    return f"\n{RESULT_START}{result.to_json()}{RESULT_END}\n"


def memory_marker(memory: str) -> str:
    return f"\n{MEMORY_START}{memory}{MEMORY_END}\n"


def _tail(log: str, lines: int) -> str:
    return "\n".join(log.splitlines()[-lines:])


def _last_block(log: str, lines: int, start_marker: str, end_marker: str) -> str | None:
    """The text between the last start marker in the log's last `lines` lines and the
    end marker after it; None when either is missing."""
    tail = _tail(log, lines)
    start = tail.rfind(start_marker)
    if start < 0:
        return None
    body_start = start + len(start_marker)
    end = tail.find(end_marker, body_start)
    return tail[body_start:end] if end >= 0 else None


def find_result(log: str) -> AgentResult | None:
    """The last result block in the log's last 80 lines; None when absent or unreadable."""
    block = _last_block(log, RESULT_TAIL_LINES, RESULT_START, RESULT_END)
    if block is None:
        return None
    try:
        return AgentResult.model_validate_json(block.strip())
    except ValidationError:
        return None


def find_memory(log: str) -> str | None:
    """The last memory block in the log's last 100 lines, trimmed; None when absent or empty."""
    block = _last_block(log, MEMORY_TAIL_LINES, MEMORY_START, MEMORY_END)
    return (block or "").strip() or None


_RATE_LIMIT = re.compile(
    r"http 429|status 429|status code: 429|\(429\)| 429 |insufficient_quota|quota|rate limit|too many requests",
    re.IGNORECASE,
)


def find_rate_limit(log: str) -> str | None:
    """The last line of the result tail that reads like a provider's 429 or quota error."""
    for line in reversed(_tail(log, RESULT_TAIL_LINES).splitlines()):
        if _RATE_LIMIT.search(line):
            collapsed = " ".join(line.split())
            if len(collapsed) > RATE_LIMIT_LINE_MAX:
                collapsed = collapsed[:RATE_LIMIT_LINE_MAX] + "..."
            return collapsed
    return None


# ---- files


def pod_path(path: str | PurePosixPath) -> Path:
    """Where a path of the pod's filesystem is on this machine.

    On a real node (or the local node's bind mode) that is the path itself. In the local
    node's env mode `LOCALCLUSTER_MOUNTS` maps each volume's mountPath to a host
    directory; the longest matching mountPath wins.
    """
    posix = PurePosixPath(path)
    raw = os.environ.get(MOUNTS_ENV)
    if raw:
        try:
            mounts: dict[str, str] = json.loads(raw)
        except ValueError:
            mounts = {}
        best: tuple[int, str, str] | None = None
        for mount_path, host in mounts.items():
            mount = PurePosixPath(mount_path)
            if (posix == mount or mount in posix.parents) and (
                best is None or len(mount.parts) > best[0]
            ):
                best = (len(mount.parts), mount_path, host)
        if best is not None:
            relative = posix.relative_to(best[1])
            return Path(best[2]) / relative
    return Path(posix)


def ipc_path(relative: str = "") -> Path:
    """A path under the pod's `/ipc` volume (`IPC_PATH` overrides the root, for tests)."""
    root = os.environ.get("IPC_PATH") or str(pod_path(IPC_ROOT))
    return Path(root) / relative if relative else Path(root)


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a watcher never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # mkstemp makes 0600 files; sidecars may run as another user and must read them.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
