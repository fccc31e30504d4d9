"""Discovery documents (`/api`, `/apis`, `/apis/<group>`, `/api/v1`, `/apis/<g>/<v>`).

Shaped like kube-apiserver's, field for field, because clients parse them strictly
enough to care: kubectl builds its REST mapper from them, and the python clients
look up resources by name, kind and verbs. kubectl asks for the aggregated form
(`apidiscovery.k8s.io/v2`) first and falls back to the legacy per-group documents.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from localcluster.resources import BUILTIN_GROUP_ORDER, ResourceType

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_STABILITY = {None: 0, "beta": 1, "alpha": 2}

# Order in which the apiextensions handler lists a CRD's verbs.
_CRD_VERB_ORDER = (
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
)
_SUBRESOURCE_VERBS = ("get", "patch", "update")


def version_priority_key(version: str) -> tuple[int, int, int, str]:
    """Sort key putting the preferred version first: GA > beta > alpha, higher first.

    Versions not shaped like Kubernetes versions (`foo1`) sort last, alphabetically,
    as in the apiextensions version-priority rules.
    """
    m = _VERSION_RE.match(version)
    if m is None:
        return (3, 0, 0, version)
    major, stability, minor = m.groups()
    return (_STABILITY[stability], -int(major), -int(minor or 0), "")


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """Upstream's `storageVersionHash`: base64 of the first 8 bytes of sha256(g/v/k)."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _group_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _storage_hash(rt: ResourceType, types: Iterable[ResourceType]) -> str:
    if not rt.custom:
        if rt.group == "events.k8s.io" and rt.kind == "Event":
            # events.k8s.io Events are stored as core v1 Events, and upstream says so.
            return storage_version_hash("", "v1", "Event")
        return storage_version_hash(rt.group, rt.version, rt.kind)
    storage = next(
        (t.version for t in types if t.custom and t.crd_name == rt.crd_name and t.storage),
        rt.version,
    )
    return storage_version_hash(rt.group, storage, rt.kind)


def _verbs(rt: ResourceType) -> list[str]:
    if rt.custom:
        return [v for v in _CRD_VERB_ORDER if v in rt.verbs]
    return sorted(rt.verbs)


def _group_rank(group: str) -> tuple[int, int, str]:
    if group in BUILTIN_GROUP_ORDER:
        return (0, BUILTIN_GROUP_ORDER.index(group), "")
    return (1, 0, group)


def _versions_by_group(types: Iterable[ResourceType]) -> dict[str, list[str]]:
    """Named groups in discovery order, each with its versions preferred-first."""
    groups: dict[str, set[str]] = {}
    for rt in types:
        if rt.group:
            groups.setdefault(rt.group, set()).add(rt.version)
    return {g: sorted(groups[g], key=version_priority_key) for g in sorted(groups, key=_group_rank)}


def _gv_entry(group: str, version: str) -> dict[str, str]:
    return {"groupVersion": _group_version(group, version), "version": version}


def _api_group(group: str, versions: list[str]) -> dict[str, Any]:
    return {
        "name": group,
        "versions": [_gv_entry(group, v) for v in versions],
        "preferredVersion": _gv_entry(group, versions[0]),
    }


def api_versions(server_address: str | int) -> dict[str, Any]:
    """`/api`: the core group's versions; `server_address` is `host:port` (or a port)."""
    if isinstance(server_address, int):
        server_address = f"127.0.0.1:{server_address}"
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group_list(types: Iterable[ResourceType]) -> dict[str, Any]:
    """`/apis`: built-in groups in upstream's order, then custom groups by name."""
    groups = _versions_by_group(types)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_api_group(g, versions) for g, versions in groups.items()],
    }


def api_group(types: Iterable[ResourceType], group: str) -> dict[str, Any] | None:
    """`/apis/<group>`, or None when no version of the group is served."""
    versions = _versions_by_group(types).get(group)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(group, versions)}


def _subresources(rt: ResourceType) -> list[tuple[str, dict[str, str], list[str]]]:
    """(name, response group/version/kind, verbs) of each subresource, by name."""
    own = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    subs: list[tuple[str, dict[str, str], list[str]]] = []
    for sub in sorted(rt.subresources):
        if sub == "status":
            subs.append((sub, own, list(_SUBRESOURCE_VERBS)))
        elif sub == "scale":
            scale = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
            subs.append((sub, scale, list(_SUBRESOURCE_VERBS)))
        elif sub == "log":
            subs.append((sub, own, ["get"]))
        elif sub == "finalize":
            subs.append((sub, own, ["update"]))
        elif sub == "token":
            token = {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}
            subs.append((sub, token, ["create"]))
    return subs


def _api_resources(rt: ResourceType, types: list[ResourceType]) -> list[dict[str, Any]]:
    resource: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": _verbs(rt),
    }
    if rt.short_names:
        resource["shortNames"] = list(rt.short_names)
    if rt.categories:
        resource["categories"] = list(rt.categories)
    resource["storageVersionHash"] = _storage_hash(rt, types)
    entries = [resource]
    for sub, gvk, verbs in _subresources(rt):
        entry: dict[str, Any] = {
            "name": f"{rt.plural}/{sub}",
            "singularName": "",
            "namespaced": rt.namespaced,
        }
        if gvk["group"] != rt.group or gvk["version"] != rt.version:
            entry["group"] = gvk["group"]
            entry["version"] = gvk["version"]
        entry["kind"] = gvk["kind"]
        entry["verbs"] = verbs
        entries.append(entry)
    return entries


def api_resource_list(
    types: Iterable[ResourceType], group: str, version: str
) -> dict[str, Any] | None:
    """`/api/v1` or `/apis/<group>/<version>`, or None when that GV is not served."""
    all_types = list(types)
    served = [rt for rt in all_types if rt.group == group and rt.version == version]
    if not served:
        return None
    resources = [r for rt in served for r in _api_resources(rt, all_types)]
    resources.sort(key=lambda r: r["name"])
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": _group_version(group, version),
        "resources": resources,
    }


def _discovery_resource(rt: ResourceType) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": _verbs(rt),
    }
    if rt.short_names:
        resource["shortNames"] = list(rt.short_names)
    if rt.categories:
        resource["categories"] = list(rt.categories)
    subresources = [
        {"subresource": sub, "responseKind": gvk, "verbs": verbs}
        for sub, gvk, verbs in _subresources(rt)
    ]
    if subresources:
        resource["subresources"] = subresources
    return resource


def aggregated(types: Iterable[ResourceType], legacy: bool) -> dict[str, Any]:
    """An `apidiscovery.k8s.io/v2` APIGroupDiscoveryList.

    `legacy=True` describes `/api` (the core group, whose name is empty); otherwise
    `/apis`, every named group in the same order as `api_group_list`.
    """
    all_types = list(types)
    groups: dict[str, list[str]]
    if legacy:
        core = sorted({rt.version for rt in all_types if not rt.group}, key=version_priority_key)
        groups = {"": core} if core else {}
    else:
        groups = _versions_by_group(all_types)
    items = []
    for group, versions in groups.items():
        version_entries = []
        for version in versions:
            served = sorted(
                (rt for rt in all_types if rt.group == group and rt.version == version),
                key=lambda rt: rt.plural,
            )
            version_entries.append(
                {
                    "version": version,
                    "resources": [_discovery_resource(rt) for rt in served],
                    "freshness": "Current",
                }
            )
        items.append({"metadata": {"name": group}, "versions": version_entries})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
