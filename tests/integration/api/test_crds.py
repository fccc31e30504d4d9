"""The generated CRDs installed on the local cluster, driven with the real kubectl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.v1alpha1 import KINDS, AgentRun, TaskSpec
from api.v1alpha1.common import _Resource
from api.v1alpha1.crdgen import KIND_INFOS
from tests.integration.conftest import Kubectl, RunningCluster
from tests.unit.api.samples import full, minimal

REPO = Path(__file__).resolve().parents[3]
CRD_DIR = REPO / "manifests" / "crds"
CRD_FILES = [arg for info in KIND_INFOS for arg in ("-f", str(CRD_DIR / info.file_name))]
BY_KIND: dict[str, type[_Resource]] = {cls.KIND: cls for cls in KINDS}
PLURAL = {info.kind: info.plural for info in KIND_INFOS}


@pytest.fixture(scope="module")
def crds(cluster: RunningCluster, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Install (or re-install: apply is idempotent) the CRDs and wait until they serve."""
    kubectl = Kubectl(cluster, tmp_path_factory.mktemp("crds") / "kubectl-cache")
    kubectl("apply", "--server-side", "--field-manager=sympozium-tests", *CRD_FILES)
    names = [f"crd/{info.crd_name}" for info in KIND_INFOS]
    kubectl("wait", "--for=condition=Established", *names, "--timeout=30s")


def apply(kubectl: Kubectl, namespace: str, obj: dict[str, Any], check: bool = True) -> Any:
    return kubectl(
        "apply", "--server-side", "-n", namespace, "-f", "-", stdin=json.dumps(obj), check=check
    )


def get(kubectl: Kubectl, namespace: str, kind: str, name: str) -> dict[str, Any]:
    out = kubectl("get", "-n", namespace, f"{PLURAL[kind]}.sympozium.ai", name, "-o", "json")
    loaded: dict[str, Any] = json.loads(out.stdout)
    return loaded


def test_installing_twice_is_harmless(kubectl: Kubectl, crds: None) -> None:
    out = kubectl("apply", "--server-side", "--field-manager=sympozium-tests", *CRD_FILES)
    assert out.stdout.count("serverside-applied") == len(KIND_INFOS)
    listed = kubectl("get", "crd", "-o", "name").stdout.split()
    for info in KIND_INFOS:
        assert f"customresourcedefinition.apiextensions.k8s.io/{info.crd_name}" in listed


EXPECTED_DEFAULTS: dict[str, dict[str, Any]] = {
    "AgentRun": {"cleanup": "delete", "mode": "task"},
    "SympoziumSchedule": {
        "type": "scheduled",
        "concurrencyPolicy": "Forbid",
        "includeMemory": True,
    },
    "MCPServer": {"timeout": 30, "replicas": 1},
}


@pytest.mark.parametrize("kind", [cls.KIND for cls in KINDS])
def test_minimal_object_is_accepted_and_defaulted_by_the_server(
    kubectl: Kubectl, crds: None, namespace: str, kind: str
) -> None:
    source = minimal(kind)
    apply(kubectl, namespace, source)
    stored = get(kubectl, namespace, kind, source["metadata"]["name"])
    for key, value in EXPECTED_DEFAULTS.get(kind, {}).items():
        assert stored["spec"][key] == value, key
    model = BY_KIND[kind].from_obj(stored)
    assert model.metadata.uid and model.metadata.namespace == namespace
    assert model.metadata.creation_timestamp is not None


@pytest.mark.parametrize("kind", [cls.KIND for cls in KINDS])
def test_full_object_is_stored_unchanged(
    kubectl: Kubectl, crds: None, namespace: str, kind: str
) -> None:
    source = full(kind)
    del source["status"]
    apply(kubectl, namespace, source)
    stored = get(kubectl, namespace, kind, source["metadata"]["name"])
    assert stored["spec"] == source["spec"]


