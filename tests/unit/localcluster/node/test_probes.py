"""Probe thresholds and the three probe kinds."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiohttp import web

from localcluster.node.probes import (
    exec_check,
    http_check,
    make_check,
    port_number,
    run_probe,
    tcp_check,
)


async def no_sleep(_: float) -> None:
    return None


async def run_script(
    results: list[bool], probe: dict[str, int], until_success: bool = False
) -> list[bool]:
    """What a probe reports for a scripted run of check results (then it is stopped)."""
    reported: list[bool] = []
    feed = iter(results)

    async def check() -> bool:
        try:
            return next(feed)
        except StopIteration:
            raise asyncio.CancelledError from None

    expected = contextlib.nullcontext() if until_success else pytest.raises(asyncio.CancelledError)
    with expected:
        await run_probe(probe, check, reported.append, until_success=until_success, sleep=no_sleep)
    return reported


async def test_thresholds() -> None:
    assert await run_script([False, False, False, True], {}) == [False, True]
    assert await run_script([False, True, False, False], {"failureThreshold": 2}) == [True, False]
    assert await run_script([True, True, False, True, True], {"successThreshold": 2}) == [True]
    assert await run_script([True, False, False, False, True], {}) == [True, False, True]
    assert await run_script([False, True], {}, until_success=True) == [True]


def test_port_numbers() -> None:
    container = {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}
    assert port_number(80, container) == 80
    assert port_number("81", container) == 81
    assert port_number("http", container) == 8080
    with pytest.raises(ValueError):
        port_number("grpc", container)


async def test_exec_checks() -> None:
    assert await exec_check(["sh", "-c", "exit 0"], {"PATH": "/usr/bin:/bin"}, 1)
    assert not await exec_check(["sh", "-c", "exit 1"], {"PATH": "/usr/bin:/bin"}, 1)
    assert not await exec_check(["sleep", "5"], {"PATH": "/usr/bin:/bin"}, 0.2)
    assert not await exec_check(["/no/such/thing"], {}, 1)
    check = make_check({"exec": {"command": ["true"]}}, {}, {"PATH": "/usr/bin:/bin"}, None, False)
    assert await check()


async def test_http_and_tcp_checks() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=200 if request.path == "/ok" else 500)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert await http_check({"port": port, "path": "/ok"}, {}, 1)
        assert not await http_check({"port": port, "path": "/bad"}, {}, 1)
        assert await tcp_check({"port": port}, {}, 1)
    finally:
        await runner.cleanup()
    assert not await tcp_check({"port": port}, {}, 1)
    assert not await http_check({"port": port}, {}, 1)
