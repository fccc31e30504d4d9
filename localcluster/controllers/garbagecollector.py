"""Built-in garbage collector: kube-controller-manager's ownerReferences semantics.

It watches every deletable kind the server serves (built-ins and CRDs, rediscovered
when a CRD changes and every 30 s) with informers that keep only the metadata it needs,
and works a queue of object identities:

- a dependent whose owners are all gone is deleted (Background, or what its own GC
  finalizers ask for); one with a live owner left only loses the dead references;
- a dependent of an owner in foreground deletion is deleted with Foreground
  propagation; the owner keeps its `foregroundDeletion` finalizer until no dependent
  with `blockOwnerDeletion` is left;
- an owner with the `orphan` finalizer has its references removed from every
  dependent, then loses the finalizer.

The caches only nominate work: an owner counts as gone only after a live GET (or a
DELETED event, which is final since uids never come back), dependents are deleted with
uid and resourceVersion preconditions, and a finalizer is removed only after a live
sweep finds no dependent the cache might have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from controller import (
    Client,
    Conflict,
    NoKindMatch,
    NotFound,
    RateLimitingQueue,
    SharedInformer,
    ShutDown,
    default_controller_rate_limiter,
    remove_finalizer,
)
from controller.cache import OWNER_UID_INDEX
from controller.client import PropagationPolicy
from controller.informer import lister_watcher
from controller.restmapper import Resource, discovery_path, parse_resource_list

if TYPE_CHECKING:
    from localcluster.workloads import WorkloadContext

log = logging.getLogger("localcluster.controllers.garbagecollector")

Obj = dict[str, Any]

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
CRDS = "customresourcedefinitions.apiextensions.k8s.io"
UID_INDEX = "uid"
WORKERS = 8
REDISCOVER_EVERY = 30.0
UNRESOLVED_RETRY = 30.0  # an owner kind the server does not serve (yet)
FOREGROUND_RECHECK = 10.0  # safety net: dependents' DELETED events requeue the owner sooner
ABSENT_CACHE_SIZE = 10_000
_KEPT_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "ownerReferences",
    "deletionTimestamp",
    "finalizers",
)


# ---- discovery


def resource_key(resource: Resource) -> str:
    """`plural.group` (or `plural`): one key per resource whatever version serves it."""
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural


async def served_resources(client: Client) -> tuple[list[Resource], list[str]]:
    """Every served resource at its group's preferred version, and the group versions
    whose discovery failed (so callers can tell a partial answer from a complete one)."""
    core = await client.request("GET", "/api")
    groups = await client.request("GET", "/apis")
    versions = [str(v) for v in (core or {}).get("versions") or ()][:1]
    for group in (groups or {}).get("groups") or ():
        preferred = (group.get("preferredVersion") or {}).get("groupVersion")
        if preferred:
            versions.append(str(preferred))
    documents = await asyncio.gather(
        *(client.request("GET", discovery_path(v)) for v in versions), return_exceptions=True
    )
    resources: list[Resource] = []
    failed: list[str] = []
    for version, document in zip(versions, documents, strict=True):
        if isinstance(document, BaseException):
            log.warning("discovery of %s failed: %r", version, document)
            failed.append(version)
            continue
        resources.extend(r for r in parse_resource_list(version, document) if r.kind)
    return resources, failed


# ---- what the cache keeps, and how it is read


def metadata_only(obj: Obj) -> Obj:
    """The informer transform: the collector needs identities and references, not content."""
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {k: meta[k] for k in _KEPT_METADATA if k in meta},
    }


def _uid_of(obj: Obj) -> list[str]:
    uid = (obj.get("metadata") or {}).get("uid")
    return [str(uid)] if uid else []


def refs_of(meta: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(meta.get("ownerReferences") or ())


def deleting_dependents(meta: Mapping[str, Any]) -> bool:
    """Whether the object waits in foreground deletion for its dependents."""
    return bool(meta.get("deletionTimestamp")) and FOREGROUND in (meta.get("finalizers") or ())


def gc_state(meta: Mapping[str, Any]) -> tuple[bool, tuple[str, ...]]:
    """What, in an object's deletion state, asks for collector work when it changes."""
    finalizers = tuple(f for f in meta.get("finalizers") or () if f in (ORPHAN, FOREGROUND))
    return bool(meta.get("deletionTimestamp")), finalizers


