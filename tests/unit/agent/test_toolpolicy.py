from __future__ import annotations

import pytest

from agent.config import load_config
from agent.toolpolicy import ToolPolicy
from agent.tools import available_tools, offered_tools

NAMES = ["read_file", "write_file", "list_directory", "execute_command", "memory_search"]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({}, NAMES),
        ({"allow": []}, NAMES),
        ({"allow": ["read_file"]}, ["read_file"]),
        ({"deny": ["write_file"]}, [n for n in NAMES if n != "write_file"]),
        ({"allow": ["*_file"], "deny": ["write_*"]}, ["read_file"]),
        ({"deny": ["*"]}, []),
        ({"allow": ["memory_*", "list_directory"]}, ["list_directory", "memory_search"]),
        ({"allow": None, "deny": None}, NAMES),
        ({"allow": ["READ_FILE"]}, []),
    ],
)
def test_matching(policy: dict[str, list[str] | None], expected: list[str]) -> None:
    assert ToolPolicy.model_validate(policy).filter(NAMES) == expected


def test_parse_errors_are_readable() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        ToolPolicy.parse("[1]")
    with pytest.raises(ValueError, match="deny"):
        ToolPolicy.parse('{"deny": [""]}')


def test_offered_tools_follow_configuration_and_policy() -> None:
    base = {"TASK": "t", "API_KEY": "k"}
    names = [t.name for t in available_tools(load_config(base))]
    assert names == ["read_file", "write_file", "list_directory", "schedule_task"]
    full = load_config(
        {
            **base,
            "EXEC_SIDECARS": "skill-k8s",
            "SOURCE_CHANNEL": "slack",
            "MEMORY_SERVER_URL": "http://m:8080",
            "TOOL_POLICY": '{"deny": ["write_file", "memory_st*"]}',
        }
    )
    offered = [t.name for t in offered_tools(full)]
    assert "execute_command" in offered
    assert "send_channel_message" in offered
    assert "memory_search" in offered
    assert "write_file" not in offered
    assert "memory_store" not in offered
    assert offered_tools(load_config({**base, "TOOLS_ENABLED": "false"})) == []
