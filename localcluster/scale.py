"""The scale subresource: an `autoscaling/v1` Scale view onto an object's replica count.

For Deployments the paths are fixed; a CRD names them in `subresources.scale`. Only the
replica count is writable through it, so `kubectl scale` works for both.
"""

from __future__ import annotations

import copy
from typing import Any

from localcluster.errors import Cause
from localcluster.resources import ResourceType
from localcluster.selectors import LabelSelector

Obj = dict[str, Any]


def _read(obj: Obj, path: str) -> Any:
    node: Any = obj
    for part in path.strip(".").split("."):
        if not part or not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _write(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    node = obj
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _selector_text(rt: ResourceType, obj: Obj) -> str:
    if not rt.custom:
        selector = (obj.get("spec") or {}).get("selector")
        return str(LabelSelector.from_dict(selector)) if isinstance(selector, dict) else ""
    path = rt.scale_paths[2]
    value = _read(obj, path) if path else None
    return value if isinstance(value, str) else ""


def to_scale(rt: ResourceType, obj: Obj) -> Obj:
    meta = obj["metadata"]
    spec_path, status_path, _ = rt.scale_paths
    status: Obj = {"replicas": _read(obj, status_path) or 0}
    selector = _selector_text(rt, obj)
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            key: meta[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in meta
        },
        "spec": {"replicas": _read(obj, spec_path) or 0},
        "status": status,
    }


def apply_scale(rt: ResourceType, obj: Obj, scale: Obj) -> tuple[Obj, list[Cause]]:
    """The object with the Scale's replica count written in, or the field errors."""
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        return obj, [
            Cause(
                "spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0"
            )
        ]
    updated = copy.deepcopy(obj)
    _write(updated, rt.scale_paths[0], replicas)
    version = (scale.get("metadata") or {}).get("resourceVersion")
    if version:
        updated["metadata"]["resourceVersion"] = version
    else:
        updated["metadata"].pop("resourceVersion", None)
    return updated, []
