"""The probe and scrape endpoints a manager exposes: /healthz, /readyz and /metrics.

The probe output follows kube-apiserver's so the usual tooling reads it: `ok` when every check
passes, otherwise a 500 listing `[+]name ok` / `[-]name failed` lines. `?verbose` lists them on
success too, `?exclude=name` skips a check, and `/healthz/<name>` runs a single one.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import cast

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)

Check = Callable[[], bool | Awaitable[bool]]

_TEXT = "text/plain; charset=utf-8"


class HealthServer:
    """Serves probes and metrics on their own port, apart from any webhook or API traffic.

    `checks` back both /healthz and /readyz; `readiness` checks only /readyz (e.g. caches
    synced: a replica still syncing is alive, just not ready). Checks are looked up per request,
    so `add_healthz_check` / `add_readyz_check` work after `start()` too.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        metrics_registry: CollectorRegistry | None = None,
        checks: Mapping[str, Check] | None = None,
        readiness: Mapping[str, Check] | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.metrics_registry = metrics_registry
        self._healthz: dict[str, Check] = dict(checks or {})
        self._readyz: dict[str, Check] = {**(checks or {}), **(readiness or {})}
        self._runner: web.AppRunner | None = None
        self.app = self._build_app()

    def add_healthz_check(self, name: str, check: Check) -> None:
        self._healthz[name] = check

    def add_readyz_check(self, name: str, check: Check) -> None:
        self._readyz[name] = check

    @property
    def port(self) -> int:
        """The bound port once started (resolving port 0), else the configured one."""
        return self._port

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("health server already started")
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if runner.addresses:
            self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._probe_handler("healthz", self._healthz))
        app.router.add_get("/healthz/{check}", self._single_handler(self._healthz))
        app.router.add_get("/readyz", self._probe_handler("readyz", self._readyz))
        app.router.add_get("/readyz/{check}", self._single_handler(self._readyz))
        if self.metrics_registry is not None:
            app.router.add_get("/metrics", self._metrics)
        return app

    def _probe_handler(
        self, endpoint: str, checks: dict[str, Check]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            excluded = set(request.query.getall("exclude", []))
            selected = {name: check for name, check in checks.items() if name not in excluded}
            results = await _run_all(selected)
            lines = []
            for name in checks:
                if name in excluded:
                    lines.append(f"[+]{name} excluded: ok")
                else:
                    lines.append(f"[+]{name} ok" if results[name] else f"[-]{name} failed")
            unknown = sorted(excluded - checks.keys())
            if unknown:
                lines.append(
                    f"warn: some {endpoint} checks cannot be excluded: no matches for {', '.join(unknown)}"
                )
            if not all(results.values()):
                lines.append(f"{endpoint} check failed")
                return _text("\n".join(lines) + "\n", status=500)
            if "verbose" in request.query:
                lines.append(f"{endpoint} check passed")
                return _text("\n".join(lines) + "\n")
            return _text("ok")

        return handler

    def _single_handler(
        self, checks: dict[str, Check]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            name = request.match_info["check"]
            check = checks.get(name)
            if check is None:
                return _text("404 page not found\n", status=404)
            if await _run(name, check):
                return _text("ok")
            return _text(f"internal server error: {name} check failed\n", status=500)

        return handler

    async def _metrics(self, request: web.Request) -> web.Response:
        registry = cast(CollectorRegistry, self.metrics_registry)
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(registry), headers={"Content-Type": content_type})


async def _run(name: str, check: Check) -> bool:
    """A check that raises counts as failed, so one broken check cannot take the endpoint down."""
    try:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        return bool(result)
    except Exception:
        log.exception("%s check raised", name)
        return False


async def _run_all(checks: Mapping[str, Check]) -> dict[str, bool]:
    names = list(checks)
    outcomes = await asyncio.gather(*(_run(name, checks[name]) for name in names))
    return dict(zip(names, outcomes, strict=True))


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=body,
        status=status,
        headers={"Content-Type": _TEXT, "X-Content-Type-Options": "nosniff"},
    )
