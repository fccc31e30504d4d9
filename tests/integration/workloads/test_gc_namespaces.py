"""The built-in garbage collector, namespace and serviceaccount controllers, through kubectl
against a real local cluster: what users see of ownerReferences and namespace deletion."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import Kubectl

GROUP = f"gc{uuid.uuid4().hex[:6]}.example.com"
CRD = f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: gadgets.{GROUP}}}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: gadgets, singular: gadget, kind: Gadget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
"""


def eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.1)


def get(kubectl: Kubectl, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return None
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def gone(kubectl: Kubectl, kind: str, name: str, namespace: str) -> Callable[[], bool]:
    return lambda: get(kubectl, kind, name, namespace) is None


def apply(kubectl: Kubectl, namespace: str, *objects: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin="\n---\n".join(map(json.dumps, objects)))


def uid(kubectl: Kubectl, kind: str, name: str, namespace: str) -> str:
    obj = get(kubectl, kind, name, namespace)
    assert obj is not None
    return str(obj["metadata"]["uid"])


def owned(
    kind: str,
    name: str,
    *owners: tuple[str, str, str, str],
    block: bool = False,
    finalizers: list[str] | None = None,
) -> dict[str, Any]:
    """A ConfigMap or Secret with owner references to (apiVersion, kind, name, uid)s."""
    meta: dict[str, Any] = {
        "name": name,
        "ownerReferences": [
            {"apiVersion": a, "kind": k, "name": n, "uid": u, "blockOwnerDeletion": block}
            for a, k, n, u in owners
        ],
    }
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": kind, "metadata": meta}


def owner_cm(kubectl: Kubectl, namespace: str, name: str) -> tuple[str, str, str, str]:
    kubectl("create", "configmap", name, "-n", namespace)
    return ("v1", "ConfigMap", name, uid(kubectl, "configmap", name, namespace))


@pytest.fixture
def gadgets(kubectl: Kubectl) -> str:
    """A namespaced custom kind, served; returns its apiVersion."""
    kubectl("apply", "-f", "-", stdin=CRD)
    eventually(
        lambda: kubectl("get", f"gadgets.{GROUP}", "-A", check=False).returncode == 0,
        "the CRD is served",
    )
    return f"{GROUP}/v1"


def test_background_deletion_collects_dependents(kubectl: Kubectl, namespace: str) -> None:
    owner = owner_cm(kubectl, namespace, "owner")
    apply(
        kubectl,
        namespace,
        owned("ConfigMap", "dep-cm", owner),
        owned("Secret", "dep-secret", owner),
    )
    kubectl("delete", "configmap", "owner", "-n", namespace)
    eventually(gone(kubectl, "configmap", "dep-cm", namespace), "the dependent ConfigMap is gone")
    eventually(gone(kubectl, "secret", "dep-secret", namespace), "the dependent Secret is gone")


def test_owner_replaced_under_same_name_counts_as_gone(kubectl: Kubectl, namespace: str) -> None:
    owner = owner_cm(kubectl, namespace, "owner")
    kubectl("delete", "configmap", "owner", "-n", namespace)
    kubectl("create", "configmap", "owner", "-n", namespace)  # same name, new uid
    apply(kubectl, namespace, owned("ConfigMap", "dep", owner))
    eventually(gone(kubectl, "configmap", "dep", namespace), "the dependent of the old uid is gone")
    assert get(kubectl, "configmap", "owner", namespace) is not None


def test_live_owner_keeps_dependents(kubectl: Kubectl, namespace: str) -> None:
    owner = owner_cm(kubectl, namespace, "owner")
    apply(kubectl, namespace, owned("ConfigMap", "dep", owner))
    time.sleep(1.5)
    assert get(kubectl, "configmap", "dep", namespace) is not None


def test_foreground_deletion_waits_for_blocking_dependents(
    kubectl: Kubectl, namespace: str
) -> None:
    owner = owner_cm(kubectl, namespace, "owner")
    apply(
        kubectl,
        namespace,
        owned("ConfigMap", "blocker", owner, block=True, finalizers=["example.com/hold"]),
        owned("ConfigMap", "plain", owner, block=True),
        owned("Secret", "loose", owner),
    )
    kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=foreground", "--wait=false")
    eventually(gone(kubectl, "configmap", "plain", namespace), "the plain dependent is gone")
    eventually(gone(kubectl, "secret", "loose", namespace), "the non-blocking dependent is gone")
    eventually(
        lambda: bool(
            (get(kubectl, "configmap", "blocker", namespace) or {})
            .get("metadata", {})
            .get("deletionTimestamp")
        ),
        "the blocker is being deleted",
    )
    time.sleep(1)
    held = get(kubectl, "configmap", "owner", namespace)
    assert held is not None, "the owner must wait for its blocking dependent"
    assert "foregroundDeletion" in held["metadata"]["finalizers"]
    kubectl(
        "patch",
        "configmap",
        "blocker",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    eventually(gone(kubectl, "configmap", "owner", namespace), "the owner is gone")


def test_kubectl_foreground_cascade_returns_when_all_gone(kubectl: Kubectl, namespace: str) -> None:
    owner = owner_cm(kubectl, namespace, "owner")
    apply(
        kubectl,
        namespace,
        owned("ConfigMap", "dep", owner, block=True),
        owned("Secret", "dep", owner, block=True),
    )
    kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=foreground", timeout=30)
    assert get(kubectl, "configmap", "owner", namespace) is None
    assert get(kubectl, "configmap", "dep", namespace) is None
    assert get(kubectl, "secret", "dep", namespace) is None


def test_orphan_deletion_keeps_dependents(kubectl: Kubectl, namespace: str) -> None:
    owner = owner_cm(kubectl, namespace, "owner")
    other = owner_cm(kubectl, namespace, "other")
    apply(
        kubectl,
        namespace,
        owned("ConfigMap", "dep", owner, other, block=True),
        owned("Secret", "dep", owner),
    )
    kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=orphan", timeout=30)
    assert get(kubectl, "configmap", "owner", namespace) is None
    time.sleep(1)
    cm = get(kubectl, "configmap", "dep", namespace)
    secret = get(kubectl, "secret", "dep", namespace)
    assert cm is not None and secret is not None
    assert [r["name"] for r in cm["metadata"]["ownerReferences"]] == ["other"]
    assert "ownerReferences" not in secret["metadata"]


def test_dependent_with_another_live_owner_survives(kubectl: Kubectl, namespace: str) -> None:
    first = owner_cm(kubectl, namespace, "first")
    second = owner_cm(kubectl, namespace, "second")
    apply(kubectl, namespace, owned("ConfigMap", "shared", first, second))
    kubectl("delete", "configmap", "first", "-n", namespace)
    eventually(
        lambda: (
            [
                r["name"]
                for r in (get(kubectl, "configmap", "shared", namespace) or {})["metadata"].get(
                    "ownerReferences", []
                )
            ]
            == ["second"]
        ),
        "the dead owner's reference is dropped",
    )
    kubectl("delete", "configmap", "second", "-n", namespace)
    eventually(gone(kubectl, "configmap", "shared", namespace), "the last owner took it along")


def test_custom_resource_owns_configmaps(kubectl: Kubectl, namespace: str, gadgets: str) -> None:
    apply(kubectl, namespace, {"apiVersion": gadgets, "kind": "Gadget", "metadata": {"name": "g"}})
    owner = (gadgets, "Gadget", "g", uid(kubectl, f"gadgets.{GROUP}", "g", namespace))
    apply(
        kubectl,
        namespace,
        owned("ConfigMap", "a", owner),
        owned("ConfigMap", "b", owner, block=True),
    )
    time.sleep(0.5)
    assert get(kubectl, "configmap", "a", namespace) is not None
    kubectl("delete", f"gadgets.{GROUP}", "g", "-n", namespace)
    eventually(gone(kubectl, "configmap", "a", namespace), "ConfigMap a is gone")
    eventually(gone(kubectl, "configmap", "b", namespace), "ConfigMap b is gone")


def test_namespace_deletion_empties_it(kubectl: Kubectl, gadgets: str) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    kubectl("create", "configmap", "c", "-n", name)
    kubectl("create", "secret", "generic", "s", "-n", name, "--from-literal=k=v")
    apply(
        kubectl,
        name,
        {"apiVersion": gadgets, "kind": "Gadget", "metadata": {"name": "plain"}},
        {
            "apiVersion": gadgets,
            "kind": "Gadget",
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        },
    )
    blocked = kubectl.popen("delete", "namespace", name, "--timeout=60s")
    eventually(
        lambda: (
            get(kubectl, "configmap", "c", name) is None
            and get(kubectl, "secret", "s", name) is None
        ),
        "the plain content is gone",
    )
    eventually(gone(kubectl, f"gadgets.{GROUP}", "plain", name), "the plain gadget is gone")
    ns = json.loads(kubectl("get", "namespace", name, "-o", "json").stdout)
    assert ns["status"]["phase"] == "Terminating"
    eventually(
        lambda: any(
            c["type"] == "NamespaceFinalizersRemaining" and c["status"] == "True"
            for c in json.loads(kubectl("get", "namespace", name, "-o", "json").stdout)[
                "status"
            ].get("conditions", [])
        ),
        "the namespace reports the finalizer holding it",
    )
    assert blocked.poll() is None, "kubectl must wait while content remains"
    kubectl(
        "patch",
        f"gadgets.{GROUP}",
        "held",
        "-n",
        name,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    _, err = blocked.communicate(timeout=60)
    assert blocked.returncode == 0, err
    assert kubectl("get", "namespace", name, check=False).returncode != 0


def test_kubectl_delete_namespace_returns_once_gone(kubectl: Kubectl) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    owner = owner_cm(kubectl, name, "owner")
    apply(kubectl, name, owned("ConfigMap", "dep", owner, block=True))
    started = time.monotonic()
    kubectl("delete", "namespace", name, "--timeout=60s", timeout=90)
    assert time.monotonic() - started < 30
    result = kubectl("get", "namespace", name, check=False)
    assert result.returncode != 0 and "NotFound" in result.stderr


def test_new_namespace_gets_default_service_account(kubectl: Kubectl, namespace: str) -> None:
    eventually(
        lambda: get(kubectl, "serviceaccount", "default", namespace) is not None, "default exists"
    )
    first = uid(kubectl, "serviceaccount", "default", namespace)
    kubectl("delete", "serviceaccount", "default", "-n", namespace)
    eventually(
        lambda: (
            (get(kubectl, "serviceaccount", "default", namespace) or {})
            .get("metadata", {})
            .get("uid")
            not in (None, first)
        ),
        "default is recreated",
    )
