"""Adding and removing finalizers without losing anyone else's.

The write is a merge patch that carries the whole new finalizers list *and* the
resourceVersion the list was computed from. A merge patch replaces lists wholesale, so without
the resourceVersion a concurrent writer's finalizer could be silently dropped; with it the
server answers 409 Conflict and the caller's reconcile retries against fresh state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.client import Client

__all__ = ["add_finalizer", "finalizers_of", "has_finalizer", "remove_finalizer"]


def finalizers_of(obj: dict[str, Any]) -> list[str]:
    """The object's finalizers (a copy), in order."""
    return list((obj.get("metadata") or {}).get("finalizers") or ())


def has_finalizer(obj: dict[str, Any], name: str) -> bool:
    """Whether ``name`` is among the object's finalizers."""
    return name in finalizers_of(obj)


async def _write(client: Client, obj: dict[str, Any], finalizers: list[str]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    rv = meta.get("resourceVersion")
    if not rv:
        raise ValueError("object has no metadata.resourceVersion; read it from the server first")
    patch = {"metadata": {"finalizers": finalizers or None, "resourceVersion": rv}}
    return await client.patch(
        (obj["apiVersion"], obj["kind"]),
        meta["name"],
        patch,
        namespace=meta.get("namespace") or None,
        patch_type="merge",
    )


async def add_finalizer(client: Client, obj: dict[str, Any], name: str) -> dict[str, Any]:
    """Appends ``name`` and returns the updated object; no request if it is already there.

    Raises ``controller.errors.Conflict`` when ``obj`` is stale.
    """
    if has_finalizer(obj, name):
        return obj
    return await _write(client, obj, [*finalizers_of(obj), name])


async def remove_finalizer(client: Client, obj: dict[str, Any], name: str) -> dict[str, Any]:
    """Removes ``name`` and returns the updated object; no request if it is absent.

    The returned object may already be gone from the server's point of view when this was the
    last finalizer on an object being deleted; it is still the server's final answer.
    Raises ``controller.errors.Conflict`` when ``obj`` is stale.
    """
    if not has_finalizer(obj, name):
        return obj
    return await _write(client, obj, [f for f in finalizers_of(obj) if f != name])
