"""The agent's built-in tools and which of them a run offers."""

from __future__ import annotations

from typing import Any

from agent.config import AgentConfig
from agent.tools.base import Tool, ToolContext, ToolError

__all__ = ["Tool", "ToolContext", "ToolError", "all_tools", "available_tools", "offered_tools"]


def all_tools() -> list[Tool[Any]]:
    from agent.tools.exec import EXECUTE_COMMAND
    from agent.tools.files import LIST_DIRECTORY, READ_FILE, WRITE_FILE
    from agent.tools.memory import MEMORY_LIST, MEMORY_SEARCH, MEMORY_STORE
    from agent.tools.messaging import SCHEDULE_TASK, SEND_CHANNEL_MESSAGE

    return [
        EXECUTE_COMMAND,
        READ_FILE,
        WRITE_FILE,
        LIST_DIRECTORY,
        SEND_CHANNEL_MESSAGE,
        SCHEDULE_TASK,
        MEMORY_SEARCH,
        MEMORY_STORE,
        MEMORY_LIST,
    ]


def available_tools(config: AgentConfig) -> list[Tool[Any]]:
    """The tools this pod can serve at all (before the tool policy)."""
    if not config.tools_enabled:
        return []
    tools: list[Tool[Any]] = []
    for tool in all_tools():
        if tool.name == "execute_command" and not config.exec_sidecars:
            continue
        if tool.name == "send_channel_message" and not config.source_channel:
            continue
        if tool.name.startswith("memory_") and not config.memory_server_url:
            continue
        tools.append(tool)
    return tools


def offered_tools(config: AgentConfig) -> list[Tool[Any]]:
    """The tools offered to the model: available and allowed by the tool policy."""
    return [tool for tool in available_tools(config) if config.tool_policy.allows(tool.name)]
