"""CustomResourceDefinitions generated from the pydantic models.

The pydantic JSON schema of each kind is turned into a structural OpenAPI v3 schema:
every `$ref` inlined, no `null` types (optional fields are simply not required), no
titles, enums/defaults/required/patterns kept, descriptions from the docstrings.

    python -m api.v1alpha1.crdgen manifests/crds            # write one YAML per kind
    python -m api.v1alpha1.crdgen --check manifests/crds    # exit 1 listing stale files
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .agentrun import AgentRun
from .common import GROUP, VERSION, _Resource
from .config import SympoziumConfig
from .instance import SympoziumInstance
from .mcpserver import MCPServer
from .personapack import PersonaPack
from .policy import SympoziumPolicy
from .schedule import SympoziumSchedule
from .skillpack import SkillPack

CATEGORIES = ["sympozium"]

_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"
# Keywords a structural schema may carry; anything else pydantic emits is dropped.
_KEPT = {
    "type",
    "description",
    "properties",
    "additionalProperties",
    "items",
    "required",
    "enum",
    "default",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "format",
    "anyOf",
}

_API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. "
    "Servers should convert recognized schemas to the latest internal value, and may "
    "reject unrecognized values."
)
_KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. "
    "Servers may infer this from the endpoint the client submits requests to. In CamelCase."
)


@dataclass(frozen=True)
class Column:
    """An additionalPrinterColumn."""

    name: str
    json_path: str
    type: str = "string"

    def to_obj(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "jsonPath": self.json_path}


AGE = Column("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class KindInfo:
    """Naming, printing and top-level requirements of one kind."""

    model: type[_Resource]
    plural: str
    short_names: tuple[str, ...]
    columns: tuple[Column, ...]
    spec_required: bool = False

    @property
    def kind(self) -> str:
        return self.model.KIND

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def file_name(self) -> str:
        return f"{GROUP}_{self.plural}.yaml"


_PHASE = Column("Phase", ".status.phase")

KIND_INFOS: tuple[KindInfo, ...] = (
    KindInfo(
        AgentRun,
        "agentruns",
        ("ar",),
        (
            Column("Instance", ".spec.instanceRef"),
            _PHASE,
            Column("Pod", ".status.podName"),
            AGE,
        ),
    ),
    KindInfo(
        SympoziumInstance,
        "sympoziuminstances",
        ("si",),
        (
            _PHASE,
            Column("Active Agents", ".status.activeAgentPods", "integer"),
            Column("Total Runs", ".status.totalAgentRuns", "integer"),
            AGE,
        ),
    ),
    KindInfo(
        PersonaPack,
        "personapacks",
        ("pp",),
        (
            Column("Enabled", ".spec.enabled", "boolean"),
            Column("Personas", ".status.personaCount", "integer"),
            Column("Installed", ".status.installedCount", "integer"),
            _PHASE,
            AGE,
        ),
    ),
    KindInfo(
        SkillPack,
        "skillpacks",
        ("skp",),
        (
            Column("Skills", ".status.skillCount", "integer"),
            Column("ConfigMap", ".status.configMapName"),
            AGE,
        ),
    ),
    KindInfo(
        SympoziumPolicy,
        "sympoziumpolicies",
        ("spol",),
        (Column("Bound", ".status.boundInstances", "integer"), AGE),
    ),
    KindInfo(
        SympoziumSchedule,
        "sympoziumschedules",
        ("ssch",),
        (
            Column("Instance", ".spec.instanceRef"),
            Column("Schedule", ".spec.schedule"),
            Column("Type", ".spec.type"),
            _PHASE,
            Column("Last Run", ".status.lastRunTime", "date"),
            AGE,
        ),
    ),
    KindInfo(
        MCPServer,
        "mcpservers",
        ("mcps",),
        (
            Column("Transport", ".spec.transportType"),
            Column("Ready", ".status.ready", "boolean"),
            Column("URL", ".status.url"),
            Column("Tools", ".status.toolCount", "integer"),
            AGE,
        ),
        spec_required=True,
    ),
    KindInfo(
        SympoziumConfig,
        "sympoziumconfigs",
        ("scfg",),
        (
            Column("Gateway", ".spec.gateway.enabled", "boolean"),
            Column("Domain", ".spec.gateway.baseDomain"),
            _PHASE,
            AGE,
        ),
    ),
)


class SchemaError(ValueError):
    """The pydantic schema uses a construct that has no structural equivalent."""


def _resolve(node: Any, defs: dict[str, Any], path: str) -> Any:
    """Inline every $ref and turn pydantic's JSON schema into a structural one."""
    if isinstance(node, list):
        return [_resolve(item, defs, path) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref is not None:
        target = defs[ref.rsplit("/", 1)[-1]]
        # The field's own description wins over the model's docstring.
        node = {**target, **node}
    all_of = node.pop("allOf", None)
    if all_of is not None:
        if len(all_of) != 1:
            raise SchemaError(f"{path}: allOf with several branches is not supported")
        node = {**_resolve(all_of[0], defs, path), **node}
        return _resolve(node, defs, path)
    if ref is not None:
        return _resolve(node, defs, path)

    if node.get(_PRESERVE) and not node.get("type"):
        # A field of several shapes (e.g. spec.task): kept as-is, checked by the models.
        node.pop("anyOf", None)
        node.pop("default", None)
    any_of = node.get("anyOf")
    if any_of is not None:
        branches = [b for b in any_of if b.get("type") != "null"]
        if node.get(_INT_OR_STRING):
            node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        elif len(branches) == 1:
            del node["anyOf"]
            node = {**_resolve(branches[0], defs, path), **node}
            return _resolve(node, defs, path)
        else:
            raise SchemaError(f"{path}: a union of {len(branches)} types is not structural")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "default" in node and node["default"] is None:
        del node["default"]

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value
        elif key not in _KEPT:
            continue
        elif key == "properties":
            out[key] = {
                name: _resolve(prop, defs, f"{path}.{name}") for name, prop in value.items()
            }
        elif key == "items":
            out[key] = _resolve(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if value is True:
                out[_PRESERVE] = True
            elif value is not False:
                out[key] = _resolve(value, defs, f"{path}{{}}")
        elif key == "required":
            if value:
                out[key] = list(value)
        else:
            out[key] = value
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        out.setdefault(_PRESERVE, True)
    return out


def _order(schema: dict[str, Any]) -> dict[str, Any]:
    """Keys in a stable, readable order: description and type first."""
    first = ("description", "type", "format", "enum", "default", "pattern", "minLength")
    ordered = {k: schema[k] for k in first if k in schema}
    ordered.update({k: v for k, v in sorted(schema.items()) if k not in ordered})
    for key in ("properties",):
        if key in ordered:
            ordered[key] = {name: _order(sub) for name, sub in sorted(ordered[key].items())}
    for key in ("items", "additionalProperties"):
        if isinstance(ordered.get(key), dict):
            ordered[key] = _order(ordered[key])
    return ordered


def openapi_schema(info: KindInfo) -> dict[str, Any]:
    """The structural openAPIV3Schema of one kind."""
    raw = info.model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    props = raw["properties"]
    spec = _resolve(props["spec"], defs, "spec")
    status = _resolve(props["status"], defs, "status")
    schema: dict[str, Any] = {
        "description": raw.get("description", ""),
        "type": "object",
        "properties": {
            "apiVersion": {"description": _API_VERSION_DOC, "type": "string"},
            "kind": {"description": _KIND_DOC, "type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if info.spec_required:
        schema["required"] = ["spec"]
    return _order(schema)


def crd(info: KindInfo) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": info.crd_name},
        "spec": {
            "group": GROUP,
            "names": {
                "categories": list(CATEGORIES),
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "shortNames": list(info.short_names),
                "singular": info.singular,
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": [c.to_obj() for c in info.columns],
                    "schema": {"openAPIV3Schema": openapi_schema(info)},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line strings as literal blocks."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def render(info: KindInfo) -> str:
    """The YAML text of one CRD file."""
    body = yaml.dump(crd(info), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return f"# Generated by `python -m api.v1alpha1.crdgen`; do not edit.\n---\n{body}"


def generate() -> dict[str, str]:
    """File name → YAML text, for every kind."""
    return {info.file_name: render(info) for info in KIND_INFOS}


def stale_files(directory: Path) -> list[str]:
    """Files in `directory` that differ from (or are missing compared to) the models."""
    stale = []
    for name, text in generate().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(str(path))
    return stale


def write(directory: Path) -> list[Path]:
    """Write every CRD file; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m api.v1alpha1.crdgen", description="Generate the sympozium.ai CRDs."
    )
    parser.add_argument("directory", type=Path, help="output directory, e.g. manifests/crds")
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 listing differing files"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.directory)
        for path in stale:
            print(f"stale: {path}", file=sys.stderr)
        if stale:
            print("run `make manifests` to regenerate", file=sys.stderr)
            return 1
        return 0
    for written in write(args.directory):
        print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
