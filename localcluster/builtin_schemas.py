"""OpenAPI v3 schemas of the built-in kinds, derived from the python client's models.

kube-apiserver compiles its schemas from Go types; we have no such source, but the
generated `kubernetes_asyncio.client.models` classes carry every field name, its JSON
spelling and its nesting (`openapi_types`, `attribute_map`), plus which fields are
required (their setters refuse None). That is enough to publish OpenAPI documents and
to find unknown fields for `fieldValidation`. What the models do not carry (patch
merge keys, int-or-string and quantity fields, the Go package of each type) is filled
in from small tables below.

Models are imported lazily: loading them takes about half a second.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from localcluster.resources import ResourceType

_SCHEMAS_REF = "#/components/schemas/"

META_PACKAGE = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{META_PACKAGE}.ObjectMeta"
LIST_META = f"{META_PACKAGE}.ListMeta"
STATUS = f"{META_PACKAGE}.Status"
DELETE_OPTIONS = f"{META_PACKAGE}.DeleteOptions"
PATCH = f"{META_PACKAGE}.Patch"

# "V1PodSpec", "CoreV1EventSeries", "V1beta1IPAddress": optional group prefix, version, name.
_CLASS_RE = re.compile(
    r"^(?P<prefix>[A-Z][a-z]+)?(?P<version>V\d+(?:(?:alpha|beta)\d+)?)(?P<bare>[A-Z]\w*)$"
)
_LIST_RE = re.compile(r"^list\[(.+)\]$")
_DICT_RE = re.compile(r"^dict\(str, (.+)\)$")

# Types of apimachinery's meta/v1 package; claimed first so no group adopts them.
_META_ROOTS = (
    "V1ObjectMeta",
    "V1ListMeta",
    "V1LabelSelector",
    "V1Condition",
    "V1Status",
    "V1DeleteOptions",
)
# Core kinds; claimed next so the core types other groups embed (PodTemplateSpec,
# ObjectReference, ...) keep their core/v1 names.
_CORE_ROOTS = (
    "V1Pod",
    "V1PodTemplate",
    "V1ReplicationController",
    "V1Service",
    "V1Namespace",
    "V1Node",
    "V1PersistentVolume",
    "V1PersistentVolumeClaim",
    "V1Endpoints",
    "CoreV1Event",
    "V1Secret",
    "V1ConfigMap",
    "V1ServiceAccount",
    "V1ResourceQuota",
    "V1LimitRange",
    "V1Binding",
)

# Fields typed 'object' in the models that are IntOrString upstream (all others are
# RawExtension / JSON and accept anything).
_INT_OR_STRING_FIELDS = frozenset(
    {"port", "targetPort", "maxSurge", "maxUnavailable", "minAvailable"}
)

# Fields the models type as 'str' (or maps of it) that are resource.Quantity upstream:
# JSON numbers are accepted too (`cpu: 0.5`, `memory: 1024`).
_QUANTITY_FIELDS = frozenset(
    {
        ("V1ResourceRequirements", "limits"),
        ("V1ResourceRequirements", "requests"),
        ("V1VolumeResourceRequirements", "limits"),
        ("V1VolumeResourceRequirements", "requests"),
        ("V1PodSpec", "overhead"),
        ("V1PodStatus", "allocatedResources"),
        ("V1ContainerStatus", "allocatedResources"),
        ("V1NodeAllocatableResourceClaimStatus", "resources"),
        ("V1PersistentVolumeClaimStatus", "allocatedResources"),
        ("V1PersistentVolumeClaimStatus", "capacity"),
        ("V1PersistentVolumeSpec", "capacity"),
        ("V1NodeStatus", "capacity"),
        ("V1NodeStatus", "allocatable"),
        ("V1ResourceQuotaSpec", "hard"),
        ("V1ResourceQuotaStatus", "hard"),
        ("V1ResourceQuotaStatus", "used"),
        ("V1LimitRangeItem", "default"),
        ("V1LimitRangeItem", "defaultRequest"),
        ("V1LimitRangeItem", "max"),
        ("V1LimitRangeItem", "min"),
        ("V1LimitRangeItem", "maxLimitRequestRatio"),
        ("V1EmptyDirVolumeSource", "sizeLimit"),
        ("V1ResourceFieldSelector", "divisor"),
    }
)

QUANTITY_SCHEMA: dict[str, Any] = {"anyOf": [{"type": "number"}, {"type": "string"}]}
INT_OR_STRING_SCHEMA: dict[str, Any] = {
    "x-kubernetes-int-or-string": True,
    "anyOf": [{"type": "integer"}, {"type": "string"}],
}
PRESERVE_SCHEMA: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}

_PatchMeta = tuple[str, str, tuple[str, ...]]  # (merge key, strategy, list-map keys)


def _merge(key: str, *map_keys: str, strategy: str = "merge") -> _PatchMeta:
    return (key, strategy, map_keys or (key,))


# Go struct tags `patchMergeKey`/`patchStrategy`/`listMapKey` upstream publishes as
# x-kubernetes-patch-* and x-kubernetes-list-* extensions. Strategic merge patch and
# server-side apply both depend on them; the python models do not record them.
_PATCH_META: dict[tuple[str, str], _PatchMeta] = {
    ("V1ObjectMeta", "ownerReferences"): _merge("uid"),
    ("V1ObjectMeta", "finalizers"): ("", "merge", ()),
    ("V1PodSpec", "containers"): _merge("name"),
    ("V1PodSpec", "initContainers"): _merge("name"),
    ("V1PodSpec", "ephemeralContainers"): _merge("name"),
    ("V1PodSpec", "volumes"): _merge("name", strategy="merge,retainKeys"),
    ("V1PodSpec", "imagePullSecrets"): _merge("name"),
    ("V1PodSpec", "hostAliases"): _merge("ip"),
    ("V1PodSpec", "topologySpreadConstraints"): _merge(
        "topologyKey", "topologyKey", "whenUnsatisfiable"
    ),
    ("V1PodSpec", "resourceClaims"): _merge("name", strategy="merge,retainKeys"),
    ("V1PodSpec", "schedulingGates"): _merge("name"),
    ("V1Container", "ports"): _merge("containerPort", "containerPort", "protocol"),
    ("V1Container", "env"): _merge("name"),
    ("V1Container", "volumeMounts"): _merge("mountPath"),
    ("V1Container", "volumeDevices"): _merge("devicePath"),
    ("V1EphemeralContainer", "ports"): _merge("containerPort", "containerPort", "protocol"),
    ("V1EphemeralContainer", "env"): _merge("name"),
    ("V1EphemeralContainer", "volumeMounts"): _merge("mountPath"),
    ("V1EphemeralContainer", "volumeDevices"): _merge("devicePath"),
    ("V1PodStatus", "conditions"): _merge("type"),
    ("V1PodStatus", "podIPs"): _merge("ip"),
    ("V1PodStatus", "hostIPs"): _merge("ip"),
    ("V1PodStatus", "resourceClaimStatuses"): _merge("name", strategy="merge,retainKeys"),
    ("V1ServiceSpec", "ports"): _merge("port", "port", "protocol"),
    ("V1ServiceStatus", "conditions"): _merge("type"),
    ("V1ServiceAccount", "secrets"): _merge("name"),
    ("V1NamespaceStatus", "conditions"): _merge("type"),
    ("V1PersistentVolumeClaimStatus", "conditions"): _merge("type"),
    ("V1DeploymentSpec", "strategy"): ("", "retainKeys", ()),
    ("V1DeploymentStatus", "conditions"): _merge("type"),
    ("V1JobStatus", "conditions"): _merge("type"),
    ("V1ValidatingWebhookConfiguration", "webhooks"): _merge("name"),
    ("V1MutatingWebhookConfiguration", "webhooks"): _merge("name"),
}


@cache
def _models() -> Any:
    import kubernetes_asyncio.client.models as models

    return models


def model_class_name(rt: ResourceType) -> str | None:
    """The client model of a kind: `V1Pod`, or `CoreV1Event` where names are ambiguous."""
    models = _models()
    version = rt.version[:1].upper() + rt.version[1:]
    prefix = (rt.group.split(".")[0] or "core").capitalize()
    for name in (f"{prefix}{version}{rt.kind}", f"{version}{rt.kind}"):
        if hasattr(models, name) and hasattr(getattr(models, name), "openapi_types"):
            return name
    return None


def has_builtin_schema(rt: ResourceType) -> bool:
    return not rt.custom and model_class_name(rt) is not None


def _require_model(rt: ResourceType) -> str:
    name = model_class_name(rt) if not rt.custom else None
    if name is None:
        raise LookupError(f"no built-in schema for {rt.api_version}, Kind={rt.kind}")
    return name


def _short_group(group: str) -> str:
    """`rbac.authorization.k8s.io` -> `rbac`: the Go package name upstream's schema names use."""
    return group.split(".")[0]


