"""A minimal authenticated JSON client for checking exact wire behaviour."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from tests.integration.conftest import RunningCluster


class Http:
    def __init__(self, cluster: RunningCluster, token: str | None = None) -> None:
        self._url = cluster.url
        self._headers = {"Authorization": f"Bearer {token if token is not None else cluster.token}"}
        self._tls = ssl.create_default_context(cafile=str(cluster.ca_file))
        self._session = aiohttp.ClientSession(
            headers=self._headers, connector=aiohttp.TCPConnector(ssl=self._tls)
        )

    async def close(self) -> None:
        await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, CIMultiDictProxy[str]]:
        data = (
            None if body is None else (body if isinstance(body, str | bytes) else json.dumps(body))
        )
        hdrs = {"Content-Type": content_type, **(headers or {})}
        async with self._session.request(
            method, self._url + path, data=data, headers=hdrs
        ) as response:
            text = await response.text()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
            return response.status, parsed, response.headers

    async def stream(
        self, path: str, headers: dict[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        async with self._session.get(self._url + path, headers=headers or {}) as response:
            assert response.status == 200, await response.text()
            async for line in response.content:
                if line.strip():
                    yield json.loads(line)
