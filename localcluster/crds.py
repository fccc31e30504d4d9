"""CustomResourceDefinition rules: what makes a CRD acceptable, and the status it gets.

A CRD is Established as soon as it is written (there is no separate controller to wait
for on one machine), so `kubectl wait --for=condition=Established` returns at once.
"""

from __future__ import annotations

import re
from typing import Any

from localcluster.errors import Cause

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def validate(crd: dict[str, Any]) -> list[Cause]:
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "Required value", "FieldValueRequired")]
    causes: list[Cause] = []
    group = spec.get("group")
    names: dict[str, Any] = spec["names"] if isinstance(spec.get("names"), dict) else {}
    if not group:
        causes.append(Cause("spec.group", "Required value", "FieldValueRequired"))
    elif "." not in str(group):
        causes.append(
            Cause(
                "spec.group", f'Invalid value: "{group}": should be a domain with at least one dot'
            )
        )
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append(Cause(f"spec.names.{field}", "Required value", "FieldValueRequired"))
    plural = names.get("plural")
    if plural and not _DNS_LABEL.match(str(plural)):
        causes.append(
            Cause(
                "spec.names.plural",
                f"Invalid value: \"{plural}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            )
        )
    if plural and group and crd.get("metadata", {}).get("name") != f"{plural}.{group}":
        causes.append(
            Cause(
                "metadata.name",
                f'Invalid value: "{crd.get("metadata", {}).get("name")}": must be spec.names.plural+"."+spec.group',
            )
        )
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        causes.append(
            Cause(
                "spec.scope",
                f'Unsupported value: "{scope or ""}": supported values: "Cluster", "Namespaced"',
                "FieldValueNotSupported",
            )
        )
    causes.extend(_validate_versions(spec.get("versions")))
    return causes


def _validate_versions(versions: Any) -> list[Cause]:
    if not isinstance(versions, list) or not versions:
        return [
            Cause(
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
            )
        ]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        if not isinstance(version, dict) or not version.get("name"):
            causes.append(Cause(f"spec.versions[{i}].name", "Required value", "FieldValueRequired"))
            continue
        if version["name"] in seen:
            causes.append(
                Cause(
                    f"spec.versions[{i}].name",
                    f'Duplicate value: "{version["name"]}"',
                    "FieldValueDuplicate",
                )
            )
        seen.add(version["name"])
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            causes.append(
                Cause(
                    f"spec.versions[{i}].schema.openAPIV3Schema",
                    "Required value: schemas are required",
                    "FieldValueRequired",
                )
            )
        elif schema.get("type") != "object":
            causes.append(
                Cause(
                    f"spec.versions[{i}].schema.openAPIV3Schema.type",
                    f'Unsupported value: "{schema.get("type", "")}": supported values: "object"',
                    "FieldValueNotSupported",
                )
            )
    storage = [v for v in versions if isinstance(v, dict) and v.get("storage")]
    if len(storage) != 1:
        causes.append(
            Cause(
                "spec.versions",
                f"Invalid value: must have exactly one version marked as storage version, found {len(storage)}",
            )
        )
    return causes


def set_status(crd: dict[str, Any], now: str, old: dict[str, Any] | None = None) -> None:
    """Marks the CRD accepted and established, keeping transition times that did not change."""
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    spec["names"] = names
    previous = {c["type"]: c for c in ((old or {}).get("status") or {}).get("conditions", [])}
    storage = [v["name"] for v in spec["versions"] if v.get("storage")]
    stored = list(((old or {}).get("status") or {}).get("storedVersions") or [])
    for version in storage:
        if version not in stored:
            stored.append(version)
    crd["status"] = {
        "acceptedNames": names,
        "conditions": [
            _condition(previous, "NamesAccepted", "NoConflicts", "no conflicts found", now),
            _condition(
                previous,
                "Established",
                "InitialNamesAccepted",
                "the initial names have been accepted",
                now,
            ),
        ],
        "storedVersions": stored,
    }


def _condition(
    previous: dict[str, Any], kind: str, reason: str, message: str, now: str
) -> dict[str, Any]:
    old = previous.get(kind)
    since = old["lastTransitionTime"] if old and old.get("status") == "True" else now
    return {
        "type": kind,
        "status": "True",
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }
