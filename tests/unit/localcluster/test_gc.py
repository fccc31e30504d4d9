"""The garbage collector's decisions, against an in-memory fake of the API client.

Each test puts objects on the fake "server" and, where it matters, a different picture
in the collector's cache, then processes one node: the collector must act on what the
server says, never on a stale cache alone.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, cast

import pytest

from controller import Client, Conflict, NoKindMatch, NotFound, SharedInformer
from controller.client import ObjectList
from controller.informer import lister_watcher
from controller.restmapper import Resource
from localcluster.controllers.garbagecollector import (
    FOREGROUND,
    ORPHAN,
    GarbageCollector,
    Node,
    Unresolved,
    Watched,
    gc_state,
    metadata_only,
    resource_key,
    served_resources,
    unblocked,
    without_refs,
)
from localcluster.controllers.namespace import recheck_delay
from localcluster.controllers.serviceaccount import namespace_of_default

Obj = dict[str, Any]
CM = Resource(
    "", "v1", "ConfigMap", "configmaps", True, verbs=frozenset({"list", "watch", "delete"})
)
SECRET = Resource("", "v1", "Secret", "secrets", True, verbs=frozenset({"list", "watch", "delete"}))
NODE = Resource("", "v1", "Node", "nodes", False, verbs=frozenset({"list", "watch", "delete"}))
RESOURCES = {(r.api_version, r.kind): r for r in (CM, SECRET, NODE)}
_uids = itertools.count(1)


class FakeClient:
    """Objects by (apiVersion, kind, namespace, name), with the server's delete and
    finalizer semantics the collector relies on; every write is recorded."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str, str], Obj] = {}
        self.deletes: list[tuple[str, str, str | None]] = []
        self.patches: list[tuple[str, Obj]] = []
        self.gets = 0
        self.rv = itertools.count(100)
        self.mapper = self

    def invalidate(self, api_version: str | None = None) -> None:
        pass

    def put(self, kind: tuple[str, str], name: str, namespace: str = "", **meta: Any) -> Obj:
        obj = {
            "apiVersion": kind[0],
            "kind": kind[1],
            "metadata": {
                "name": name,
                "uid": meta.pop("uid", f"uid-{next(_uids)}"),
                "resourceVersion": str(next(self.rv)),
                **({"namespace": namespace} if namespace else {}),
                **meta,
            },
        }
        self.objects[(*kind, namespace, name)] = obj
        return copy.deepcopy(obj)

    def find(self, kind: tuple[str, str], name: str, namespace: str | None) -> Obj | None:
        return self.objects.get((*kind, namespace or "", name))

    async def resource(self, kind: tuple[str, str]) -> Resource:
        try:
            return RESOURCES[kind]
        except KeyError:
            raise NoKindMatch(*kind) from None

    async def get(self, kind: tuple[str, str], name: str, namespace: str | None = None) -> Obj:
        self.gets += 1
        await self.resource(kind)
        obj = self.find(kind, name, namespace)
        if obj is None:
            raise NotFound(404, "NotFound", f"{name} not found", {"name": name})
        return copy.deepcopy(obj)

    async def delete(
        self,
        kind: tuple[str, str],
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        preconditions: Obj | None = None,
    ) -> Obj:
        obj = self.find(kind, name, namespace)
        if obj is None:
            raise NotFound(404, "NotFound", "", {"name": name})
        meta = obj["metadata"]
        for field, value in (preconditions or {}).items():
            if meta[field] != value:
                raise Conflict(409, "Conflict", f"precondition {field}")
        self.deletes.append((name, str(propagation_policy), namespace))
        del self.objects[(*kind, namespace or "", name)]
        return {"kind": "Status"}

    async def patch(
        self,
        kind: tuple[str, str],
        name: str,
        patch: Obj,
        *,
        namespace: str | None = None,
        patch_type: str = "merge",
    ) -> Obj:
        obj = self.find(kind, name, namespace)
        if obj is None:
            raise NotFound(404, "NotFound", "", {"name": name})
        meta = obj["metadata"]
        changes = dict(patch["metadata"])
        if changes.pop("resourceVersion", meta["resourceVersion"]) != meta["resourceVersion"]:
            raise Conflict(409, "Conflict", "stale")
        self.patches.append((name, copy.deepcopy(changes)))
        for key, value in changes.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = copy.deepcopy(value)
        meta["resourceVersion"] = str(next(self.rv))
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self.objects[(*kind, namespace or "", name)]
        return copy.deepcopy(obj)

    async def list_all(
        self, kind: tuple[str, str], namespace: str | None = None
    ) -> ObjectList[Obj]:
        items = [
            copy.deepcopy(obj)
            for (api_version, kind_name, ns, _), obj in self.objects.items()
            if (api_version, kind_name) == kind and (namespace is None or ns == namespace)
        ]
        return ObjectList(items, "1")


