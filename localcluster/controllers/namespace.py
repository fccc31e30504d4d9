"""Built-in namespace controller: empties a terminating namespace, then lets it go.

Deleting a namespace only marks it (`Terminating`, a deletionTimestamp, and the
`kubernetes` entry in `spec.finalizers` holding it). This controller deletes every
namespaced object in it, of every kind discovered at that moment (CRDs included),
waits until listing finds none left (finalizers and graceful pod deletion take time),
and then clears its `kubernetes` finalizer through `/finalize`, after which the API
server removes the namespace. Progress is reported as upstream does, in the
`NamespaceDeletion*`/`Namespace*Remaining` status conditions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from controller import Client, Conflict, NotFound, Request, Result, set_condition
from controller.restmapper import Resource
from localcluster.controllers.garbagecollector import served_resources

if TYPE_CHECKING:
    from localcluster.workloads import WorkloadContext

log = logging.getLogger("localcluster.controllers.namespace")

Obj = dict[str, Any]
NAMESPACE = ("v1", "Namespace")
FINALIZER = "kubernetes"
WORKERS = 4
MESSAGE_LIMIT = 4096  # a namespace full of kinds must not make a condition invalid

DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"
# Upstream's wording when a condition is fine: (reason, message).
_OK = {
    DISCOVERY_FAILURE: ("ResourcesDiscovered", "All resources successfully discovered"),
    PARSING_FAILURE: ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    CONTENT_FAILURE: (
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    CONTENT_REMAINING: ("ContentRemoved", "All content successfully removed"),
    FINALIZERS_REMAINING: ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}
_FAILED = {
    DISCOVERY_FAILURE: "DiscoveryFailed",
    PARSING_FAILURE: "GroupVersionParsingFailed",
    CONTENT_FAILURE: "ContentDeletionFailed",
    CONTENT_REMAINING: "SomeResourcesRemain",
    FINALIZERS_REMAINING: "SomeFinalizersRemain",
}


def recheck_delay(deletion_timestamp: str, now: float | None = None) -> float:
    """Seconds until the next look at a namespace whose content is still going: quick
    at first (most content goes within a second), backing off to 15 s for namespaces
    stuck on someone's finalizer."""
    try:
        since = datetime.strptime(deletion_timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return 1.0
    elapsed = (time.time() if now is None else now) - since.timestamp()
    return min(15.0, max(0.5, elapsed / 4))


def _resource_label(resource: Resource) -> str:
    return f"{resource.plural}.{resource.group}"  # upstream's "configmaps. has 1 ..." shape


class NamespaceReconciler:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def reconcile(self, request: Request) -> Result | None:
        try:
            namespace = await self.client.get(NAMESPACE, request.name)
        except NotFound:
            return None
        meta = namespace["metadata"]
        if not meta.get("deletionTimestamp"):
            return None
        if FINALIZER not in ((namespace.get("spec") or {}).get("finalizers") or ()):
            return None  # ours is done; other finalizers hold it
        name = request.name
        failures: dict[str, str] = {}
        try:
            resources, failed_groups = await served_resources(self.client)
        except Exception as exc:
            failures[DISCOVERY_FAILURE] = f"Discovery failed: {exc}"
            await self._report(namespace, failures)
            raise
        if failed_groups:
            failures[DISCOVERY_FAILURE] = (
                f"Discovery failed for some groups, {len(failed_groups)} failing: "
                f"{', '.join(failed_groups)}"
            )
        namespaced = [
            r for r in resources if r.namespaced and "list" in r.verbs and "delete" in r.verbs
        ]
        errors = await asyncio.gather(
            *(self._delete_all(r, name) for r in namespaced), return_exceptions=True
        )
        failed = [
            f"{_resource_label(r)}: {e}"
            for r, e in zip(namespaced, errors, strict=True)
            if isinstance(e, Exception)
        ]
        if failed:
            failures[CONTENT_FAILURE] = (
                f"Failed to delete all resource types, {len(failed)} remaining: {'; '.join(failed)}"
            )
        remaining, finalizers = await self._remaining(namespaced, name)
        if remaining:
            failures[CONTENT_REMAINING] = "Some resources are remaining: " + ", ".join(
                f"{label} has {n} resource instances" for label, n in sorted(remaining.items())
            )
        if finalizers:
            failures[FINALIZERS_REMAINING] = (
                "Some content in the namespace has finalizers remaining: "
                + ", ".join(f"{f} in {n} resource instances" for f, n in sorted(finalizers.items()))
            )
        namespace = await self._report(namespace, failures)
        if failures:
            log.debug("namespace %s: waiting: %s", name, "; ".join(failures.values()))
            return Result(requeue_after=recheck_delay(str(meta["deletionTimestamp"])))
        await self._finalize(namespace)
        return None

    async def _delete_all(self, resource: Resource, namespace: str) -> None:
        kind = (resource.api_version, resource.kind)
        if "deletecollection" in resource.verbs:
            await self.client.delete_collection(kind, namespace, propagation_policy="Background")
            return
        for obj in (await self.client.list_all(kind, namespace)).items:
            meta = obj["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            with contextlib.suppress(NotFound):
                await self.client.delete(
                    kind, meta["name"], namespace, propagation_policy="Background"
                )

    async def _remaining(
        self, resources: list[Resource], namespace: str
    ) -> tuple[Counter[str], Counter[str]]:
        """Objects left per resource, and how many objects hold each finalizer."""
        listed = await asyncio.gather(
            *(self.client.list_all((r.api_version, r.kind), namespace) for r in resources),
            return_exceptions=True,
        )
        remaining: Counter[str] = Counter()
        finalizers: Counter[str] = Counter()
        for resource, result in zip(resources, listed, strict=True):
            if isinstance(result, NotFound):
                continue  # stopped being served: nothing of it can remain
            if isinstance(result, BaseException):
                remaining[_resource_label(resource)] += 1  # unknown: do not finalize yet
                continue
            for obj in result.items:
                remaining[_resource_label(resource)] += 1
                for finalizer in obj["metadata"].get("finalizers") or ():
                    finalizers[finalizer] += 1
        return remaining, finalizers

    async def _report(self, namespace: Obj, failures: dict[str, str]) -> Obj:
        """Writes the deletion conditions when they changed; returns the current object."""
        status = namespace.setdefault("status", {})
        conditions = status.setdefault("conditions", [])
        changed = False
        for type_, (reason, message) in _OK.items():
            if type_ in failures:
                message = failures[type_][:MESSAGE_LIMIT]
                changed |= set_condition(conditions, type_, True, _FAILED[type_], message)
            else:
                changed |= set_condition(conditions, type_, False, reason, message)
        if not changed:
            return namespace
        try:
            updated: Obj = await self.client.update_status(namespace)
        except Conflict:
            return await self.client.get(NAMESPACE, namespace["metadata"]["name"])
        return updated

    async def _finalize(self, namespace: Obj) -> None:
        """Drops the `kubernetes` finalizer through `/finalize` (a plain update keeps spec);
        with no finalizer left the API server deletes the namespace then and there."""
        name = namespace["metadata"]["name"]
        spec = namespace.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or () if f != FINALIZER]
        try:
            await self.client.request("PUT", f"/api/v1/namespaces/{name}/finalize", body=namespace)
        except NotFound:
            return
        log.info("namespace %s: content deleted, finalized", name)


async def setup(context: WorkloadContext) -> None:
    """Reconciles namespaces; only terminating ones get work."""
    await (
        context.manager.controller("namespace")
        .for_(NAMESPACE)
        .with_workers(WORKERS)
        .complete(NamespaceReconciler(context.client))
    )
