"""What kube-controller-manager and the kubelet do, for one machine, inside the local cluster.

The built-in controllers (`localcluster/controllers/`) run on our own `controller/`
library and talk to the API server over HTTPS like any client; the node
(`localcluster/node/`) runs pods as local processes and serves their logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from controller import Client, ClientConfig, Manager, Options
from localcluster import controllers
from localcluster.server import APIServer

log = logging.getLogger("localcluster.workloads")

DEFAULT_ALLOWED_IMAGES = ("*sympozium*",)


@dataclass
class WorkloadSettings:
    data_dir: Path
    allowed_images: tuple[str, ...] = DEFAULT_ALLOWED_IMAGES
    run_node: bool = True


@dataclass
class WorkloadContext:
    """What every built-in controller and the node may use."""

    client: Client
    manager: Manager
    server: APIServer
    settings: WorkloadSettings
    background: list[asyncio.Task[None]] = field(default_factory=list)


class Workloads:
    def __init__(self, settings: WorkloadSettings) -> None:
        self.settings = settings
        self.context: WorkloadContext | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, server: APIServer, url: str, ca_pem: bytes, token: str) -> None:
        client = Client(ClientConfig(server=url, ca_data=ca_pem, token=token))
        manager = Manager(client, Options(health_port=None, graceful_shutdown_timeout=10.0))
        self.context = WorkloadContext(client, manager, server, self.settings)
        await controllers.setup(self.context)
        self._task = asyncio.create_task(manager.run(), name="localcluster-controllers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.context is not None:
            for task in self.context.background:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*self.context.background, return_exceptions=True)
            await self.context.client.close()
