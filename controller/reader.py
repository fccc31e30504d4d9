"""Reads served from the informer caches, as controller-runtime's default client does.

A reconcile that reads its inputs from the cache costs the API server nothing; only
writes go out. Cached objects may be a little stale: writes guarded by resourceVersion
fail with Conflict and the reconcile is retried, so staleness is never acted on twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller.cache import NAMESPACE_INDEX, FrozenDict

if TYPE_CHECKING:
    from controller.informer import InformerFactory

Kind = tuple[str, str]


class CacheReader:
    """Read-only views of cached objects: `.copy()` one before changing it."""

    def __init__(self, informers: InformerFactory[Kind]) -> None:
        self._informers = informers

    def _store(self, kind: Kind) -> Any:
        # Cluster-wide, unfiltered informers: the ones `for_`/`owns` create by default.
        return self._informers.informer_for(kind).store

    def get(self, kind: Kind, name: str, namespace: str = "") -> FrozenDict | None:
        key = f"{namespace}/{name}" if namespace else name
        found: FrozenDict | None = self._store(kind).get_readonly(key)
        return found

    def list(self, kind: Kind, namespace: str | None = None) -> list[FrozenDict]:
        store = self._store(kind)
        if namespace is None:
            return list(store.list_readonly())
        return list(store.by_index_readonly(NAMESPACE_INDEX, namespace))
