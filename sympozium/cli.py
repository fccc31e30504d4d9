"""The `sympozium` command: one entry point, one subcommand per component.

Only the chosen component's module is imported, so short-lived commands such as
`sympozium agent run` (once per agent pod) start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMPONENTS: dict[str, tuple[str, str]] = {
    "up": ("sympozium.up", "run the whole system on this machine (local cluster + controller)"),
    "controller": ("reconcilers.cli", "run the controller-manager"),
    "agent": ("agent.cli", "what runs inside agent pods (run, ipc-bridge, tool-executor)"),
    "llm-double": ("agent.llmdouble", "serve the scripted OpenAI/Anthropic-compatible test double"),
    "localcluster": ("localcluster.cli", "run the one-machine Kubernetes API"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="sympozium")
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = [argv[0]] if argv and argv[0] in COMPONENTS else list(COMPONENTS)
    for name in chosen:
        module_name, help_text = COMPONENTS[name]
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
