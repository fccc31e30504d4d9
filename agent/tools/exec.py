"""`execute_command`: runs a shell command in a skill sidecar through `/ipc/tools`."""

from __future__ import annotations

from pydantic import Field

from agent import ipcclient
from agent.protocol import ExecRequest
from agent.tools.base import Tool, ToolArgs, ToolContext, ToolError, truncate

MAX_TIMEOUT = 120
DEFAULT_TIMEOUT = 30
RESULT_GRACE_SECONDS = 10
OUTPUT_LIMIT = 8000


class ExecuteCommandArgs(ToolArgs):
    command: str = Field(description="The shell command line to run (bash -c)")
    workdir: str = Field(default="/workspace", description="Working directory")
    timeout: int = Field(
        default=DEFAULT_TIMEOUT, ge=1, le=MAX_TIMEOUT, description="Seconds before it is killed"
    )


def format_result(stdout: str, stderr: str, exit_code: int, timed_out: bool) -> str:
    parts: list[str] = []

    def add(text: str) -> None:
        if parts and not parts[-1].endswith("\n"):
            parts.append("\n")
        parts.append(text)

    if stdout:
        add(stdout)
    if stderr:
        add("STDERR:\n" + stderr)
    if timed_out:
        add("(command timed out)")
    if exit_code != 0:
        add(f"Exit code: {exit_code}")
    return truncate("".join(parts) or "(no output)", OUTPUT_LIMIT)


async def execute_command(args: ExecuteCommandArgs, context: ToolContext) -> str:
    if not args.command.strip():
        raise ToolError("command is required")
    request = ExecRequest(
        id=ipcclient.new_exec_id(),
        command=args.command,
        work_dir=args.workdir or "/workspace",
        timeout=args.timeout,
        _meta=ipcclient.current_trace_meta(),
    )
    result = await ipcclient.exec_command(request, args.timeout + RESULT_GRACE_SECONDS)
    if result is None:
        raise ToolError(
            f"no result from a skill sidecar within {args.timeout + RESULT_GRACE_SECONDS}s "
            f"(sidecars: {', '.join(context.config.exec_sidecars)})"
        )
    return format_result(result.stdout, result.stderr, result.exit_code, bool(result.timed_out))


EXECUTE_COMMAND = Tool(
    "execute_command",
    "Run a shell command in a skill sidecar container (which has the skill's tools installed) "
    "and return its output, STDERR and exit code. /workspace is shared.",
    ExecuteCommandArgs,
    execute_command,
)