def without_refs(refs: Iterable[Mapping[str, Any]], uids: set[str]) -> list[Obj]:
    return [dict(ref) for ref in refs if ref.get("uid") not in uids]


def unblocked(refs: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """The references with blockOwnerDeletion cleared: breaks foreground-deletion cycles."""
    return [
        {**ref, "blockOwnerDeletion": False} if ref.get("blockOwnerDeletion") else dict(ref)
        for ref in refs
    ]


@dataclass(frozen=True, slots=True)
class Node:
    """One object the collector has to look at, by resource, key and uid."""

    resource: str
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.resource} {where}{self.name} ({self.uid})"


def node_of(resource: str, meta: Mapping[str, Any]) -> Node:
    return Node(
        resource, str(meta.get("namespace") or ""), str(meta["name"]), str(meta.get("uid") or "")
    )


class Owner(Enum):
    SOLID = "solid"  # exists: the dependent stays
    ABSENT = "absent"  # gone (or replaced under the same name)
    WAITING = "waiting"  # in foreground deletion: the dependent goes first


class Unresolved(Exception):
    """An owner reference to a kind the server does not serve: retried later, never acted on."""


@dataclass
class Watched:
    resource: Resource
    informer: SharedInformer

    @property
    def kind(self) -> tuple[str, str]:
        return self.resource.api_version, self.resource.kind