def test_nested_defaults_are_filled_in(kubectl: Kubectl, crds: None, namespace: str) -> None:
    instance = minimal("SympoziumInstance")
    instance["spec"].update(
        {
            "memory": {},
            "mcpServers": [{"name": "gh", "toolsPrefix": "gh"}],
            "agents": {"default": {"model": "m", "subagents": {}}},
        }
    )
    apply(kubectl, namespace, instance)
    spec = get(kubectl, namespace, "SympoziumInstance", "alice")["spec"]
    assert spec["memory"] == {"enabled": True, "maxSizeKB": 256}
    assert spec["mcpServers"][0]["timeout"] == 30 and spec["mcpServers"][0]["authKey"] == "token"
    assert spec["agents"]["default"]["subagents"] == {
        "maxDepth": 2,
        "maxConcurrent": 5,
        "maxChildrenPerAgent": 3,
    }
    policy = minimal("SympoziumPolicy")
    policy["spec"] = {"networkPolicy": {}, "toolGating": {}, "subagentPolicy": {}}
    apply(kubectl, namespace, policy)
    spec = get(kubectl, namespace, "SympoziumPolicy", "permissive")["spec"]
    assert spec["networkPolicy"] == {"denyAll": True, "allowDNS": True, "allowEventBus": True}
    assert spec["toolGating"] == {"defaultAction": "allow"}
    assert spec["subagentPolicy"] == {"maxDepth": 3, "maxConcurrent": 5}


def test_explicit_false_is_not_overwritten_by_defaults(
    kubectl: Kubectl, crds: None, namespace: str
) -> None:
    schedule = minimal("SympoziumSchedule")
    schedule["spec"]["includeMemory"] = False
    apply(kubectl, namespace, schedule)
    assert get(kubectl, namespace, "SympoziumSchedule", "hourly")["spec"]["includeMemory"] is False


@pytest.mark.parametrize(
    "task", ["plain task", {"prompt": "fix it"}, {"prompt": "fix it", "context": "issue 12"}]
)
def test_both_task_forms_are_accepted_and_preserved(
    kubectl: Kubectl, crds: None, namespace: str, task: str | dict[str, str]
) -> None:
    run = minimal("AgentRun")
    run["spec"]["task"] = task
    apply(kubectl, namespace, run)
    stored = get(kubectl, namespace, "AgentRun", "run-1")
    assert stored["spec"]["task"] == task
    model = AgentRun.from_obj(stored)
    assert isinstance(model.spec.task, str if isinstance(task, str) else TaskSpec)
    assert model.spec.task_text.startswith("plain task" if isinstance(task, str) else "fix it")


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    for key in keys[:-1]:
        obj = obj.setdefault(key, {})
    if value is _DELETE:
        del obj[keys[-1]]
    else:
        obj[keys[-1]] = value


_DELETE = object()

