"""Reflector, shared informer and factory against a scripted ListerWatcher."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from controller.cache import FrozenDict
from controller.informer import (
    Backoff,
    InformerFactory,
    ListPage,
    SharedInformer,
    lister_watcher,
    strip_managed_fields,
)

Obj = dict[str, Any]


def cm(name: str, rv: str, namespace: str = "default", **data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": rv,
            "uid": f"uid-{name}",
        },
        "data": dict(data),
    }


def bookmark(rv: str) -> Obj:
    return {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": rv}}


class Gone(Exception):
    status = 410


class Boom(Exception):
    status = 500


END = object()  # ends a watch stream cleanly


@dataclass
class FakeListerWatcher:
    """Lists answer from `lists` in order (each a list of pages, or an exception to raise);
    every watch gets a fresh queue, pre-filled from `watches` if scripted. Queue items:
    (type, object) events, exceptions to raise, END, or callables to run. With nothing
    scripted, a list or watch waits until the test feeds it."""

    lists: deque[list[ListPage | BaseException] | BaseException] = field(default_factory=deque)
    watches: deque[list[Any]] = field(default_factory=deque)
    list_calls: list[dict[str, Any]] = field(default_factory=list)
    watch_calls: list[dict[str, Any]] = field(default_factory=list)
    streams: list[asyncio.Queue[Any]] = field(default_factory=list)
    list_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _pages: deque[ListPage | BaseException] = field(default_factory=deque)

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
        self.list_calls.append(
            {
                "namespace": namespace,
                "label_selector": label_selector,
                "field_selector": field_selector,
                "limit": limit,
                "continue_token": continue_token,
                "resource_version": resource_version,
            }
        )
        if not continue_token:
            while not self.lists:
                self.list_ready.clear()
                await self.list_ready.wait()
            answer = self.lists.popleft()
            if isinstance(answer, BaseException):
                raise answer
            self._pages = deque(answer)
        page = self._pages.popleft()
        if isinstance(page, BaseException):
            raise page
        return page

    def add_list(self, *pages: ListPage | BaseException) -> None:
        self.lists.append(list(pages))
        self.list_ready.set()

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
        self.watch_calls.append(
            {
                "namespace": namespace,
                "resource_version": resource_version,
                "allow_bookmarks": allow_bookmarks,
                "timeout_seconds": timeout_seconds,
            }
        )
        queue: asyncio.Queue[Any] = asyncio.Queue()
        for item in self.watches.popleft() if self.watches else ():
            queue.put_nowait(item)
        self.streams.append(queue)
        while True:
            item = await queue.get()
            if item is END:
                return
            if isinstance(item, BaseException):
                raise item
            if callable(item):
                item()
                continue
            yield item


def page(*items: Obj, rv: str, token: str = "") -> ListPage:
    return ListPage(items=list(items), resource_version=rv, continue_token=token)


class FakeTime:
    """A clock that moves only when told to, and a sleep that records and returns at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> Callable[[], None]:
        def step() -> None:
            self.now += seconds

        return step


