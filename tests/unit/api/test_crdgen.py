"""CRD generation: structural schemas, defaults that match the models, no drift."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any, Union

import pytest
import yaml
from pydantic import BaseModel

from api.v1alpha1 import DURATION_PATTERN, KINDS
from api.v1alpha1.common import _Resource
from api.v1alpha1.crdgen import KIND_INFOS, KindInfo, crd, generate, main, stale_files

REPO = Path(__file__).resolve().parents[3]
CRD_DIR = REPO / "manifests" / "crds"
INFO = {info.kind: info for info in KIND_INFOS}
_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"


def schema_of(kind: str) -> dict[str, Any]:
    version = crd(INFO[kind])["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def walk(schema: dict[str, Any], path: str = "") -> typing.Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def test_committed_crds_match_the_models() -> None:
    """Fails when a model changed without `make manifests`."""
    assert stale_files(CRD_DIR) == []
    committed = sorted(p.name for p in CRD_DIR.glob("sympozium.ai_*.yaml"))
    assert committed == sorted(generate())


def test_check_mode_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 0
    assert main(["--check", str(tmp_path)]) == 0
    target = tmp_path / "sympozium.ai_agentruns.yaml"
    target.write_text(target.read_text() + "# edited\n")
    (tmp_path / "sympozium.ai_mcpservers.yaml").unlink()
    capsys.readouterr()
    assert main(["--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "sympozium.ai_agentruns.yaml" in err and "sympozium.ai_mcpservers.yaml" in err
    assert "sympozium.ai_skillpacks.yaml" not in err


def test_one_file_per_kind_and_it_parses() -> None:
    files = generate()
    assert sorted(files) == sorted(f"sympozium.ai_{info.plural}.yaml" for info in KIND_INFOS)
    for text in files.values():
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
        assert len(docs) == 1 and docs[0]["kind"] == "CustomResourceDefinition"
    assert {info.kind for info in KIND_INFOS} == {cls.KIND for cls in KINDS}


@pytest.mark.parametrize("info", KIND_INFOS, ids=lambda i: i.kind)
def test_names_scope_and_version(info: KindInfo) -> None:
    obj = crd(info)
    spec = obj["spec"]
    assert obj["apiVersion"] == "apiextensions.k8s.io/v1"
    assert obj["metadata"]["name"] == f"{info.plural}.sympozium.ai"
    assert spec["group"] == "sympozium.ai" and spec["scope"] == "Namespaced"
    names = spec["names"]
    assert names["kind"] == info.kind and names["listKind"] == f"{info.kind}List"
    assert names["singular"] == info.kind.lower() and names["plural"] == info.plural
    assert names["categories"] == ["sympozium"]
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    schema = version["schema"]["openAPIV3Schema"]
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert schema.get("required", []) == (["spec"] if info.kind == "MCPServer" else [])


def test_short_names_are_unique_and_avoid_builtin_kinds() -> None:
    builtin = {
        "cm", "cs", "csr", "ds", "deploy", "ep", "ev", "hpa", "ing", "limits", "netpol", "no",
        "ns", "pdb", "po", "psp", "pv", "pvc", "quota", "rc", "rs", "sa", "sc", "sts", "svc",
        "crd", "crds", "pc", "ingclass", "csinode",
    }  # fmt: skip
    shorts = [s for info in KIND_INFOS for s in info.short_names]
    assert len(shorts) == len(set(shorts))
    assert not set(shorts) & builtin
    assert {info.kind: info.short_names for info in KIND_INFOS} == {
        "AgentRun": ("ar",),
        "SympoziumInstance": ("si",),
        "PersonaPack": ("pp",),
        "SkillPack": ("skp",),
        "SympoziumPolicy": ("spol",),
        "SympoziumSchedule": ("ssch",),
        "MCPServer": ("mcps",),
        "SympoziumConfig": ("scfg",),
    }


EXPECTED_COLUMNS = {
    "AgentRun": [
        ("Instance", ".spec.instanceRef"),
        ("Phase", ".status.phase"),
        ("Pod", ".status.podName"),
    ],
    "SympoziumInstance": [
        ("Phase", ".status.phase"),
        ("Active Agents", ".status.activeAgentPods"),
        ("Total Runs", ".status.totalAgentRuns"),
    ],
    "PersonaPack": [
        ("Enabled", ".spec.enabled"),
        ("Personas", ".status.personaCount"),
        ("Installed", ".status.installedCount"),
        ("Phase", ".status.phase"),
    ],
    "SkillPack": [("Skills", ".status.skillCount"), ("ConfigMap", ".status.configMapName")],
    "SympoziumPolicy": [("Bound", ".status.boundInstances")],
    "SympoziumSchedule": [
        ("Instance", ".spec.instanceRef"),
        ("Schedule", ".spec.schedule"),
        ("Type", ".spec.type"),
        ("Phase", ".status.phase"),
        ("Last Run", ".status.lastRunTime"),
    ],
    "MCPServer": [
        ("Transport", ".spec.transportType"),
        ("Ready", ".status.ready"),
        ("URL", ".status.url"),
        ("Tools", ".status.toolCount"),
    ],
    "SympoziumConfig": [
        ("Gateway", ".spec.gateway.enabled"),
        ("Domain", ".spec.gateway.baseDomain"),
        ("Phase", ".status.phase"),
    ],
}


@pytest.mark.parametrize("kind", sorted(EXPECTED_COLUMNS))
def test_printer_columns(kind: str) -> None:
    columns = crd(INFO[kind])["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["jsonPath"]) for c in columns] == [
        *EXPECTED_COLUMNS[kind],
        ("Age", ".metadata.creationTimestamp"),
    ]
    assert columns[-1]["type"] == "date"
    schema = schema_of(kind)
    nodes = dict(walk(schema))
    for column in columns[:-1]:
        node = nodes[column["jsonPath"]]
        expected = {
            "string": "string",
            "integer": "integer",
            "boolean": "boolean",
            "date": "string",
        }
        assert node["type"] == expected[column["type"]], column


@pytest.mark.parametrize("kind", sorted(INFO))
def test_schema_is_structural(kind: str) -> None:
    """The rules of apiextensions' structural schema check, as far as our generator goes."""
    allowed = {
        "type", "description", "properties", "additionalProperties", "items", "required",
        "enum", "default", "pattern", "minLength", "maxLength", "minimum", "maximum",
        "minItems", "maxItems", "format", "anyOf", "nullable",
    }  # fmt: skip
    for path, node in walk(schema_of(kind)):
        extra = {k for k in node if not k.startswith("x-kubernetes-")} - allowed
        assert not extra, f"{path}: {extra}"
        if node.get(_INT_OR_STRING):
            assert node.get("anyOf") == [{"type": "integer"}, {"type": "string"}], path
            assert "type" not in node, path
        else:
            assert "anyOf" not in node, path
            assert node.get("type") or node.get(_PRESERVE), f"{path} has no type"
        assert node.get("type") in {
            None,
            "object",
            "array",
            "string",
            "integer",
            "number",
            "boolean",
        }
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict), path
        if "properties" in node:
            assert "additionalProperties" not in node, path
        if "required" in node:
            assert set(node["required"]) <= set(node["properties"]), path
        if "x-kubernetes-validations" in node:
            assert node.get("type"), f"{path}: CEL rules need a typed schema"
        if path and path != ".metadata":
            assert node.get("description") or path.endswith(("[]", "{}")), (
                f"{path} has no description"
            )


