"""The set of resource types being served right now: built-ins plus what CRDs add."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from localcluster.resources import BUILTIN_TYPES, ResourceType, from_crd


class Catalog:
    """Looks resource types up by group/version/plural; changes when CRDs change."""

    def __init__(self, builtins: Iterable[ResourceType] = BUILTIN_TYPES) -> None:
        self._builtins = list(builtins)
        self._crds: dict[str, list[ResourceType]] = {}
        self._index: dict[tuple[str, str, str], ResourceType] = {}
        self.generation = 0  # bumps on every change, so derived documents can be cached
        self._reindex()

    def _reindex(self) -> None:
        self._index = {(t.group, t.version, t.plural): t for t in self.all()}
        self.generation += 1

    def all(self) -> list[ResourceType]:
        types = list(self._builtins)
        for crd_types in self._crds.values():
            types.extend(crd_types)
        return types

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._index.get((group, version, plural))

    def group_versions(self, group: str) -> list[str]:
        return sorted({t.version for t in self._index.values() if t.group == group})

    def set_crd(self, crd: dict[str, Any]) -> None:
        self._crds[crd["metadata"]["name"]] = from_crd(crd)
        self._reindex()

    def remove_crd(self, name: str) -> None:
        if self._crds.pop(name, None) is not None:
            self._reindex()

    def crd_types(self, name: str) -> list[ResourceType]:
        return list(self._crds.get(name, ()))

    def storage_version(self, rt: ResourceType) -> str:
        """The version custom objects of `rt` are stored in (built-ins: their only one)."""
        for candidate in self._crds.get(rt.crd_name, ()):
            if candidate.storage:
                return candidate.version
        return rt.version
