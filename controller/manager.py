"""The manager: shared informers, controllers, leader election, health and metrics.

Caches start on every replica (so a new leader is ready at once); controllers and
other leader-only runnables start only while this replica holds the Lease, and stop
the moment it is lost — the process then exits, as controller-runtime's does, so no
reconcile ever runs on two replicas at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from controller.builder import Builder, Kind
from controller.client import Client
from controller.controller import Controller
from controller.health import HealthServer
from controller.informer import InformerFactory, lister_watcher
from controller.leaderelection import LeaderElector
from controller.metrics import ControllerMetrics, LeaderMetrics, WorkqueueMetrics
from controller.ratelimit import default_controller_rate_limiter
from controller.reader import CacheReader
from controller.reconcile import Request
from controller.workqueue import RateLimitingQueue

log = logging.getLogger("controller.manager")
Runnable = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Options:
    leader_election: bool = False
    leader_election_id: str = ""
    leader_election_namespace: str = "default"
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}")
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    health_host: str = "127.0.0.1"
    health_port: int | None = 8081  # None: no health/metrics server
    graceful_shutdown_timeout: float = 30.0


class Manager:
    def __init__(
        self,
        client: Client,
        options: Options | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.client = client
        self.options = options or Options()
        self.registry = registry or CollectorRegistry()
        self.informers: InformerFactory[Kind] = InformerFactory(
            lambda kind: lister_watcher(client, kind)
        )
        self.cache = CacheReader(self.informers)
        self._controllers: list[Controller] = []
        self._runnables: list[tuple[Runnable, bool]] = []
        self.health: HealthServer | None = None
        self.elector: LeaderElector | None = None
        self._synced = False

    # ---- building

    def controller(self, name: str) -> Builder:
        return Builder(self, name)

    def new_queue(self, name: str) -> RateLimitingQueue[Request]:
        metrics = WorkqueueMetrics(self.registry, name)
        queue: RateLimitingQueue[Request] = RateLimitingQueue(
            default_controller_rate_limiter(), metrics=metrics
        )
        metrics.track(queue)
        return queue

    def observer_for(self, name: str, workers: int) -> ControllerMetrics:
        return ControllerMetrics(self.registry, name, workers)

    def add_controller(self, controller: Controller) -> None:
        self._controllers.append(controller)

    def add(self, runnable: Runnable, *, needs_leader: bool = True) -> None:
        """Adds a long-running task (an HTTP server, a NATS consumer, ...)."""
        self._runnables.append((runnable, needs_leader))

    def informer(self, kind: Kind, namespace: str | None = None, label_selector: str = "") -> Any:
        return self.informers.informer_for(kind, namespace, label_selector)

    # ---- running

    async def run(self) -> None:
        """Runs until cancelled (or until leadership is lost); then shuts down in bounded time."""
        options = self.options
        if options.health_port is not None:
            self.health = HealthServer(
                options.health_host,
                options.health_port,
                self.registry,
                readiness={"informers-synced": lambda: self._synced},
            )
            await self.health.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            self.informers.start_all()
            tasks += [asyncio.create_task(r()) for r, leader in self._runnables if not leader]
            await self.informers.wait_for_cache_sync()
            self._synced = True
            if options.leader_election:
                await self._run_with_leader_election()
            else:
                await self._run_leader_work()
        finally:
            await self._shutdown(tasks)

    async def _run_with_leader_election(self) -> None:
        options = self.options
        name = options.leader_election_id or "controller-manager"

        async def started() -> None:
            await self._run_leader_work()

        self.elector = LeaderElector(
            self.client,
            namespace=options.leader_election_namespace,
            name=name,
            identity=options.identity,
            lease_duration=options.lease_duration,
            renew_deadline=options.renew_deadline,
            retry_period=options.retry_period,
            on_started_leading=started,
            on_stopped_leading=lambda: log.warning(
                "leader election lost identity=%s", options.identity
            ),
            metrics=LeaderMetrics(self.registry, name),
        )
        await self.elector.run()

    async def _run_leader_work(self) -> None:
        tasks = [
            asyncio.create_task(c.run(), name=f"controller-{c.name}") for c in self._controllers
        ]
        tasks += [asyncio.create_task(r()) for r, leader in self._runnables if leader]
        if not tasks:
            await asyncio.Event().wait()
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await self._wait_bounded(tasks)

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        await self._wait_bounded(tasks)
        await self.informers.stop_all()
        if self.health is not None:
            await self.health.stop()

    async def _wait_bounded(self, tasks: list[asyncio.Task[None]]) -> None:
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.options.graceful_shutdown_timeout)
        if pending:
            log.error("shutdown timed out; %d tasks still running", len(pending))

    async def run_until_signal(self) -> None:
        """`run()` that stops cleanly on SIGTERM/SIGINT."""
        task = asyncio.create_task(self.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task
