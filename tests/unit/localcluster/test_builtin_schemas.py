from __future__ import annotations

import copy
from typing import Any

import pytest

from localcluster import builtin_schemas as bs
from localcluster.resources import BUILTIN_TYPES, ResourceType, from_crd

META = "io.k8s.apimachinery.pkg.apis.meta.v1"


def builtin(group: str, kind: str) -> ResourceType:
    return next(rt for rt in BUILTIN_TYPES if rt.group == group and rt.kind == kind)


POD = builtin("", "Pod")
DEPLOYMENT = builtin("apps", "Deployment")
SERVICE = builtin("", "Service")
CRD = builtin("apiextensions.k8s.io", "CustomResourceDefinition")
CUSTOM = from_crd(
    {
        "metadata": {"name": "things.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
    }
)[0]


def resolve(components: dict[str, dict[str, Any]], node: dict[str, Any]) -> dict[str, Any]:
    if "allOf" in node:
        node = node["allOf"][0]
    if "$ref" in node:
        ref: str = node["$ref"]
        return components[ref.removeprefix("#/components/schemas/")]
    return node


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"any-key": "v"}, "annotations": {"a/b": "c"}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "ports": [{"containerPort": 80}],
                    "resources": {"limits": {"cpu": 0.5, "memory": "1Gi"}},
                    "readinessProbe": {"httpGet": {"port": "http", "path": "/"}},
                }
            ],
            "nodeSelector": {"disk": "ssd"},
        },
    }


@pytest.mark.parametrize(
    ("group", "kind", "model"),
    [
        ("", "Pod", "V1Pod"),
        ("", "Event", "CoreV1Event"),
        ("events.k8s.io", "Event", "EventsV1Event"),
        ("", "Endpoints", "V1Endpoints"),
        ("batch", "Job", "V1Job"),
        ("networking.k8s.io", "NetworkPolicy", "V1NetworkPolicy"),
        ("coordination.k8s.io", "Lease", "V1Lease"),
        ("apiextensions.k8s.io", "CustomResourceDefinition", "V1CustomResourceDefinition"),
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            "V1ValidatingWebhookConfiguration",
        ),
    ],
)
def test_model_class_name(group: str, kind: str, model: str) -> None:
    assert bs.model_class_name(builtin(group, kind)) == model


def test_every_builtin_type_has_a_schema() -> None:
    for rt in BUILTIN_TYPES:
        assert bs.has_builtin_schema(rt), rt
        assert bs.builtin_schema(rt)["type"] == "object"
    assert not bs.has_builtin_schema(CUSTOM)


def test_builtin_schema_of_custom_kind_raises() -> None:
    with pytest.raises(LookupError):
        bs.builtin_schema(CUSTOM)


