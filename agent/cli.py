"""`sympozium agent …`: the programs that run inside an agent pod.

- `sympozium agent run`: the `agent` container (the LLM loop); configured by environment.
- `sympozium agent ipc-bridge`: the `ipc-bridge` sidecar (agent.bridge).
- `sympozium agent tool-executor`: a skill sidecar's command runner (agent.executor).

The sidecars' modules are imported only when their subcommand is chosen, so the agent
container starts fast and does not depend on them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Sequence
from typing import Any

RUN_HELP = """\
Run one agent task and exit. Configured by environment variables:
  TASK | TASK_FILE            the task (else /ipc/input/task.json .task)
  SYSTEM_PROMPT | SYSTEM_PROMPT_FILE
  MODEL_PROVIDER              openai (default), azure-openai, anthropic, ollama,
                              lm-studio, vllm, custom (OpenAI-compatible)
  MODEL_NAME, MODEL_BASE_URL, API_KEY (or OPENAI_API_KEY, ANTHROPIC_API_KEY,
  AZURE_OPENAI_API_KEY, PROVIDER_API_KEY), AZURE_OPENAI_API_VERSION
  THINKING_MODE               off|low|medium|high
  MAX_TOOL_ITERATIONS (50), AGENT_TIMEOUT_SECONDS (600)
  TOOLS_ENABLED, TOOL_POLICY ({"allow": [...], "deny": [...]}), EXEC_SIDECARS
  MEMORY_ENABLED, MEMORY_SERVER_URL, SOURCE_CHANNEL, SOURCE_CHAT_ID
  AGENT_RUN_ID, INSTANCE_NAME, AGENT_NAMESPACE, TRACEPARENT, DEBUG
Exit codes: 0 success, 1 the run failed, 2 bad configuration.
"""

_LAZY = {
    "ipc-bridge": ("agent.bridge", "the IPC bridge sidecar: publishes /ipc files to the event bus"),
    "tool-executor": (
        "agent.executor",
        "a skill sidecar's command runner: answers /ipc/tools exec requests",
    ),
}


class _LazyParser(argparse.ArgumentParser):
    """A subcommand whose arguments come from a module imported only when it is chosen."""

    lazy_module: str | None = None

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self.lazy_module is not None:
            module_name, self.lazy_module = self.lazy_module, None
            _load(self, module_name)
        return super().parse_known_args(args, namespace)


def _load(parser: argparse.ArgumentParser, module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        reason = str(exc)

        def unavailable(args: argparse.Namespace) -> int:
            sys.stderr.write(f"{parser.prog} is not available in this build: {reason}\n")
            return 2

        parser.set_defaults(func=unavailable)
        return
    module.add_arguments(parser)

    def run_module(args: argparse.Namespace) -> int:
        result: Any = asyncio.run(module.run(args))
        return int(result)

    parser.set_defaults(func=run_module)


def _run(args: argparse.Namespace) -> int:
    from agent.runner import main

    return main()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="agent_command", required=True, parser_class=_LazyParser)
    run = sub.add_parser(
        "run",
        help="run one agent task (the agent container)",
        description=RUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.set_defaults(func=_run)
    for name, (module_name, help_text) in _LAZY.items():
        lazy = sub.add_parser(name, help=help_text)
        assert isinstance(lazy, _LazyParser)
        lazy.lazy_module = module_name