@pytest.fixture
def server() -> FakeClient:
    return FakeClient()


@pytest.fixture
def gc(server: FakeClient) -> GarbageCollector:
    collector = GarbageCollector(cast(Client, server))
    for resource in (CM, SECRET, NODE):
        # Never started: the tests fill its cache by hand.
        lw = lister_watcher(server, (resource.api_version, resource.kind))
        informer = SharedInformer(lw, transform=metadata_only)
        collector.watched[resource_key(resource)] = Watched(resource, informer)
    return collector


def cache(gc: GarbageCollector, obj: Obj) -> None:
    """Shows `obj` in the collector's cache (as the informer would)."""
    key = resource_key(RESOURCES[(obj["apiVersion"], obj["kind"])])
    gc.watched[key].informer.store.upsert(metadata_only(copy.deepcopy(obj)))


def node(obj: Obj) -> Node:
    meta = obj["metadata"]
    resource = resource_key(RESOURCES[(obj["apiVersion"], obj["kind"])])
    return Node(resource, meta.get("namespace", ""), meta["name"], meta["uid"])


def ref(owner: Obj, block: bool = False) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "blockOwnerDeletion": block,
    }


def queued(gc: GarbageCollector) -> set[Node]:
    return set(gc.queue._queue)


CMK = ("v1", "ConfigMap")
SECK = ("v1", "Secret")


# ---- dependents


async def test_dependent_of_a_gone_owner_is_deleted_in_background(
    server: FakeClient, gc: GarbageCollector
) -> None:
    owner = server.put(CMK, "owner", "ns")
    dependent = server.put(SECK, "dep", "ns", ownerReferences=[ref(owner)])
    cache(gc, owner)
    cache(gc, dependent)
    del server.objects[("v1", "ConfigMap", "ns", "owner")]
    # Until its DELETED event arrives the cache vouches for the owner: no action yet.
    await gc.process(node(dependent))
    assert server.deletes == []
    gc.watched["configmaps"].informer.store.delete(owner)
    gc._on_delete("configmaps", metadata_only(owner))
    assert queued(gc) == {node(dependent)}
    await gc.process(node(dependent))
    assert server.deletes == [("dep", "Background", "ns")]


async def test_owner_replaced_under_the_same_name_counts_as_gone(
    server: FakeClient, gc: GarbageCollector
) -> None:
    owner = server.put(CMK, "owner", "ns")
    dependent = server.put(SECK, "dep", "ns", ownerReferences=[ref(owner)])
    server.put(CMK, "owner", "ns")  # a new uid
    await gc.process(node(dependent))
    assert server.deletes == [("dep", "Background", "ns")]


async def test_stale_cache_showing_the_owner_gone_deletes_nothing(
    server: FakeClient, gc: GarbageCollector
) -> None:
    owner = server.put(CMK, "owner", "ns")
    dependent = server.put(SECK, "dep", "ns", ownerReferences=[ref(owner)])
    cache(gc, dependent)  # the owner is missing from the cache only
    await gc.process(node(dependent))
    assert server.deletes == [] and server.patches == []
    assert server.gets == 2  # the dependent and its owner, live


async def test_alive_cached_owners_cost_no_request(
    server: FakeClient, gc: GarbageCollector
) -> None:
    owner = server.put(CMK, "owner", "ns")
    dependent = server.put(SECK, "dep", "ns", ownerReferences=[ref(owner)])
    cache(gc, owner)
    cache(gc, dependent)
    await gc.process(node(dependent))
    assert server.gets == 0 and server.deletes == []


async def test_a_live_owner_keeps_the_dependent_which_drops_the_dead_one(
    server: FakeClient, gc: GarbageCollector
) -> None:
    alive = server.put(CMK, "alive", "ns")
    dead = server.put(CMK, "dead", "ns")
    dependent = server.put(SECK, "dep", "ns", ownerReferences=[ref(dead), ref(alive)])
    del server.objects[("v1", "ConfigMap", "ns", "dead")]
    await gc.process(node(dependent))
    assert server.deletes == []
    assert [
        r["name"]
        for r in server.objects[("v1", "Secret", "ns", "dep")]["metadata"]["ownerReferences"]
    ] == ["alive"]


async def test_dependent_of_an_owner_deleting_in_foreground_goes_in_foreground(
    server: FakeClient, gc: GarbageCollector
) -> None:
    owner = server.put(CMK, "owner", "ns", deletionTimestamp="t", finalizers=[FOREGROUND])
    dependent = server.put(SECK, "dep", "ns", ownerReferences=[ref(owner, block=True)])
    await gc.process(node(dependent))
    assert server.deletes == [("dep", "Foreground", "ns")]


