"""The LLM double's script model and step selection (no server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agent.llmdouble import (
    BUILTIN_SCRIPTS,
    LLMDouble,
    Step,
    _anthropic_problem,
    _openai_problem,
    _openai_turns,
    load_scripts,
)
from agent.providers.anthropic import MessagesRequest
from agent.providers.openai import ChatCompletionRequest


def test_builtins_present() -> None:
    assert {
        "echo",
        "instant",
        "tool-then-answer",
        "exec-then-answer",
        "fail-401",
        "fail-429",
        "slow",
    } <= set(BUILTIN_SCRIPTS)


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"content": "a", "error": {"status": 500}},
        {"delay": 1},
        {"content": "a", "then": {"content": "b"}},
        {"error": {"status": 429, "times": 1}},
        {"error": {"status": 200}},
        {"bogus": 1},
    ],
)
def test_invalid_steps(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Step.model_validate(raw)


async def test_step_by_assistant_turns_and_last_repeats() -> None:
    script: list[dict[str, Any]] = [{"content": "first"}, {"tool_calls": [{"name": "x"}]}]
    double = LLMDouble({"two": script})
    assert (await double._resolve("two", 0)).content == "first"
    assert (await double._resolve("two", 1)).tool_calls is not None
    assert (await double._resolve("two", 7)).tool_calls is not None
    assert (await double._resolve("unknown-model", 0)).content == "echo: {{task}}"


async def test_counted_error_then_answer() -> None:
    double = LLMDouble(
        {
            "flaky": [
                {"error": {"status": 429, "times": 2}, "then": {"content": "ok"}},
                {"delay": 0, "then": {"content": "late"}},
            ]
        }
    )
    kinds = [(await double._resolve("flaky", 0)) for _ in range(3)]
    assert [k.error is not None for k in kinds] == [True, True, False]
    assert kinds[2].content == "ok"
    assert (await double._resolve("flaky", 1)).content == "late"


def test_turn_counting_and_templates() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "the task"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "a",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "a", "content": "result one"},
            ],
        }
    )
    turns = _openai_turns(request)
    assert (turns.assistant_turns, turns.task, turns.last_tool_result) == (
        1,
        "the task",
        "result one",
    )
    assert _openai_problem(request) is None


def test_protocol_checks_like_the_real_apis() -> None:
    orphan = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "tool", "tool_call_id": "zz", "content": "x"}]}
    )
    assert "must be a response to a preceeding message" in (_openai_problem(orphan) or "")
    thinking_lost = MessagesRequest.model_validate(
        {
            "model": "c",
            "max_tokens": 12000,
            "thinking": {"type": "enabled", "budget_tokens": 8192},
            "messages": [
                {"role": "user", "content": "t"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "u1", "name": "f", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "u1", "content": "r"}],
                },
            ],
        }
    )
    assert "Expected `thinking`" in (_anthropic_problem(thinking_lost) or "")
    too_small = MessagesRequest.model_validate(
        {
            "model": "c",
            "max_tokens": 2048,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [],
        }
    )
    assert "max_tokens" in (_anthropic_problem(too_small) or "")


def test_script_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "m:\n  - tool_calls: [{name: read_file, arguments: {path: /x}}]\n  - content: ok\n"
    )
    scripts = load_scripts(path)
    assert scripts["m"][0].tool_calls is not None and scripts["m"][0].tool_calls[0].arguments == {
        "path": "/x"
    }
    path.write_text("m:\n  - delay: 1\n")
    with pytest.raises(ValueError, match="needs 'then'"):
        load_scripts(path)
