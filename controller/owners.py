"""Owner references, with controller-runtime's ``controllerutil`` rules.

Owner references drive garbage collection and let a controller map a child's events back to
its parent, so the rules that keep the graph sane are enforced here rather than left to the
API server: one controller per object, and no references the garbage collector would reject
(a namespaced owner of a cluster-scoped or other-namespace object).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyOwned",
    "OwnerReferenceError",
    "controller_of",
    "controller_reference",
    "is_owned_by",
    "owner_reference",
    "set_controller_reference",
    "set_owner_reference",
]


class OwnerReferenceError(ValueError):
    """The owner reference would be invalid (scope, namespace, or an unsaved owner)."""


class AlreadyOwned(OwnerReferenceError):
    """Another object is already the controller; two controllers would fight over it."""

    def __init__(self, obj: dict[str, Any], existing: dict[str, Any]) -> None:
        self.object = obj
        self.existing = existing
        meta = obj.get("metadata") or {}
        super().__init__(
            f"{obj.get('kind', 'object')} {meta.get('namespace', '')}/{meta.get('name', '')} "
            f"is already owned by another controller {existing.get('kind')} {existing.get('name')}"
        )


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _same_object(a: dict[str, Any], b: dict[str, Any]) -> bool:
    # Like controller-runtime: group, kind and name identify the owner, not version or uid,
    # so a reference written at another API version is updated rather than duplicated.
    return (
        _group(str(a.get("apiVersion", ""))) == _group(str(b.get("apiVersion", "")))
        and a.get("kind") == b.get("kind")
        and a.get("name") == b.get("name")
    )


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    """A plain (non-controller) reference to ``owner``, which must have been persisted."""
    meta = owner.get("metadata") or {}
    api_version, kind = owner.get("apiVersion"), owner.get("kind")
    name, uid = meta.get("name"), meta.get("uid")
    if not (api_version and kind and name and uid):
        raise OwnerReferenceError(
            "owner needs apiVersion, kind, metadata.name and metadata.uid (read it from the server)"
        )
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid}


def controller_reference(owner: dict[str, Any]) -> dict[str, Any]:
    """The reference that marks ``owner`` as the managing controller and blocks its deletion."""
    return {**owner_reference(owner), "controller": True, "blockOwnerDeletion": True}


def _validate_scope(owner: dict[str, Any], obj: dict[str, Any]) -> None:
    owner_ns = (owner.get("metadata") or {}).get("namespace") or ""
    if not owner_ns:
        return  # a cluster-scoped owner may own anything
    obj_ns = (obj.get("metadata") or {}).get("namespace") or ""
    if not obj_ns:
        raise OwnerReferenceError(
            f"cluster-scoped resource must not have a namespace-scoped owner, owner's namespace {owner_ns}"
        )
    if obj_ns != owner_ns:
        raise OwnerReferenceError(
            f"cross-namespace owner references are disallowed, owner's namespace {owner_ns}, "
            f"obj's namespace {obj_ns}"
        )


def _refs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    meta = obj.setdefault("metadata", {})
    refs = meta.get("ownerReferences")
    if isinstance(refs, list):
        return refs
    fresh: list[dict[str, Any]] = []
    meta["ownerReferences"] = fresh
    return fresh


def _upsert(refs: list[dict[str, Any]], ref: dict[str, Any]) -> None:
    for i, existing in enumerate(refs):
        if _same_object(existing, ref):
            refs[i] = ref
            return
    refs.append(ref)


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The owner reference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def set_controller_reference(owner: dict[str, Any], obj: dict[str, Any]) -> None:
    """Makes ``owner`` the controller of ``obj`` (in place).

    Raises ``AlreadyOwned`` when a different object is the controller and
    ``OwnerReferenceError`` for references the garbage collector would not honour. Setting the
    same owner again is a no-op apart from refreshing its uid/version.
    """
    ref = controller_reference(owner)
    _validate_scope(owner, obj)
    existing = controller_of(obj)
    if existing is not None and not _same_object(existing, ref):
        raise AlreadyOwned(obj, existing)
    _upsert(_refs(obj), ref)


def set_owner_reference(
    owner: dict[str, Any], obj: dict[str, Any], *, block_owner_deletion: bool = False
) -> None:
    """Adds ``owner`` as a non-controller owner of ``obj`` (in place).

    If ``owner`` is already referenced its ``controller`` flag is kept: demoting a controller
    just because someone also recorded plain ownership would orphan it from its controller.
    """
    ref = owner_reference(owner)
    _validate_scope(owner, obj)
    refs = _refs(obj)
    for existing in refs:
        if _same_object(existing, ref):
            if existing.get("controller"):
                ref["controller"] = True
            if existing.get("blockOwnerDeletion"):
                ref["blockOwnerDeletion"] = True
            break
    if block_owner_deletion:
        ref["blockOwnerDeletion"] = True
    _upsert(refs, ref)


def is_owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    """Whether ``obj`` references ``owner`` (controller or not).

    Matches on group, kind and name and, when both sides carry one, the uid, so a reference to
    a deleted-and-recreated owner of the same name does not count.
    """
    meta = owner.get("metadata") or {}
    target = {
        "apiVersion": owner.get("apiVersion", ""),
        "kind": owner.get("kind"),
        "name": meta.get("name"),
    }
    uid = meta.get("uid")
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if _same_object(ref, target) and (not uid or not ref.get("uid") or ref["uid"] == uid):
            return True
    return False