async def test_changed_dependent_is_judged_again(server: FakeClient, gc: GarbageCollector) -> None:
    owner = server.put(CMK, "owner", "ns")
    dependent = server.put(SECK, "dep", "ns", ownerReferences=[ref(owner)])
    del server.objects[("v1", "ConfigMap", "ns", "owner")]
    original_get = server.get

    async def get_then_change(
        kind: tuple[str, str], name: str, namespace: str | None = None
    ) -> Obj:
        found = await original_get(kind, name, namespace)
        if name == "dep":  # someone writes the dependent right after we read it
            server.objects[("v1", "Secret", "ns", "dep")]["metadata"]["resourceVersion"] = "999"
        return found

    server.get = get_then_change  # type: ignore[method-assign]
    with pytest.raises(Conflict):
        await gc.process(node(dependent))
    assert server.deletes == []


async def test_owner_of_an_unserved_kind_is_never_acted_on(
    server: FakeClient, gc: GarbageCollector
) -> None:
    dependent = server.put(
        SECK,
        "dep",
        "ns",
        ownerReferences=[{"apiVersion": "x.io/v1", "kind": "Thing", "name": "t", "uid": "u"}],
    )
    with pytest.raises(Unresolved):
        await gc.process(node(dependent))
    assert server.deletes == []


async def test_a_404_for_the_resource_rather_than_the_owner_is_not_absence(
    server: FakeClient, gc: GarbageCollector
) -> None:
    owner = server.put(CMK, "owner", "ns")
    dependent = server.put(SECK, "dep", "ns", ownerReferences=[ref(owner)])
    original_get = server.get

    async def resource_gone(kind: tuple[str, str], name: str, namespace: str | None = None) -> Obj:
        if kind == CMK:
            raise NotFound(404, "NotFound", "the server could not find the requested resource")
        return await original_get(kind, name, namespace)

    server.get = resource_gone  # type: ignore[method-assign]
    with pytest.raises(Unresolved):
        await gc.process(node(dependent))
    assert server.deletes == []


async def test_cluster_scoped_dependent_of_a_namespaced_owner_is_collected(
    server: FakeClient, gc: GarbageCollector
) -> None:
    owner = server.put(CMK, "owner", "ns")
    dependent = server.put(("v1", "Node"), "n1", ownerReferences=[ref(owner)])
    await gc.process(node(dependent))
    assert server.deletes == [("n1", "Background", None)]


async def test_a_deleted_uid_needs_no_more_requests(
    server: FakeClient, gc: GarbageCollector
) -> None:
    owner = server.put(CMK, "owner", "ns")
    first = server.put(SECK, "a", "ns", ownerReferences=[ref(owner)])
    second = server.put(SECK, "b", "ns", ownerReferences=[ref(owner)])
    del server.objects[("v1", "ConfigMap", "ns", "owner")]
    await gc.process(node(first))
    gets = server.gets
    await gc.process(node(second))
    assert server.gets == gets + 1  # only the dependent itself
    assert len(server.deletes) == 2


# ---- owners being deleted


async def test_foreground_owner_waits_for_blocking_dependents(
    server: FakeClient, gc: GarbageCollector
) -> None:
    owner = server.put(CMK, "owner", "ns", deletionTimestamp="t", finalizers=[FOREGROUND])
    blocker = server.put(SECK, "dep", "ns", ownerReferences=[ref(owner, block=True)])
    cache(gc, owner)
    cache(gc, blocker)
    delay = await gc.process(node(owner))
    assert (
        delay
        and FOREGROUND
        in server.objects[("v1", "ConfigMap", "ns", "owner")]["metadata"]["finalizers"]
    )
    assert node(blocker) in queued(gc)


async def test_foreground_owner_goes_when_no_blocker_is_left(
    server: FakeClient, gc: GarbageCollector
) -> None:
    owner = server.put(CMK, "owner", "ns", deletionTimestamp="t", finalizers=[FOREGROUND])
    loose = server.put(SECK, "loose", "ns", ownerReferences=[ref(owner)])
    cache(gc, loose)
    assert await gc.process(node(owner)) is None
    assert ("v1", "ConfigMap", "ns", "owner") not in server.objects
    assert node(loose) in queued(gc)  # still collected, just not waited for