def _package(short_group: str, version: str) -> str:
    if short_group == "":
        return f"io.k8s.api.core.{version}"
    if short_group == "meta":
        return f"io.k8s.apimachinery.pkg.apis.meta.{version}"
    if short_group == "apiextensions":
        return f"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{version}"
    if short_group == "apiregistration":
        return f"io.k8s.kube-aggregator.pkg.apis.apiregistration.{version}"
    return f"io.k8s.api.{short_group}.{version}"


def _element_type(type_str: str) -> str:
    while True:
        m = _LIST_RE.match(type_str) or _DICT_RE.match(type_str)
        if m is None:
            return type_str
        type_str = m.group(1)


@cache
def _fields(name: str) -> dict[str, str]:
    """JSON field name -> model type string of one model class."""
    cls = getattr(_models(), name)
    return {cls.attribute_map[attr]: t for attr, t in cls.openapi_types.items()}


def _is_model(type_str: str) -> bool:
    return _CLASS_RE.match(type_str) is not None and hasattr(_models(), type_str)


# Model class -> short group of the Go package that declares it. Filled in claim order:
# meta, core, then each kind's own group as it is first asked for.
_owner: dict[str, str] = {}


def _claim(name: str, short_group: str) -> None:
    stack = [(name, short_group)]
    while stack:
        cls, group = stack.pop()
        if cls in _owner:
            continue
        m = _CLASS_RE.match(cls)
        if m is not None and m.group("prefix"):
            prefix = m.group("prefix").lower()
            group = "" if prefix == "core" else prefix
        _owner[cls] = group
        for type_str in _fields(cls).values():
            child = _element_type(type_str)
            if _is_model(child) and child not in _owner:
                stack.append((child, group))


