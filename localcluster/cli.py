"""`sympozium localcluster`: runs the one-machine Kubernetes API in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import ssl
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from localcluster import certs, kubeconfig, tokens
from localcluster.server import APIServer
from localcluster.storage import Store
from localcluster.workloads import DEFAULT_ALLOWED_IMAGES, Workloads, WorkloadSettings

log = logging.getLogger("localcluster")


@dataclass
class Settings:
    data_dir: Path
    port: int = 6443
    host: str = "127.0.0.1"
    kubeconfig: Path | None = None
    history_size: int = 50_000
    bookmark_interval: float = 5.0
    allowed_images: tuple[str, ...] = DEFAULT_ALLOWED_IMAGES
    workloads: bool = True

    def __post_init__(self) -> None:
        # Pods run in directories of their own: a relative data dir (`make run` passes
        # `.sympozium/cluster`) would point their volume mounts at nothing.
        self.data_dir = self.data_dir.absolute()

    @property
    def kubeconfig_path(self) -> Path:
        return self.kubeconfig or self.data_dir / "kubeconfig"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("LOCALCLUSTER_DATA_DIR", ".data/localcluster")),
        help="where objects, certificates and the token are kept (env LOCALCLUSTER_DATA_DIR)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("LOCALCLUSTER_PORT", "6443")),
        help="HTTPS port on 127.0.0.1; 0 picks a free one (env LOCALCLUSTER_PORT)",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="where to write the kubeconfig (default DATA_DIR/kubeconfig)",
    )
    parser.add_argument(
        "--watch-history", type=int, default=50_000, help="watch events kept for resuming watches"
    )
    parser.add_argument(
        "--allow-image",
        action="append",
        default=[],
        metavar="PATTERN",
        help="a glob of images the node may run as local processes (repeatable; the Sympozium image always)",
    )
    parser.add_argument(
        "--no-workloads",
        action="store_true",
        help="serve the API only: no built-in controllers, no node",
    )
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    parser.set_defaults(func=_run_command)


def _run_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )
    settings = Settings(
        data_dir=args.data_dir,
        port=args.port,
        kubeconfig=args.kubeconfig,
        history_size=args.watch_history,
        allowed_images=(*DEFAULT_ALLOWED_IMAGES, *args.allow_image),
        workloads=not args.no_workloads,
    )
    try:
        asyncio.run(serve_forever(settings))
    except OSError as exc:
        log.error("cannot start the local cluster: %s", exc)
        return 1
    return 0


class LocalCluster:
    """A running API server; `start()` returns once it is ready (used by tests and `up`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.data_dir / "state.sqlite", history_size=settings.history_size)
        self._runner: web.AppRunner | None = None
        self.server: APIServer | None = None
        self.port = settings.port
        self.token = ""
        self.workloads: Workloads | None = None

    async def start(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        serving = certs.ensure(settings.data_dir / "pki")
        self.token = kubeconfig.ensure_token(settings.data_dir / "token")
        await asyncio.get_running_loop().run_in_executor(None, self.store.open)
        self.server = APIServer(
            self.store,
            token=self.token,
            port=settings.port,
            bookmark_interval=settings.bookmark_interval,
            service_account_tokens=tokens.Tokens.load(
                self.store, settings.data_dir / "pki" / "sa.key"
            ),
        )
        await self.server.registry.start()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(serving.cert, serving.key)
        self._runner = web.AppRunner(self.server.app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, settings.host, settings.port, ssl_context=tls, reuse_address=True
        )
        await site.start()
        for address in self._runner.addresses:
            self.port = int(address[1])
        self.server.port = self.port
        self.server.ready = True
        if settings.workloads:
            self.workloads = Workloads(
                WorkloadSettings(settings.data_dir, allowed_images=settings.allowed_images)
            )
            await self.workloads.start(self.server, self.url, serving.ca_pem(), self.token)
        kubeconfig.write(settings.kubeconfig_path, self.url, serving.ca_pem(), self.token)

    @property
    def url(self) -> str:
        return f"https://{self.settings.host}:{self.port}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.ready = False
        if self.workloads is not None:
            await self.workloads.stop()
        self.store.end_all_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.store.close()


async def serve_forever(settings: Settings) -> None:
    cluster = LocalCluster(settings)
    await cluster.start()
    log.info("localcluster ready url=%s kubeconfig=%s", cluster.url, settings.kubeconfig_path)
    print(f"Local cluster ready at {cluster.url}", flush=True)
    print(f"  export KUBECONFIG={settings.kubeconfig_path.resolve()}", flush=True)
    print("  .venv/bin/kubectl get namespaces", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("localcluster stopping")
    await cluster.stop()
