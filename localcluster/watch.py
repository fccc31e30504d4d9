"""Watch streams: line-delimited JSON events, in resourceVersion order, never with gaps.

A watch starts from a resourceVersion (events strictly after it, from the history),
from `0`/unset (synthetic ADDED events for the current state, then live), or with
`sendInitialEvents=true` (the same, closed by a bookmark annotated
`k8s.io/initial-events-end`, as client-go's watch-list expects).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from localcluster.registry import Call, Registry
from localcluster.selectors import FieldSelector, LabelSelector, supported_field_selectors
from localcluster.storage import ADDED, DELETED, MODIFIED, Event, TooOld

Obj = dict[str, Any]
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass
class WatchOptions:
    resource_version: str = ""
    label_selector: str = ""
    field_selector: str = ""
    allow_bookmarks: bool = False
    send_initial_events: bool | None = None
    timeout_seconds: float | None = None
    bookmark_interval: float = 5.0


# Renders one event's object for the wire (e.g. as a Table row); gets (object, first).
Render = Callable[[Obj, bool], Obj]
Send = Callable[[bytes], Awaitable[None]]


class Watch:
    """One client's watch: filters the bucket's events and writes them out."""

    def __init__(
        self, registry: Registry, call: Call, options: WatchOptions, render: Render
    ) -> None:
        rt = call.rt
        self._registry = registry
        self._call = call
        self._options = options
        self._render = render
        self._labels = LabelSelector.parse(options.label_selector)
        self._fields = FieldSelector.parse(
            options.field_selector, supported_field_selectors(rt.kind, rt.group)
        )
        self._namespace = call.namespace if rt.namespaced and call.namespace else None
        self._first = True

    async def run(self, send: Send) -> None:
        store = self._registry.store
        bucket = self._registry.bucket(self._call.rt)
        rv_text = self._options.resource_version
        initial = self._options.send_initial_events
        if initial is None:
            initial = rv_text in ("", "0")
        if initial:
            since, sub = store.subscribe_current(bucket)
            backlog: list[Event] = []
            namespace = self._namespace
            for obj in store.items(bucket, namespace):
                if self._matches(obj):
                    await self._emit(send, ADDED, obj)
            if self._options.send_initial_events and self._options.allow_bookmarks:
                await self._bookmark(send, since, initial_end=True)
        else:
            try:
                since = int(rv_text)
                backlog, sub = store.subscribe(bucket, since)
            except ValueError:
                await self._error(send, 400, "BadRequest", f'invalid resource version "{rv_text}"')
                return
            except TooOld as exc:
                await self._error(send, 410, "Expired", str(exc))
                return
        try:
            for event in backlog:
                await self._deliver(send, event)
            await self._live(send, sub.queue)
        finally:
            store.unsubscribe(sub)

    async def _live(self, send: Send, events: asyncio.Queue[Event | None]) -> None:
        loop = asyncio.get_running_loop()
        deadline = (
            None
            if self._options.timeout_seconds is None
            else loop.time() + self._options.timeout_seconds
        )
        while True:
            wait = self._options.bookmark_interval if self._options.allow_bookmarks else None
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    return
                wait = left if wait is None else min(wait, left)
            try:
                event = await asyncio.wait_for(events.get(), wait)
            except TimeoutError:
                if self._options.allow_bookmarks and events.empty():
                    await self._bookmark(send, self._registry.store.published_rv)
                continue
            if event is None:
                return
            await self._deliver(send, event)

    def _matches(self, obj: Obj) -> bool:
        meta = obj["metadata"]
        if self._namespace is not None and meta.get("namespace") != self._namespace:
            return False
        return self._labels.matches(meta.get("labels")) and self._fields.matches(obj)

    async def _deliver(self, send: Send, event: Event) -> None:
        now = self._matches(event.object)
        before = event.prev is not None and self._matches(event.prev)
        if event.type == MODIFIED:
            if now and not before:
                await self._emit(send, ADDED, event.object)
            elif before and not now:
                await self._emit(send, DELETED, event.object)
            elif now:
                await self._emit(send, MODIFIED, event.object)
        elif now:
            await self._emit(send, event.type, event.object)

    async def _emit(self, send: Send, kind: str, obj: Obj) -> None:
        shown = self._render(self._registry.present(self._call.rt, obj), self._first)
        self._first = False
        await send(_line({"type": kind, "object": shown}))

    async def _bookmark(self, send: Send, rv: int, initial_end: bool = False) -> None:
        rt = self._call.rt
        meta: Obj = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        await send(
            _line(
                {
                    "type": "BOOKMARK",
                    "object": {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta},
                }
            )
        )

    @staticmethod
    async def _error(send: Send, code: int, reason: str, message: str) -> None:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
        with contextlib.suppress(ConnectionError):
            await send(_line({"type": "ERROR", "object": status}))


def _line(event: Obj) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"
