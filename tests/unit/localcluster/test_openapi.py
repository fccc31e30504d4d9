from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from localcluster import openapi
from localcluster.openapi import OpenAPIDocuments, group_version_document
from localcluster.resources import BUILTIN_TYPES, ResourceType, from_crd

OBJECT_META_REF = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
SMP = "application/strategic-merge-patch+json"


def crd(group: str = "sympozium.ai", spec_props: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": spec_props or {"task": {"type": "string"}}}
        },
    }
    return {
        "metadata": {"name": f"agentruns.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "agentruns", "kind": "AgentRun"},
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": False,
                    "schema": {"openAPIV3Schema": schema},
                },
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, "scale": {}},
                    "schema": {"openAPIV3Schema": schema},
                },
            ],
        },
    }


def all_types(*crds: dict[str, Any]) -> list[ResourceType]:
    types = list(BUILTIN_TYPES)
    for c in crds:
        types += from_crd(c)
    return types


def supports_field_validation(doc: dict[str, Any], group: str, version: str, kind: str) -> bool:
    """kubectl's QueryParamVerifierV3: the first PATCH tagged with the GVK decides."""
    target = {"group": group, "version": version, "kind": kind}
    for item in doc["paths"].values():
        op = item.get("patch")
        if op is None or op.get("x-kubernetes-group-version-kind") != target:
            continue
        return any(p["name"] == "fieldValidation" and p["in"] == "query" for p in op["parameters"])
    return False


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


def test_apps_document_paths_and_operations() -> None:
    doc = group_version_document("apps", "v1", all_types())
    assert doc["openapi"] == "3.0.0"
    assert doc["info"]["title"] == "Kubernetes"
    base = "/apis/apps/v1/namespaces/{namespace}/deployments"
    sets = "/apis/apps/v1/namespaces/{namespace}/statefulsets"
    assert set(doc["paths"]) == {
        base,
        base + "/{name}",
        base + "/{name}/status",
        base + "/{name}/scale",
        "/apis/apps/v1/deployments",
        sets,
        sets + "/{name}",
        sets + "/{name}/status",
        sets + "/{name}/scale",
        "/apis/apps/v1/statefulsets",
    }
    item = doc["paths"][base + "/{name}"]
    assert set(item) == {"get", "put", "patch", "delete", "parameters"}
    patch = item["patch"]
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    assert patch["x-kubernetes-action"] == "patch"
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    names = {p["name"] for p in patch["parameters"]}
    assert {"fieldValidation", "fieldManager", "dryRun", "force"} <= names
    assert set(patch["requestBody"]["content"]) == {
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
        SMP,
    }
    put = item["put"]
    assert put["operationId"] == "replaceAppsV1NamespacedDeployment"
    assert "fieldValidation" in {p["name"] for p in put["parameters"]}
    path_params = {p["name"]: p["in"] for p in item["parameters"]}
    assert path_params == {"name": "path", "namespace": "path", "pretty": "query"}
    collection = doc["paths"][base]
    assert collection["get"]["x-kubernetes-action"] == "list"
    assert collection["post"]["operationId"] == "createAppsV1NamespacedDeployment"
    assert collection["delete"]["x-kubernetes-action"] == "deletecollection"
    scale = doc["paths"][base + "/{name}/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"]["kind"] == "Scale"
    assert set(scale) == {"get", "put", "patch", "parameters"}
    assert supports_field_validation(doc, "apps", "v1", "Deployment")


