from __future__ import annotations

import re
from typing import Any

import kubernetes_asyncio.client.models as models

from localcluster import discovery
from localcluster.resources import BUILTIN_GROUP_ORDER, BUILTIN_TYPES, ResourceType, from_crd


def widget_crd(group: str = "example.com") -> dict[str, Any]:
    return {
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Cluster",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "shortNames": ["wd"],
                "categories": ["all"],
            },
            "versions": [
                {"name": "v1beta1", "served": True, "storage": False},
                {"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}},
                {"name": "v1alpha1", "served": False, "storage": False},
            ],
        },
    }


def types_with_crds(*groups: str) -> list[ResourceType]:
    types = list(BUILTIN_TYPES)
    for group in groups:
        types += from_crd(widget_crd(group))
    return types


def assert_model_shape(value: Any, type_str: str, path: str = "") -> None:
    """Every key we emit must be a field of the python client's model of that type."""
    m = re.fullmatch(r"list\[(.+)\]", type_str)
    if m:
        assert isinstance(value, list), path
        for i, item in enumerate(value):
            assert_model_shape(item, m.group(1), f"{path}[{i}]")
        return
    cls = getattr(models, type_str, None)
    if cls is None or not hasattr(cls, "openapi_types"):
        return
    assert isinstance(value, dict), path
    fields = {cls.attribute_map[a]: t for a, t in cls.openapi_types.items()}
    for key, item in value.items():
        assert key in fields, f"{path}.{key} is not a field of {type_str}"
        assert_model_shape(item, fields[key], f"{path}.{key}")


def test_version_priority_order() -> None:
    versions = ["foo10", "v1", "v11alpha2", "v2", "v3beta1", "v10beta3", "foo1", "v12alpha1"]
    versions += ["v10", "v11beta2"]
    assert sorted(versions, key=discovery.version_priority_key) == [
        "v10",
        "v2",
        "v1",
        "v11beta2",
        "v10beta3",
        "v3beta1",
        "v12alpha1",
        "v11alpha2",
        "foo1",
        "foo10",
    ]


def test_storage_version_hash_matches_upstream() -> None:
    assert discovery.storage_version_hash("", "v1", "Pod") == "xPOwRZ+Yhw8="
    assert discovery.storage_version_hash("", "v1", "ConfigMap") == "qFsyl6wFWjQ="
    assert discovery.storage_version_hash("apps", "v1", "Deployment") == "8aSe+NMegvE="


def test_api_versions() -> None:
    doc = discovery.api_versions("127.0.0.1:6443")
    assert doc == {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}
        ],
    }
    assert discovery.api_versions(8080)["serverAddressByClientCIDRs"][0]["serverAddress"] == (
        "127.0.0.1:8080"
    )
    assert_model_shape(doc, "V1APIVersions")


def test_api_group_list_order_and_preferred_versions() -> None:
    doc = discovery.api_group_list(types_with_crds("zeta.io", "alpha.io"))
    assert doc["kind"] == "APIGroupList" and doc["apiVersion"] == "v1"
    names = [g["name"] for g in doc["groups"]]
    assert names == [*BUILTIN_GROUP_ORDER, "alpha.io", "zeta.io"]
    alpha = doc["groups"][-2]
    assert alpha["versions"] == [
        {"groupVersion": "alpha.io/v1", "version": "v1"},
        {"groupVersion": "alpha.io/v1beta1", "version": "v1beta1"},
    ]
    assert alpha["preferredVersion"] == {"groupVersion": "alpha.io/v1", "version": "v1"}
    apps = doc["groups"][0]
    assert apps == {
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    }
    assert_model_shape(doc, "V1APIGroupList")


def test_api_group() -> None:
    types = types_with_crds("example.com")
    doc = discovery.api_group(types, "example.com")
    assert doc is not None
    assert doc["kind"] == "APIGroup" and doc["name"] == "example.com"
    assert doc["preferredVersion"]["version"] == "v1"
    assert discovery.api_group(types, "nope.io") is None
    assert_model_shape(doc, "V1APIGroup")