@cache
def _claim_roots() -> None:
    for name in _META_ROOTS:
        _claim(name, "meta")
    for name in _CORE_ROOTS:
        if hasattr(_models(), name):
            _claim(name, "")


def _component_name(name: str) -> str:
    m = _CLASS_RE.match(name)
    assert m is not None, name
    version = m.group("version").lower()
    return f"{_package(_owner.get(name, ''), version)}.{m.group('bare')}"


@cache
def _required(name: str) -> tuple[str, ...]:
    """Fields whose generated setter rejects None: the upstream `required` list."""
    config = _validating_config()
    cls = getattr(_models(), name)
    required = []
    for attr in cls.openapi_types:
        probe = cls.__new__(cls)
        probe.local_vars_configuration = config
        try:
            setattr(probe, attr, None)
        except ValueError:
            required.append(cls.attribute_map[attr])
    return tuple(required)


@cache
def _validating_config() -> Any:
    from kubernetes_asyncio.client.configuration import Configuration

    config = Configuration()
    config.client_side_validation = True
    return config


def _description(name: str, attr: str) -> str:
    prop = getattr(getattr(_models(), name), attr, None)
    doc = getattr(prop, "__doc__", None) or ""
    parts = [p.strip() for p in doc.split("\n\n")]
    if len(parts) < 3:
        return ""
    text = parts[1].replace("# noqa: E501", "").strip()
    return "" if text.startswith(":return:") else text


