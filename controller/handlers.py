"""How an event on a watched object becomes requests: itself, its owner, or a mapping."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from controller.reconcile import Request, request_for

Obj = dict[str, Any]
Mapper = Callable[[Obj], Iterable[Request]]


def enqueue_object(obj: Obj) -> Iterable[Request]:
    return (request_for(obj),)


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def enqueue_controller_owner(
    owner_api_version: str, owner_kind: str, owner_namespaced: bool
) -> Mapper:
    """Maps an owned object to its controller owner of the given kind (any version)."""
    group = _group(owner_api_version)

    def mapper(obj: Obj) -> Iterable[Request]:
        meta = obj.get("metadata") or {}
        for ref in meta.get("ownerReferences") or ():
            if not ref.get("controller"):
                continue
            if ref.get("kind") != owner_kind or _group(str(ref.get("apiVersion", ""))) != group:
                continue
            namespace = str(meta.get("namespace") or "") if owner_namespaced else ""
            return (Request(namespace, str(ref.get("name", ""))),)
        return ()

    return mapper