def test_apps_document_components() -> None:
    doc = group_version_document("apps", "v1", all_types())
    schemas = doc["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "version": "v1", "kind": "Deployment"}
    ]
    listed = schemas["io.k8s.api.apps.v1.DeploymentList"]
    assert listed["x-kubernetes-group-version-kind"][0]["kind"] == "DeploymentList"
    assert listed["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    }
    assert "io.k8s.api.autoscaling.v1.Scale" in schemas
    assert "io.k8s.api.core.v1.PodSpec" in schemas


def test_every_ref_resolves_and_document_serializes() -> None:
    types = all_types(crd())
    for group, version in {(rt.group, rt.version) for rt in types}:
        doc = group_version_document(group, version, types)
        json.dumps(doc)
        schemas = doc["components"]["schemas"]
        for ref in refs(doc):
            assert ref.removeprefix("#/components/schemas/") in schemas, (group, ref)


def test_cluster_scoped_and_core_paths() -> None:
    doc = group_version_document("", "v1", all_types())
    paths = doc["paths"]
    assert "/api/v1/namespaces/{name}" in paths
    assert "/api/v1/namespaces/{name}/status" in paths
    assert paths["/api/v1/namespaces/{name}"]["get"]["operationId"] == "readCoreV1Namespace"
    assert "/api/v1/namespaces/{namespace}/configmaps/{name}" in paths
    assert "/api/v1/namespaces/{namespace}/configmaps/{name}/status" not in paths
    log = paths["/api/v1/namespaces/{namespace}/pods/{name}/log"]
    assert set(log) == {"get", "parameters"}
    assert "text/plain" in log["get"]["responses"]["200"]["content"]
    # Namespace has no deletecollection verb.
    assert "delete" not in paths.get("/api/v1/namespaces", {})
    # Kinds patchable through the gvk, per kubectl's probe, and Namespace (its CRD fallback).
    for kind in ("Namespace", "ConfigMap", "Pod", "Service", "Secret"):
        assert supports_field_validation(doc, "", "v1", kind), kind
    assert "io.k8s.api.core.v1.Event" in doc["components"]["schemas"]


def test_custom_resource_document() -> None:
    source = crd()
    types = all_types(source)
    original = copy.deepcopy(types[-1].schema)
    doc = group_version_document("sympozium.ai", "v1", types)
    schemas = doc["components"]["schemas"]
    run = schemas["ai.sympozium.v1.AgentRun"]
    assert run["x-kubernetes-group-version-kind"] == [
        {"group": "sympozium.ai", "version": "v1", "kind": "AgentRun"}
    ]
    assert run["properties"]["metadata"]["allOf"] == [{"$ref": OBJECT_META_REF}]
    assert run["properties"]["apiVersion"]["type"] == "string"
    assert run["properties"]["spec"]["properties"]["task"] == {"type": "string"}
    assert schemas["ai.sympozium.v1.AgentRunList"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/ai.sympozium.v1.AgentRun"
    }
    assert types[-1].schema == original  # the served type's schema is not touched
    base = "/apis/sympozium.ai/v1/namespaces/{namespace}/agentruns/{name}"
    patch = doc["paths"][base]["patch"]
    assert SMP not in patch["requestBody"]["content"]
    assert patch["operationId"] == "patchSympoziumAiV1NamespacedAgentRun"
    assert base + "/status" in doc["paths"] and base + "/scale" in doc["paths"]
    assert supports_field_validation(doc, "sympozium.ai", "v1", "AgentRun")
    older = group_version_document("sympozium.ai", "v1alpha1", types)
    assert "ai.sympozium.v1alpha1.AgentRun" in older["components"]["schemas"]
    assert not any(p.endswith("/status") for p in older["paths"])


def test_index_uses_upstream_hash() -> None:
    body = b'{"openapi":"3.0.0"}'
    index = openapi.index({"apis/apps/v1": body})
    digest = hashlib.sha512(body).hexdigest().upper()
    assert index == {
        "paths": {"apis/apps/v1": {"serverRelativeURL": f"/openapi/v3/apis/apps/v1?hash={digest}"}}
    }


def test_documents_serve_and_cache() -> None:
    types = all_types(crd())
    documents = OpenAPIDocuments(lambda: types)
    index = json.loads(documents.index_bytes())
    assert list(index["paths"])[:2] == ["api/v1", "apis/apps/v1"]
    assert {"apis/sympozium.ai/v1", "apis/sympozium.ai/v1alpha1"} <= set(index["paths"])
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    body = documents.get(url)
    assert body is not None
    assert url.endswith("?hash=" + hashlib.sha512(body).hexdigest().upper())
    assert documents.get("/openapi/v3/apis/apps/v1") is body  # cached, not rebuilt
    assert documents.get("apis/apps/v1/") is body
    assert documents.get("apis/nope/v1") is None
    assert documents.digest("apis/apps/v1") == url.rsplit("=", 1)[1]
    assert json.loads(body)["paths"]


def test_documents_follow_type_changes() -> None:
    types = all_types()
    documents = OpenAPIDocuments()
    first = json.loads(documents.index_bytes(types))
    assert "apis/sympozium.ai/v1" not in first["paths"]
    types = all_types(crd())
    second = json.loads(documents.index_bytes(types))
    assert second["paths"]["apis/apps/v1"] == first["paths"]["apis/apps/v1"]
    before = second["paths"]["apis/sympozium.ai/v1"]["serverRelativeURL"]
    # A CRD update yields new ResourceType objects with an equal identity but a new schema.
    types = all_types(crd(spec_props={"other": {"type": "integer"}}))
    third = json.loads(documents.index_bytes(types))
    assert third["paths"]["apis/sympozium.ai/v1"]["serverRelativeURL"] != before
    body = documents.get("apis/sympozium.ai/v1", types)
    assert body is not None and b'"other"' in body
    assert json.loads(documents.index_bytes(all_types()))["paths"] == first["paths"]


def test_invalidate_rebuilds() -> None:
    types = all_types(crd())
    documents = OpenAPIDocuments(lambda: types)
    body = documents.get("apis/sympozium.ai/v1")
    assert body is not None
    schema = types[-1].schema
    assert schema is not None
    schema["properties"]["spec"]["properties"]["added"] = {"type": "boolean"}
    assert documents.get("apis/sympozium.ai/v1") is body  # in-place edits are not noticed
    documents.invalidate()
    rebuilt = documents.get("apis/sympozium.ai/v1")
    assert rebuilt is not None and b'"added"' in rebuilt