INVALID = [
    ("AgentRun", "spec.instanceRef", _DELETE, "spec.instanceRef"),
    ("AgentRun", "spec.task", _DELETE, "spec.task"),
    ("AgentRun", "spec.model.provider", _DELETE, "spec.model.provider"),
    ("AgentRun", "spec.mode", "daemon", "spec.mode"),
    ("AgentRun", "spec.cleanup", "OnFailure", "spec.cleanup"),
    ("AgentRun", "spec.model.thinking", "max", "spec.model.thinking"),
    ("AgentRun", "spec.timeout", "ten minutes", "spec.timeout"),
    ("AgentRun", "spec.timeout", "10", "spec.timeout"),
    ("AgentRun", "spec.env", ["A=1"], "spec.env"),
    ("AgentRun", "spec.parent", {"runName": "p", "sessionKey": "s", "spawnDepth": "one"}, "spec.parent.spawnDepth"),
    ("SympoziumInstance", "spec.agents", _DELETE, "spec.agents"),
    ("SympoziumInstance", "spec.channels", [{"type": "irc"}], "spec.channels[0].type"),
    ("SympoziumInstance", "spec.memory", {"maxSizeKB": "big"}, "spec.memory.maxSizeKB"),
    ("SympoziumInstance", "spec.mcpServers", [{"name": "", "toolsPrefix": "x"}], "spec.mcpServers[0].name"),
    ("SympoziumSchedule", "spec.concurrencyPolicy", "Sometimes", "spec.concurrencyPolicy"),
    ("SympoziumSchedule", "spec.includeMemory", "yes", "spec.includeMemory"),
    ("SympoziumSchedule", "spec.schedule", _DELETE, "spec.schedule"),
    ("MCPServer", "spec", _DELETE, "spec"),
    ("MCPServer", "spec.transportType", "sse", "spec.transportType"),
    ("MCPServer", "spec.toolsPrefix", "", "spec.toolsPrefix"),
    ("PersonaPack", "spec.personas", [{"name": "x"}], "spec.personas[0].systemPrompt"),
    ("SkillPack", "spec.sidecar", {"mountWorkspace": False}, "spec.sidecar.image"),
    ("SympoziumPolicy", "spec.toolGating", {"rules": [{"tool": "t", "action": "maybe"}]}, "spec.toolGating.rules[0].action"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "path", "value", "field"), INVALID, ids=[f"{k}:{p}" for k, p, _, _ in INVALID]
)
def test_invalid_object_is_rejected_naming_the_field(
    kubectl: Kubectl, crds: None, namespace: str, kind: str, path: str, value: Any, field: str
) -> None:
    obj = minimal(kind)
    _set(obj, path, value)
    result = apply(kubectl, namespace, obj, check=False)
    assert result.returncode != 0, result.stdout
    assert field in result.stderr, result.stderr
    missing = kubectl("get", "-n", namespace, f"{PLURAL[kind]}.sympozium.ai", "-o", "name")
    assert missing.stdout.strip() == ""


def test_printer_columns_and_short_name(kubectl: Kubectl, crds: None, namespace: str) -> None:
    apply(kubectl, namespace, minimal("AgentRun"))
    kubectl(
        "patch",
        "-n",
        namespace,
        "ar",
        "run-1",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Running", "podName": "run-1-pod"}}),
    )
    lines = kubectl("get", "-n", namespace, "ar").stdout.splitlines()
    assert lines[0].split() == ["NAME", "INSTANCE", "PHASE", "POD", "AGE"]
    assert lines[1].split()[:4] == ["run-1", "alice", "Running", "run-1-pod"]


def test_status_subresource_is_validated(kubectl: Kubectl, crds: None, namespace: str) -> None:
    apply(kubectl, namespace, minimal("AgentRun"))
    bad = kubectl(
        "patch",
        "-n",
        namespace,
        "ar",
        "run-1",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Exploded"}}),
        check=False,
    )
    assert bad.returncode != 0 and "status.phase" in bad.stderr


def test_short_names_resolve(kubectl: Kubectl, crds: None, namespace: str) -> None:
    for info in KIND_INFOS:
        apply(kubectl, namespace, minimal(info.kind))
        out = kubectl("get", "-n", namespace, info.short_names[0], "-o", "name").stdout.split()
        assert out == [f"{info.singular}.sympozium.ai/{minimal(info.kind)['metadata']['name']}"]


def test_category_lists_every_kind(kubectl: Kubectl, crds: None, namespace: str) -> None:
    for info in KIND_INFOS:
        apply(kubectl, namespace, minimal(info.kind))
    out = kubectl("get", "-n", namespace, "sympozium", "-o", "name").stdout.split()
    kinds = sorted({line.split("/")[0] for line in out})
    assert kinds == sorted(f"{info.singular}.sympozium.ai" for info in KIND_INFOS)


def test_generated_files_are_what_was_installed(kubectl: Kubectl, crds: None) -> None:
    for info in KIND_INFOS:
        installed = json.loads(kubectl("get", "crd", info.crd_name, "-o", "json").stdout)
        on_disk = yaml.safe_load((CRD_DIR / info.file_name).read_text())
        assert installed["spec"]["names"] == on_disk["spec"]["names"]
        assert (
            installed["spec"]["versions"][0]["schema"] == on_disk["spec"]["versions"][0]["schema"]
        )
