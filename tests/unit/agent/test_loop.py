"""The runner's loop with a scripted in-memory provider (no HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from opentelemetry import trace

from agent.config import load_config
from agent.providers.base import ChatResponse, Message, ToolCall, ToolSpec, Usage
from agent.runner import RunError, RunState, _conversation
from agent.tools import offered_tools
from agent.tools.base import ToolContext


@dataclass
class FakeProvider:
    replies: list[ChatResponse]
    seen_tools: list[list[str]] = field(default_factory=list)
    name: str = "fake"

    async def chat(self, messages: list[Message], tools: list[ToolSpec]) -> ChatResponse:
        self.seen_tools.append([t.name for t in tools])
        return self.replies[min(len(self.seen_tools) - 1, len(self.replies) - 1)]


def call(name: str, arguments: str = "{}", id_: str = "c") -> ChatResponse:
    return ChatResponse("", [ToolCall(id_, name, arguments)], Usage(10, 2))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def run(
    provider: FakeProvider, session: aiohttp.ClientSession, **env: str
) -> tuple[str, RunState]:
    config = load_config({"TASK": "t", "API_KEY": "k", **env})
    state = RunState(messages=[Message("system", "s"), Message("user", "t")])
    context = ToolContext(config=config, session=session)
    text = await _conversation(
        config, provider, offered_tools(config), context, state, trace.get_tracer("test")
    )
    return text, state


async def test_denied_tool_is_refused_and_not_offered(
    session: aiohttp.ClientSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALCLUSTER_MOUNTS", f'{{"/workspace": "{tmp_path}"}}')
    provider = FakeProvider(
        [
            call("write_file", '{"path": "/workspace/x", "content": "y"}'),
            call("no_such_tool"),
            ChatResponse("done", [], Usage(1, 1)),
        ]
    )
    text, state = await run(provider, session, TOOL_POLICY='{"deny": ["write_file"]}')
    assert text == "done"
    assert "write_file" not in provider.seen_tools[0]
    assert not (tmp_path / "x").exists()
    results = [m.content for m in state.messages if m.role == "tool"]
    assert results == [
        'Error: tool "write_file" is not allowed by policy',
        'Error: tool "no_such_tool" is not allowed by policy',
    ]
    assert state.refused_tool_calls == 2
    assert state.tool_calls == 2
    assert (state.input_tokens, state.output_tokens) == (21, 5)


async def test_iteration_limit(session: aiohttp.ClientSession) -> None:
    provider = FakeProvider([call("list_directory", '{"path": "/nowhere"}')])
    with pytest.raises(RunError, match=r"exceeded maximum tool-call iterations \(3\)"):
        await run(provider, session, MAX_TOOL_ITERATIONS="3")
    assert len(provider.seen_tools) == 3


async def test_bad_arguments_go_back_to_the_model(session: aiohttp.ClientSession) -> None:
    provider = FakeProvider([call("read_file", "{broken"), ChatResponse("ok", [], Usage())])
    text, state = await run(provider, session)
    assert text == "ok"
    tool_message = next(m for m in state.messages if m.role == "tool")
    assert tool_message.content.startswith("Error: arguments are not valid JSON")
    assert tool_message.is_error
