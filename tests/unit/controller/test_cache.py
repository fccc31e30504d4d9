"""The informer cache: keys, indexes, relist diffs, and that cached objects cannot leak."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest

from controller.cache import (
    ADDED,
    DELETED,
    MODIFIED,
    NAMESPACE_INDEX,
    OWNER_UID_INDEX,
    FrozenDict,
    FrozenList,
    Indexer,
    freeze,
    object_key,
    split_key,
    thaw,
)


def cm(
    name: str,
    namespace: str | None = "default",
    rv: str = "1",
    uid: str | None = None,
    owners: tuple[str, ...] = (),
    **data: str,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": rv, "uid": uid or f"uid-{name}"}
    if namespace:
        meta["namespace"] = namespace
    if owners:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Thing", "name": o, "uid": o} for o in owners
        ]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


def test_keys() -> None:
    assert object_key(cm("a", "ns")) == "ns/a"
    assert object_key(cm("node-1", None)) == "node-1"
    assert split_key("ns/a") == ("ns", "a")
    assert split_key("node-1") == (None, "node-1")
    with pytest.raises(ValueError):
        object_key({"metadata": {}})


def test_upsert_get_list_delete() -> None:
    store = Indexer()
    assert store.upsert(cm("a", k="1")) is None
    store.upsert(cm("b"))
    previous = store.upsert(cm("a", rv="2", k="2"))
    assert previous is not None and previous["data"] == {"k": "1"}
    assert store.keys() == ["default/a", "default/b"]
    assert len(store) == 2 and "default/a" in store
    assert store.get("default/a") == cm("a", rv="2", k="2")
    assert [o["metadata"]["name"] for o in store.list()] == ["a", "b"]
    removed = store.delete(cm("a"))
    assert removed is not None and removed["data"] == {"k": "2"}
    assert store.delete(cm("a")) is None
    assert store.get("default/a") is None and store.get_readonly("default/a") is None
    assert store.keys() == ["default/b"]


def test_copies_do_not_leak_mutations() -> None:
    store = Indexer()
    store.upsert(cm("a", owners=("o1",), k="v"))
    copied = store.get("default/a")
    assert copied is not None
    copied["data"]["k"] = "changed"
    copied["metadata"]["ownerReferences"][0]["uid"] = "changed"
    store.list()[0]["metadata"]["name"] = "changed"
    store.by_index(NAMESPACE_INDEX, "default")[0]["data"].clear()
    assert store.get("default/a") == cm("a", owners=("o1",), k="v")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda v: v.__setitem__("kind", "Secret"),
        lambda v: v["metadata"].__setitem__("name", "b"),
        lambda v: v["metadata"]["ownerReferences"].append({}),
        lambda v: v["metadata"]["ownerReferences"][0].pop("uid"),
        lambda v: v.get("data").update(k="x"),
        lambda v: dict(v)["data"].clear(),
        lambda v: {**v}["metadata"].setdefault("labels", {}),
        lambda v: dict(v.items())["data"].popitem(),
        lambda v: list(v.values())[2].__delitem__("name"),
        lambda v: next(iter(v["metadata"]["ownerReferences"])).clear(),
        lambda v: v["metadata"]["ownerReferences"][:][0].clear(),
        lambda v: v["metadata"]["ownerReferences"].sort(),
        lambda v: v.__ior__({"x": 1}),
    ],
)
def test_readonly_views_refuse_every_mutation(mutate: Any) -> None:
    store = Indexer()
    store.upsert(cm("a", owners=("o1",), k="v"))
    view = store.get_readonly("default/a")
    with pytest.raises(TypeError):
        mutate(view)
    assert store.get("default/a") == cm("a", owners=("o1",), k="v")


def test_readonly_views_behave_like_json() -> None:
    obj = cm("a", owners=("o1",), k="v")
    view = freeze(obj)
    assert isinstance(view, dict) and isinstance(view, FrozenDict)
    assert isinstance(view["metadata"]["ownerReferences"], FrozenList)
    assert view == obj and json.loads(json.dumps(view)) == obj
    assert view.get("missing", 7) == 7
    # Explicit copies are deep and mutable, and leave the original alone.
    for mutable in (view.copy(), copy.deepcopy(view), thaw(view), pickle.loads(pickle.dumps(view))):
        assert type(mutable) is dict
        mutable["metadata"]["ownerReferences"][0]["uid"] = "x"
    merged = view | {"extra": 1}
    merged["data"]["k"] = "x"
    refs = view["metadata"]["ownerReferences"] + []
    refs[0]["uid"] = "x"
    assert obj == cm("a", owners=("o1",), k="v")


def test_a_view_is_a_snapshot() -> None:
    store = Indexer()
    store.upsert(cm("a", k="1"))
    before = store.get_readonly("default/a")
    store.upsert(cm("a", rv="2", k="2"))
    store.delete(cm("a"))
    assert before is not None and before["data"] == {"k": "1"}


def test_builtin_indexes() -> None:
    store = Indexer()
    store.upsert(cm("a", "ns1", owners=("o1", "o2")))
    store.upsert(cm("b", "ns1", owners=("o2",)))
    store.upsert(cm("c", "ns2"))
    store.upsert(cm("node", None))
    assert store.index_keys(NAMESPACE_INDEX, "ns1") == ["ns1/a", "ns1/b"]
    assert store.index_keys(NAMESPACE_INDEX, "ns2") == ["ns2/c"]
    assert store.index_keys(OWNER_UID_INDEX, "o2") == ["ns1/a", "ns1/b"]
    assert [o["metadata"]["name"] for o in store.by_index_readonly(OWNER_UID_INDEX, "o1")] == ["a"]
    # An update moves the object between index values; a delete removes it.
    store.upsert(cm("a", "ns1", rv="2", owners=("o3",)))
    assert store.index_keys(OWNER_UID_INDEX, "o1") == []
    assert store.index_keys(OWNER_UID_INDEX, "o2") == ["ns1/b"]
    assert store.index_keys(OWNER_UID_INDEX, "o3") == ["ns1/a"]
    store.delete(cm("b", "ns1"))
    assert store.index_keys(OWNER_UID_INDEX, "o2") == []
    assert store.index_keys(NAMESPACE_INDEX, "ns1") == ["ns1/a"]
    with pytest.raises(KeyError):
        store.index_keys("nope", "x")


def by_data_key(obj: dict[str, Any]) -> list[str]:
    return sorted(obj.get("data") or {})


def test_custom_indexes() -> None:
    store = Indexer({"data_key": by_data_key})
    store.upsert(cm("a", x="1", y="2"))
    store.upsert(cm("b", y="3"))
    assert store.index_keys("data_key", "y") == ["default/a", "default/b"]
    # Added later: built at once over what is cached.
    store.add_index("value", lambda o: list((o.get("data") or {}).values()))
    assert store.index_keys("value", "3") == ["default/b"]
    assert [o["metadata"]["name"] for o in store.by_index("value", "2")] == ["a"]
    assert set(store.index_names) == {NAMESPACE_INDEX, OWNER_UID_INDEX, "data_key", "value"}
    with pytest.raises(ValueError):
        store.add_index("value", by_data_key)


def test_index_functions_get_readonly_views_and_failures_leave_the_store_intact() -> None:
    seen: list[Any] = []

    def picky(obj: dict[str, Any]) -> list[str]:
        seen.append(obj)
        if obj["data"].get("bad"):
            raise RuntimeError("bad object")
        return ["ok"]

    store = Indexer({"picky": picky})
    store.upsert(cm("a", k="1"))
    assert isinstance(seen[0], FrozenDict)
    with pytest.raises(RuntimeError):
        store.upsert(cm("a", rv="2", bad="1"))
    assert store.get("default/a") == cm("a", k="1")
    assert store.index_keys("picky", "ok") == ["default/a"]


def test_replace_reports_the_difference() -> None:
    store = Indexer()
    store.upsert(cm("same", k="1"))
    store.upsert(cm("changed", k="1"))
    store.upsert(cm("gone", k="last"))
    store.upsert(cm("recreated", uid="old"))
    changes = store.replace(
        [
            cm("same", k="1"),
            cm("changed", rv="5", k="2"),
            cm("new"),
            cm("recreated", rv="6", uid="new"),
        ],
        "9",
    )
    summary = [
        (
            c.type,
            c.old["metadata"]["name"] if c.old else None,
            c.new["metadata"]["uid"] if c.new else None,
        )
        for c in changes
    ]
    assert summary == [
        (MODIFIED, "changed", "uid-changed"),
        (ADDED, None, "uid-new"),
        (DELETED, "recreated", None),
        (ADDED, None, "new"),
        (DELETED, "gone", None),
    ]
    gone = changes[-1].old
    assert gone is not None and gone["data"] == {"k": "last"}  # the last known state
    assert store.resource_version == "9"
    assert store.keys() == ["default/same", "default/changed", "default/new", "default/recreated"]
    assert store.index_keys(NAMESPACE_INDEX, "default") == sorted(store.keys())


def test_replace_without_resource_versions_compares_content() -> None:
    store = Indexer()
    plain = {"metadata": {"name": "a"}, "data": {"k": "1"}}
    store.replace([plain], "1")
    assert store.replace([{"metadata": {"name": "a"}, "data": {"k": "1"}}], "2") == []
    changes = store.replace([{"metadata": {"name": "a"}, "data": {"k": "2"}}], "3")
    assert [c.type for c in changes] == [MODIFIED]


def test_a_failing_index_function_changes_nothing() -> None:
    def strict(obj: dict[str, Any]) -> list[str]:
        return [obj["data"]["must"]]

    store = Indexer({"strict": strict})
    store.upsert(cm("a", must="x"))
    with pytest.raises(KeyError):
        store.replace([cm("b")], "5")
    assert store.keys() == ["default/a"]
    assert store.index_keys("strict", "x") == ["default/a"]
    with pytest.raises(KeyError):
        store.add_index("also_strict", lambda o: [o["data"]["other"]])
    assert "also_strict" not in store.index_names
