"""Per-kind rules the API server applies on write, like kube-apiserver's registry strategies.

Defaults clients rely on (a Pod's restartPolicy, a Job's selector, a Secret's base64
`data`) are filled in here, and fields a kind owns elsewhere are reset (status on create).
"""

from __future__ import annotations

import base64
import copy
import ipaddress
from collections.abc import Callable
from typing import Any

from localcluster.errors import Cause
from localcluster.resources import ResourceType

Obj = dict[str, Any]


def prepare_create(rt: ResourceType, obj: Obj, allocate_ip: Callable[[], str]) -> list[Cause]:
    """Fills defaults and resets what a create may not set; returns field errors."""
    if rt.has_status:
        obj.pop("status", None)
    prepare = _CREATE.get((rt.group, rt.kind))
    causes = prepare(obj) if prepare else []
    if (rt.group, rt.kind) == ("", "Service"):
        _allocate_cluster_ip(obj, allocate_ip)
    return causes


def prepare_update(rt: ResourceType, old: Obj, new: Obj) -> list[Cause]:
    prepare = _UPDATE.get((rt.group, rt.kind))
    return prepare(old, new) if prepare else []


# ---- core/v1


def _secret(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    string_data = obj.pop("stringData", None) or {}
    data = obj.get("data") or {}
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except ValueError:
            causes.append(
                Cause(
                    f"data[{key}]",
                    'Invalid value: "<secret contents redacted>": illegal base64 data',
                )
            )
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    if data:
        obj["data"] = data
    obj.setdefault("type", "Opaque")
    return causes


def _secret_update(old: Obj, new: Obj) -> list[Cause]:
    causes = _secret(new)
    if old.get("type", "Opaque") != new.get("type"):
        causes.append(Cause("type", "Invalid value: field is immutable"))
    if old.get("immutable") and (old.get("data") != new.get("data")):
        causes.append(Cause("data", "Forbidden: field is immutable when `immutable` is set"))
    return causes


def _configmap_update(old: Obj, new: Obj) -> list[Cause]:
    if old.get("immutable") and (
        old.get("data") != new.get("data") or old.get("binaryData") != new.get("binaryData")
    ):
        return [Cause("data", "Forbidden: field is immutable when `immutable` is set")]
    return []


def _namespace(obj: Obj) -> list[Cause]:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj["status"] = {"phase": "Active"}
    labels = obj["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")
    return []


def _namespace_update(old: Obj, new: Obj) -> list[Cause]:
    new["spec"] = copy.deepcopy(old.get("spec", {}))
    new.setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/metadata.name"] = old[
        "metadata"
    ]["name"]
    return []


def _pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    if "serviceAccountName" not in spec:
        spec["serviceAccountName"] = spec.get("serviceAccount", "default")
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or ():
            if isinstance(container, dict):
                _container(container)


def _container(container: Obj) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    image = str(container.get("image", ""))
    tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
    latest = not tagged or image.endswith(":latest")
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("resources", {})
    for port in container.get("ports") or ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def _require_containers(spec: Obj, path: str) -> list[Cause]:
    containers = spec.get("containers")
    if not containers:
        return [Cause(f"{path}.containers", "Required value", "FieldValueRequired")]
    causes = []
    for i, container in enumerate(containers):
        if not isinstance(container, dict):
            continue
        for required in ("name", "image"):
            if not container.get(required):
                causes.append(
                    Cause(
                        f"{path}.containers[{i}].{required}", "Required value", "FieldValueRequired"
                    )
                )
    return causes


def _pod(obj: Obj) -> list[Cause]:
    spec = obj.setdefault("spec", {})
    causes = _require_containers(spec, "spec")
    _pod_spec(spec)
    obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    return causes


def _pod_update(old: Obj, new: Obj) -> list[Cause]:
    # A pod's spec is immutable but for images, activeDeadlineSeconds and tolerations.
    old_spec, new_spec = copy.deepcopy(old.get("spec", {})), copy.deepcopy(new.get("spec", {}))
    for spec in (old_spec, new_spec):
        spec.pop("activeDeadlineSeconds", None)
        spec.pop("tolerations", None)
        for group in ("initContainers", "containers"):
            for container in spec.get(group) or ():
                if isinstance(container, dict):
                    container.pop("image", None)
    _pod_spec(new_spec)
    if old.get("spec", {}).get("nodeName") and old_spec != new_spec:
        return [
            Cause(
                "spec",
                "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations`",
                "FieldValueForbidden",
            )
        ]
    _pod_spec(new.setdefault("spec", {}))
    return []


def _service(obj: Obj) -> list[Cause]:
    _service_spec(obj.setdefault("spec", {}))
    obj["status"] = {"loadBalancer": {}}
    return []


def _service_spec(spec: Obj) -> None:
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))


