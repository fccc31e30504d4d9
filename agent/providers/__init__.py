"""Model providers: one module per wire protocol, chosen by `MODEL_PROVIDER`."""

from __future__ import annotations

from agent.config import AgentConfig
from agent.providers.base import (
    ChatResponse,
    HTTPClient,
    Message,
    Provider,
    ProviderError,
    ToolCall,
    ToolSpec,
    Usage,
)

__all__ = [
    "ChatResponse",
    "HTTPClient",
    "Message",
    "Provider",
    "ProviderError",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "make_provider",
]


def make_provider(config: AgentConfig, http: HTTPClient) -> Provider:
    if config.provider == "anthropic":
        from agent.providers.anthropic import AnthropicProvider

        return AnthropicProvider(
            http=http,
            base_url=config.base_url,
            model=config.model,
            api_key=config.api_key,
            thinking=config.thinking,
        )
    from agent.providers.openai import OpenAIProvider

    return OpenAIProvider(
        http=http,
        base_url=config.base_url,
        model=config.model,
        api_key=config.api_key,
        thinking=config.thinking,
        azure_api_version=config.azure_api_version if config.provider == "azure-openai" else None,
        name=config.provider,
    )
