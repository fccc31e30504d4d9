"""What the pod's long-running helpers (IPC bridge, tool executor) share: the IPC root
flag, stopping on SIGTERM/SIGINT, and running as `python -m`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from agent.protocol import ipc_path


def add_ipc_path_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ipc-path",
        default=os.environ.get("IPC_PATH", ""),
        help="the IPC root (IPC_PATH; default /ipc, mapped through LOCALCLUSTER_MOUNTS)",
    )


def ipc_root(args: argparse.Namespace) -> Path:
    """`--ipc-path` when given, else `/ipc` as this pod sees it."""
    return Path(args.ipc_path) if args.ipc_path else ipc_path()


async def serve_until_signal(serve: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Runs `serve(stop)`; SIGTERM or SIGINT sets `stop`, so the helper can finish cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        return await serve(stop)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def main(
    prog: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], Awaitable[int]],
    argv: list[str] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=prog)
    add_arguments(parser)
    args = parser.parse_args(argv)

    async def go() -> int:
        return await run(args)

    return asyncio.run(go())
