from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from agent.config import load_config
from agent.protocol import ExecRequest, ExecResult
from agent.tools.base import ToolContext, ToolError
from agent.tools.exec import EXECUTE_COMMAND, format_result
from agent.tools.files import LIST_DIRECTORY, READ_FILE, WRITE_FILE, confine
from agent.tools.messaging import SCHEDULE_TASK, SEND_CHANNEL_MESSAGE


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    mounts = {}
    for name in ("workspace", "skills", "tmp", "ipc", "memory", "input"):
        (tmp_path / name).mkdir()
        mounts[f"/{name}"] = str(tmp_path / name)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("top secret")
    monkeypatch.setenv("LOCALCLUSTER_MOUNTS", json.dumps(mounts))
    monkeypatch.delenv("IPC_PATH", raising=False)
    return tmp_path


@pytest.fixture
async def context() -> AsyncIterator[ToolContext]:
    config = load_config(
        {
            "TASK": "t",
            "API_KEY": "k",
            "SOURCE_CHANNEL": "slack",
            "SOURCE_CHAT_ID": "C42",
            "EXEC_SIDECARS": "s",
        }
    )
    async with aiohttp.ClientSession() as session:
        yield ToolContext(config=config, session=session)


def test_confine_maps_through_mounts(pod: Path) -> None:
    shown, host = confine("/workspace/a/../b.txt", ("/workspace",))
    assert shown == "/workspace/b.txt"
    assert host == (pod / "workspace" / "b.txt").resolve()
    assert confine("notes.md", ("/workspace",))[0] == "/workspace/notes.md"


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "/workspace/../etc/passwd", "/workspacex/a", "../outside/secret", "", "/"],
)
def test_confine_rejects_escapes(pod: Path, path: str) -> None:
    with pytest.raises(ToolError):
        confine(path, ("/workspace", "/tmp"))


def test_confine_rejects_symlinks_out_of_the_root(pod: Path) -> None:
    os.symlink(pod / "outside", pod / "workspace" / "link")
    os.symlink(pod / "outside" / "secret", pod / "workspace" / "file-link")
    with pytest.raises(ToolError, match="resolves outside /workspace"):
        confine("/workspace/link/secret", ("/workspace",))
    with pytest.raises(ToolError, match="resolves outside"):
        confine("/workspace/file-link", ("/workspace",))


async def test_read_write_list(pod: Path, context: ToolContext) -> None:
    written = await WRITE_FILE.invoke({"path": "/workspace/dir/x.txt", "content": "héllo"}, context)
    assert written == "Wrote 6 bytes to /workspace/dir/x.txt"
    assert (pod / "workspace" / "dir" / "x.txt").read_text() == "héllo"
    assert await READ_FILE.invoke({"path": "/workspace/dir/x.txt"}, context) == "héllo"
    listing = await LIST_DIRECTORY.invoke({"path": "/workspace"}, context)
    assert listing == "dir/"
    listing = await LIST_DIRECTORY.invoke({"path": "/workspace/dir"}, context)
    assert listing == "x.txt (6 bytes)"


async def test_read_is_capped(pod: Path, context: ToolContext) -> None:
    (pod / "skills" / "big.md").write_text("x" * 20000)
    text = await READ_FILE.invoke({"path": "/skills/big.md"}, context)
    assert text.startswith("x" * 8000)
    assert "truncated" in text
    assert len(text) < 8100


async def test_tool_errors_are_text(pod: Path, context: ToolContext) -> None:
    assert (await WRITE_FILE.invoke({"path": "/skills/x", "content": "no"}, context)).startswith(
        "Error: path /skills/x is outside the allowed directories"
    )
    assert (await READ_FILE.invoke({"path": "/outside/secret"}, context)).startswith("Error:")
    assert (await READ_FILE.invoke({"path": "/workspace/missing"}, context)) == (
        "Error: /workspace/missing does not exist"
    )
    assert (await READ_FILE.invoke({}, context)).startswith(
        "Error: invalid arguments for read_file: path:"
    )
    assert (await LIST_DIRECTORY.invoke({"path": "/ipc/nothing"}, context)).startswith("Error:")


async def test_channel_message_and_schedule_files(pod: Path, context: ToolContext) -> None:
    out = await SEND_CHANNEL_MESSAGE.invoke({"channel": "slack", "text": "hi"}, context)
    assert out == "Message queued for slack chat C42"
    (sent,) = (pod / "ipc" / "messages").glob("send-*.json")
    assert json.loads(sent.read_text()) == {"channel": "slack", "chatId": "C42", "text": "hi"}
    bad = await SEND_CHANNEL_MESSAGE.invoke({"channel": "irc", "text": "hi"}, context)
    assert bad.startswith("Error: invalid arguments")
    out = await SCHEDULE_TASK.invoke(
        {"name": "daily", "action": "create", "schedule": "0 9 * * *", "task": "report"}, context
    )
    assert out == "Schedule request queued: create daily"
    (scheduled,) = (pod / "ipc" / "schedules").glob("schedule-*.json")
    assert json.loads(scheduled.read_text()) == {
        "name": "daily",
        "action": "create",
        "schedule": "0 9 * * *",
        "task": "report",
    }
    missing = await SCHEDULE_TASK.invoke({"name": "d", "action": "create"}, context)
    assert missing == "Error: action create needs both schedule and task"


def test_format_result() -> None:
    assert format_result("out\n", "", 0, False) == "out\n"
    assert format_result("out", "bad", 3, False) == "out\nSTDERR:\nbad\nExit code: 3"
    assert format_result("", "", 124, True) == "(command timed out)\nExit code: 124"
    assert format_result("", "", 0, False) == "(no output)"
    assert len(format_result("y" * 9000, "", 0, False)) < 8100


async def test_execute_command_through_ipc_files(pod: Path, context: ToolContext) -> None:
    tools = pod / "ipc" / "tools"

    async def sidecar() -> ExecRequest:
        while True:
            requests = list(tools.glob("exec-request-*.json")) if tools.exists() else []
            if requests:
                request = ExecRequest.model_validate_json(requests[0].read_text())
                result = ExecResult(id=request.id, exit_code=1, stdout="hello\n", stderr="warn")
                (tools / f"exec-result-{request.id}.json").write_text(result.to_json())
                return request
            await asyncio.sleep(0.02)

    task = asyncio.create_task(sidecar())
    output = await EXECUTE_COMMAND.invoke({"command": "echo hello", "timeout": 5}, context)
    request = await task
    assert output == "hello\nSTDERR:\nwarn\nExit code: 1"
    assert request.command == "echo hello"
    assert request.work_dir == "/workspace"
    assert request.timeout == 5
    assert not (tools / f"exec-result-{request.id}.json").exists()


async def test_execute_command_timeout_limit(context: ToolContext) -> None:
    out = await EXECUTE_COMMAND.invoke({"command": "x", "timeout": 500}, context)
    assert out.startswith("Error: invalid arguments for execute_command: timeout:")


def test_schemas_are_plain_json_schema() -> None:
    spec = SEND_CHANNEL_MESSAGE.spec()
    assert spec.parameters["type"] == "object"
    assert set(spec.parameters["properties"]) == {"channel", "text", "chatId"}
    assert spec.parameters["required"] == ["channel", "text"]
    assert "title" not in spec.parameters