class Recorder:
    """Handlers that log (event, name, resourceVersion) tuples."""

    def __init__(self, tag: str = "") -> None:
        self.tag = tag
        self.events: list[tuple[str, ...]] = []

    def _log(self, kind: str, *objs: Obj) -> None:
        entry = (
            kind,
            *(f"{o['metadata']['name']}@{o['metadata']['resourceVersion']}" for o in objs),
        )
        self.events.append((self.tag, *entry) if self.tag else entry)

    def on_add(self, obj: Obj) -> None:
        self._log("add", obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._log("update", old, new)

    def on_delete(self, obj: Obj) -> None:
        self._log("delete", obj)

    def attach(self, informer: SharedInformer) -> None:
        informer.add_handler(self.on_add, self.on_update, self.on_delete)


async def until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Polls: the conditions are about other tasks' progress, not timing."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def running(informer: SharedInformer) -> AsyncIterator[SharedInformer]:
    informer.start()
    try:
        yield informer
    finally:
        await informer.stop()


def make(lw: FakeListerWatcher, fake: FakeTime | None = None, **options: Any) -> SharedInformer:
    fake = fake or FakeTime()
    return SharedInformer(lw, sleep=fake.sleep, clock=fake.clock, **options)


# ---- list, watch, paging, bookmarks


async def test_list_then_watch_applies_events_in_order() -> None:
    lw = FakeListerWatcher()
    lw.add_list(page(cm("a", "5"), cm("b", "6"), rv="10"))
    lw.watches.append(
        [
            ("ADDED", cm("c", "11")),
            ("MODIFIED", cm("a", "12", k="v")),
            ("DELETED", cm("b", "13")),
        ]
    )
    informer = make(lw, namespace="default", label_selector="app=x", field_selector="f=y")
    rec = Recorder()
    rec.attach(informer)
    async with running(informer):
        assert await informer.wait_for_sync(timeout=5)
        await until(lambda: informer.last_sync_resource_version == "13")
    assert rec.events == [
        ("add", "a@5"),
        ("add", "b@6"),
        ("add", "c@11"),
        ("update", "a@5", "a@12"),
        ("delete", "b@13"),
    ]
    assert informer.store.keys() == ["default/a", "default/c"]
    assert informer.store.get("default/a") == cm("a", "12", k="v")
    assert lw.list_calls[0] == {
        "namespace": "default",
        "label_selector": "app=x",
        "field_selector": "f=y",
        "limit": 500,
        "continue_token": "",
        "resource_version": "",
    }
    call = lw.watch_calls[0]
    assert call["resource_version"] == "10" and call["allow_bookmarks"] is True
    assert 300 <= call["timeout_seconds"] <= 600


async def test_paging() -> None:
    lw = FakeListerWatcher()
    lw.add_list(
        page(cm("a", "1"), cm("b", "2"), rv="20", token="t1"),
        page(cm("c", "3"), rv="20", token="t2"),
        page(cm("d", "4"), rv="20"),
    )
    informer = make(lw)
    async with running(informer):
        assert await informer.wait_for_sync(timeout=5)
        await until(lambda: len(lw.watch_calls) == 1)
    assert [c["continue_token"] for c in lw.list_calls] == ["", "t1", "t2"]
    assert all(c["limit"] == 500 for c in lw.list_calls)
    assert informer.store.keys() == ["default/a", "default/b", "default/c", "default/d"]
    assert lw.watch_calls[0]["resource_version"] == "20"


async def test_an_expired_continue_token_restarts_the_list() -> None:
    lw = FakeListerWatcher()
    lw.add_list(page(cm("a", "1"), rv="20", token="t1"), Gone("continue expired"))
    lw.add_list(page(cm("a", "1"), cm("b", "21"), rv="22"))
    informer = make(lw)
    async with running(informer):
        assert await informer.wait_for_sync(timeout=5)
    assert [c["continue_token"] for c in lw.list_calls] == ["", "t1", ""]
    assert informer.store.keys() == ["default/a", "default/b"]
    assert informer.last_sync_resource_version == "22"


async def test_bookmarks_only_advance_the_resource_version() -> None:
    lw = FakeListerWatcher()
    lw.add_list(page(cm("a", "5"), rv="10"))
    lw.watches.append([("BOOKMARK", bookmark("15")), END])
    fake = FakeTime()
    informer = make(lw, fake)
    rec = Recorder()
    rec.attach(informer)
    async with running(informer):
        await until(lambda: len(lw.watch_calls) == 2)
        assert informer.last_sync_resource_version == "15"
        assert informer.store.resource_version == "15"
    assert rec.events == [("add", "a@5")]
    assert informer.store.keys() == ["default/a"]
    assert [c["resource_version"] for c in lw.watch_calls] == ["10", "15"]
    assert len(lw.list_calls) == 1


async def test_unknown_deletes_are_dropped_and_unknown_modifies_are_adds() -> None:
    lw = FakeListerWatcher()
    lw.add_list(page(rv="1"))
    lw.watches.append([("DELETED", cm("x", "2")), ("MODIFIED", cm("y", "3")), ("WEIRD", {})])
    informer = make(lw)
    rec = Recorder()
    rec.attach(informer)
    async with running(informer):
        await until(lambda: informer.last_sync_resource_version == "3")
    assert rec.events == [("add", "y@3")]


async def test_transform_applies_to_lists_and_watches() -> None:
    lw = FakeListerWatcher()
    listed = cm("a", "1")
    listed["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    watched = cm("b", "2")
    watched["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    lw.add_list(page(listed, rv="1"))
    lw.watches.append([("ADDED", watched)])
    informer = make(lw, transform=strip_managed_fields)
    async with running(informer):
        await until(lambda: len(informer.store) == 2)
    assert all("managedFields" not in o["metadata"] for o in informer.store.list())


# ---- relisting and reconnecting


async def test_relist_on_gone_delivers_what_changed_while_disconnected() -> None:
    lw = FakeListerWatcher()
    fake = FakeTime()
    lw.add_list(page(cm("a", "1"), cm("b", "2"), cm("c", "3", k="last"), rv="3"))
    lw.watches.append([("MODIFIED", cm("a", "4")), Gone("too old resource version")])
    lw.add_list(page(cm("a", "4"), cm("b", "7"), cm("d", "8"), rv="9"))
    informer = make(lw, fake)
    rec = Recorder()
    rec.attach(informer)
    deleted: list[Obj] = []
    informer.add_handler(on_delete=deleted.append)
    async with running(informer):
        await until(lambda: len(lw.watch_calls) == 2)
    assert rec.events == [
        ("add", "a@1"),
        ("add", "b@2"),
        ("add", "c@3"),
        ("update", "a@1", "a@4"),
        ("update", "b@2", "b@7"),
        ("add", "d@8"),
        ("delete", "c@3"),
    ]
    assert deleted == [cm("c", "3", k="last")]  # the last state the cache knew
    assert informer.store.keys() == ["default/a", "default/b", "default/d"]
    assert [c["resource_version"] for c in lw.watch_calls] == ["3", "9"]
    assert fake.sleeps == []  # a first 410 relists at once


async def test_an_error_event_with_410_relists_and_others_rewatch() -> None:
    lw = FakeListerWatcher()
    fake = FakeTime()
    lw.add_list(page(cm("a", "1"), rv="5"))
    status_500 = {"kind": "Status", "code": 500, "message": "internal"}
    status_410 = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    lw.watches.append([("ERROR", status_500)])
    lw.watches.append([("ERROR", status_410)])
    lw.add_list(page(rv="8"))
    informer = make(lw, fake)
    rec = Recorder()
    rec.attach(informer)
    async with running(informer):
        await until(lambda: len(lw.watch_calls) == 3)
    assert [c["resource_version"] for c in lw.watch_calls] == ["5", "5", "8"]
    assert len(lw.list_calls) == 2
    assert len(fake.sleeps) == 1  # the 500 backs off, the 410 relists at once
    assert rec.events == [("add", "a@1"), ("delete", "a@1")]


async def test_repeated_gone_backs_off() -> None:
    lw = FakeListerWatcher()
    fake = FakeTime()
    for rv in ("1", "2", "3"):
        lw.add_list(page(rv=rv))
        lw.watches.append([Gone()])
    informer = make(lw, fake)
    async with running(informer):
        await until(lambda: len(lw.list_calls) == 4)  # the fourth list waits forever
    assert len(fake.sleeps) == 2  # the first 410 relisted at once, the next two backed off


async def test_reconnect_backoff_grows_with_jitter_and_caps() -> None:
    lw = FakeListerWatcher()
    fake = FakeTime()
    lw.add_list(page(cm("a", "1"), rv="1"))
    for _ in range(12):
        lw.watches.append([ConnectionError("refused")])
    informer = make(lw, fake, rand=lambda: 0.5)
    async with running(informer):
        await until(lambda: len(fake.sleeps) == 12)
    # 0.8 * 2**n, times 1 + jitter (0.5 here), never above 30 s.
    assert fake.sleeps[:6] == pytest.approx([1.2, 2.4, 4.8, 9.6, 19.2, 30.0])
    assert fake.sleeps[6:] == [30.0] * 6
    assert {c["resource_version"] for c in lw.watch_calls} == {"1"}  # resumed, never relisted
    assert len(lw.list_calls) == 1
    assert all(c["timeout_seconds"] == 450 for c in lw.watch_calls)


def constant(value: float) -> Callable[[], float]:
    return lambda: value


def test_backoff_jitter_stays_within_bounds() -> None:
    for r in (0.0, 0.3, 0.999999):
        backoff = Backoff(rand=constant(r))
        delays = [backoff.next_delay() for _ in range(20)]
        assert 0.8 <= delays[0] <= 1.6
        assert all(0.8 <= d <= 30.0 for d in delays)
        assert delays[-1] == pytest.approx(30.0)
        backoff.reset()
        assert backoff.next_delay() == delays[0]


async def test_backoff_resets_after_a_healthy_watch() -> None:
    lw = FakeListerWatcher()
    fake = FakeTime()
    lw.add_list(page(rv="1"))
    lw.watches.extend([[Boom()], [Boom()], [Boom()]])
    lw.watches.append([fake.advance(31), Boom()])  # up for 31 s, then fails
    lw.watches.append([Boom()])
    informer = make(lw, fake, rand=lambda: 0.0)
    async with running(informer):
        await until(lambda: len(fake.sleeps) == 5)
    assert fake.sleeps == pytest.approx([0.8, 1.6, 3.2, 0.8, 1.6])


async def test_a_healthy_watch_that_ends_reconnects_at_once_a_short_one_backs_off() -> None:
    lw = FakeListerWatcher()
    fake = FakeTime()
    lw.add_list(page(rv="1"))
    lw.watches.append([fake.advance(400), END])  # its timeout: reconnect now
    lw.watches.append([END])  # closed at once: back off
    informer = make(lw, fake, rand=lambda: 0.0)
    async with running(informer):
        await until(lambda: len(lw.watch_calls) == 3)
    assert fake.sleeps == [0.8]


async def test_list_failures_back_off_and_retry() -> None:
    lw = FakeListerWatcher()
    fake = FakeTime()
    lw.lists.extend([ConnectionError("down"), ConnectionError("down")])
    lw.add_list(page(cm("a", "1"), rv="1"))
    informer = make(lw, fake, rand=lambda: 0.0)
    async with running(informer):
        assert await informer.wait_for_sync(timeout=5)
    assert fake.sleeps == [0.8, 1.6]
    assert informer.store.keys() == ["default/a"]


# ---- handlers


async def test_handlers_see_each_event_in_order_and_late_handlers_catch_up() -> None:
    lw = FakeListerWatcher()
    lw.add_list(page(cm("a", "1"), cm("b", "2"), rv="2"))
    informer = make(lw)
    first, second, late = Recorder("1"), Recorder("2"), Recorder("late")
    log: list[tuple[str, ...]] = []
    first.events = second.events = late.events = log
    first.attach(informer)
    second.attach(informer)
    async with running(informer):
        assert await informer.wait_for_sync(timeout=5)
        await until(lambda: len(lw.streams) == 1)
        late.attach(informer)
        lw.streams[0].put_nowait(("MODIFIED", cm("a", "3")))
        lw.streams[0].put_nowait(("DELETED", cm("b", "4")))
        await until(lambda: informer.last_sync_resource_version == "4")
    assert log == [
        ("1", "add", "a@1"),
        ("2", "add", "a@1"),
        ("1", "add", "b@2"),
        ("2", "add", "b@2"),
        ("late", "add", "a@1"),
        ("late", "add", "b@2"),
        ("1", "update", "a@1", "a@3"),
        ("2", "update", "a@1", "a@3"),
        ("late", "update", "a@1", "a@3"),
        ("1", "delete", "b@4"),
        ("2", "delete", "b@4"),
        ("late", "delete", "b@4"),
    ]


async def test_handlers_get_readonly_objects_and_failures_are_contained() -> None:
    lw = FakeListerWatcher()
    lw.add_list(page(cm("a", "1", k="v"), rv="1"))
    informer = make(lw)
    outcomes: list[str] = []

    def vandal(obj: Obj) -> None:
        assert isinstance(obj, FrozenDict)
        try:
            obj["data"]["k"] = "changed"
        except TypeError:
            outcomes.append("refused")
        raise RuntimeError("handler bug")

    informer.add_handler(vandal)
    informer.add_handler(lambda obj: outcomes.append(obj["data"]["k"]))
    async with running(informer):
        assert await informer.wait_for_sync(timeout=5)
    assert outcomes == ["refused", "v"]
    assert informer.store.get("default/a") == cm("a", "1", k="v")


async def test_removed_handlers_hear_nothing_more() -> None:
    lw = FakeListerWatcher()
    lw.add_list(page(cm("a", "1"), rv="1"))
    informer = make(lw)
    rec = Recorder()
    registration = informer.add_handler(rec.on_add, rec.on_update, rec.on_delete)
    async with running(informer):
        assert await informer.wait_for_sync(timeout=5)
        await until(lambda: len(lw.streams) == 1)
        registration.remove()
        lw.streams[0].put_nowait(("ADDED", cm("b", "2")))
        await until(lambda: len(informer.store) == 2)
    assert rec.events == [("add", "a@1")]


async def test_resync_redelivers_cached_objects_as_updates() -> None:
    lw = FakeListerWatcher()
    lw.add_list(page(cm("a", "1"), rv="1"))
    informer = make(lw, resync_period=0.01)
    rec = Recorder()
    rec.attach(informer)
    async with running(informer):
        await until(lambda: ("update", "a@1", "a@1") in rec.events)
    assert rec.events[0] == ("add", "a@1")


async def test_custom_indexes_on_the_informer() -> None:
    lw = FakeListerWatcher()
    lw.add_list(page(cm("a", "1", node="n1"), cm("b", "2", node="n2"), rv="2"))
    informer = make(lw, indexers={"node": lambda o: [o["data"]["node"]]})
    informer.add_index("name", lambda o: [o["metadata"]["name"]])
    async with running(informer):
        assert await informer.wait_for_sync(timeout=5)
    assert informer.store.index_keys("node", "n2") == ["default/b"]
    assert informer.store.index_keys("name", "a") == ["default/a"]


# ---- sync and lifecycle


async def test_wait_for_sync_times_out_or_ends_with_stop() -> None:
    lw = FakeListerWatcher()  # the list never answers
    informer = make(lw)
    informer.start()
    assert not await informer.wait_for_sync(timeout=0.01)
    waiter = asyncio.create_task(informer.wait_for_sync())
    await asyncio.sleep(0)
    await informer.stop()
    assert await waiter is False
    assert not informer.has_synced and not informer.running


async def test_factory_shares_informers_per_key() -> None:
    made: list[tuple[str, str]] = []
    fakes: list[FakeListerWatcher] = []

    def lw_for(kind: tuple[str, str]) -> FakeListerWatcher:
        made.append(kind)
        fake = FakeListerWatcher()
        fakes.append(fake)
        fake.add_list(page(cm("a", "1"), rv="1"))
        return fake

    factory = InformerFactory(lw_for)
    cms = factory.informer_for(("v1", "ConfigMap"))
    assert factory.informer_for(("v1", "ConfigMap")) is cms
    in_ns = factory.informer_for(("v1", "ConfigMap"), "ns")
    assert factory.informer_for(("v1", "ConfigMap"), "ns") is in_ns
    labelled = factory.informer_for(("v1", "ConfigMap"), "ns", "app=x")
    assert len({id(cms), id(in_ns), id(labelled)}) == 3
    assert made == [("v1", "ConfigMap")] * 3
    factory.start_all()
    try:
        assert await factory.wait_for_cache_sync(timeout=5)
        late = factory.informer_for(("v1", "Secret"))  # started on creation
        assert await late.wait_for_sync(timeout=5)
        assert cms.has_synced and cms.store.keys() == ["default/a"]
        scopes = [(f.list_calls[0]["namespace"], f.list_calls[0]["label_selector"]) for f in fakes]
        assert scopes == [(None, ""), ("ns", ""), ("ns", "app=x"), (None, "")]
    finally:
        await factory.stop_all()
    assert not any(i.running for i in factory.informers)


async def test_factory_wait_for_cache_sync_times_out() -> None:
    factory: InformerFactory[str] = InformerFactory(lambda kind: FakeListerWatcher())
    factory.informer_for("anything")
    factory.start_all()
    try:
        assert not await factory.wait_for_cache_sync(timeout=0.01)
    finally:
        await factory.stop_all()


# ---- the client adapter


async def test_lister_watcher_adapts_a_client() -> None:
    calls: list[tuple[Any, ...]] = []

    @dataclass
    class Page:
        items: list[Obj]
        resource_version: str
        continue_token: str

    @dataclass
    class Event:
        type: str
        object: Obj

    class Client:
        async def list(self, kind: Any, namespace: Any, **kwargs: Any) -> Page:
            calls.append(("list", kind, namespace, kwargs))
            return Page([cm("a", "1")], "7", "next")

        async def watch(self, kind: Any, namespace: Any, **kwargs: Any) -> AsyncIterator[Event]:
            calls.append(("watch", kind, namespace, kwargs))
            yield Event("ADDED", cm("b", "8"))
            raise Gone()

    lw = lister_watcher(Client(), ("v1", "ConfigMap"))
    assert calls == []  # bound lazily
    got = await lw.list(
        "ns",
        label_selector="a=b",
        field_selector="",
        limit=500,
        continue_token="",
        resource_version="",
    )
    assert got == ListPage([cm("a", "1")], "7", "next")
    events = []
    with pytest.raises(Gone):
        async for event in lw.watch(
            "ns",
            resource_version="7",
            label_selector="a=b",
            field_selector="",
            allow_bookmarks=True,
            timeout_seconds=300,
        ):
            events.append(event)
    assert events == [("ADDED", cm("b", "8"))]
    assert calls[0] == (
        "list",
        ("v1", "ConfigMap"),
        "ns",
        {
            "label_selector": "a=b",
            "field_selector": "",
            "limit": 500,
            "continue_token": "",
            "resource_version": "",
        },
    )
    assert calls[1] == (
        "watch",
        ("v1", "ConfigMap"),
        "ns",
        {
            "resource_version": "7",
            "label_selector": "a=b",
            "field_selector": "",
            "allow_bookmarks": True,
            "timeout_seconds": 300,
        },
    )
