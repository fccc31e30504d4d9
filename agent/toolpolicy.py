"""Which tools an agent run may use: the AgentRun's `toolPolicy`, enforced in the pod.

`TOOL_POLICY` is JSON `{"allow": [...], "deny": [...]}`; entries are tool names or
fnmatch globs (`memory_*`). A tool is offered iff the allow list is empty or matches it,
and no deny entry matches it. Matching is case-sensitive, as tool names are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator


class ToolPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    @field_validator("allow", "deny", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return () if value is None else value

    @field_validator("allow", "deny")
    @classmethod
    def _no_blank_entries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(entry.strip() for entry in value)
        if any(not entry for entry in cleaned):
            raise ValueError("entries must be non-empty tool names or globs")
        return cleaned

    @classmethod
    def parse(cls, raw: str) -> ToolPolicy:
        """Parse `TOOL_POLICY`; raises ValueError with a readable reason."""
        try:
            loaded = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError('expected a JSON object like {"allow": [...], "deny": [...]}')
        try:
            return cls.model_validate(loaded)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "policy"
            raise ValueError(f"{where}: {first['msg']}") from None

    def allows(self, tool: str) -> bool:
        if self.allow and not any(fnmatchcase(tool, entry) for entry in self.allow):
            return False
        return not any(fnmatchcase(tool, entry) for entry in self.deny)

    def filter(self, tools: Iterable[str]) -> list[str]:
        return [tool for tool in tools if self.allows(tool)]
