"""The `sympozium` command: one entry point, one subcommand per component."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sympozium")
    sub = parser.add_subparsers(dest="command", required=True)
    from localcluster.cli import add_arguments as add_localcluster

    add_localcluster(sub.add_parser("localcluster", help="run the one-machine Kubernetes API"))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
