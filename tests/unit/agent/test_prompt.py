from __future__ import annotations

from pathlib import Path

from agent.config import load_config
from agent.prompt import (
    build_system_prompt,
    build_user_message,
    extract_memory,
    read_memory,
    read_skills,
)
from agent.protocol import MEMORY_END, MEMORY_START

BASE = {"TASK": "t", "API_KEY": "k", "SYSTEM_PROMPT": "You are Ada."}


def test_skills_skip_hidden_files_and_follow_projected_links(tmp_path: Path) -> None:
    data = tmp_path / "..2024_01_01"
    data.mkdir()
    (data / "b.md").write_text("# Skill B\n")
    (tmp_path / "..data").symlink_to(data.name)
    (tmp_path / "b.md").symlink_to("..data/b.md")
    (tmp_path / "a.md").write_text("# Skill A")
    (tmp_path / ".hidden").write_text("nope")
    (tmp_path / "empty.md").write_text("  \n")
    assert read_skills(tmp_path) == ["# Skill A", "# Skill B"]
    assert read_skills(tmp_path / "missing") == []


def test_system_prompt_sections() -> None:
    config = load_config(BASE)
    assert build_system_prompt(config, [], []) == "You are Ada."
    prompt = build_system_prompt(config, ["skill one", "skill two"], ["read_file"])
    assert prompt.startswith("You are Ada.\n\n## Your Skills")
    assert "skill one\n\n---\n\nskill two" in prompt
    assert "You can call these tools: read_file." in prompt
    assert "Channel" not in prompt and MEMORY_START not in prompt


def test_channel_and_memory_sections() -> None:
    config = load_config(
        {**BASE, "SOURCE_CHANNEL": "telegram", "SOURCE_CHAT_ID": "99", "MEMORY_ENABLED": "true"}
    )
    prompt = build_system_prompt(config, [], [])
    assert "from the telegram channel (chat 99)" in prompt
    assert MEMORY_START in prompt and MEMORY_END in prompt


def test_memory_file(tmp_path: Path) -> None:
    memory = tmp_path / "MEMORY.md"
    assert read_memory(memory) is None
    memory.write_text("# Agent Memory\n\nNo memories recorded yet.\n")
    assert read_memory(memory) is None
    memory.write_text("# Memory\n\n- the cluster is kind\n")
    assert read_memory(memory) == "# Memory\n\n- the cluster is kind"
    message = build_user_message("the task", read_memory(memory))
    assert message.index("the cluster is kind") < message.index("the task")
    assert build_user_message("the task", None) == "the task"


def test_extract_memory() -> None:
    text = f"Answer.\n{MEMORY_START}\n- old\n{MEMORY_END}\nmore\n{MEMORY_START}\n- new fact\n{MEMORY_END}"
    stripped, memory = extract_memory(text)
    assert memory == "- new fact"
    assert stripped == "Answer.\n\nmore"
    assert extract_memory("plain") == ("plain", None)
    assert extract_memory(f"a{MEMORY_START}  {MEMORY_END}") == ("a", None)
