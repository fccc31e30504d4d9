"""Storage: durable writes, ordered events, history-based snapshots and expiry."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from localcluster.storage import ADDED, DELETED, MODIFIED, Store, TooOld


def cm(name: str, rv: int, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)}, "data": data}


async def put(store: Store, name: str, event: str = ADDED, **data: str) -> int:
    rv = store.next_rv()
    await store.write("configmaps", ("ns", name), cm(name, rv, **data), rv=rv, event_type=event)
    return rv


async def test_writes_survive_reopen(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite")
    store.open()
    await put(store, "a", k="1")
    rv = await put(store, "a", MODIFIED, k="2")
    await put(store, "b")
    deleted_rv = store.next_rv()
    await store.write("configmaps", ("ns", "b"), None, rv=deleted_rv, event_type=DELETED)
    await store.close()

    reopened = Store(tmp_path / "state.sqlite")
    reopened.open()
    try:
        assert reopened.get("configmaps", ("ns", "a")) == cm("a", rv, k="2")
        assert reopened.get("configmaps", ("ns", "b")) is None
        assert reopened.rv == deleted_rv
        # History does not survive a restart: older versions are expired, the current one is not.
        with pytest.raises(TooOld):
            reopened.subscribe("configmaps", rv)
        backlog, sub = reopened.subscribe("configmaps", deleted_rv)
        assert backlog == []
        reopened.unsubscribe(sub)
    finally:
        await reopened.close()


async def test_concurrent_writes_publish_in_version_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite")
    store.open()
    try:
        _, sub = store.subscribe_current("configmaps")
        await asyncio.gather(*(put(store, f"cm-{i}") for i in range(200)))
        seen = [sub.queue.get_nowait() for _ in range(200)]
        versions = [event.rv for event in seen if event is not None]
        assert versions == sorted(versions) and len(set(versions)) == 200
        assert store.published_rv == store.rv
    finally:
        await store.close()


async def test_snapshot_at_undoes_later_changes() -> None:
    store = Store(None)
    first = await put(store, "a", k="1")
    await put(store, "b")
    middle = store.rv
    await put(store, "a", MODIFIED, k="2")
    rv = store.next_rv()
    await store.write("configmaps", ("ns", "b"), None, rv=rv, event_type=DELETED)
    await put(store, "c")
    snapshot = store.snapshot_at("configmaps", "ns", middle)
    assert [(o["metadata"]["name"], o["data"]) for o in snapshot] == [("a", {"k": "1"}), ("b", {})]
    assert [o["metadata"]["name"] for o in store.snapshot_at("configmaps", None, first)] == ["a"]
    assert [o["metadata"]["name"] for o in store.items("configmaps")] == ["a", "c"]


async def test_history_ring_expires_old_versions() -> None:
    store = Store(None, history_size=3)
    versions = [await put(store, f"x{i}") for i in range(6)]
    with pytest.raises(TooOld) as expired:
        store.subscribe("configmaps", versions[1])
    assert expired.value.oldest == versions[2]
    backlog, _ = store.subscribe("configmaps", versions[2])
    assert [e.rv for e in backlog] == versions[3:]
    with pytest.raises(TooOld):
        store.snapshot_at("configmaps", None, versions[0])


async def test_overflowing_watcher_is_cut_off() -> None:
    store = Store(None)
    _, sub = store.subscribe_current("configmaps")
    sub.limit = 2
    for i in range(4):
        await put(store, f"o{i}")
    drained = []
    while not sub.queue.empty():
        drained.append(sub.queue.get_nowait())
    assert drained[-1] is None and len(drained) == 3
