"""`sympozium controller`: the controller-manager process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

from controller import Client
from reconcilers.agentrun import AgentRunOptions
from reconcilers.manager import ControllerSettings, build
from reconcilers.podbuilder import DEFAULT_AGENT_IMAGE

log = logging.getLogger("sympozium.controller")


def bind_address(text: str, flag: str) -> tuple[str, int | None]:
    """`:8080`, `127.0.0.1:8080`, or `0` (off), as controller-runtime spells them."""
    if text in ("0", ""):
        return "", None
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        raise argparse.ArgumentTypeError(f"{flag}: expected [HOST]:PORT or 0, got {text!r}")
    return host or "0.0.0.0", int(port)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--kubeconfig", type=Path, default=env("KUBECONFIG") or None)
    parser.add_argument("--leader-elect", action="store_true", help="run one active replica")
    parser.add_argument(
        "--leader-election-namespace",
        default=env("POD_NAMESPACE", "sympozium-system"),
    )
    parser.add_argument("--metrics-bind-address", default=":8080", help="[HOST]:PORT, 0 = off")
    parser.add_argument("--health-probe-bind-address", default=":8081", help="[HOST]:PORT, 0 = off")
    parser.add_argument(
        "--max-run-history", type=int, default=50, help="finished runs kept per instance"
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--agent-image",
        default=env("SYMPOZIUM_AGENT_IMAGE", DEFAULT_AGENT_IMAGE),
        help="image of agent, IPC bridge and sandbox containers (env SYMPOZIUM_AGENT_IMAGE)",
    )
    parser.add_argument(
        "--event-bus-url",
        default=env("EVENT_BUS_URL", ""),
        help="NATS URL given to IPC bridges (env EVENT_BUS_URL; empty: none)",
    )
    parser.add_argument("--log-level", default=env("LOG_LEVEL", "INFO"))
    parser.set_defaults(func=_command)


def settings_from(args: argparse.Namespace) -> ControllerSettings:
    if args.max_run_history < 0:
        raise SystemExit("--max-run-history: must be 0 or more")
    health_host, health_port = bind_address(
        args.health_probe_bind_address, "--health-probe-bind-address"
    )
    metrics_host, metrics_port = bind_address(args.metrics_bind_address, "--metrics-bind-address")
    return ControllerSettings(
        leader_election=args.leader_elect,
        leader_election_namespace=args.leader_election_namespace,
        health_host=health_host,
        health_port=health_port,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
        workers=args.workers,
        agent_run=AgentRunOptions(
            agent_image=args.agent_image,
            event_bus_url=args.event_bus_url,
            max_run_history=args.max_run_history,
        ),
    )


async def run_controller(kubeconfig: Path | None, settings: ControllerSettings) -> None:
    """Runs the controller-manager until SIGTERM/SIGINT."""
    async with await Client.connect(kubeconfig=str(kubeconfig) if kubeconfig else None) as client:
        manager = await build(client, settings)
        log.info("controller-manager starting leader_election=%s", settings.leader_election)
        await manager.run_until_signal()


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
    )


def _command(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    settings = settings_from(args)
    asyncio.run(run_controller(args.kubeconfig, settings))
    return 0
