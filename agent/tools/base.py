"""A tool: a name, a description, a pydantic argument model (its JSON schema goes to the
provider) and an async handler. Handlers raise `ToolError` for anything the model did
wrong; `invoke` turns every failure into text starting `Error:` so the loop never crashes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError

from agent.config import AgentConfig
from agent.providers.base import ToolSpec

log = logging.getLogger("agent.tools")

A = TypeVar("A", bound=BaseModel)


class ToolError(Exception):
    """A failure to report to the model as `Error: <message>`."""


class ToolArgs(BaseModel):
    """Base of every argument model: unknown keys are ignored, names may be aliases."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


@dataclass
class ToolContext:
    config: AgentConfig
    session: aiohttp.ClientSession


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            key: _strip_titles(value)
            for key, value in schema.items()
            if not (key == "title" and isinstance(value, str))
        }
    if isinstance(schema, list):
        return [_strip_titles(item) for item in schema]
    return schema


@dataclass(frozen=True)
class Tool(Generic[A]):
    name: str
    description: str
    args: type[A]
    handler: Callable[[A, ToolContext], Awaitable[str]]

    def spec(self) -> ToolSpec:
        schema = _strip_titles(self.args.model_json_schema(by_alias=True))
        schema.setdefault("properties", {})
        schema["type"] = "object"
        return ToolSpec(name=self.name, description=self.description, parameters=schema)

    async def invoke(self, arguments: dict[str, Any], context: ToolContext) -> str:
        try:
            parsed = self.args.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            return f"Error: invalid arguments for {self.name}: {problems}"
        try:
            return await self.handler(parsed, context)
        except ToolError as exc:
            return f"Error: {exc}"
        except OSError as exc:
            return f"Error: {exc.strerror or exc}"
        except Exception as exc:
            log.exception("event=tool_crashed tool=%s", self.name)
            return f"Error: {self.name} failed: {type(exc).__name__}: {exc}"


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... (truncated, {len(text)} characters in total)"
