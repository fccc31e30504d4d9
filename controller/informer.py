"""Informers: keep a local cache of one kind in sync with the server and fan out changes.

A `Reflector` lists (paged), then watches from the list's resourceVersion, applying each
event to an `Indexer` and reporting what changed. A `SharedInformer` runs one reflector
for one (kind, namespace, selectors) and calls any number of handlers; the
`InformerFactory` makes sure every controller asking for the same key shares it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from controller.cache import (
    ADDED,
    DELETED,
    MODIFIED,
    Change,
    FrozenDict,
    Indexer,
    IndexFunc,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
BOOKMARK = "BOOKMARK"
ERROR = "ERROR"
PAGE_SIZE = 500
MIN_WATCH_TIMEOUT = (
    300  # seconds; each watch asks for a random timeout in [300, 600), like client-go
)

Transform = Callable[[Obj], Obj]
# Handlers get read-only `FrozenDict` views (dicts whose mutators raise).
AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]


# ---- what the informer needs from a client


@dataclass
class ListPage:
    items: list[Obj]
    resource_version: str
    continue_token: str = ""


class ListerWatcher(Protocol):
    """List and watch one kind.

    `watch` must raise an exception whose `status` is 410 when the resourceVersion is too
    old (an ERROR event carrying a 410 Status is also understood), and simply end when
    the server closes the stream.
    """

    async def list(
        self,
        namespace: str | None,
        *,
        label_selector: str,
        field_selector: str,
        limit: int,
        continue_token: str,
        resource_version: str,
    ) -> ListPage: ...

    def watch(
        self,
        namespace: str | None,
        *,
        resource_version: str,
        label_selector: str,
        field_selector: str,
        allow_bookmarks: bool,
        timeout_seconds: int | None,
    ) -> AsyncIterator[tuple[str, Obj]]: ...


class _ClientListerWatcher:
    """Binds a kind to a `controller.client.Client`-shaped object (duck-typed)."""

    def __init__(self, client: Any, kind: Any) -> None:
        self._client = client
        self._kind = kind

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
        page = await self._client.list(
            self._kind,
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            continue_token=continue_token,
            resource_version=resource_version,
        )
        return ListPage(
            items=list(page.items),
            resource_version=str(page.resource_version or ""),
            continue_token=str(page.continue_token or ""),
        )

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
        stream = self._client.watch(
            self._kind,
            namespace,
            resource_version=resource_version,
            label_selector=label_selector,
            field_selector=field_selector,
            allow_bookmarks=allow_bookmarks,
            timeout_seconds=timeout_seconds,
        )
        if inspect.isawaitable(stream):  # a coroutine returning the stream is fine too
            stream = await stream
        try:
            async for event in stream:
                yield event.type, event.object
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()


def lister_watcher(client: Any, kind: tuple[str, str]) -> ListerWatcher:
    """A ListerWatcher for `kind` over the controller client; it calls nothing until used."""
    return _ClientListerWatcher(client, kind)


def strip_managed_fields(obj: Obj) -> Obj:
    """A transform that drops metadata.managedFields, usually the bulk of a small object."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


# ---- backoff


