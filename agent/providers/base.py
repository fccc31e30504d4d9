"""What every model provider shares: the neutral conversation, usage, errors, retries.

The runner keeps the conversation in these provider-neutral types; each provider maps
them to its own wire format (pydantic models in its module) and back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

import aiohttp
from pydantic import BaseModel, ConfigDict

log = logging.getLogger("agent.provider")


class WireModel(BaseModel):
    """A provider wire object: extra fields the provider adds are kept, None is left out."""

    model_config = ConfigDict(extra="allow")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRIES = 4
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0
ERROR_BODY_MAX = 500

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # the raw JSON text the model produced

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as an object; raises ValueError with a readable reason."""
        text = self.arguments.strip() or "{}"
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"arguments are not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError("arguments must be a JSON object")
        return loaded


@dataclass
class Message:
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False
    # The provider's own content blocks for an assistant turn, replayed verbatim
    # (Anthropic requires thinking blocks to come back with the tool results).
    provider_blocks: list[dict[str, Any]] | None = None


@dataclass
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class ChatResponse:
    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    provider_blocks: list[dict[str, Any]] | None = None


class ProviderError(Exception):
    """A provider call that failed for good; the message never contains a credential."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Provider(Protocol):
    name: str

    async def chat(self, messages: list[Message], tools: list[ToolSpec]) -> ChatResponse: ...


def error_message(body: str) -> str:
    """The provider's own error message from an OpenAI- or Anthropic-shaped body."""
    try:
        loaded = json.loads(body)
    except ValueError:
        loaded = None
    if isinstance(loaded, dict):
        error = loaded.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(loaded.get("message"), str):
            return str(loaded["message"])
    text = " ".join(body.split())
    if len(text) > ERROR_BODY_MAX:
        text = text[:ERROR_BODY_MAX] + "..."
    return text or "(empty response body)"


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before retry number `attempt` (0-based)."""
    if retry_after is not None:
        return min(retry_after, BACKOFF_CAP_SECONDS)
    return min(BACKOFF_BASE_SECONDS * float(2**attempt), BACKOFF_CAP_SECONDS)


@dataclass
class HTTPClient:
    """POSTs JSON to a provider with retries; `deadline` is in `loop.time()` seconds."""

    session: aiohttp.ClientSession
    deadline: float
    sleep: Sleep = asyncio.sleep
    max_retries: int = MAX_RETRIES

    async def post_json(
        self,
        url: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                async with self.session.post(
                    url, json=body, headers=dict(headers), params=params
                ) as response:
                    text = await response.text()
                    if response.status < 300:
                        try:
                            loaded = json.loads(text)
                        except ValueError:
                            raise ProviderError(
                                f"provider error: HTTP {response.status} from {url}: "
                                f"response is not JSON: {error_message(text)}",
                                response.status,
                            ) from None
                        if not isinstance(loaded, dict):
                            raise ProviderError(
                                f"provider error: HTTP {response.status} from {url}: "
                                "response is not a JSON object",
                                response.status,
                            )
                        return loaded
                    error = ProviderError(
                        f"provider error: HTTP {response.status} from {url}: {error_message(text)}",
                        response.status,
                    )
                    if response.status not in RETRYABLE_STATUSES:
                        raise error
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            except aiohttp.ClientError as exc:
                error = ProviderError(
                    f"provider error: cannot reach {url}: {exc or type(exc).__name__}"
                )
            if attempt >= self.max_retries:
                raise error
            delay = backoff_delay(attempt, retry_after)
            if loop.time() + delay >= self.deadline:
                raise error
            log.warning(
                "event=provider_retry status=%s attempt=%d delay_s=%.2f url=%s",
                error.status,
                attempt + 1,
                delay,
                url,
            )
            await self.sleep(delay)
            attempt += 1