def test_pod_schema_types_and_nesting() -> None:
    schema = bs.builtin_schema(POD)
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "", "version": "v1", "kind": "Pod"}
    ]
    spec = schema["properties"]["spec"]
    assert spec["required"] == ["containers"]
    container = spec["properties"]["containers"]["items"]
    assert container["properties"]["image"] == {"type": "string"}
    assert container["properties"]["args"] == {"type": "array", "items": {"type": "string"}}
    assert container["properties"]["stdin"] == {"type": "boolean"}
    port = container["properties"]["ports"]["items"]["properties"]["containerPort"]
    assert port == {"type": "integer"}
    containers = spec["properties"]["containers"]
    assert containers["x-kubernetes-list-type"] == "map"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    meta = schema["properties"]["metadata"]["properties"]
    assert meta["creationTimestamp"] == {"type": "string", "format": "date-time"}
    assert meta["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}


def test_object_fields_are_int_or_string_or_preserved() -> None:
    container = bs.builtin_schema(POD)["properties"]["spec"]["properties"]["containers"]["items"]
    http_get = container["properties"]["readinessProbe"]["properties"]["httpGet"]
    assert http_get["properties"]["port"]["x-kubernetes-int-or-string"] is True
    service_port = bs.builtin_schema(SERVICE)["properties"]["spec"]["properties"]["ports"]["items"]
    assert service_port["properties"]["targetPort"]["x-kubernetes-int-or-string"] is True
    assert service_port["properties"]["port"] == {"type": "integer"}
    rolling = bs.builtin_schema(DEPLOYMENT)["properties"]["spec"]["properties"]["strategy"]
    max_surge = rolling["properties"]["rollingUpdate"]["properties"]["maxSurge"]
    assert max_surge["x-kubernetes-int-or-string"] is True
    managed = bs.builtin_schema(POD)["properties"]["metadata"]["properties"]["managedFields"]
    fields_v1 = managed["items"]["properties"]["fieldsV1"]
    assert fields_v1 == {"x-kubernetes-preserve-unknown-fields": True}


def test_quantities_accept_numbers_and_strings() -> None:
    container = bs.builtin_schema(POD)["properties"]["spec"]["properties"]["containers"]["items"]
    limits = container["properties"]["resources"]["properties"]["limits"]
    assert limits["type"] == "object"
    kinds = {branch["type"] for branch in limits["additionalProperties"]["anyOf"]}
    assert kinds == {"number", "string"}
    # Ordinary string maps stay strings.
    selector = bs.builtin_schema(POD)["properties"]["spec"]["properties"]["nodeSelector"]
    assert selector["additionalProperties"] == {"type": "string"}


def test_recursive_schema_types_are_cut() -> None:
    versions = bs.builtin_schema(CRD)["properties"]["spec"]["properties"]["versions"]
    props = versions["items"]["properties"]["schema"]["properties"]["openAPIV3Schema"]
    nested = props["properties"]["properties"]["additionalProperties"]
    assert nested == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def test_schema_components_names_and_refs() -> None:
    components = bs.schema_components(POD)
    pod_schema = components["io.k8s.api.core.v1.Pod"]
    assert pod_schema["x-kubernetes-group-version-kind"] == [
        {"group": "", "version": "v1", "kind": "Pod"}
    ]
    assert f"{META}.ObjectMeta" in components
    assert f"{META}.OwnerReference" in components
    assert "io.k8s.api.core.v1.PodSpec" in components
    assert "x-kubernetes-group-version-kind" not in components["io.k8s.api.core.v1.PodSpec"]
    spec = resolve(components, pod_schema["properties"]["spec"])
    assert spec is components["io.k8s.api.core.v1.PodSpec"]
    containers = spec["properties"]["containers"]
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    for name, schema in components.items():
        for ref in _refs(schema):
            assert ref.removeprefix("#/components/schemas/") in components, (name, ref)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_components_of_other_groups_use_upstream_package_names() -> None:
    deployment = bs.schema_components(DEPLOYMENT)
    assert "io.k8s.api.apps.v1.DeploymentSpec" in deployment
    assert "io.k8s.api.core.v1.PodTemplateSpec" in deployment
    assert f"{META}.LabelSelector" in deployment
    events = bs.schema_components(builtin("events.k8s.io", "Event"))
    assert {"io.k8s.api.events.v1.Event", "io.k8s.api.events.v1.EventSeries"} <= set(events)
    assert "io.k8s.api.core.v1.ObjectReference" in events
    crd = bs.schema_components(CRD)
    package = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1"
    assert f"{package}.JSONSchemaProps" in crd
    assert f"{package}.WebhookClientConfig" in crd
    webhooks = bs.schema_components(
        builtin("admissionregistration.k8s.io", "ValidatingWebhookConfiguration")
    )
    assert "io.k8s.api.admissionregistration.v1.WebhookClientConfig" in webhooks
    assert bs.component_name(builtin("", "Event")) == "io.k8s.api.core.v1.Event"


def test_patch_extensions_on_merge_keyed_lists() -> None:
    components = bs.schema_components(POD)
    spec = components["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert spec["containers"]["x-kubernetes-patch-merge-key"] == "name"
    assert spec["containers"]["x-kubernetes-patch-strategy"] == "merge"
    assert spec["volumes"]["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    assert "x-kubernetes-patch-merge-key" not in spec["tolerations"]
    container = components["io.k8s.api.core.v1.Container"]["properties"]
    assert container["ports"]["x-kubernetes-patch-merge-key"] == "containerPort"
    assert container["ports"]["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert container["volumeMounts"]["x-kubernetes-patch-merge-key"] == "mountPath"
    meta = components[f"{META}.ObjectMeta"]["properties"]
    assert meta["ownerReferences"]["x-kubernetes-patch-merge-key"] == "uid"
    assert meta["finalizers"]["x-kubernetes-patch-strategy"] == "merge"
    service = bs.schema_components(SERVICE)["io.k8s.api.core.v1.ServiceSpec"]["properties"]
    assert service["ports"]["x-kubernetes-patch-merge-key"] == "port"


def test_components_carry_descriptions() -> None:
    container = bs.schema_components(POD)["io.k8s.api.core.v1.Container"]["properties"]
    assert "Container image name" in container["image"]["description"]
    assert container["env"]["description"].startswith("List of environment variables")
    probe = container["livenessProbe"]
    assert probe == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Probe"}


def test_meta_components() -> None:
    meta = bs.meta_components()
    assert {bs.OBJECT_META, bs.LIST_META, bs.STATUS, bs.DELETE_OPTIONS, bs.PATCH} <= set(meta)
    assert "continue" in meta[bs.LIST_META]["properties"]


def test_unknown_fields_of_a_valid_pod() -> None:
    assert bs.unknown_fields(pod(), POD) == []


def test_unknown_fields_reports_typos_with_paths() -> None:
    obj = pod()
    obj["spec"]["containers"][0]["imagee"] = "x"
    obj["spec"]["foo"] = {"bar": 1}
    obj["metadata"]["labelz"] = {}
    obj["spec"]["containers"][0]["ports"][0]["bogus"] = 1
    assert bs.unknown_fields(obj, POD) == [
        "metadata.labelz",
        "spec.containers[0].ports[0].bogus",
        "spec.containers[0].imagee",
        "spec.foo",
    ]


def test_unknown_fields_ignores_type_errors_and_open_fields() -> None:
    obj = pod()
    obj["spec"]["containers"] = "not a list"
    obj["metadata"]["managedFields"] = [{"fieldsV1": {"f:anything": {}}}]
    assert bs.unknown_fields(obj, POD) == []


def test_unknown_fields_in_map_of_objects() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {
            "versions": [
                {
                    "name": "v1",
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "typo": True}},
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ]
        },
    }
    assert bs.unknown_fields(crd, CRD) == [
        "spec.versions[0].schema.openAPIV3Schema.properties.spec.typo"
    ]


def test_prune_unknown_removes_only_unknown_fields() -> None:
    obj = pod()
    expected = copy.deepcopy(obj)
    obj["spec"]["containers"][0]["imagee"] = "x"
    obj["spec"]["foo"] = 1
    obj["status"] = {"phase": "Running", "nope": 1}
    expected["status"] = {"phase": "Running"}
    bs.prune_unknown(obj, POD)
    assert obj == expected


def test_custom_kinds_have_no_builtin_unknown_fields() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Thing", "whatever": 1}
    assert bs.unknown_fields(obj, CUSTOM) == []
    bs.prune_unknown(obj, CUSTOM)
    assert obj["whatever"] == 1
