"""`sympozium agent run` as a real process against the in-process LLM double."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.llmdouble import LLMDouble
from agent.protocol import MEMORY_END, MEMORY_START, ExecRequest, ExecResult, find_memory
from tests.integration.agent.podenv import Pod, make_pod

KEY = "sk-double-secret-key"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"

SCRIPTS: dict[str, list[dict[str, Any]]] = {
    "flaky": [
        {
            "error": {"status": 429, "message": "Rate limit reached", "times": 2, "retry_after": 0},
            "then": {"content": "recovered"},
        }
    ],
    "always-429": [{"error": {"status": 503, "message": "overloaded", "retry_after": 0}}],
    "force-write": [
        {
            "tool_calls": [
                {"name": "write_file", "arguments": {"path": "/workspace/pwned", "content": "x"}}
            ]
        },
        {"content": "{{last_tool_result}}"},
    ],
    "remember": [{"content": f"Noted.\n{MEMORY_START}\n# Memory\n\n- likes tea\n{MEMORY_END}"}],
    "forever-tools": [{"tool_calls": [{"name": "list_directory", "arguments": {"path": "/tmp"}}]}],
}


@pytest.fixture
async def double() -> AsyncIterator[LLMDouble]:
    server = LLMDouble(SCRIPTS, api_key=KEY)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def pod(tmp_path: Path) -> Pod:
    return make_pod(tmp_path)


def openai_env(double: LLMDouble, model: str, **extra: str) -> dict[str, str]:
    return {
        "TASK": "look around",
        "MODEL_NAME": model,
        "MODEL_BASE_URL": f"{double.url}/v1",
        "API_KEY": KEY,
        **extra,
    }


def successful(double: LLMDouble) -> list[dict[str, Any]]:
    return [r for r in double.requests if r.get("status") == 200]


async def test_success_with_a_tool_call(double: LLMDouble, pod: Pod) -> None:
    (pod.path("workspace") / "notes.txt").write_text("hello")
    (pod.path("skills") / "k8s.md").write_text("# Kubernetes skill")
    done = await pod.run(**openai_env(double, "tool-then-answer"))
    assert done.code == 0, done.stderr
    result = done.result
    assert result.status == "success"
    assert result.response == "notes.txt (5 bytes)"
    assert result.metrics.tool_calls == 1
    usage = [r["usage"] for r in successful(double)]
    assert len(usage) == 2
    assert result.metrics.input_tokens == sum(u["input_tokens"] for u in usage)
    assert result.metrics.output_tokens == sum(u["output_tokens"] for u in usage)
    assert pod.written_result() == result
    stream = json.loads((pod.path("ipc") / "output" / "stream-0.json").read_text())
    assert stream == {"type": "text", "content": "notes.txt (5 bytes)", "index": 0}
    assert (pod.path("ipc") / "done").exists()
    system = double.requests[0]["messages"][0]["content"]
    assert "## Your Skills" in system and "# Kubernetes skill" in system
    assert KEY not in done.stdout and KEY not in done.stderr
    assert "execute_command" not in double.requests[0]["tools"]


def answer_exec_request(tools: Path, seen: list[ExecRequest]) -> bool:
    """Answers one exec request the way a skill sidecar's tool executor would."""
    for request_file in tools.glob("exec-request-*.json") if tools.exists() else []:
        request = ExecRequest.model_validate_json(request_file.read_text())
        seen.append(request)
        request_file.unlink()
        result = ExecResult(id=request.id, exit_code=0, stdout="hello from the sidecar\n")
        temporary = tools / f".tmp-{request.id}"
        temporary.write_text(result.to_json())
        temporary.rename(tools / f"exec-result-{request.id}.json")
        return True
    return False


async def fake_sidecar(tools: Path, seen: list[ExecRequest]) -> None:
    while True:
        if await asyncio.to_thread(answer_exec_request, tools, seen):
            return
        await asyncio.sleep(0.05)


async def test_exec_through_a_sidecar(double: LLMDouble, pod: Pod) -> None:
    seen: list[ExecRequest] = []
    sidecar = asyncio.create_task(fake_sidecar(pod.path("ipc") / "tools", seen))
    done = await pod.run(
        **openai_env(
            double, "exec-then-answer", EXEC_SIDECARS="skill-shell", TRACEPARENT=TRACEPARENT
        )
    )
    await asyncio.wait_for(sidecar, timeout=5)
    assert done.code == 0, done.stderr
    assert done.result.response == "hello from the sidecar\n"
    assert "execute_command" in double.requests[0]["tools"]
    (request,) = seen
    assert request.command == "echo hello from the sidecar"
    assert request.work_dir == "/workspace"
    assert request.meta is not None and request.meta.trace_id == TRACE_ID
    assert request.meta.traceparent is not None and TRACE_ID in request.meta.traceparent


async def test_provider_401(double: LLMDouble, pod: Pod) -> None:
    done = await pod.run(**openai_env(double, "fail-401"))
    assert done.code == 1
    assert done.result.status == "error"
    assert done.result.error == (
        f"provider error: HTTP 401 from {double.url}/v1/chat/completions: Incorrect API key provided"
    )
    assert pod.written_result() == done.result
    assert (pod.path("ipc") / "done").exists()
    assert not (pod.path("ipc") / "output" / "stream-0.json").exists()
    assert len(double.requests) == 1  # not retried


async def test_wrong_key_is_not_leaked(double: LLMDouble, pod: Pod) -> None:
    wrong = "sk-wrong-key-do-not-print"
    done = await pod.run(**openai_env(double, "instant", API_KEY=wrong))
    assert done.code == 1
    assert "HTTP 401" in (done.result.error or "")
    assert "Incorrect API key provided" in (done.result.error or "")
    assert wrong not in done.stdout and wrong not in done.stderr