def test_task_accepts_a_string_or_an_object() -> None:
    task = schema_of("AgentRun")["properties"]["spec"]["properties"]["task"]
    assert task[_PRESERVE] is True and "type" not in task
    assert "prompt" in task["description"] and "context" in task["description"]
    assert "task" in schema_of("AgentRun")["properties"]["spec"]["required"]


def test_patterns_formats_and_lengths() -> None:
    nodes = dict(walk(schema_of("AgentRun")))
    assert nodes[".spec.timeout"]["pattern"] == DURATION_PATTERN
    assert nodes[".status.startedAt"]["format"] == "date-time"
    assert nodes[".spec.cleanup"]["enum"] == ["delete", "keep"]
    assert nodes[".status.phase"]["enum"] == [
        "Pending",
        "Running",
        "Serving",
        "Succeeded",
        "Failed",
    ]
    assert nodes[".spec.model.baseURL"]["type"] == "string"
    assert nodes[".status.traceID"]["type"] == "string"
    instance = dict(walk(schema_of("SympoziumInstance")))
    assert instance[".spec.mcpServers[].name"]["minLength"] == 1
    assert instance[".spec.mcpServers[].toolsPrefix"]["minLength"] == 1
    assert instance[".spec.memory.maxSizeKB"]["type"] == "integer"
    assert instance[".spec.agents.default.model"]["type"] == "string"
    assert instance[".spec.agents"]["required"] == ["default"]
    assert instance[".spec.channels[].type"]["enum"] == ["telegram", "whatsapp", "discord", "slack"]
    mcp = dict(walk(schema_of("MCPServer")))
    assert mcp[".spec.toolsPrefix"]["minLength"] == 1
    assert mcp[".spec.deployment.image"]["minLength"] == 1
    assert mcp[".spec.deployment.secretRefs"]["x-kubernetes-list-type"] == "map"
    assert mcp[".spec.deployment.secretRefs"]["x-kubernetes-list-map-keys"] == ["name"]
    assert sorted(mcp[".spec"]["required"]) == ["toolsPrefix", "transportType"]
    schedule = dict(walk(schema_of("SympoziumSchedule")))
    assert schedule[".status.totalRuns"]["format"] == "int64"
    skill = dict(walk(schema_of("SkillPack")))
    assert ".spec.sidecar.clusterRBAC" in skill and ".spec.sidecar.hostAccess.hostPID" in skill
    assert ".spec.runtimeRequirements.minCPU" in skill
    policy = dict(walk(schema_of("SympoziumPolicy")))
    assert ".spec.networkPolicy.allowDNS" in policy and ".spec.sandboxPolicy.maxCPU" in policy
    assert policy[".spec.featureGates"]["additionalProperties"] == {"type": "boolean"}
    assert policy[".spec.toolGating.rules[].action"]["enum"] == ["allow", "deny", "ask"]
    resources = dict(walk(schema_of("AgentRun")))[".spec.sandbox.resources.limits{}"]
    assert resources[_INT_OR_STRING] is True


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside Optional[...] / list[...] / dict[str, ...], if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _container(annotation: Any) -> str:
    """ "[]" for lists, "{}" for dicts, "" otherwise (looking through Optional)."""
    origin = typing.get_origin(annotation)
    if origin is list:
        return "[]"
    if origin is dict:
        return "{}"
    if origin in (Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            kind = _container(arg)
            if kind:
                return kind
    return ""


def model_defaults(model: type[BaseModel], path: str = "") -> dict[str, Any]:
    """Path → explicit (non-None) default of every field reachable from `model`."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        alias = field.alias or name
        here = f"{path}.{alias}"
        if not field.is_required() and field.default_factory is None and field.default is not None:
            default = field.default
            out[here] = default.value if hasattr(default, "value") else default
        annotation = field.annotation
        container = _container(annotation)
        inner: Any = annotation
        if container:
            inner = next(
                (typing.get_args(a)[-1] for a in [annotation, *typing.get_args(annotation)]
                 if typing.get_origin(a) in (list, dict)),
                None,
            )  # fmt: skip
        sub = _model_of(inner)
        if sub is not None:
            out.update(model_defaults(sub, here + container))
    return out


@pytest.mark.parametrize("cls", KINDS, ids=lambda c: c.KIND)
def test_crd_defaults_equal_model_defaults(cls: type[_Resource]) -> None:
    schema = schema_of(cls.KIND)
    crd_defaults = {path: node["default"] for path, node in walk(schema) if "default" in node}
    expected = {
        path: value
        for path, value in model_defaults(cls).items()
        if path.startswith((".spec", ".status"))
    }
    assert crd_defaults == expected


def test_defaults_walk_finds_the_known_defaults() -> None:
    """Guard for the walk above: it must see nested and list-item defaults."""
    instance = {p: n["default"] for p, n in walk(schema_of("SympoziumInstance")) if "default" in n}
    assert instance[".spec.memory.maxSizeKB"] == 256
    assert instance[".spec.memory.enabled"] is True
    assert instance[".spec.mcpServers[].timeout"] == 30
    assert instance[".spec.mcpServers[].authKey"] == "token"
    assert instance[".spec.agents.default.agentSandbox.warmPool.size"] == 2
    assert instance[".spec.agents.default.subagents.maxChildrenPerAgent"] == 3
    assert instance[".spec.webEndpoint.rateLimit.requestsPerMinute"] == 60
    run = {p: n["default"] for p, n in walk(schema_of("AgentRun")) if "default" in n}
    assert run == {".spec.cleanup": "delete", ".spec.mode": "task"}
    assert model_defaults(KINDS[0])[".spec.mode"] == "task"
    policy = {p: n["default"] for p, n in walk(schema_of("SympoziumPolicy")) if "default" in n}
    assert policy[".spec.networkPolicy.denyAll"] is True
    assert policy[".spec.subagentPolicy.maxDepth"] == 3
    assert policy[".spec.toolGating.defaultAction"] == "allow"
    skill = {p: n["default"] for p, n in walk(schema_of("SkillPack")) if "default" in n}
    assert skill[".spec.sidecar.ports[].protocol"] == "TCP"
    assert skill[".spec.sidecar.hostAccess.mounts[].readOnly"] is True
    persona = {p: n["default"] for p, n in walk(schema_of("PersonaPack")) if "default" in n}
    assert persona[".spec.personas[].schedule.type"] == "heartbeat"


def test_duration_pattern_is_valid_re2_style() -> None:
    assert re.compile(DURATION_PATTERN)
    assert "(?" not in DURATION_PATTERN  # no lookarounds or inline flags: RE2 has none
