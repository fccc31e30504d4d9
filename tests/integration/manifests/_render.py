"""Rendering the kustomize tree and reading what it produces (shared by the tests here)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from tests.integration.conftest import KUBECTL

REPO = Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "manifests"
EXAMPLES = REPO / "examples"
NAMESPACE = "sympozium-system"
IMAGE = "ghcr.io/sympozium-ai/sympozium"

Obj = dict[str, Any]

CRD_PLURALS = (
    "agentruns",
    "sympoziuminstances",
    "personapacks",
    "skillpacks",
    "sympoziumpolicies",
    "sympoziumschedules",
    "mcpservers",
    "sympoziumconfigs",
)
SKILLPACKS = (
    "k8s-ops",
    "sre-observability",
    "incident-response",
    "code-review",
    "github-gitops",
    "software-dev",
    "llmfit",
    "memory",
    "web-endpoint",
)
PERSONAPACKS = ("developer-team", "devops-essentials", "platform-team", "observability-mcp-team")
POLICIES = ("permissive", "restrictive", "network-isolated")

# (kind, name, namespace or "") of every object `kubectl apply -k manifests/` creates.
EXPECTED: tuple[tuple[str, str, str], ...] = (
    ("Namespace", NAMESPACE, ""),
    *(("CustomResourceDefinition", f"{p}.sympozium.ai", "") for p in CRD_PLURALS),
    ("ServiceAccount", "sympozium-controller-manager", NAMESPACE),
    ("ServiceAccount", "sympozium-webhook", NAMESPACE),
    ("ServiceAccount", "sympozium-apiserver", NAMESPACE),
    ("ClusterRole", "sympozium-controller-manager", ""),
    ("ClusterRole", "sympozium-webhook", ""),
    ("ClusterRole", "sympozium-apiserver", ""),
    ("ClusterRoleBinding", "sympozium-controller-manager", ""),
    ("ClusterRoleBinding", "sympozium-webhook", ""),
    ("ClusterRoleBinding", "sympozium-apiserver", ""),
    ("Role", "sympozium-leader-election", NAMESPACE),
    ("RoleBinding", "sympozium-leader-election", NAMESPACE),
    ("Deployment", "sympozium-controller-manager", NAMESPACE),
    ("Service", "sympozium-controller-metrics", NAMESPACE),
    ("Deployment", "sympozium-webhook", NAMESPACE),
    ("Service", "sympozium-webhook-service", NAMESPACE),
    ("ValidatingWebhookConfiguration", "sympozium-validating-webhook", ""),
    ("Deployment", "sympozium-apiserver", NAMESPACE),
    ("Service", "sympozium-apiserver", NAMESPACE),
    ("StatefulSet", "nats", NAMESPACE),
    ("Service", "nats", NAMESPACE),
    ("Service", "nats-headless", NAMESPACE),
    ("StatefulSet", "postgres", NAMESPACE),
    ("Service", "postgres", NAMESPACE),
    ("Service", "postgres-headless", NAMESPACE),
    ("Secret", "sympozium-postgres", NAMESPACE),
    *(("SympoziumPolicy", n, NAMESPACE) for n in POLICIES),
    *(("SkillPack", n, NAMESPACE) for n in SKILLPACKS),
    *(("PersonaPack", n, NAMESPACE) for n in PERSONAPACKS),
)


def kustomize(directory: Path) -> list[Obj]:
    """The objects `kubectl kustomize DIRECTORY` renders."""
    result = subprocess.run(
        [KUBECTL, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def key(obj: Obj) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (obj["kind"], meta["name"], meta.get("namespace", ""))


def find(objs: Iterable[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def of_kind(objs: Iterable[Obj], *kinds: str) -> list[Obj]:
    return [o for o in objs if o["kind"] in kinds]


def to_yaml(objs: Iterable[Obj]) -> str:
    return yaml.safe_dump_all(list(objs), sort_keys=False)


def load_file(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def is_subset(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `expected` is not contained in `actual` (extra keys in `actual` are fine)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        problems: list[str] = []
        for k, v in expected.items():
            if k not in actual:
                problems.append(f"{path}.{k}: missing (pruned or renamed?)")
            else:
                problems.extend(is_subset(v, actual[k], f"{path}.{k}"))
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {len(expected)} items, got {actual!r}"]
        return [
            p
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for p in is_subset(e, a, f"{path}[{i}]")
        ]
    if expected != actual and str(expected) != str(actual):
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    return []
