"""Assembling what the model reads: the system prompt and the first user message,
and taking the legacy memory block back out of its answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from agent.config import AgentConfig
from agent.protocol import MEMORY_END, MEMORY_START, pod_path

SKILLS_ROOT = "/skills"
MEMORY_FILE = "/memory/MEMORY.md"
MEMORY_PLACEHOLDER = "No memories recorded yet."
SKILL_FILE_LIMIT = 100_000

_MEMORY_BLOCK = re.compile(re.escape(MEMORY_START) + r"(.*?)" + re.escape(MEMORY_END), re.DOTALL)


def _visible(relative: Path) -> bool:
    return not any(part.startswith(".") for part in relative.parts)


def read_skills(root: Path | None = None) -> list[str]:
    """The non-hidden files under /skills, sorted by path (blocking: call in a thread)."""
    base = root if root is not None else pod_path(SKILLS_ROOT)
    if not base.is_dir():
        return []
    texts: list[str] = []
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(base)
        if not _visible(relative) or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")[:SKILL_FILE_LIMIT]
        except OSError:
            continue
        if text.strip():
            texts.append(text.strip())
    return texts


def read_memory(path: Path | None = None) -> str | None:
    """The legacy memory file's text; None when absent, empty or the placeholder."""
    target = path if path is not None else pod_path(MEMORY_FILE)
    try:
        text = target.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    body = "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")
    ).strip()
    if not body or body == MEMORY_PLACEHOLDER:
        return None
    return text


def build_system_prompt(config: AgentConfig, skills: Sequence[str], tools: Sequence[str]) -> str:
    parts = [config.system_prompt.strip()]
    if skills:
        parts.append(
            "## Your Skills\n\nThe following skills describe how to do things in this "
            "environment. Follow them when they apply.\n\n" + "\n\n---\n\n".join(skills)
        )
    if tools:
        guidance = [
            "## Tools",
            "",
            f"You can call these tools: {', '.join(tools)}.",
            "Call a tool when it helps; you will get its result back. Results that start "
            "with `Error:` mean the call failed; fix the arguments or try another way.",
            "Paths are inside the pod: /workspace is your working directory (shared with "
            "skill sidecars), /tmp is scratch space, /skills holds skill files.",
        ]
        if "execute_command" in tools:
            guidance.append(
                "execute_command runs a shell command in a skill sidecar that has the "
                "skill's command-line tools installed."
            )
        if any(name.startswith("memory_") for name in tools):
            guidance.append(
                "You have a long-term memory: use memory_search before answering questions "
                "about past work, and memory_store to remember facts worth keeping."
            )
        parts.append("\n".join(guidance))
    if config.source_channel:
        chat = f" (chat {config.source_chat_id})" if config.source_chat_id else ""
        parts.append(
            "## Channel\n\n"
            f"This task came from the {config.source_channel} channel{chat}. Your final answer "
            "is sent back there, so keep it readable as a chat message."
        )
    if config.memory_enabled:
        parts.append(
            "## Memory\n\n"
            "You keep a persistent memory between runs. After your answer, end your reply with "
            f"the complete updated memory (concise Markdown bullet points) between {MEMORY_START} "
            f"and {MEMORY_END}, for example:\n{MEMORY_START}\n# Memory\n\n- a fact worth "
            f"keeping\n{MEMORY_END}\nInclude what was already remembered that is still true."
        )
    return "\n\n".join(part for part in parts if part)


def build_user_message(task: str, memory: str | None) -> str:
    if not memory:
        return task
    return f"## Your memory from earlier runs\n\n{memory}\n\n## Task\n\n{task}"


def extract_memory(response: str) -> tuple[str, str | None]:
    """The response without memory blocks, and the last block's content (None if none)."""
    matches = list(_MEMORY_BLOCK.finditer(response))
    if not matches:
        return response, None
    memory = matches[-1].group(1).strip() or None
    stripped = _MEMORY_BLOCK.sub("", response).strip()
    return stripped, memory