def _type_schema(
    type_str: str, owner: str, field: str, ref: Callable[[str], dict[str, Any]]
) -> dict[str, Any]:
    m = _LIST_RE.match(type_str)
    if m is not None:
        return {"type": "array", "items": _type_schema(m.group(1), owner, field, ref)}
    m = _DICT_RE.match(type_str)
    if m is not None:
        return {
            "type": "object",
            "additionalProperties": _type_schema(m.group(1), owner, field, ref),
        }
    if type_str == "str":
        if (owner, field) in _QUANTITY_FIELDS:
            return dict(QUANTITY_SCHEMA)
        return {"type": "string"}
    if type_str == "int":
        return {"type": "integer"}
    if type_str == "float":
        return {"type": "number"}
    if type_str == "bool":
        return {"type": "boolean"}
    if type_str == "datetime":
        return {"type": "string", "format": "date-time"}
    if type_str == "date":
        return {"type": "string", "format": "date"}
    if type_str == "object":
        if field in _INT_OR_STRING_FIELDS:
            return dict(INT_OR_STRING_SCHEMA)
        return dict(PRESERVE_SCHEMA)
    if _is_model(type_str):
        return ref(type_str)
    return dict(PRESERVE_SCHEMA)


def _patch_extensions(owner: str, field: str) -> dict[str, Any]:
    meta = _PATCH_META.get((owner, field))
    if meta is None:
        return {}
    key, strategy, map_keys = meta
    ext: dict[str, Any] = {}
    if key:
        ext["x-kubernetes-patch-merge-key"] = key
    ext["x-kubernetes-patch-strategy"] = strategy
    if map_keys:
        ext["x-kubernetes-list-type"] = "map"
        ext["x-kubernetes-list-map-keys"] = list(map_keys)
    elif strategy == "merge":
        ext["x-kubernetes-list-type"] = "set"
    return ext


def _class_schema(
    name: str, ref: Callable[[str], dict[str, Any]], describe: bool
) -> dict[str, Any]:
    cls = getattr(_models(), name)
    properties: dict[str, Any] = {}
    for attr, type_str in cls.openapi_types.items():
        field = cls.attribute_map[attr]
        node = _type_schema(type_str, name, field, ref)
        if ext := _patch_extensions(name, field):
            node = {**node, **ext}  # inlined type schemas are shared: never update them
        # The generated models keep no description for fields that reference a type.
        if describe and "$ref" not in node and (text := _description(name, attr)):
            node["description"] = text
        properties[field] = node
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = _required(name)
    if required:
        schema["required"] = list(required)
    return schema


def _gvk_extension(rt: ResourceType) -> list[dict[str, str]]:
    return [{"group": rt.group, "version": rt.version, "kind": rt.kind}]


@cache
def _inline(name: str) -> dict[str, Any]:
    stack: list[str] = []
    done: dict[str, dict[str, Any]] = {}

    def ref(child: str) -> dict[str, Any]:
        if child in stack:
            # Recursive types (JSONSchemaProps) end in an open object.
            return {"type": "object", **PRESERVE_SCHEMA}
        if child not in done:
            stack.append(child)
            done[child] = _class_schema(child, ref, describe=False)
            stack.pop()
        return done[child]

    return ref(name)


def builtin_schema(rt: ResourceType) -> dict[str, Any]:
    """The whole-object schema of a built-in kind, nested types inlined.

    Shared between calls (it is cached, and repeated types share sub-dicts): treat it
    as read-only. Recursive types are cut at their second occurrence.
    """
    return _inline_with_gvk(_require_model(rt), rt.group, rt.version, rt.kind)


