"""Create-or-update, like controller-runtime's ``controllerutil.CreateOrUpdate``.

Reconcilers express "this child should look like X" as a mutate function applied to whatever
is live, so fields owned by others (defaults, other controllers, users) survive, and a write
happens only when the mutation actually changed something: an unconditional update on every
reconcile would bump the resourceVersion, wake every watcher, and loop forever.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from controller.errors import AlreadyExists, Conflict, NoKindMatch, NotFound

if TYPE_CHECKING:
    from controller.client import Client

__all__ = ["OperationResult", "create_or_update"]

OperationResult = Literal["created", "updated", "unchanged"]

# Server-maintained bookkeeping that says nothing about whether the object's content changed.
_VOLATILE_METADATA = ("managedFields", "resourceVersion")


def _identity(obj: dict[str, Any]) -> tuple[Any, ...]:
    meta = obj.get("metadata") or {}
    return (obj.get("apiVersion"), obj.get("kind"), meta.get("name"), meta.get("namespace") or None)


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE_METADATA}
    return {**obj, "metadata": meta}


def _mutated(base: dict[str, Any], mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    mutate(obj)
    if _identity(obj) != _identity(base):
        # The object would be written somewhere other than where it was looked up.
        raise ValueError("mutate must not change apiVersion, kind, name or namespace")
    return obj


async def create_or_update(
    client: Client,
    obj_desired: dict[str, Any],
    mutate: Callable[[dict[str, Any]], None],
    *,
    attempts: int = 5,
) -> tuple[dict[str, Any], OperationResult]:
    """Makes the object named by ``obj_desired`` exist with ``mutate`` applied.

    If it does not exist, ``mutate`` runs on a copy of ``obj_desired`` and the result is
    created. Otherwise ``mutate`` runs on a copy of the live object, which is updated (PUT,
    guarded by its resourceVersion) only if that changed anything. A Conflict or a lost
    create race re-reads and tries again, up to ``attempts`` times, then raises.
    ``mutate`` may run several times and must be deterministic. Returns the server's object
    and what was done. ``obj_desired`` is never modified.

    As with controller-runtime, changes to ``status`` are not written when the resource has a
    status subresource (the server ignores them on update); use ``update_status`` for those.
    """
    api_version, kind, name, namespace = _identity(obj_desired)
    if not (api_version and kind and name):
        raise ValueError("obj_desired needs apiVersion, kind and metadata.name")
    for attempt in range(1, max(1, attempts) + 1):
        last = attempt >= attempts
        try:
            current = await client.get((api_version, kind), name, namespace)
        except NoKindMatch:
            raise
        except NotFound:
            created = _mutated(obj_desired, mutate)
            try:
                return await client.create(created), "created"
            except AlreadyExists:
                if last:
                    raise
                continue  # someone else created it meanwhile; update theirs instead
        desired = _mutated(current, mutate)
        if _comparable(desired) == _comparable(current):
            return current, "unchanged"
        desired.setdefault("metadata", {})["resourceVersion"] = (current.get("metadata") or {}).get(
            "resourceVersion"
        )
        try:
            return await client.update(desired), "updated"
        except Conflict:
            if last:
                raise
        except NotFound:
            if last:
                raise  # deleted between our read and write; the next round creates it
    raise AssertionError("unreachable")
