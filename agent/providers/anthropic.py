"""Anthropic Messages API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from agent.providers.base import (
    ChatResponse,
    HTTPClient,
    Message,
    ProviderError,
    ToolCall,
    ToolSpec,
    Usage,
)
from agent.providers.base import WireModel as _Wire

ANTHROPIC_VERSION = "2023-06-01"
MAX_TOKENS = 8192
THINKING_BUDGETS = {"low": 2048, "medium": 8192, "high": 16384}
THINKING_HEADROOM = 4096

# ---- wire format (shared with the LLM test double)


class ContentBlock(_Wire):
    """One content block; which fields are set depends on `type`."""

    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list[dict[str, Any]] | None = None
    is_error: bool | None = None
    thinking: str | None = None
    signature: str | None = None

    def result_text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return ""


class AnthropicMessage(_Wire):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]

    def blocks(self) -> list[ContentBlock]:
        if isinstance(self.content, str):
            return [ContentBlock(type="text", text=self.content)]
        return self.content


class AnthropicTool(_Wire):
    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)


class ThinkingConfig(_Wire):
    type: Literal["enabled", "disabled"]
    budget_tokens: int | None = None


class MessagesRequest(_Wire):
    model: str
    max_tokens: int
    messages: list[AnthropicMessage]
    system: str | list[dict[str, Any]] | None = None
    tools: list[AnthropicTool] | None = None
    thinking: ThinkingConfig | None = None
    stream: bool | None = None


class AnthropicUsage(_Wire):
    input_tokens: int = 0
    output_tokens: int = 0


class MessagesResponse(_Wire):
    id: str = ""
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str = ""
    content: list[ContentBlock]
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: AnthropicUsage = Field(default_factory=AnthropicUsage)


# ---- mapping


def _input(call: ToolCall) -> dict[str, Any]:
    try:
        loaded = json.loads(call.arguments or "{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def to_wire_messages(messages: list[Message]) -> tuple[str | None, list[AnthropicMessage]]:
    system_parts: list[str] = []
    wire: list[AnthropicMessage] = []
    pending_results: list[ContentBlock] = []

    def flush() -> None:
        if pending_results:
            wire.append(AnthropicMessage(role="user", content=list(pending_results)))
            pending_results.clear()

    for message in messages:
        if message.role == "system":
            system_parts.append(message.content)
        elif message.role == "tool":
            pending_results.append(
                ContentBlock(
                    type="tool_result",
                    tool_use_id=message.tool_call_id,
                    content=message.content,
                    is_error=True if message.is_error else None,
                )
            )
        elif message.role == "assistant":
            flush()
            if message.provider_blocks is not None:
                blocks = [ContentBlock.model_validate(b) for b in message.provider_blocks]
            else:
                blocks = []
                if message.content:
                    blocks.append(ContentBlock(type="text", text=message.content))
                blocks.extend(
                    ContentBlock(type="tool_use", id=c.id, name=c.name, input=_input(c))
                    for c in message.tool_calls
                )
            wire.append(AnthropicMessage(role="assistant", content=blocks))
        else:
            flush()
            wire.append(AnthropicMessage(role="user", content=message.content))
    flush()
    return ("\n\n".join(system_parts) or None), wire


def build_request(
    model: str, messages: list[Message], tools: list[ToolSpec], thinking: str
) -> MessagesRequest:
    system, wire = to_wire_messages(messages)
    budget = THINKING_BUDGETS.get(thinking)
    return MessagesRequest(
        model=model,
        max_tokens=max(MAX_TOKENS, budget + THINKING_HEADROOM) if budget else MAX_TOKENS,
        system=system,
        messages=wire,
        tools=[
            AnthropicTool(name=t.name, description=t.description, input_schema=t.parameters)
            for t in tools
        ]
        or None,
        thinking=ThinkingConfig(type="enabled", budget_tokens=budget) if budget else None,
    )


def parse_response(body: dict[str, Any], url: str) -> ChatResponse:
    try:
        response = MessagesResponse.model_validate(body)
    except ValueError as exc:
        raise ProviderError(f"provider error: unexpected response from {url}: {exc}") from None
    text = "".join(b.text or "" for b in response.content if b.type == "text")
    calls = [
        ToolCall(id=b.id or "", name=b.name or "", arguments=json.dumps(b.input or {}))
        for b in response.content
        if b.type == "tool_use"
    ]
    return ChatResponse(
        text=text,
        tool_calls=calls,
        usage=Usage(
            input_tokens=response.usage.input_tokens, output_tokens=response.usage.output_tokens
        ),
        provider_blocks=[b.dump() for b in response.content],
    )


@dataclass
class AnthropicProvider:
    http: HTTPClient
    base_url: str
    model: str
    api_key: str | None = None
    thinking: str = "off"
    name: str = "anthropic"

    @property
    def url(self) -> str:
        base = self.base_url
        return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    def headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    async def chat(self, messages: list[Message], tools: list[ToolSpec]) -> ChatResponse:
        request = build_request(self.model, messages, tools, self.thinking)
        body = await self.http.post_json(self.url, request.dump(), self.headers())
        return parse_response(body, self.url)