@cache
def _inline_with_gvk(name: str, group: str, version: str, kind: str) -> dict[str, Any]:
    schema = dict(_inline(name))
    schema["x-kubernetes-group-version-kind"] = [{"group": group, "version": version, "kind": kind}]
    return schema


@cache
def _components(name: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """All component schemas reachable from one model, and the model's own name."""
    _claim_roots()
    components: dict[str, dict[str, Any]] = {}
    pending = [name]
    seen = {name}

    def ref(child: str) -> dict[str, Any]:
        if child not in seen:
            seen.add(child)
            pending.append(child)
        return {"$ref": _SCHEMAS_REF + _component_name(child)}

    while pending:
        cls = pending.pop()
        components[_component_name(cls)] = _class_schema(cls, ref, describe=True)
    return _component_name(name), components


def schema_components(rt: ResourceType) -> dict[str, dict[str, Any]]:
    """Named schemas (upstream names, `$ref`-linked) for one built-in kind.

    The kind's own schema carries `x-kubernetes-group-version-kind`, which kubectl
    uses to find it; the dicts are fresh copies at the top level only.
    """
    name = _require_model(rt)
    _claim_roots()
    _claim(name, _short_group(rt.group))
    top, components = _components(name)
    result = dict(components)
    result[top] = {**components[top], "x-kubernetes-group-version-kind": _gvk_extension(rt)}
    return result


def component_name(rt: ResourceType) -> str:
    """Upstream's schema name of a built-in kind, e.g. `io.k8s.api.core.v1.Pod`."""
    name = _require_model(rt)
    _claim_roots()
    _claim(name, _short_group(rt.group))
    return _component_name(name)


def meta_components() -> dict[str, dict[str, Any]]:
    """ObjectMeta, ListMeta, Status, DeleteOptions and what they reference."""
    _claim_roots()
    result: dict[str, dict[str, Any]] = {}
    for name in ("V1ObjectMeta", "V1ListMeta", "V1Status", "V1DeleteOptions"):
        result.update(_components(name)[1])
    result[PATCH] = {
        "type": "object",
        "description": "Patch is provided to give a concrete name and type to the "
        "Kubernetes PATCH request body.",
    }
    return result


def _walk(value: Any, type_str: str, owner: str, path: str, found: list[str], prune: bool) -> None:
    if value is None:
        return
    m = _LIST_RE.match(type_str)
    if m is not None:
        if isinstance(value, list):
            for i, item in enumerate(value):
                _walk(item, m.group(1), owner, f"{path}[{i}]", found, prune)
        return
    m = _DICT_RE.match(type_str)
    if m is not None:
        if isinstance(value, dict):
            for key, item in value.items():
                _walk(item, m.group(1), owner, f"{path}.{key}", found, prune)
        return
    if not isinstance(value, dict) or not _is_model(type_str):
        return  # scalars, 'object' (anything goes) and type mismatches
    fields = _fields(type_str)
    for key in list(value):
        child_path = f"{path}.{key}" if path else key
        child_type = fields.get(key)
        if child_type is None:
            found.append(child_path)
            if prune:
                del value[key]
            continue
        _walk(value[key], child_type, type_str, child_path, found, prune)


def unknown_fields(obj: dict[str, Any], rt: ResourceType) -> list[str]:
    """Dotted paths of fields the kind does not declare, e.g. `spec.containers[0].imagee`.

    Only names are checked: the models are too loose about types (quantities,
    int-or-string) to report type errors from here. A kind without a model (custom
    resources, which have their own schema) has nothing to report.
    """
    found: list[str] = []
    name = model_class_name(rt) if not rt.custom else None
    if name is not None:
        _walk(obj, name, "", "", found, prune=False)
    return found


def prune_unknown(obj: dict[str, Any], rt: ResourceType) -> None:
    """Drop unknown fields in place, as kube-apiserver's decoder does for built-ins."""
    found: list[str] = []
    name = model_class_name(rt) if not rt.custom else None
    if name is not None:
        _walk(obj, name, "", "", found, prune=True)
