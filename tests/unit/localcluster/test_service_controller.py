"""The Service controller's Endpoints and its TCP proxies, without an API server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

from localcluster.controllers.service import (
    PortProxy,
    Proxies,
    backends,
    endpoint_subsets,
    port_key,
)

Obj = dict[str, Any]


def pod(
    name: str, *, ready: bool = True, port: int = 8080, ip: str = "127.0.0.1", **meta: Any
) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", **meta},
        "spec": {
            "nodeName": "localcluster",
            "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}],
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": str(ready)}],
        },
    }


def service(*ports: Obj, **spec: Any) -> Obj:
    return {"metadata": {"name": "svc", "namespace": "ns"}, "spec": {"ports": list(ports), **spec}}


def test_endpoints_group_pods_by_the_ports_they_serve() -> None:
    svc = service({"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"})
    subsets = endpoint_subsets(
        svc,
        [
            pod("a", port=8080),
            pod("b", port=9090),
            pod("c", port=8080, ready=False),
            pod("gone", deletionTimestamp="2030-01-01T00:00:00Z"),
        ],
    )
    assert subsets == [
        {
            "addresses": [
                {
                    "ip": "127.0.0.1",
                    "nodeName": "localcluster",
                    "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"},
                }
            ],
            "notReadyAddresses": [
                {
                    "ip": "127.0.0.1",
                    "nodeName": "localcluster",
                    "targetRef": {"kind": "Pod", "namespace": "ns", "name": "c", "uid": "uid-c"},
                }
            ],
            "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}],
        },
        {
            "addresses": [
                {
                    "ip": "127.0.0.1",
                    "nodeName": "localcluster",
                    "targetRef": {"kind": "Pod", "namespace": "ns", "name": "b", "uid": "uid-b"},
                }
            ],
            "ports": [{"name": "web", "port": 9090, "protocol": "TCP"}],
        },
    ]
    port = svc["spec"]["ports"][0]
    assert backends(subsets, port) == [("127.0.0.1", 8080), ("127.0.0.1", 9090)]


def test_unresolvable_ports_and_finished_pods_are_left_out() -> None:
    svc = service({"port": 80, "targetPort": "metrics"})
    assert endpoint_subsets(svc, [pod("a")]) == []
    finished = pod("done")
    finished["status"]["phase"] = "Succeeded"
    assert endpoint_subsets(service({"port": 80, "targetPort": 8080}), [finished]) == []


def test_publish_not_ready_addresses_lists_every_pod_as_ready() -> None:
    svc = service({"port": 80, "targetPort": 8080}, publishNotReadyAddresses=True)
    (subset,) = endpoint_subsets(svc, [pod("a", ready=False)])
    assert [a["targetRef"]["name"] for a in subset["addresses"]] == ["a"]
    assert "notReadyAddresses" not in subset
    assert subset["ports"] == [{"port": 8080, "protocol": "TCP"}]


def test_ports_are_named_by_name_else_number() -> None:
    assert port_key({"name": "web", "port": 80}) == "web"
    assert port_key({"port": 80}) == "80"


@contextlib.asynccontextmanager
async def echo(tag: bytes) -> AsyncIterator[int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(tag + await reader.read(100))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def ask(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hi")
    writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(100), 5)
    except ConnectionResetError:
        return b""  # closed before reading what we sent
    finally:
        writer.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_proxy_balances_and_skips_backends_that_refuse() -> None:
    proxy = PortProxy()
    await proxy.start(None)
    try:
        assert await ask(proxy.port) == b"", "no backends: the connection just closes"
        async with echo(b"a:") as a, echo(b"b:") as b:
            proxy.backends = [("127.0.0.1", a), ("127.0.0.1", b)]
            assert {await ask(proxy.port) for _ in range(4)} == {b"a:hi", b"b:hi"}
            proxy.backends = [("127.0.0.1", closed_port()), ("127.0.0.1", b)]
            assert {await ask(proxy.port) for _ in range(4)} == {b"b:hi"}
    finally:
        await proxy.close()


async def test_proxies_keep_their_port_and_prefer_the_recorded_one() -> None:
    proxies = Proxies()
    wanted_port = closed_port()
    try:
        first = await proxies.ensure("ns/svc", {"web": (wanted_port, [])})
        assert first == {"web": wanted_port}
        again = await proxies.ensure("ns/svc", {"web": (None, []), "extra": (None, [])})
        assert again["web"] == wanted_port
        assert await proxies.ensure("ns/svc", {"extra": (None, [])}) == {"extra": again["extra"]}
        # A taken port is not fought over: another one is used.
        other = Proxies()
        try:
            taken = await other.ensure("ns/other", {"web": (again["extra"], [])})
            assert taken["web"] != again["extra"]
        finally:
            await other.stop("ns/other")
    finally:
        await proxies.stop("ns/svc")
    assert proxies.services == {}