class GarbageCollector:
    def __init__(
        self,
        client: Client,
        *,
        workers: int = WORKERS,
        rediscover_every: float = REDISCOVER_EVERY,
    ) -> None:
        self.client = client
        self.workers = workers
        self.rediscover_every = rediscover_every
        self.queue: RateLimitingQueue[Node] = RateLimitingQueue(default_controller_rate_limiter())
        self.watched: dict[str, Watched] = {}
        self._absent: OrderedDict[str, None] = OrderedDict()
        self._rediscover = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- running

    async def run(self) -> None:
        """Discovers and watches kinds and works the queue until cancelled; never raises
        otherwise, since the manager stops everything when a runnable fails."""
        tasks = [
            asyncio.create_task(self._worker(), name=f"garbagecollector-{i}")
            for i in range(self.workers)
        ]
        try:
            while True:
                wait = self.rediscover_every
                try:
                    await self.sync_resources()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("garbage collector: discovery failed: %r", exc)
                    wait = 1.0
                try:
                    await asyncio.wait_for(self._rediscover.wait(), wait)
                    await asyncio.sleep(0.2)  # one rediscovery for a burst of CRD changes
                except TimeoutError:
                    # The safety net for anything an event did not bring (cheap: objects
                    # whose owners are cached and alive cost no request).
                    self.nominate(lambda ref: True)
                self._rediscover.clear()
        finally:
            self.queue.shutdown()
            for task in (*tasks, *self._tasks):
                task.cancel()
            await asyncio.gather(*tasks, *self._tasks, return_exceptions=True)
            await asyncio.gather(*(w.informer.stop() for w in self.watched.values()))
            self.watched.clear()

    async def sync_resources(self) -> None:
        """Watches what is served now: new kinds get informers, vanished kinds lose theirs."""
        resources, failed = await served_resources(self.client)
        wanted = {resource_key(r): r for r in resources if {"list", "watch", "delete"} <= r.verbs}
        unknown = {v.rpartition("/")[0] for v in failed}  # groups we could not ask this time
        for key, watched in list(self.watched.items()):
            if watched.resource.group in unknown and key not in wanted:
                continue  # a failed discovery is no reason to drop a cache
            if wanted.get(key) != watched.resource:
                del self.watched[key]
                await watched.informer.stop()
        for key, resource in wanted.items():
            if key not in self.watched:
                self.watched[key] = watched = self._watch(key, resource)
                task = asyncio.create_task(self._nominate_after_sync(watched))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _nominate_after_sync(self, watched: Watched) -> None:
        """A kind watched only now (a new CRD) may have owners whose deletion we missed:
        once its cache is filled, look at everything that refers to that kind."""
        if not await watched.informer.wait_for_sync():
            return
        group, kind = watched.resource.group, watched.resource.kind
        self.nominate(
            lambda ref: (
                ref.get("kind") == kind
                and str(ref.get("apiVersion") or "").rpartition("/")[0] == group
            )
        )

    def nominate(self, match: Callable[[Mapping[str, Any]], bool]) -> None:
        """Queues every cached object with an owner reference that `match` accepts."""
        for key, watched in self.watched.items():
            for obj in watched.informer.store.list_readonly():
                meta = obj["metadata"]
                if any(match(ref) for ref in refs_of(meta)):
                    self.queue.add(node_of(key, meta))

    def _watch(self, key: str, resource: Resource) -> Watched:
        informer = SharedInformer(
            lister_watcher(self.client, (resource.api_version, resource.kind)),
            transform=metadata_only,
            indexers={UID_INDEX: _uid_of},
            name=f"garbagecollector {key}",
        )
        informer.add_handler(
            lambda obj: self._on_add(key, obj),
            lambda old, new: self._on_update(key, old, new),
            lambda obj: self._on_delete(key, obj),
        )
        informer.start()
        return Watched(resource, informer)

    # ---- events: they only nominate objects for a look

    def _on_add(self, key: str, obj: Obj) -> None:
        meta = obj["metadata"]
        if key == CRDS:
            self._rediscover.set()
        if meta.get("ownerReferences") or any(gc_state(meta)[1]):
            self.queue.add(node_of(key, meta))
        if deleting_dependents(meta):
            self._enqueue_dependents(str(meta.get("uid") or ""))

    def _on_update(self, key: str, old: Obj, new: Obj) -> None:
        old_meta, meta = old["metadata"], new["metadata"]
        if key == CRDS:
            self._rediscover.set()
        old_refs, refs = refs_of(old_meta), refs_of(meta)
        if old_refs != refs:
            self.queue.add(node_of(key, meta))
            # An owner waiting in foreground deletion may have just lost a blocker.
            for ref in old_refs:
                if ref not in refs:
                    self._enqueue_uid(str(ref.get("uid") or ""))
        if gc_state(old_meta) != gc_state(meta):
            self.queue.add(node_of(key, meta))
            if deleting_dependents(meta):
                self._enqueue_dependents(str(meta.get("uid") or ""))

    def _on_delete(self, key: str, obj: Obj) -> None:
        meta = obj["metadata"]
        if key == CRDS:
            self._rediscover.set()
        uid = str(meta.get("uid") or "")
        if uid:
            self._remember_absent(uid)
            self._enqueue_dependents(uid)
        for ref in refs_of(meta):
            self._enqueue_uid(str(ref.get("uid") or ""))

    def _enqueue_dependents(self, uid: str) -> None:
        for node, _ in self.cached_dependents(uid):
            self.queue.add(node)

    def _enqueue_uid(self, uid: str) -> None:
        if not uid:
            return
        for key, watched in self.watched.items():
            store = watched.informer.store
            for cache_key in store.index_keys(UID_INDEX, uid):
                cached = store.get_readonly(cache_key)
                if cached is not None:
                    self.queue.add(node_of(key, cached["metadata"]))

    def cached_dependents(self, uid: str) -> list[tuple[Node, Mapping[str, Any]]]:
        """Dependents of `uid` the caches know, each with its metadata."""
        found: list[tuple[Node, Mapping[str, Any]]] = []
        if not uid:
            return found
        for key, watched in self.watched.items():
            store = watched.informer.store
            for cache_key in store.index_keys(OWNER_UID_INDEX, uid):
                cached = store.get_readonly(cache_key)
                if cached is not None:
                    found.append((node_of(key, cached["metadata"]), cached["metadata"]))
        return found

    def _remember_absent(self, uid: str) -> None:
        self._absent[uid] = None
        self._absent.move_to_end(uid)
        while len(self._absent) > ABSENT_CACHE_SIZE:
            self._absent.popitem(last=False)

    # ---- work

    async def _worker(self) -> None:
        while True:
            try:
                node = await self.queue.get()
            except ShutDown:
                return
            try:
                delay = await self.process(node)
            except asyncio.CancelledError:
                self.queue.done(node)
                raise
            except Unresolved as exc:
                log.info("garbage collector: %s: %s; retrying later", node, exc)
                self.queue.forget(node)
                self.queue.add_after(node, UNRESOLVED_RETRY)
            except Exception as exc:
                level = logging.DEBUG if isinstance(exc, Conflict) else logging.WARNING
                log.log(level, "garbage collector: %s failed: %r", node, exc)
                self.queue.add_rate_limited(node)
            else:
                self.queue.forget(node)
                if delay:
                    self.queue.add_after(node, delay)
            self.queue.done(node)

    async def process(self, node: Node) -> float | None:
        """Looks at one object as owner and as dependent; returns a recheck delay, if any."""
        watched = self.watched.get(node.resource)
        if watched is None:
            return None  # no longer served
        if self._needs_nothing(watched, node):
            return None  # the common case: no request at all
        try:
            live = await self.client.get(watched.kind, node.name, node.namespace or None)
        except NotFound:
            return None  # gone: its DELETED event brings its dependents here
        meta = live["metadata"]
        if meta.get("uid") != node.uid:
            return None  # replaced: the new object is its own node
        if meta.get("deletionTimestamp"):
            finalizers = meta.get("finalizers") or ()
            if ORPHAN in finalizers:
                await self._orphan_dependents(watched, live)
                return None
            if FOREGROUND in finalizers:
                return await self._delete_dependents_first(watched, live)
            return None  # already going
        refs = refs_of(meta)
        if not refs:
            return None
        await self._collect(watched, live, refs)
        return None

    def _needs_nothing(self, watched: Watched, node: Node) -> bool:
        """True when the cache alone shows the object needs nothing: it is not being
        deleted and every owner is cached, alive and not deleting its dependents. Trusting a
        stale cache here only delays work until the event that makes it stale arrives."""
        cached = watched.informer.store.get_readonly(_cache_key(node.namespace, node.name))
        if cached is None or cached["metadata"].get("uid") != node.uid:
            return False
        meta = cached["metadata"]
        if any(gc_state(meta)):
            return False
        return all(
            self._cached_owner(ref, node.namespace, watched.resource.namespaced) is Owner.SOLID
            for ref in refs_of(meta)
        )

    def _cached_owner(
        self, ref: Mapping[str, Any], namespace: str, dependent_namespaced: bool
    ) -> Owner | None:
        uid = ref.get("uid")
        if not uid or uid in self._absent:
            return None
        group = str(ref.get("apiVersion") or "").rpartition("/")[0]
        for watched in self.watched.values():
            resource = watched.resource
            if resource.group != group or resource.kind != ref.get("kind"):
                continue
            if resource.namespaced and not dependent_namespaced:
                return None
            cached = watched.informer.store.get_readonly(
                _cache_key(namespace if resource.namespaced else "", str(ref.get("name") or ""))
            )
            if cached is None or cached["metadata"].get("uid") != uid:
                return None
            return Owner.WAITING if deleting_dependents(cached["metadata"]) else Owner.SOLID
        return None

    async def owner_state(
        self, ref: Mapping[str, Any], namespace: str, dependent_namespaced: bool
    ) -> Owner:
        """Whether the referenced owner exists, by live GET unless the cache shows it alive."""
        uid = str(ref.get("uid") or "")
        if not uid:
            return Owner.SOLID  # nothing to verify against: never collect on it
        if uid in self._absent:
            return Owner.ABSENT
        if self._cached_owner(ref, namespace, dependent_namespaced) is Owner.SOLID:
            return Owner.SOLID
        api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
        resource = await self._resolve(api_version, kind)
        if resource.namespaced and not dependent_namespaced:
            # Upstream's rule: a cluster-scoped dependent cannot have a namespaced owner.
            return Owner.ABSENT
        name = str(ref.get("name") or "")
        try:
            owner = await self.client.get(
                (resource.api_version, resource.kind),
                name,
                namespace if resource.namespaced else None,
            )
        except NoKindMatch:
            raise Unresolved(f"{kind}.{api_version} is not served") from None
        except NotFound as exc:
            if exc.details.get("name") != name:
                # The resource itself is gone (a CRD just removed), not the owner.
                self.client.mapper.invalidate(resource.api_version)
                raise Unresolved(f"{kind}.{api_version} is not served") from None
            self._remember_absent(uid)
            return Owner.ABSENT
        meta = owner["metadata"]
        if meta.get("uid") != uid:
            self._remember_absent(uid)
            return Owner.ABSENT
        return Owner.WAITING if deleting_dependents(meta) else Owner.SOLID

    async def _resolve(self, api_version: str, kind: str) -> Resource:
        """The owner's resource; another served version of its group will do."""
        try:
            return await self.client.resource((api_version, kind))
        except NoKindMatch:
            group = api_version.rpartition("/")[0]
            for watched in self.watched.values():
                if watched.resource.group == group and watched.resource.kind == kind:
                    return watched.resource
            raise Unresolved(f"{kind}.{api_version} is not served") from None

    async def _collect(self, watched: Watched, live: Obj, refs: list[Mapping[str, Any]]) -> None:
        """A dependent: keep it, drop its dead references, or delete it (upstream's
        attemptToDeleteItem)."""
        meta = live["metadata"]
        namespace = str(meta.get("namespace") or "")
        states = [
            (ref, await self.owner_state(ref, namespace, watched.resource.namespaced))
            for ref in refs
        ]
        solid = [ref for ref, state in states if state is Owner.SOLID]
        dead = {str(ref.get("uid")) for ref, state in states if state is not Owner.SOLID}
        waiting = any(state is Owner.WAITING for _, state in states)
        if solid:
            if dead:
                log.info("garbage collector: %s drops owners %s", describe(watched, meta), dead)
                await self._set_refs(watched.kind, live, without_refs(refs, dead))
            return
        finalizers = meta.get("finalizers") or ()
        policy: PropagationPolicy
        if waiting:
            uid = str(meta.get("uid"))
            if any(deleting_dependents(m) for _, m in self.cached_dependents(uid)):
                # Our own dependent waits for us while our owner waits for us: a cycle.
                meta = (await self._set_refs(watched.kind, live, unblocked(refs)))["metadata"]
            policy = "Foreground"
        elif ORPHAN in finalizers:
            policy = "Orphan"
        elif FOREGROUND in finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        log.info("garbage collector: deleting %s (%s)", describe(watched, meta), policy)
        with contextlib.suppress(NotFound):
            await self.client.delete(
                watched.kind,
                str(meta["name"]),
                namespace or None,
                propagation_policy=policy,
                # Conflict if it changed since we judged it: the retry judges it afresh.
                preconditions={"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
            )

    async def _set_refs(self, kind: tuple[str, str], live: Obj, refs: list[Obj]) -> Obj:
        """Writes the references, conditional on the version they were judged at."""
        meta = live["metadata"]
        patch = {
            "metadata": {
                "ownerReferences": refs or None,
                "resourceVersion": meta["resourceVersion"],
            }
        }
        result: Obj = await self.client.patch(
            kind, str(meta["name"]), patch, namespace=meta.get("namespace") or None
        )
        return result

    async def _orphan_dependents(self, watched: Watched, owner: Obj) -> None:
        """Owner deleted with Orphan: its dependents lose the reference, then it goes."""
        meta = owner["metadata"]
        uid = str(meta["uid"])
        namespace = str(meta.get("namespace") or "") if watched.resource.namespaced else ""
        for resource, dependent in await self.live_dependents(uid, namespace):
            await self._drop_owner(resource, dependent, uid)
        log.info("garbage collector: orphaned the dependents of %s", describe(watched, meta))
        await remove_finalizer(self.client, owner, ORPHAN)

    async def _drop_owner(self, resource: Resource, dependent: Obj, uid: str) -> None:
        kind = (resource.api_version, resource.kind)
        meta = dependent["metadata"]
        for _ in range(5):
            refs = refs_of(meta)
            if all(ref.get("uid") != uid for ref in refs):
                return
            try:
                await self._set_refs(kind, dependent, without_refs(refs, {uid}))
                return
            except Conflict:
                try:
                    dependent = await self.client.get(kind, meta["name"], meta.get("namespace"))
                except NotFound:
                    return
                meta = dependent["metadata"]
            except NotFound:
                return
        raise Conflict(409, "Conflict", f"{meta['name']} kept changing while being orphaned")

    async def _delete_dependents_first(self, watched: Watched, owner: Obj) -> float | None:
        """Owner in foreground deletion: its dependents go first; it waits only for
        those with blockOwnerDeletion (upstream's processDeletingDependentsItem)."""
        meta = owner["metadata"]
        uid = str(meta["uid"])
        blocking = False
        for node, dependent in self.cached_dependents(uid):
            if not deleting_dependents(dependent):
                self.queue.add(node)
            blocking = blocking or _blocks(dependent, uid)
        if blocking:
            return FOREGROUND_RECHECK
        namespace = str(meta.get("namespace") or "") if watched.resource.namespaced else ""
        missed = [
            node_of(resource_key(resource), dependent["metadata"])
            for resource, dependent in await self.live_dependents(uid, namespace)
            if _blocks(dependent["metadata"], uid)
        ]
        if missed:
            for node in missed:
                self.queue.add(node)
            return 1.0
        log.info("garbage collector: dependents of %s are gone", describe(watched, meta))
        await remove_finalizer(self.client, owner, FOREGROUND)
        return None

    async def live_dependents(self, uid: str, namespace: str) -> list[tuple[Resource, Obj]]:
        """Every object referring to `uid`, listed from the server (in `namespace` only
        when the owner is namespaced: dependents live beside their owner)."""
        resources = [
            w.resource for w in self.watched.values() if w.resource.namespaced or not namespace
        ]

        async def scan(resource: Resource) -> list[tuple[Resource, Obj]]:
            try:
                listed = await self.client.list_all(
                    (resource.api_version, resource.kind), namespace or None
                )
            except NotFound:
                return []  # stopped being served meanwhile
            return [
                (resource, obj)
                for obj in listed.items
                if any(ref.get("uid") == uid for ref in refs_of(obj["metadata"]))
            ]

        found: list[tuple[Resource, Obj]] = []
        for part in await asyncio.gather(*(scan(r) for r in resources)):
            found.extend(part)
        return found


def describe(watched: Watched, meta: Mapping[str, Any]) -> str:
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{watched.resource.kind} {where}{meta.get('name')}"


def _blocks(meta: Mapping[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid and ref.get("blockOwnerDeletion") for ref in refs_of(meta))


def _cache_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


async def setup(context: WorkloadContext) -> None:
    """Runs the collector as a leader-only runnable; it discovers the kinds it watches."""
    context.manager.add(GarbageCollector(context.client).run, needs_leader=True)