def _service_update(old: Obj, new: Obj) -> list[Cause]:
    spec = new.setdefault("spec", {})
    old_spec = old.get("spec", {})
    for field in ("clusterIP", "clusterIPs"):
        if field in old_spec:
            spec.setdefault(field, old_spec[field])
    if spec.get("clusterIP") != old_spec.get("clusterIP"):
        return [Cause("spec.clusterIP", "Invalid value: field is immutable")]
    _service_spec(spec)
    return []


def _allocate_cluster_ip(obj: Obj, allocate_ip: Callable[[], str]) -> None:
    spec = obj["spec"]
    if spec.get("clusterIP") == "None":
        spec["clusterIPs"] = ["None"]
        return
    if not spec.get("clusterIP"):
        spec["clusterIP"] = allocate_ip()
    spec["clusterIPs"] = [spec["clusterIP"]]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")


def cluster_ip(index: int) -> str:
    """The index-th address of the service range 10.96.0.0/12 (skipping .0 and .1)."""
    return str(ipaddress.IPv4Address("10.96.0.0") + 2 + index)


# ---- batch/v1, apps/v1


def _job(obj: Obj) -> list[Cause]:
    spec = obj.setdefault("spec", {})
    template = spec.setdefault("template", {})
    causes = _require_containers(template.setdefault("spec", {}), "spec.template.spec")
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    uid = obj["metadata"]["uid"]
    name = obj["metadata"].get("name", "")
    if not spec.get("manualSelector"):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": uid,
                "controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "job-name": name,
            }
        )
    restart = template["spec"].get("restartPolicy")
    if restart not in ("Never", "OnFailure"):
        causes.append(
            Cause(
                "spec.template.spec.restartPolicy",
                f'Unsupported value: "{restart or "Always"}": supported values: "OnFailure", "Never"',
                "FieldValueNotSupported",
            )
        )
    _pod_spec(template["spec"])
    return causes


def _job_update(old: Obj, new: Obj) -> list[Cause]:
    new_spec = new.setdefault("spec", {})
    old_spec = old.get("spec", {})
    for immutable in ("selector", "completions", "completionMode"):
        if immutable in old_spec:
            new_spec.setdefault(immutable, old_spec[immutable])
    template = new_spec.get("template", {})
    _pod_spec(template.setdefault("spec", {}))
    if template != old_spec.get("template") and not old_spec.get("suspend"):
        return [Cause("spec.template", "Invalid value: field is immutable")]
    return []


def _deployment(obj: Obj) -> list[Cause]:
    spec = obj.setdefault("spec", {})
    template = spec.setdefault("template", {})
    causes = _require_containers(template.setdefault("spec", {}), "spec.template.spec")
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy.setdefault("type", "RollingUpdate")
        strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})
    if "selector" not in spec:
        causes.append(Cause("spec.selector", "Required value", "FieldValueRequired"))
    _pod_spec(template["spec"])
    return causes


def _deployment_update(old: Obj, new: Obj) -> list[Cause]:
    causes = _deployment(new)
    if new.get("spec", {}).get("selector") != old.get("spec", {}).get("selector"):
        causes.append(Cause("spec.selector", "Invalid value: field is immutable"))
    return causes


def _stateful_set(obj: Obj) -> list[Cause]:
    spec = obj.setdefault("spec", {})
    template = spec.setdefault("template", {})
    causes = _require_containers(template.setdefault("spec", {}), "spec.template.spec")
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy.setdefault("type", "RollingUpdate")
        strategy.setdefault("rollingUpdate", {"partition": 0})
    spec.setdefault(
        "persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"}
    )
    if "selector" not in spec:
        causes.append(Cause("spec.selector", "Required value", "FieldValueRequired"))
    _pod_spec(template["spec"])
    return causes


# What a StatefulSet update may change; everything else in its spec is fixed at creation.
_STATEFUL_SET_MUTABLE = {
    "replicas",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
    "ordinals",
    "revisionHistoryLimit",
}


def _stateful_set_update(old: Obj, new: Obj) -> list[Cause]:
    causes = _stateful_set(new)
    old_spec, new_spec = old.get("spec", {}), new.get("spec", {})
    fixed = (set(old_spec) | set(new_spec)) - _STATEFUL_SET_MUTABLE
    if any(old_spec.get(key) != new_spec.get(key) for key in fixed):
        causes.append(
            Cause(
                "spec",
                "Forbidden: updates to statefulset spec for fields other than 'replicas', "
                "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
                "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            )
        )
    return causes


_CREATE: dict[tuple[str, str], Callable[[Obj], list[Cause]]] = {
    ("", "Secret"): _secret,
    ("", "Namespace"): _namespace,
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("batch", "Job"): _job,
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _stateful_set,
}

_UPDATE: dict[tuple[str, str], Callable[[Obj, Obj], list[Cause]]] = {
    ("", "Secret"): _secret_update,
    ("", "ConfigMap"): _configmap_update,
    ("", "Namespace"): _namespace_update,
    ("", "Pod"): _pod_update,
    ("", "Service"): _service_update,
    ("batch", "Job"): _job_update,
    ("apps", "Deployment"): _deployment_update,
    ("apps", "StatefulSet"): _stateful_set_update,
}