async def test_foreground_owner_checks_live_for_blockers_the_cache_missed(
    server: FakeClient, gc: GarbageCollector
) -> None:
    owner = server.put(CMK, "owner", "ns", deletionTimestamp="t", finalizers=[FOREGROUND])
    missed = server.put(SECK, "dep", "ns", ownerReferences=[ref(owner, block=True)])
    assert await gc.process(node(owner))
    assert ("v1", "ConfigMap", "ns", "owner") in server.objects
    assert node(missed) in queued(gc)


async def test_orphan_owner_releases_its_dependents_then_goes(
    server: FakeClient, gc: GarbageCollector
) -> None:
    other = server.put(CMK, "other", "ns")
    owner = server.put(CMK, "owner", "ns", deletionTimestamp="t", finalizers=[ORPHAN])
    only = server.put(SECK, "only", "ns", ownerReferences=[ref(owner)])
    shared = server.put(SECK, "shared", "ns", ownerReferences=[ref(owner), ref(other)])
    elsewhere = server.put(SECK, "elsewhere", "other-ns", ownerReferences=[ref(owner)])
    await gc.process(node(owner))
    assert ("v1", "ConfigMap", "ns", "owner") not in server.objects
    assert "ownerReferences" not in server.objects[("v1", "Secret", "ns", "only")]["metadata"]
    refs = server.objects[("v1", "Secret", "ns", "shared")]["metadata"]["ownerReferences"]
    assert [r["name"] for r in refs] == ["other"]
    # Dependents live beside a namespaced owner: nothing elsewhere is looked at.
    assert server.objects[("v1", "Secret", "other-ns", "elsewhere")] == elsewhere
    assert server.deletes == [] and only and shared


async def test_object_being_deleted_otherwise_is_left_alone(
    server: FakeClient, gc: GarbageCollector
) -> None:
    owner = server.put(CMK, "owner", "ns")
    dependent = server.put(
        SECK, "dep", "ns", deletionTimestamp="t", finalizers=["x/y"], ownerReferences=[ref(owner)]
    )
    del server.objects[("v1", "ConfigMap", "ns", "owner")]
    await gc.process(node(dependent))
    assert server.deletes == [] and server.patches == []


# ---- pure helpers


def test_metadata_only_keeps_what_the_collector_reads() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "uid": "u", "labels": {"x": "y"}, "managedFields": [{}]},
        "data": {"big": "x" * 100},
    }
    assert metadata_only(obj) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "uid": "u"},
    }


def test_reference_edits() -> None:
    refs: list[Obj] = [{"uid": "a", "blockOwnerDeletion": True}, {"uid": "b"}]
    assert without_refs(refs, {"a"}) == [{"uid": "b"}]
    assert unblocked(refs) == [{"uid": "a", "blockOwnerDeletion": False}, {"uid": "b"}]
    assert gc_state({"finalizers": ["x", ORPHAN]}) == (False, (ORPHAN,))
    assert gc_state({"deletionTimestamp": "t"}) == (True, ())


async def test_discovery_takes_each_groups_preferred_version() -> None:
    documents: dict[str, Any] = {
        "/api": {"versions": ["v1"]},
        "/apis": {
            "groups": [
                {"name": "apps", "preferredVersion": {"groupVersion": "apps/v1"}},
                {"name": "broken.io", "preferredVersion": {"groupVersion": "broken.io/v1"}},
            ]
        },
        "/api/v1": {
            "resources": [
                {"name": "pods", "kind": "Pod", "namespaced": True, "verbs": ["list"]},
                {"name": "pods/log", "kind": "Pod", "namespaced": True, "verbs": ["get"]},
            ]
        },
        "/apis/apps/v1": {
            "resources": [{"name": "deployments", "kind": "Deployment", "namespaced": True}]
        },
    }

    class Discovery:
        async def request(self, method: str, path: str) -> Any:
            if path not in documents:
                raise NotFound(404, "NotFound", "nope")
            return documents[path]

    resources, failed = await served_resources(cast(Client, Discovery()))
    assert [resource_key(r) for r in resources] == ["pods", "deployments.apps"]
    assert failed == ["broken.io/v1"]


def test_namespace_recheck_backs_off_to_15_seconds() -> None:
    start = 1_700_000_000.0
    stamp = "2023-11-14T22:13:20Z"  # == start
    assert recheck_delay(stamp, now=start) == 0.5
    assert recheck_delay(stamp, now=start + 20) == 5.0
    assert recheck_delay(stamp, now=start + 600) == 15.0


def test_only_the_default_account_maps_to_its_namespace() -> None:
    default = {"metadata": {"name": "default", "namespace": "ns"}}
    other = {"metadata": {"name": "robot", "namespace": "ns"}}
    assert [str(r) for r in namespace_of_default(default)] == ["ns"]
    assert list(namespace_of_default(other)) == []
