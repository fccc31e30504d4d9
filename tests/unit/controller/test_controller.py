"""Controller, predicates and handlers without a server: events in, reconciles out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from controller import GENERATION_CHANGED, LABELS_CHANGED, Predicate, Request, Result, TerminalError
from controller.controller import Controller
from controller.handlers import enqueue_controller_owner, enqueue_object
from controller.predicates import custom, matches
from controller.workqueue import RateLimitingQueue

Obj = dict[str, Any]


def obj(name: str, ns: str = "default", generation: int = 1, **meta: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "generation": generation, **meta}}


class FakeSource:
    def __init__(self) -> None:
        self.handlers: list[
            tuple[Callable[[Obj], None], Callable[[Obj, Obj], None], Callable[[Obj], None]]
        ] = []

    def add_handler(
        self,
        on_add: Callable[[Obj], None],
        on_update: Callable[[Obj, Obj], None],
        on_delete: Callable[[Obj], None],
    ) -> None:
        self.handlers.append((on_add, on_update, on_delete))

    def add(self, o: Obj) -> None:
        for handler in self.handlers:
            handler[0](o)

    def update(self, old: Obj, new: Obj) -> None:
        for handler in self.handlers:
            handler[1](old, new)


def test_predicates_filter_and_combine() -> None:
    old, same_gen, new_gen = obj("a"), obj("a", labels={"x": "1"}), obj("a", generation=2)
    assert not matches((GENERATION_CHANGED,), "update", old, same_gen)
    assert matches((GENERATION_CHANGED,), "update", old, new_gen)
    either = GENERATION_CHANGED | LABELS_CHANGED
    assert matches((either,), "update", old, same_gen)
    assert not matches((GENERATION_CHANGED & LABELS_CHANGED,), "update", old, same_gen)
    assert matches((~GENERATION_CHANGED,), "update", old, same_gen)
    only_b = custom(create=lambda o: o["metadata"]["name"].startswith("b"))
    assert not matches((only_b,), "create", old) and matches((only_b,), "create", obj("b1"))
    assert matches((Predicate(),), "delete", old)


def test_owned_objects_map_to_their_controller_owner_of_the_right_kind() -> None:
    mapper = enqueue_controller_owner("example.com/v1", "Parent", owner_namespaced=True)
    owned = obj(
        "child",
        "ns1",
        ownerReferences=[
            {
                "apiVersion": "example.com/v2",
                "kind": "Parent",
                "name": "p",
                "uid": "1",
                "controller": True,
            },
        ],
    )
    assert list(mapper(owned)) == [Request("ns1", "p")]
    not_controller = obj(
        "c",
        ownerReferences=[
            {"apiVersion": "example.com/v1", "kind": "Parent", "name": "p", "uid": "1"}
        ],
    )
    assert list(mapper(not_controller)) == []
    other_group = obj(
        "c",
        ownerReferences=[
            {
                "apiVersion": "other.com/v1",
                "kind": "Parent",
                "name": "p",
                "uid": "1",
                "controller": True,
            },
        ],
    )
    assert list(mapper(other_group)) == []
    cluster_owner = enqueue_controller_owner("v1", "Namespace", owner_namespaced=False)
    in_ns = obj(
        "c",
        "ns1",
        ownerReferences=[
            {"apiVersion": "v1", "kind": "Namespace", "name": "ns1", "uid": "2", "controller": True}
        ],
    )
    assert list(cluster_owner(in_ns)) == [Request("", "ns1")]
    assert list(enqueue_object(obj("x", "n"))) == [Request("n", "x")]


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    for _ in range(int(within / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


async def run_controller(controller: Controller, until: Callable[[], bool]) -> None:
    task = asyncio.create_task(controller.run())
    try:
        await wait_until(until)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_results_errors_and_terminal_errors() -> None:
    seen: list[Request] = []

    async def reconcile(request: Request) -> Result | None:
        seen.append(request)
        count = seen.count(request)
        if request.name == "again" and count == 1:
            return Result(requeue=True)
        if request.name == "later" and count == 1:
            return Result(requeue_after=0.05)
        if request.name == "boom" and count < 3:
            raise RuntimeError("transient")
        if request.name == "fatal":
            raise TerminalError("cannot be fixed by retrying")
        return None

    controller = Controller("test", reconcile, workers=3)
    source = FakeSource()
    controller.watch(source, enqueue_object)
    for name in ("plain", "again", "later", "boom", "fatal"):
        source.add(obj(name))
    await run_controller(
        controller,
        lambda: (
            seen.count(Request("default", "boom")) == 3
            and seen.count(Request("default", "later")) == 2
        ),
    )
    await asyncio.sleep(0.1)  # give a wrongly retried terminal error time to show up
    counts = {r.name: seen.count(r) for r in set(seen)}
    assert counts == {"plain": 1, "again": 2, "later": 2, "boom": 3, "fatal": 1}


async def test_a_burst_of_updates_is_one_reconcile_and_predicates_apply() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    seen: list[str] = []

    async def reconcile(request: Request) -> Result | None:
        seen.append(request.name)
        started.set()
        await release.wait()
        return None

    controller = Controller("burst", reconcile, workers=4, queue=RateLimitingQueue())
    source = FakeSource()
    controller.watch(source, enqueue_object, (GENERATION_CHANGED,))
    task = asyncio.create_task(controller.run())
    try:
        source.add(obj("a"))
        await started.wait()
        # While "a" is being reconciled: many spec changes, one label-only change (filtered).
        for generation in range(2, 12):
            source.update(obj("a", generation=generation - 1), obj("a", generation=generation))
        source.update(obj("a", generation=11), obj("a", generation=11, labels={"x": "y"}))
        await asyncio.sleep(0.05)
        assert seen == ["a"]  # never two workers on one key
        release.set()
        await wait_until(lambda: len(seen) >= 2)
        await asyncio.sleep(0.05)
        assert seen == ["a", "a"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_reconcile_timeout_is_retried() -> None:
    calls: list[int] = []

    async def reconcile(request: Request) -> Result | None:
        calls.append(1)
        if len(calls) == 1:
            await asyncio.sleep(10)
        return None

    controller = Controller("slow", reconcile, reconcile_timeout=0.05)
    source = FakeSource()
    controller.watch(source, enqueue_object)
    source.add(obj("s"))
    await run_controller(controller, lambda: len(calls) >= 2)
    assert len(calls) == 2
