"""Mapping the neutral conversation to each provider's wire format and back."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from agent.providers import anthropic, openai
from agent.providers.base import (
    HTTPClient,
    Message,
    ProviderError,
    ToolCall,
    ToolSpec,
    backoff_delay,
    error_message,
    retry_after_seconds,
)

NO_HTTP = cast(HTTPClient, None)
TOOLS = [
    ToolSpec(
        "read_file", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}}
    )
]


def conversation(blocks: list[dict[str, Any]] | None = None) -> list[Message]:
    return [
        Message("system", "sys"),
        Message("user", "task"),
        Message(
            "assistant",
            "",
            tool_calls=[
                ToolCall("c1", "read_file", '{"path": "/a"}'),
                ToolCall("c2", "read_file", '{"path": "/b"}'),
            ],
            provider_blocks=blocks,
        ),
        Message("tool", "A", tool_call_id="c1", name="read_file"),
        Message("tool", "Error: nope", tool_call_id="c2", name="read_file", is_error=True),
    ]


def test_openai_request() -> None:
    request = openai.build_request("m", conversation(), TOOLS, "off").dump()
    assert "reasoning_effort" not in request
    assert request["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "description": "Read a file",
                "parameters": TOOLS[0].parameters,
            },
        }
    ]
    messages = request["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool"]
    assert messages[2]["tool_calls"][1] == {
        "id": "c2",
        "type": "function",
        "function": {"name": "read_file", "arguments": '{"path": "/b"}'},
    }
    assert "content" not in messages[2]
    assert messages[4] == {"role": "tool", "content": "Error: nope", "tool_call_id": "c2"}


@pytest.mark.parametrize("mode", ["low", "medium", "high"])
def test_openai_reasoning_effort(mode: str) -> None:
    assert openai.build_request("m", conversation(), [], mode).dump()["reasoning_effort"] == mode
    assert "tools" not in openai.build_request("m", conversation(), [], mode).dump()


def test_openai_response() -> None:
    body = {
        "id": "x",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "read_file", "arguments": '{"path":"/x"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }
    response = openai.parse_response(body, "u")
    assert response.text == ""
    assert response.tool_calls == [ToolCall("call_1", "read_file", '{"path":"/x"}')]
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 7)
    with pytest.raises(ProviderError, match="no choices"):
        openai.parse_response({"choices": []}, "u")


def test_anthropic_request_without_thinking() -> None:
    request = anthropic.build_request("claude", conversation(), TOOLS, "off").dump()
    assert request["max_tokens"] == 8192
    assert "thinking" not in request
    assert request["system"] == "sys"
    assert request["tools"] == [
        {"name": "read_file", "description": "Read a file", "input_schema": TOOLS[0].parameters}
    ]
    messages = request["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0] == {"role": "user", "content": "task"}
    assert messages[1]["content"] == [
        {"type": "tool_use", "id": "c1", "name": "read_file", "input": {"path": "/a"}},
        {"type": "tool_use", "id": "c2", "name": "read_file", "input": {"path": "/b"}},
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "A"},
        {"type": "tool_result", "tool_use_id": "c2", "content": "Error: nope", "is_error": True},
    ]


@pytest.mark.parametrize(("mode", "budget"), [("low", 2048), ("medium", 8192), ("high", 16384)])
def test_anthropic_thinking(mode: str, budget: int) -> None:
    blocks: list[dict[str, Any]] = [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "tool_use", "id": "c1", "name": "read_file", "input": {"path": "/a"}},
    ]
    request = anthropic.build_request("claude", conversation(blocks), TOOLS, mode).dump()
    assert request["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert request["max_tokens"] > budget
    assert request["messages"][1]["content"] == blocks


def test_anthropic_response_keeps_blocks() -> None:
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [
            {"type": "thinking", "thinking": "let me see", "signature": "abc"},
            {"type": "text", "text": "Reading."},
            {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "/x"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 5},
    }
    response = anthropic.parse_response(body, "u")
    assert response.text == "Reading."
    assert response.tool_calls[0].name == "read_file"
    assert json.loads(response.tool_calls[0].arguments) == {"path": "/x"}
    assert response.provider_blocks == body["content"]
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 5)


def test_urls_and_headers() -> None:
    provider = anthropic.AnthropicProvider(
        http=NO_HTTP, base_url="https://api.anthropic.com", model="c", api_key="k"
    )
    assert provider.url == "https://api.anthropic.com/v1/messages"
    assert provider.headers() == {"anthropic-version": "2023-06-01", "x-api-key": "k"}
    azure = openai.OpenAIProvider(
        http=NO_HTTP,
        base_url="https://r.openai.azure.com",
        model="dep",
        api_key="k",
        azure_api_version="2024-06-01",
    )
    assert azure.url == "https://r.openai.azure.com/openai/deployments/dep/chat/completions"
    assert azure.headers() == {"api-key": "k"}
    plain = openai.OpenAIProvider(http=NO_HTTP, base_url="http://h/v1", model="m")
    assert plain.url == "http://h/v1/chat/completions"
    assert plain.headers() == {}


def test_error_message_shapes() -> None:
    assert error_message('{"error": {"message": "Incorrect API key provided", "type": "x"}}') == (
        "Incorrect API key provided"
    )
    assert (
        error_message('{"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}')
        == "slow"
    )
    assert error_message("<html>Bad gateway</html>") == "<html>Bad gateway</html>"
    assert error_message("") == "(empty response body)"


def test_retry_after_and_backoff() -> None:
    assert retry_after_seconds("2") == 2
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert [backoff_delay(n, None) for n in range(4)] == [1, 2, 4, 8]
    assert backoff_delay(0, 3) == 3
    assert backoff_delay(0, 9999) == 30


def test_tool_call_arguments() -> None:
    assert ToolCall("i", "n", "").parsed_arguments() == {}
    with pytest.raises(ValueError, match="not valid JSON"):
        ToolCall("i", "n", "{oops").parsed_arguments()
    with pytest.raises(ValueError, match="JSON object"):
        ToolCall("i", "n", "[1]").parsed_arguments()