class Backoff:
    """Jittered exponential delays: initial * factor**n, times [1, 1 + jitter), at most cap."""

    def __init__(
        self,
        initial: float = 0.8,
        cap: float = 30.0,
        factor: float = 2.0,
        jitter: float = 1.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self._rand = rand
        self._attempt = 0

    def next_delay(self) -> float:
        base = min(self.cap, self.initial * self.factor**self._attempt)
        if base < self.cap:
            self._attempt += 1
        return min(self.cap, base * (1 + self.jitter * self._rand()))

    def reset(self) -> None:
        self._attempt = 0


class _Expired(Exception):
    """A watch ERROR event with a 410 Status: the resourceVersion is gone from history."""

    status = 410


class WatchError(Exception):
    """A watch ERROR event other than 410."""

    def __init__(self, status: Mapping[str, Any]) -> None:
        super().__init__(f"watch error {status.get('code')}: {status.get('message', '')}")
        self.status = status.get("code")


def _is_gone(exc: BaseException) -> bool:
    return getattr(exc, "status", None) == 410


def _rv_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


# ---- reflector


class Reflector:
    """Keeps `store` equal to the server's objects, reporting every change to `on_change`.

    Reconnects: 410 Gone relists at once (with backoff if it repeats); errors and early
    stream ends wait with jittered exponential backoff. A watch that stayed up for
    `healthy_after` seconds resets the backoff, and if it then simply ends (its timeout)
    the next watch starts immediately.
    """

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        store: Indexer,
        on_change: Callable[[Change], None],
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        page_size: int = PAGE_SIZE,
        resync_period: float | None = None,
        transform: Transform | None = None,
        name: str = "",
        backoff: Backoff | None = None,
        healthy_after: float = 30.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._lw = lister_watcher
        self.store = store
        self._on_change = on_change
        self._namespace = namespace
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._page_size = page_size
        self._resync_period = resync_period
        self._transform = transform
        self.name = name or "reflector"
        self._backoff = backoff or Backoff(rand=rand)
        self._healthy_after = healthy_after
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self.synced = asyncio.Event()
        self.last_sync_resource_version = ""

    @property
    def has_synced(self) -> bool:
        return self.synced.is_set()

    async def run(self) -> None:
        """Lists and watches until cancelled."""
        resync = None
        if self._resync_period:
            resync = asyncio.create_task(self._resync_loop(self._resync_period))
        try:
            await self._list_and_watch_forever()
        finally:
            if resync is not None:
                resync.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await resync

    async def _list_and_watch_forever(self) -> None:
        need_list = True
        last_gone = False
        while True:
            started = self._clock()
            outcome = "closed"
            try:
                if need_list:
                    await self._list()
                    need_list = False
                    started = self._clock()
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if _is_gone(exc):
                    outcome = "gone"
                    need_list = True
                    log.info("%s: resourceVersion expired, relisting", self.name)
                else:
                    outcome = "error"
                    log.warning("%s: list/watch failed: %r", self.name, exc)
            healthy = outcome != "gone" and self._clock() - started >= self._healthy_after
            if healthy:
                self._backoff.reset()
            if (outcome == "gone" and not last_gone) or (outcome == "closed" and healthy):
                delay = 0.0
            else:
                delay = self._backoff.next_delay()
            last_gone = outcome == "gone"
            if delay:
                log.debug("%s: retrying in %.2fs", self.name, delay)
                await self._sleep(delay)

    async def _list(self) -> None:
        items: list[Obj] = []
        token = ""
        resource_version = ""
        while True:
            try:
                page = await self._lw.list(
                    self._namespace,
                    label_selector=self._label_selector,
                    field_selector=self._field_selector,
                    limit=self._page_size,
                    continue_token=token,
                    resource_version="",
                )
            except Exception as exc:
                if token and _is_gone(exc):
                    # The continue token outlived its snapshot: start the listing over.
                    log.info("%s: list continuation expired, restarting the list", self.name)
                    items, token = [], ""
                    continue
                raise
            transform = self._transform
            items.extend(page.items if transform is None else (transform(o) for o in page.items))
            resource_version = page.resource_version
            token = page.continue_token
            if not token:
                break
        changes = self.store.replace(items, resource_version)
        self.last_sync_resource_version = resource_version
        for change in changes:
            self._on_change(change)
        self.synced.set()

    async def _watch(self) -> None:
        timeout = int(MIN_WATCH_TIMEOUT * (1 + self._rand()))
        stream = self._lw.watch(
            self._namespace,
            resource_version=self.last_sync_resource_version,
            label_selector=self._label_selector,
            field_selector=self._field_selector,
            allow_bookmarks=True,
            timeout_seconds=min(timeout, 2 * MIN_WATCH_TIMEOUT - 1),
        )
        try:
            async for kind, obj in stream:
                self._apply(kind, obj)
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()

    def _apply(self, kind: str, obj: Obj) -> None:
        if kind == ERROR:
            if obj.get("code") == 410:
                raise _Expired(obj.get("message", "resource version expired"))
            raise WatchError(obj)
        rv = _rv_of(obj)
        if kind == BOOKMARK:
            if rv:
                self._set_rv(rv)
            return
        if kind not in (ADDED, MODIFIED, DELETED):
            log.warning("%s: ignoring watch event of unknown type %r", self.name, kind)
            return
        if self._transform is not None:
            obj = self._transform(obj)
        if kind == DELETED:
            old = self.store.delete(obj)
            if old is not None:
                self._on_change(Change(DELETED, old, FrozenDict(obj)))
        else:
            previous = self.store.upsert(obj)
            new = FrozenDict(obj)
            if previous is None:
                self._on_change(Change(ADDED, None, new))
            else:
                self._on_change(Change(MODIFIED, previous, new))
        if rv:
            self._set_rv(rv)

    def _set_rv(self, rv: str) -> None:
        self.last_sync_resource_version = rv
        self.store.resource_version = rv

    async def _resync_loop(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            if self.has_synced:
                for obj in self.store.list_readonly():
                    self._on_change(Change(MODIFIED, obj, obj))


# ---- shared informer


@dataclass(eq=False)
class HandlerRegistration:
    """One set of handlers on an informer; `remove()` stops its deliveries."""

    on_add: AddHandler | None
    on_update: UpdateHandler | None
    on_delete: DeleteHandler | None
    _informer: SharedInformer | None = field(default=None, repr=False)

    def remove(self) -> None:
        if self._informer is not None:
            self._informer._remove(self)
            self._informer = None


class SharedInformer:
    """One reflector and one cache for a (kind, namespace, selectors), many handlers.

    Handlers are plain callables run inline, in event order, after the cache is updated:
    they must not block (enqueue work instead). They get read-only views; a DELETED
    event found by a relist carries the last state the cache knew. An exception in a
    handler is logged and does not stop the others. Extra keyword arguments go to the
    `Reflector` (page_size, backoff, healthy_after, sleep, clock, rand).
    """

    def __init__(
        self,
        lister_watcher: ListerWatcher,
        *,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        resync_period: float | None = None,
        transform: Transform | None = None,
        indexers: Mapping[str, IndexFunc] | None = None,
        name: str = "",
        **reflector_options: Any,
    ) -> None:
        self.name = name or "informer"
        self.store = Indexer(indexers)
        self._handlers: list[HandlerRegistration] = []
        self._reflector = Reflector(
            lister_watcher,
            self.store,
            self._distribute,
            namespace=namespace or None,
            label_selector=label_selector,
            field_selector=field_selector,
            resync_period=resync_period,
            transform=transform,
            name=self.name,
            **reflector_options,
        )
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    # ---- handlers and indexes

    def add_handler(
        self,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
    ) -> HandlerRegistration:
        """Registers handlers; objects already cached are delivered to `on_add` first."""
        registration = HandlerRegistration(on_add, on_update, on_delete, self)
        if on_add is not None:
            for obj in self.store.list_readonly():
                self._call(on_add, obj)
        self._handlers.append(registration)
        return registration

    def add_index(self, name: str, fn: IndexFunc) -> None:
        self.store.add_index(name, fn)

    def _remove(self, registration: HandlerRegistration) -> None:
        with contextlib.suppress(ValueError):
            self._handlers.remove(registration)

    def _distribute(self, change: Change) -> None:
        for handler in tuple(self._handlers):
            if change.type == ADDED:
                if handler.on_add is not None and change.new is not None:
                    self._call(handler.on_add, change.new)
            elif change.type == MODIFIED:
                if handler.on_update is not None and change.old is not None:
                    assert change.new is not None
                    self._call(handler.on_update, change.old, change.new)
            elif handler.on_delete is not None:
                obj = change.new if change.new is not None else change.old
                assert obj is not None
                self._call(handler.on_delete, obj)

    def _call(self, fn: Callable[..., None], *args: FrozenDict) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s: event handler %r failed", self.name, fn)

    # ---- state

    @property
    def has_synced(self) -> bool:
        return self._reflector.has_synced

    @property
    def last_sync_resource_version(self) -> str:
        return self._reflector.last_sync_resource_version

    async def wait_for_sync(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """True once the first listing is cached; False on timeout or if stopped first."""
        if self.has_synced:
            return True
        waiters = {
            asyncio.ensure_future(self._reflector.synced.wait()),
            asyncio.ensure_future(self._stopped.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self.has_synced

    # ---- lifecycle

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> asyncio.Task[None]:
        """Starts the reflector as a task (idempotent); needs a running event loop."""
        if self._task is None:
            self._stopped.clear()
            self._task = asyncio.create_task(self._reflector.run(), name=f"informer {self.name}")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._stopped.set()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# ---- factory

K = TypeVar("K", bound=Hashable)


class InformerFactory(Generic[K]):
    """Hands out one shared informer per (kind, namespace, label selector, field selector)."""

    def __init__(
        self,
        lister_watcher_for: Callable[[K], ListerWatcher],
        *,
        resync_period: float | None = None,
        transform: Transform | None = None,
    ) -> None:
        self._lister_watcher_for = lister_watcher_for
        self._resync_period = resync_period
        self._transform = transform
        self._informers: dict[tuple[K, str | None, str, str], SharedInformer] = {}
        self._started = False

    def informer_for(
        self,
        kind: K,
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> SharedInformer:
        """The shared informer for this key, created on first use (and started, if
        the factory already is)."""
        key = (kind, namespace or None, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            what = "/".join(kind) if isinstance(kind, tuple) else str(kind)
            scope = f" in {namespace}" if namespace else ""
            selector = f" [{label_selector}]" if label_selector else ""
            informer = SharedInformer(
                self._lister_watcher_for(kind),
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                resync_period=self._resync_period,
                transform=self._transform,
                name=f"{what}{scope}{selector}",
            )
            self._informers[key] = informer
            if self._started:
                informer.start()
        return informer

    @property
    def informers(self) -> list[SharedInformer]:
        return list(self._informers.values())

    def start_all(self) -> None:
        self._started = True
        for informer in self._informers.values():
            informer.start()

    async def wait_for_cache_sync(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """True when every informer made so far has synced within `timeout` (overall)."""
        informers = list(self._informers.values())
        try:
            async with asyncio.timeout(timeout):
                for informer in informers:
                    if not await informer.wait_for_sync():
                        return False  # stopped before it synced
        except TimeoutError:
            return False
        return True

    async def stop_all(self) -> None:
        self._started = False
        await asyncio.gather(*(i.stop() for i in self._informers.values()))
