"""What the API server serves: one `ResourceType` per group/version/resource.

Built-in kinds are declared here; custom kinds come from CustomResourceDefinitions
(`from_crd`). Everything else — discovery, OpenAPI, validation, tables — reads this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry (also used for built-in tables)."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    # OpenAPI v3 schema of the whole object (None: derived lazily for built-ins).
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    printer_columns: tuple[PrinterColumn, ...] = ()
    custom: bool = False
    # For custom resources: the CRD's name, and whether the version is the storage one.
    crd_name: str = ""
    storage: bool = True
    # Kinds whose spec changes bump metadata.generation.
    tracks_generation: bool = False
    # The scale subresource's JSON paths: spec replicas, status replicas, label selector.
    scale_paths: tuple[str, str, str] = (".spec.replicas", ".status.replicas", ".status.selector")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def is_crd(self) -> bool:
        return self.group == "apiextensions.k8s.io" and self.kind == "CustomResourceDefinition"

    @property
    def is_namespace(self) -> bool:
        return not self.group and self.kind == "Namespace"


def _builtin(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool,
    short_names: tuple[str, ...] = (),
    subresources: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
    tracks_generation: bool = False,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=short_names,
        categories=categories,
        verbs=verbs,
        subresources=subresources,
        tracks_generation=tracks_generation,
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _builtin(
        "",
        "v1",
        "Namespace",
        "namespaces",
        False,
        ("ns",),
        ("status", "finalize"),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _builtin("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _builtin("", "v1", "Secret", "secrets", True),
    _builtin("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), ("token",)),
    _builtin(
        "",
        "v1",
        "Service",
        "services",
        True,
        ("svc",),
        ("status",),
        ("all",),
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
    ),
    _builtin(
        "", "v1", "Pod", "pods", True, ("po",), ("status", "log"), ("all",), tracks_generation=True
    ),
    _builtin("", "v1", "Event", "events", True, ("ev",)),
    _builtin(
        "", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), ("status",)
    ),
    _builtin("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    _builtin("batch", "v1", "Job", "jobs", True, (), ("status",), ("all",), tracks_generation=True),
    _builtin(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        True,
        ("deploy",),
        ("status", "scale"),
        ("all",),
        tracks_generation=True,
    ),
    _builtin(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        True,
        ("sts",),
        ("status", "scale"),
        ("all",),
        tracks_generation=True,
    ),
    _builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _builtin("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _builtin("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _builtin(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        True,
        ("netpol",),
        tracks_generation=True,
    ),
    _builtin("coordination.k8s.io", "v1", "Lease", "leases", True),
    _builtin(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        verbs=("create",),
    ),
    _builtin("events.k8s.io", "v1", "Event", "events", True, ("ev",)),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd", "crds"),
        ("status",),
        categories=("api-extensions",),
        tracks_generation=True,
    ),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        False,
        categories=("api-extensions",),
        tracks_generation=True,
    ),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        False,
        categories=("api-extensions",),
        tracks_generation=True,
    ),
)

# Preferred order of built-in groups in discovery (legacy core group is served apart).
BUILTIN_GROUP_ORDER: tuple[str, ...] = (
    "apps",
    "events.k8s.io",
    "batch",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "coordination.k8s.io",
    "authorization.k8s.io",
    "apiextensions.k8s.io",
    "admissionregistration.k8s.io",
)


def _printer_columns(version: dict[str, Any]) -> tuple[PrinterColumn, ...]:
    return tuple(
        PrinterColumn(
            name=c["name"],
            type=c.get("type", "string"),
            json_path=c["jsonPath"],
            description=c.get("description", ""),
            priority=int(c.get("priority", 0)),
            format=c.get("format", ""),
        )
        for c in version.get("additionalPrinterColumns") or ()
    )


def from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types one CustomResourceDefinition serves (one per served version)."""
    spec = crd["spec"]
    names = spec["names"]
    plural = names["plural"]
    types: list[ResourceType] = []
    for version in spec.get("versions") or ():
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        subs = tuple(s for s in ("status", "scale") if s in subresources)
        scale = subresources.get("scale") or {}
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
        }
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                kind=names["kind"],
                plural=plural,
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=subs,
                schema=schema,
                printer_columns=_printer_columns(version),
                custom=True,
                crd_name=crd["metadata"]["name"],
                storage=bool(version.get("storage", False)),
                tracks_generation=True,
                scale_paths=(
                    scale.get("specReplicasPath", ".spec.replicas"),
                    scale.get("statusReplicasPath", ".status.replicas"),
                    scale.get("labelSelectorPath", ""),
                ),
            )
        )
    return types