def test_core_resource_list() -> None:
    doc = discovery.api_resource_list(BUILTIN_TYPES, "", "v1")
    assert doc is not None
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "v1"
    names = [r["name"] for r in doc["resources"]]
    assert names == sorted(names)
    resources = {r["name"]: r for r in doc["resources"]}
    assert resources["pods"] == {
        "name": "pods",
        "singularName": "pod",
        "namespaced": True,
        "kind": "Pod",
        "verbs": [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
        "shortNames": ["po"],
        "categories": ["all"],
        "storageVersionHash": "xPOwRZ+Yhw8=",
    }
    assert resources["pods/status"] == {
        "name": "pods/status",
        "singularName": "",
        "namespaced": True,
        "kind": "Pod",
        "verbs": ["get", "patch", "update"],
    }
    assert resources["pods/log"]["verbs"] == ["get"]
    assert resources["pods/log"]["kind"] == "Pod"
    assert "shortNames" not in resources["secrets"]
    assert "categories" not in resources["configmaps"]
    assert resources["namespaces"]["namespaced"] is False
    assert_model_shape(doc, "V1APIResourceList")


def test_subresources_with_other_kinds() -> None:
    apps = discovery.api_resource_list(BUILTIN_TYPES, "apps", "v1")
    assert apps is not None
    scale = next(r for r in apps["resources"] if r["name"] == "deployments/scale")
    assert scale == {
        "name": "deployments/scale",
        "singularName": "",
        "namespaced": True,
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
    }
    sa = ResourceType(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        True,
        subresources=("token",),
    )
    core = discovery.api_resource_list([sa], "", "v1")
    assert core is not None
    token = core["resources"][1]
    assert token["name"] == "serviceaccounts/token"
    assert (token["group"], token["version"], token["kind"]) == (
        "authentication.k8s.io",
        "v1",
        "TokenRequest",
    )
    assert token["verbs"] == ["create"]


def test_events_k8s_io_shares_core_storage_hash() -> None:
    doc = discovery.api_resource_list(BUILTIN_TYPES, "events.k8s.io", "v1")
    assert doc is not None
    assert doc["resources"][0]["storageVersionHash"] == discovery.storage_version_hash(
        "", "v1", "Event"
    )


def test_custom_resource_list() -> None:
    types = types_with_crds("example.com")
    v1beta1 = discovery.api_resource_list(types, "example.com", "v1beta1")
    v1 = discovery.api_resource_list(types, "example.com", "v1")
    assert v1beta1 is not None and v1 is not None
    assert discovery.api_resource_list(types, "example.com", "v1alpha1") is None
    widget = v1["resources"][0]
    assert widget["verbs"] == [
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "create",
        "update",
        "watch",
    ]
    assert widget["namespaced"] is False and widget["singularName"] == "widget"
    assert widget["shortNames"] == ["wd"] and widget["categories"] == ["all"]
    # Every served version reports the hash of the storage version.
    expected = discovery.storage_version_hash("example.com", "v1", "Widget")
    assert widget["storageVersionHash"] == expected
    assert v1beta1["resources"][0]["storageVersionHash"] == expected
    assert [r["name"] for r in v1["resources"]] == ["widgets", "widgets/status"]
    assert [r["name"] for r in v1beta1["resources"]] == ["widgets"]
    assert discovery.api_resource_list(types, "nope.io", "v1") is None


def test_aggregated_legacy() -> None:
    doc = discovery.aggregated(BUILTIN_TYPES, legacy=True)
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    assert len(doc["items"]) == 1
    core = doc["items"][0]
    assert core["metadata"]["name"] == ""
    (version,) = core["versions"]
    assert version["version"] == "v1" and version["freshness"] == "Current"
    resources = {r["resource"]: r for r in version["resources"]}
    assert "deployments" not in resources
    pods = resources["pods"]
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert pods["scope"] == "Namespaced" and pods["singularResource"] == "pod"
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    assert [s["subresource"] for s in pods["subresources"]] == ["log", "status"]
    assert resources["namespaces"]["scope"] == "Cluster"
    assert "subresources" not in resources["configmaps"]
    assert "shortNames" not in resources["secrets"]
    assert_model_shape(doc, "V2APIGroupDiscoveryList")


def test_aggregated_groups() -> None:
    doc = discovery.aggregated(types_with_crds("example.com"), legacy=False)
    names = [item["metadata"]["name"] for item in doc["items"]]
    assert names == [*BUILTIN_GROUP_ORDER, "example.com"]
    apps = doc["items"][0]["versions"][0]
    deployments = apps["resources"][0]
    assert deployments["resource"] == "deployments"
    assert deployments["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert deployments["subresources"] == [
        {
            "subresource": "scale",
            "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "verbs": ["get", "patch", "update"],
        },
        {
            "subresource": "status",
            "responseKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "verbs": ["get", "patch", "update"],
        },
    ]
    custom = doc["items"][-1]
    assert [v["version"] for v in custom["versions"]] == ["v1", "v1beta1"]
    assert custom["versions"][0]["resources"][0]["scope"] == "Cluster"
    assert_model_shape(doc, "V2APIGroupDiscoveryList")
