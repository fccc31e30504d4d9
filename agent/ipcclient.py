"""The agent's side of the `/ipc` file protocol: exec requests to skill sidecars,
channel messages and schedule requests for the IPC bridge.

Every file is written atomically (`write_atomic`) so a watcher never sees half of it;
file I/O runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from pathlib import Path

from pydantic import ValidationError

from agent.protocol import (
    ChannelMessage,
    ExecRequest,
    ExecResult,
    ScheduleRequest,
    TraceMeta,
    ipc_path,
    write_atomic,
)

POLL_SECONDS = 0.1


def current_trace_meta() -> TraceMeta | None:
    """The current OpenTelemetry span as `_meta` for a request file; None without a trace."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    trace_id = f"{context.trace_id:032x}"
    span_id = f"{context.span_id:016x}"
    flags = f"{int(context.trace_flags):02x}"
    return TraceMeta(
        trace_id=trace_id, span_id=span_id, traceparent=f"00-{trace_id}-{span_id}-{flags}"
    )


def new_exec_id() -> str:
    return uuid.uuid4().hex[:16]


def _nano_name(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}.json"


async def _write(path: Path, text: str) -> Path:
    await asyncio.to_thread(write_atomic, path, text)
    return path


def _read_result(path: Path) -> ExecResult | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return ExecResult.model_validate_json(text)
    except ValidationError:
        return None  # not complete yet (a writer that is not atomic); look again


async def exec_command(request: ExecRequest, wait_seconds: float) -> ExecResult | None:
    """Hand a command to a skill sidecar and wait for its result; None after `wait_seconds`."""
    tools = ipc_path("tools")
    result_path = tools / f"exec-result-{request.id}.json"
    await _write(tools / f"exec-request-{request.id}.json", request.to_json())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        result = await asyncio.to_thread(_read_result, result_path)
        if result is not None:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(result_path.unlink)
            return result
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(POLL_SECONDS)


async def send_channel_message(message: ChannelMessage) -> Path:
    return await _write(ipc_path("messages") / _nano_name("send"), message.to_json())


async def request_schedule(request: ScheduleRequest) -> Path:
    return await _write(ipc_path("schedules") / _nano_name("schedule"), request.to_json())
