"""The controller-manager: Sympozium's reconcilers on one `controller.Manager`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from controller import Client, EventRecorder, HealthServer, Manager, Options, Request
from reconcilers import labels, telemetry
from reconcilers.agentrun import AGENT_RUN, JOB, POD, AgentRunOptions, AgentRunReconciler


@dataclass
class ControllerSettings:
    leader_election: bool = False
    leader_election_namespace: str = labels.SYSTEM_NAMESPACE
    health_host: str = "127.0.0.1"
    health_port: int | None = 8081
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 8080
    workers: int = 4
    agent_run: AgentRunOptions = field(default_factory=AgentRunOptions)
    identity: str = ""


def _run_of_pod(pod: dict[str, Any]) -> Iterable[Request]:
    """A run's pod reports the agent container's end before the Job notices anything."""
    meta = pod.get("metadata") or {}
    run = (meta.get("labels") or {}).get(labels.AGENT_RUN)
    return [Request(meta.get("namespace", ""), run)] if run else []


async def build(client: Client, settings: ControllerSettings) -> Manager:
    options = Options(
        leader_election=settings.leader_election,
        leader_election_id="sympozium-controller-leader",
        leader_election_namespace=settings.leader_election_namespace,
        health_host=settings.health_host,
        health_port=settings.health_port,
    )
    if settings.identity:
        options.identity = settings.identity
    registry = CollectorRegistry()
    manager = Manager(client, options, registry)
    meter_provider, tracer_provider = telemetry.setup(registry)
    recorder = EventRecorder(client, "sympozium-controller", options.identity)
    reconciler = AgentRunReconciler(
        client,
        recorder,
        telemetry.RunTelemetry.create(meter_provider, tracer_provider),
        settings.agent_run,
    )
    await (
        manager.controller("agentrun")
        .for_(AGENT_RUN)
        .owns(JOB)
        .watches(POD, _run_of_pod, label_selector=labels.AGENT_RUN)
        .with_workers(settings.workers)
        .complete(reconciler)
    )
    metrics = (
        HealthServer(settings.metrics_host, settings.metrics_port, registry)
        if settings.metrics_port is not None
        else None
    )

    async def lifetime() -> None:
        """The metrics port for as long as the manager runs; Events flushed at the end."""
        if metrics is not None:
            await metrics.start()
        try:
            await asyncio.Event().wait()
        finally:
            if metrics is not None:
                await metrics.stop()
            await recorder.close()

    manager.add(lifetime, needs_leader=False)
    return manager