async def test_429_is_retried_then_succeeds(double: LLMDouble, pod: Pod) -> None:
    done = await pod.run(**openai_env(double, "flaky"))
    assert done.code == 0, done.stderr
    assert done.result.response == "recovered"
    assert [r["status"] for r in double.requests] == [429, 429, 200]
    assert "event=provider_retry status=429" in done.stderr


async def test_retries_give_up(double: LLMDouble, pod: Pod) -> None:
    done = await pod.run(**openai_env(double, "always-429"))
    assert done.code == 1
    assert "HTTP 503" in (done.result.error or "") and "overloaded" in (done.result.error or "")
    assert len(double.requests) == 5  # the first try and 4 retries


async def test_timeout(double: LLMDouble, pod: Pod) -> None:
    done = await pod.run(**openai_env(double, "slow", AGENT_TIMEOUT_SECONDS="2"))
    assert done.code == 1
    assert done.result.error == "agent timed out after 2s"
    assert pod.written_result().error == "agent timed out after 2s"


async def test_denied_tool_is_not_offered_and_refused(double: LLMDouble, pod: Pod) -> None:
    done = await pod.run(
        **openai_env(double, "force-write", TOOL_POLICY='{"deny": ["write_*"], "allow": []}')
    )
    assert done.code == 0, done.stderr
    assert done.result.response == 'Error: tool "write_file" is not allowed by policy'
    assert not (pod.path("workspace") / "pwned").exists()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{double.url}/_double/requests") as response,
    ):
        recorded = await response.json()
    assert recorded[0]["tools"] == ["read_file", "list_directory", "schedule_task"]
    assert "event=tool_refused tool=write_file" in done.stderr


async def test_iteration_limit(double: LLMDouble, pod: Pod) -> None:
    done = await pod.run(**openai_env(double, "forever-tools", MAX_TOOL_ITERATIONS="3"))
    assert done.code == 1
    assert done.result.error == "exceeded maximum tool-call iterations (3)"
    assert len(double.requests) == 3


async def test_openai_reasoning_effort(double: LLMDouble, pod: Pod) -> None:
    done = await pod.run(**openai_env(double, "instant", THINKING_MODE="high"))
    assert done.code == 0, done.stderr
    assert double.requests[0]["body"]["reasoning_effort"] == "high"


async def test_anthropic_end_to_end_with_thinking(double: LLMDouble, pod: Pod) -> None:
    (pod.path("workspace") / "a.md").write_text("abc")
    done = await pod.run(
        TASK="look around",
        MODEL_PROVIDER="anthropic",
        MODEL_NAME="tool-then-answer",
        MODEL_BASE_URL=double.url,
        ANTHROPIC_API_KEY=KEY,
        THINKING_MODE="medium",
    )
    assert done.code == 0, done.stderr
    assert done.result.response == "a.md (3 bytes)"
    first, second = double.requests
    assert first["path"] == "/v1/messages"
    assert first["body"]["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert first["body"]["max_tokens"] > 8192
    assert "list_directory" in first["tools"]
    assistant = second["messages"][1]
    assert [b["type"] for b in assistant["content"]] == ["thinking", "tool_use"]
    assert second["messages"][2]["content"][0]["type"] == "tool_result"
    usage = [r["usage"] for r in double.requests]
    assert done.result.metrics.input_tokens == sum(u["input_tokens"] for u in usage)


async def test_anthropic_error_shape(double: LLMDouble, pod: Pod) -> None:
    done = await pod.run(
        TASK="t",
        MODEL_PROVIDER="anthropic",
        MODEL_NAME="instant",
        MODEL_BASE_URL=double.url,
        API_KEY="nope",
    )
    assert done.code == 1
    assert (
        done.result.error
        == f"provider error: HTTP 401 from {double.url}/v1/messages: invalid x-api-key"
    )


async def test_azure_openai(double: LLMDouble, pod: Pod) -> None:
    done = await pod.run(
        TASK="t",
        MODEL_PROVIDER="azure-openai",
        MODEL_NAME="instant",
        MODEL_BASE_URL=double.url,
        AZURE_OPENAI_API_KEY=KEY,
    )
    assert done.code == 0, done.stderr
    assert done.result.response == "done"
    (request,) = double.requests
    assert request["path"] == "/openai/deployments/instant/chat/completions"
    assert request["query"] == {"api-version": "2024-06-01"}


async def test_legacy_memory(double: LLMDouble, pod: Pod) -> None:
    (pod.path("memory") / "MEMORY.md").write_text("# Memory\n\n- likes coffee\n")
    done = await pod.run(**openai_env(double, "remember", MEMORY_ENABLED="true"))
    assert done.code == 0, done.stderr
    assert done.result.response == "Noted."
    assert find_memory(done.stdout) == "# Memory\n\n- likes tea"
    user = double.requests[0]["messages"][1]["content"]
    assert "likes coffee" in user and user.endswith("look around")
    debug = await pod.run(**openai_env(double, "remember", MEMORY_ENABLED="true", DEBUG="true"))
    assert MEMORY_START in (debug.result.response or "")


async def test_bad_configuration(pod: Pod) -> None:
    done = await pod.run(MODEL_PROVIDER="openai", API_KEY="k")
    assert done.code == 2
    assert "no task: set TASK or TASK_FILE" in done.stderr
    assert done.result.status == "error"
    assert (pod.path("ipc") / "done").exists()


async def test_task_file(double: LLMDouble, pod: Pod) -> None:
    (pod.path("input") / "task").write_text("from the configmap")
    env = openai_env(double, "echo", TASK_FILE="/input/task")
    env.pop("TASK")
    done = await pod.run(**env)
    assert done.code == 0, done.stderr
    assert done.result.response == "echo: from the configmap"
