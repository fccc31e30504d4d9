"""OpenAI Chat Completions (also Azure OpenAI, Ollama, LM Studio, vLLM and any compatible server)."""

from __future__ import annotations

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

# ---- wire format (shared with the LLM test double)


class FunctionCall(_Wire):
    name: str
    arguments: str = "{}"


class WireToolCall(_Wire):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[WireToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if isinstance(self.content, list):
            return "".join(
                str(part.get("text", "")) for part in self.content if part.get("type") == "text"
            )
        return ""


class FunctionDefinition(_Wire):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


class ToolDefinition(_Wire):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class ChatCompletionRequest(_Wire):
    model: str
    messages: list[ChatMessage]
    tools: list[ToolDefinition] | None = None
    tool_choice: str | dict[str, Any] | None = None
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    stream: bool | None = None


class CompletionUsage(_Wire):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Choice(_Wire):
    index: int = 0
    message: ChatMessage
    finish_reason: str | None = None


class ChatCompletion(_Wire):
    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: list[Choice]
    usage: CompletionUsage | None = None


# ---- mapping


def to_wire_messages(messages: list[Message]) -> list[ChatMessage]:
    wire: list[ChatMessage] = []
    for message in messages:
        if message.role == "assistant":
            calls = [
                WireToolCall(id=c.id, function=FunctionCall(name=c.name, arguments=c.arguments))
                for c in message.tool_calls
            ]
            wire.append(
                ChatMessage(
                    role="assistant",
                    content=message.content or (None if calls else ""),
                    tool_calls=calls or None,
                )
            )
        elif message.role == "tool":
            wire.append(
                ChatMessage(role="tool", content=message.content, tool_call_id=message.tool_call_id)
            )
        else:
            wire.append(ChatMessage(role=message.role, content=message.content))
    return wire


def build_request(
    model: str, messages: list[Message], tools: list[ToolSpec], thinking: str
) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model=model,
        messages=to_wire_messages(messages),
        tools=[
            ToolDefinition(
                function=FunctionDefinition(
                    name=t.name, description=t.description, parameters=t.parameters
                )
            )
            for t in tools
        ]
        or None,
        reasoning_effort=thinking if thinking in ("low", "medium", "high") else None,  # type: ignore[arg-type]
    )


def parse_response(body: dict[str, Any], url: str) -> ChatResponse:
    try:
        completion = ChatCompletion.model_validate(body)
    except ValueError as exc:
        raise ProviderError(f"provider error: unexpected response from {url}: {exc}") from None
    if not completion.choices:
        raise ProviderError(f"provider error: response from {url} has no choices")
    message = completion.choices[0].message
    usage = completion.usage or CompletionUsage()
    return ChatResponse(
        text=message.text(),
        tool_calls=[
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
            for c in message.tool_calls or []
        ],
        usage=Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens),
    )


@dataclass
class OpenAIProvider:
    http: HTTPClient
    base_url: str
    model: str
    api_key: str | None = None
    thinking: str = "off"
    azure_api_version: str | None = None  # set → Azure OpenAI
    name: str = "openai"

    @property
    def url(self) -> str:
        if self.azure_api_version is not None:
            return f"{self.base_url}/openai/deployments/{self.model}/chat/completions"
        return f"{self.base_url}/chat/completions"

    def headers(self) -> dict[str, str]:
        if not self.api_key:
            return {}
        if self.azure_api_version is not None:
            return {"api-key": self.api_key}
        return {"Authorization": f"Bearer {self.api_key}"}

    async def chat(self, messages: list[Message], tools: list[ToolSpec]) -> ChatResponse:
        request = build_request(self.model, messages, tools, self.thinking)
        params = (
            {"api-version": self.azure_api_version} if self.azure_api_version is not None else None
        )
        body = await self.http.post_json(self.url, request.dump(), self.headers(), params)
        return parse_response(body, self.url)
