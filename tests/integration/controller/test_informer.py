"""A shared informer against the real local cluster, across a restart of the server process."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp

from controller.informer import ListPage, SharedInformer
from tests.integration.conftest import RunningCluster, free_port, start_cluster
from tests.integration.http import Http

Obj = dict[str, Any]


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class RawConfigMaps:
    """A ListerWatcher for ConfigMaps over plain aiohttp, with a switch to keep it offline."""

    def __init__(self, cluster: RunningCluster) -> None:
        self._url = cluster.url
        tls = ssl.create_default_context(cafile=str(cluster.ca_file))
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {cluster.token}"},
            connector=aiohttp.TCPConnector(ssl=tls),
        )
        self.online = asyncio.Event()
        self.online.set()
        self.waiting = 0  # calls held back while offline
        self.refused = 0  # connections that failed (server down)
        self.gone = 0  # watches answered with 410
        self._open: set[aiohttp.ClientResponse] = set()

    async def close(self) -> None:
        await self._session.close()

    def disconnect(self) -> None:
        for response in list(self._open):
            response.close()

    @property
    def streaming(self) -> bool:
        return bool(self._open)

    async def _gate(self) -> None:
        self.waiting += 1
        try:
            await self.online.wait()
        finally:
            self.waiting -= 1

    def _path(self, namespace: str | None) -> str:
        return self._url + (
            f"/api/v1/namespaces/{namespace}/configmaps" if namespace else "/api/v1/configmaps"
        )

    async def list(
        self,
        namespace: str | None,
        *,
        label_selector: str,
        field_selector: str,
        limit: int,
        continue_token: str,
        resource_version: str,
    ) -> ListPage:
        await self._gate()
        params = {"limit": str(limit)}
        for name, value in (
            ("labelSelector", label_selector),
            ("fieldSelector", field_selector),
            ("continue", continue_token),
            ("resourceVersion", resource_version),
        ):
            if value:
                params[name] = value
        try:
            async with self._session.get(self._path(namespace), params=params) as response:
                body = await response.json()
                if response.status != 200:
                    raise HttpError(response.status, str(body.get("message")))
        except aiohttp.ClientConnectorError:
            self.refused += 1
            raise
        meta = body["metadata"]
        return ListPage(body["items"], meta["resourceVersion"], meta.get("continue", ""))

    async def watch(
        self,
        namespace: str | None,
        *,
        resource_version: str,
        label_selector: str,
        field_selector: str,
        allow_bookmarks: bool,
        timeout_seconds: int | None,
    ) -> AsyncIterator[tuple[str, Obj]]:
        await self._gate()
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true" if allow_bookmarks else "false",
        }
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(timeout_seconds)
        try:
            response = await self._session.get(
                self._path(namespace),
                params=params,
                timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
            )
        except aiohttp.ClientConnectorError:
            self.refused += 1
            raise
        self._open.add(response)
        try:
            if response.status != 200:
                raise HttpError(response.status, await response.text())
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event["object"]
                if event["type"] == "ERROR" and obj.get("code") == 410:
                    self.gone += 1
                    raise HttpError(410, str(obj.get("message")))
                yield event["type"], obj
        finally:
            self._open.discard(response)
            response.release()


async def until(condition: Callable[[], Any], limit: float = 60.0) -> None:
    """Waits for other tasks' progress (a real server is involved: generous limit)."""
    async with asyncio.timeout(limit):
        while not await _value(condition()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def _value(result: Any) -> Any:
    return await result if asyncio.iscoroutine(result) else result


def comparable(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


class Events:
    """(event, name, data.v) as the handlers saw them."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []

    def _add(self, kind: str, obj: Obj) -> None:
        self.seen.append((kind, obj["metadata"]["name"], (obj.get("data") or {}).get("v")))

    def attach(self, informer: SharedInformer) -> None:
        informer.add_handler(
            lambda o: self._add("add", o),
            lambda old, new: self._add("update", new),
            lambda o: self._add("delete", o),
        )


async def test_informer_syncs_follows_and_survives_a_server_restart(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    cluster = await asyncio.to_thread(start_cluster, data_dir, port)
    http = Http(cluster)
    lw = RawConfigMaps(cluster)
    informer = SharedInformer(lw, namespace="informer-test", name="configmaps")
    try:
        ns = "informer-test"
        cms = f"/api/v1/namespaces/{ns}/configmaps"

        async def write(method: str, path: str, body: Any = None) -> None:
            status, answer, _ = await http.request(method, path, body)
            assert status in (200, 201), answer

        async def server_state() -> dict[str, Obj]:
            status, body, _ = await http.request("GET", cms)
            assert status == 200, body
            return {o["metadata"]["name"]: comparable(o) for o in body["items"]}

        async def in_step() -> bool:
            cached = {o["metadata"]["name"]: comparable(o) for o in informer.store.list()}
            return cached == await server_state()

        await write("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        for name in ("a", "b", "c"):
            await write("POST", cms, {"metadata": {"name": name}, "data": {"v": "1"}})

        events = Events()
        events.attach(informer)
        informer.start()
        assert await informer.wait_for_sync(timeout=30)
        assert {"a", "b", "c"} <= set(await server_state())
        assert await in_step()

        # Live changes arrive through the watch.
        await write("POST", cms, {"metadata": {"name": "d"}, "data": {"v": "1"}})
        await write("PUT", f"{cms}/a", {"metadata": {"name": "a"}, "data": {"v": "2"}})
        await write("DELETE", f"{cms}/b")
        await until(in_step)
        assert ("add", "d", "1") in events.seen
        assert ("update", "a", "2") in events.seen
        assert ("delete", "b", "1") in events.seen

        # Offline: the informer cannot see these, and after the restart the server's
        # (in-memory) watch history no longer covers them.
        lw.online.clear()
        lw.disconnect()
        await until(lambda: lw.waiting and not lw.streaming)
        await write("DELETE", f"{cms}/c")
        await write("PUT", f"{cms}/a", {"metadata": {"name": "a"}, "data": {"v": "3"}})
        await http.close()
        await asyncio.to_thread(cluster.stop)

        # Server down: reconnecting fails and backs off.
        seen_before_restart = len(events.seen)
        lw.online.set()
        await until(lambda: lw.refused >= 1)

        cluster = await asyncio.to_thread(start_cluster, data_dir, port)
        http = Http(cluster)
        await write("POST", cms, {"metadata": {"name": "e"}, "data": {"v": "1"}})
        await until(in_step)

        assert lw.gone >= 1  # its resourceVersion predates the restart: relisted
        after = events.seen[seen_before_restart:]
        assert ("delete", "c", "1") in after  # deleted while away; its last known state
        assert ("update", "a", "3") in after
        assert ("add", "e", "1") in after
        assert set(informer.store.keys()) == {f"{ns}/{name}" for name in await server_state()}
    finally:
        await informer.stop()
        await lw.close()
        await http.close()
        await asyncio.to_thread(cluster.stop)
