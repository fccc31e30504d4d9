"""Kind → resource (plural, scope) from the server's discovery documents.

URLs name resources by plural (`/apis/apps/v1/namespaces/x/deployments`) but callers
think in kinds, so each group-version's discovery document is fetched once and cached.
A miss refetches that one group-version (a CRD may have just been installed) before
giving up with `NoKindMatch`; concurrent misses share one fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from controller.errors import NoKindMatch, NotFound

# GETs a discovery path (`/api/v1`, `/apis/apps/v1`) and returns the parsed JSON.
Fetch = Callable[[str], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource type as discovery describes it, with its URL prefix precomputed."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset()
    prefix: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        object.__setattr__(self, "prefix", prefix)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str = "", subresource: str = "") -> str:
        """The URL path; `namespace` is ignored for cluster-scoped resources."""
        if self.namespaced and namespace:
            path = f"{self.prefix}/namespaces/{namespace}/{self.plural}"
        else:
            path = f"{self.prefix}/{self.plural}"
        if name:
            path = f"{path}/{name}"
            if subresource:
                path = f"{path}/{subresource}"
        return path


def discovery_path(api_version: str) -> str:
    return f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"


def parse_resource_list(api_version: str, document: Any) -> list[Resource]:
    """The kinds of an `APIResourceList`, each with the subresources listed beside it."""
    group, _, version = api_version.rpartition("/")
    entries = document.get("resources", []) if isinstance(document, dict) else []
    subresources: dict[str, set[str]] = {}
    for entry in entries:
        name = str(entry.get("name", ""))
        if "/" in name:
            parent, _, sub = name.partition("/")
            subresources.setdefault(parent, set()).add(sub)
    found: list[Resource] = []
    for entry in entries:
        name = str(entry.get("name", ""))
        if not name or "/" in name:
            continue
        found.append(
            Resource(
                group=group,
                version=version,
                kind=str(entry.get("kind", "")),
                plural=name,
                namespaced=bool(entry.get("namespaced", False)),
                subresources=frozenset(subresources.get(name, ())),
                verbs=frozenset(entry.get("verbs") or ()),
            )
        )
    return found


class RESTMapper:
    """Cached kind → `Resource` lookups, refreshed per group-version on a miss."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._by_kind: dict[tuple[str, str], Resource] = {}
        self._kinds_of: dict[str, set[str]] = {}  # api_version -> kinds cached for it
        self._locks: dict[str, asyncio.Lock] = {}
        self._generation: dict[str, int] = {}  # bumped after every fetch of a group-version

    def cached(self, api_version: str, kind: str) -> Resource | None:
        """The mapping if already known, without I/O (the client's fast path)."""
        return self._by_kind.get((api_version, kind))

    async def resource(self, api_version: str, kind: str) -> Resource:
        """The mapping, fetching discovery for the group-version if the kind is not cached."""
        key = (api_version, kind)
        found = self._by_kind.get(key)
        if found is not None:
            return found
        seen = self._generation.get(api_version, 0)
        lock = self._locks.setdefault(api_version, asyncio.Lock())
        async with lock:
            found = self._by_kind.get(key)
            if found is None and self._generation.get(api_version, 0) == seen:
                await self._refresh(api_version)  # nobody refreshed it while we waited
                found = self._by_kind.get(key)
        if found is None:
            raise NoKindMatch(api_version, kind)
        return found

    def add(self, resources: Iterable[Resource]) -> None:
        """Seeds the cache (tests, or callers that know their types up front)."""
        for resource in resources:
            self._by_kind[(resource.api_version, resource.kind)] = resource
            self._kinds_of.setdefault(resource.api_version, set()).add(resource.kind)

    def invalidate(self, api_version: str | None = None) -> None:
        """Forgets one group-version (or all), e.g. after a CRD changed its scope."""
        versions = list(self._kinds_of) if api_version is None else [api_version]
        for version in versions:
            for kind in self._kinds_of.pop(version, ()):
                self._by_kind.pop((version, kind), None)

    async def _refresh(self, api_version: str) -> None:
        try:
            document = await self._fetch(discovery_path(api_version))
        except NotFound:
            document = {}  # the group-version itself is not served (yet)
        self._generation[api_version] = self._generation.get(api_version, 0) + 1
        self.invalidate(api_version)
        self.add(r for r in parse_resource_list(api_version, document) if r.kind)


__all__ = ["Fetch", "RESTMapper", "Resource", "discovery_path", "parse_resource_list"]
