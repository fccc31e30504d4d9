"""The LLM double over real HTTP: protocol shapes, streaming, auth, records, its CLI."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.llmdouble import LLMDouble

SYMPOZIUM = str(Path(sys.executable).parent / "sympozium")


@pytest.fixture
async def double() -> AsyncIterator[LLMDouble]:
    server = LLMDouble(
        {
            "two-calls": [
                {
                    "content": "checking",
                    "tool_calls": [{"name": "a"}, {"name": "b", "arguments": {"x": "{{task}}"}}],
                }
            ]
        },
        api_key="k",
    )
    await server.start()
    yield server
    await server.stop()


async def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        return response.status, await response.json()


async def test_openai_shape_and_auth(double: LLMDouble) -> None:
    body = {
        "model": "two-calls",
        "messages": [{"role": "user", "content": "T"}],
        "tools": [{"type": "function", "function": {"name": "a", "parameters": {}}}],
    }
    status, reply = await post(
        f"{double.url}/v1/chat/completions", body, {"Authorization": "Bearer k"}
    )
    assert status == 200
    message = reply["choices"][0]["message"]
    assert message["content"] == "checking"
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["a", "b"]
    assert json.loads(message["tool_calls"][1]["function"]["arguments"]) == {"x": "T"}
    assert reply["choices"][0]["finish_reason"] == "tool_calls"
    assert (
        reply["usage"]["total_tokens"]
        == reply["usage"]["prompt_tokens"] + reply["usage"]["completion_tokens"]
    )
    status, error = await post(
        f"{double.url}/v1/chat/completions", body, {"Authorization": "Bearer bad"}
    )
    assert status == 401
    assert error["error"]["code"] == "invalid_api_key" and "message" in error["error"]
    status, error = await post(
        f"{double.url}/v1/chat/completions", {"messages": []}, {"Authorization": "Bearer k"}
    )
    assert status == 400 and "model" in error["error"]["message"]


async def test_anthropic_error_shape(double: LLMDouble) -> None:
    body = {"model": "fail-429", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    status, error = await post(f"{double.url}/v1/messages", body, headers)
    assert status == 429
    assert error == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Rate limit reached for requests"},
    }


async def test_streaming_and_models(double: LLMDouble) -> None:
    body = {
        "model": "echo",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "a long enough task text"}],
    }
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer k"}) as session:
        async with session.post(f"{double.url}/v1/chat/completions", json=body) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            raw = await response.text()
        async with session.get(f"{double.url}/v1/models") as response:
            models = await response.json()
        async with session.delete(f"{double.url}/_double/requests") as response:
            assert response.status == 200
    events = [line[len("data: ") :] for line in raw.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "echo: a long enough task text"
    assert chunks[-1]["usage"]["completion_tokens"] > 0
    assert {"echo", "slow", "two-calls"} <= {m["id"] for m in models["data"]}
    assert double.requests == []


async def test_cli(tmp_path: Path) -> None:
    script = tmp_path / "script.yaml"
    script.write_text("scripted:\n  - content: from the file\n")
    process = await asyncio.create_subprocess_exec(
        SYMPOZIUM,
        "llm-double",
        "--port",
        "0",
        "--script",
        str(script),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
        url = line.split()[3]
        body = {"model": "scripted", "messages": [{"role": "user", "content": "x"}]}
        status, reply = await post(f"{url}/v1/chat/completions", body, {})
        assert status == 200
        assert reply["choices"][0]["message"]["content"] == "from the file"
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0


async def test_cli_rejects_bad_script(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text("m:\n  - delay: 1\n")
    process = await asyncio.create_subprocess_exec(
        SYMPOZIUM,
        "llm-double",
        "--port",
        "0",
        "--script",
        str(script),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert b"needs 'then'" in out
