"""Admission webhooks: matching, upstream's wording, the mutating chain (no network)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from localcluster.admission import (
    MUTATING,
    VALIDATING,
    Admission,
    Attributes,
    WebhookCallFailed,
    _verify,
    denial,
    rule_matches,
    webhook_matches,
)
from localcluster.errors import StatusError
from localcluster.registry import Call
from localcluster.resources import BUILTIN_TYPES, ResourceType
from localcluster.storage import ADDED, Store

Obj = dict[str, Any]


def rt(plural: str, group: str = "") -> ResourceType:
    return next(t for t in BUILTIN_TYPES if t.plural == plural and t.group == group)


def attrs(
    operation: str = "CREATE",
    resource: str = "configmaps",
    subresource: str = "",
    namespaced: bool = True,
    labels: dict[str, str] | None = None,
    group: str = "",
) -> Attributes:
    obj = {"metadata": {"name": "x", "labels": labels or {}}}
    return Attributes(
        operation, group, "v1", resource, subresource, namespaced, "ns", "x", obj, None
    )


RULE = {
    "operations": ["CREATE"],
    "apiGroups": [""],
    "apiVersions": ["v1"],
    "resources": ["configmaps"],
}


def test_rules_match_operations_groups_versions_and_resources() -> None:
    assert rule_matches(RULE, attrs())
    assert not rule_matches(RULE, attrs("UPDATE"))
    assert not rule_matches(RULE, attrs(resource="secrets"))
    assert not rule_matches({**RULE, "apiGroups": ["apps"]}, attrs())
    assert rule_matches({**RULE, "operations": ["*"], "apiVersions": ["*"]}, attrs("DELETE"))


def test_rules_match_subresources_like_upstream() -> None:
    status = attrs("UPDATE", "pods", "status")
    rule = {**RULE, "operations": ["UPDATE"]}
    assert not rule_matches({**rule, "resources": ["pods"]}, status)
    assert not rule_matches({**rule, "resources": ["*"]}, status)
    assert rule_matches({**rule, "resources": ["pods/status"]}, status)
    assert rule_matches({**rule, "resources": ["pods/*"]}, status)
    assert rule_matches({**rule, "resources": ["*/*"]}, status)
    assert rule_matches({**rule, "resources": ["*/status"]}, status)
    # "pods/*" covers pods itself as well (its subresource is empty).
    assert rule_matches({**rule, "resources": ["pods/*"]}, attrs("UPDATE", "pods"))


def test_rules_match_scope() -> None:
    assert rule_matches({**RULE, "scope": "Namespaced"}, attrs())
    assert not rule_matches({**RULE, "scope": "Cluster"}, attrs())
    cluster = {**RULE, "resources": ["namespaces"], "scope": "Cluster"}
    assert rule_matches(cluster, attrs(resource="namespaces", namespaced=False))


def test_selectors() -> None:
    webhook: Obj = {"rules": [RULE], "objectSelector": {"matchLabels": {"a": "b"}}}
    assert webhook_matches(webhook, attrs(labels={"a": "b"}), None)
    assert not webhook_matches(webhook, attrs(), None)
    webhook = {
        "rules": [RULE],
        "namespaceSelector": {
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]
        },
    }
    prod = {"metadata": {"name": "ns", "labels": {"env": "prod"}}}
    dev = {"metadata": {"name": "ns", "labels": {"env": "dev"}}}
    assert webhook_matches(webhook, attrs(), prod)
    assert not webhook_matches(webhook, attrs(), dev)
    # A Namespace is matched by its own labels.
    ns_rule = {**RULE, "resources": ["namespaces"]}
    ns_webhook = {**webhook, "rules": [ns_rule]}
    assert webhook_matches(
        ns_webhook, attrs(resource="namespaces", namespaced=False, labels={"env": "prod"}), None
    )
    assert not webhook_matches(
        ns_webhook, attrs(resource="namespaces", namespaced=False, labels={}), None
    )


def test_denial_wording_is_upstreams() -> None:
    error = denial("w.example.com", {"code": 403, "message": "nope", "reason": "Forbidden"})
    assert (error.code, error.reason) == (403, "Forbidden")
    assert error.message == 'admission webhook "w.example.com" denied the request: nope'
    assert (
        denial("w", None).message == 'admission webhook "w" denied the request without explanation'
    )
    assert denial("w", None).code == 403
    assert denial("w", {"code": 200}).code == 400
    assert denial("w", {"reason": "Why"}).message == 'admission webhook "w" denied the request: Why'


def test_responses_are_verified() -> None:
    good = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u", "allowed": True},
    }
    assert _verify(good, "u", False)["allowed"] is True
    with pytest.raises(WebhookCallFailed, match=r'expected response\.uid="v"'):
        _verify(good, "v", False)
    patched = {
        **good,
        "response": {"uid": "u", "allowed": True, "patch": "W10=", "patchType": "JSONPatch"},
    }
    with pytest.raises(WebhookCallFailed, match="validating webhook may not return a patch"):
        _verify(patched, "u", False)
    with pytest.raises(WebhookCallFailed, match="expected webhook response"):
        _verify({**good, "apiVersion": "admission.k8s.io/v1beta1"}, "u", True)


# ---- the chain, with the HTTP call replaced


class Scripted(Admission):
    """Answers each webhook by name from a function instead of over HTTPS."""

    def __init__(self, store: Store, answer: Any) -> None:
        super().__init__(store)
        self.answer = answer
        self.calls: list[tuple[str, Obj]] = []

    async def _post(self, webhook: Obj, review: Obj) -> Any:
        self.calls.append((webhook["name"], review["request"]))
        response = self.answer(webhook["name"], review["request"])
        if isinstance(response, Exception):
            raise response
        response["uid"] = review["request"]["uid"]
        return {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        }


def json_patch(*ops: Obj) -> str:
    return base64.b64encode(json.dumps(list(ops)).encode()).decode()


async def configure(store: Store, bucket: str, *webhooks: Obj) -> None:
    rv = store.next_rv()
    config = {"metadata": {"name": "cfg"}, "webhooks": list(webhooks)}
    await store.write(bucket, ("", "cfg"), config, rv=rv, event_type=ADDED)


def hook(name: str, **extra: Any) -> Obj:
    return {
        "name": name,
        "rules": [RULE],
        "sideEffects": "None",
        "clientConfig": {"url": "https://x"},
        **extra,
    }


def configmap() -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}


async def test_mutating_patches_apply_in_order_and_reinvoke_if_needed() -> None:
    store = Store(None)

    def answer(name: str, request: Obj) -> Obj:
        labels = request["object"]["metadata"].get("labels") or {}
        if name == "first" and "second" in labels and "first-again" not in labels:
            return {
                "allowed": True,
                "patchType": "JSONPatch",
                "patch": json_patch(
                    {"op": "add", "path": "/metadata/labels/first-again", "value": "y"}
                ),
            }
        if name == "second" and "second" not in labels:
            return {
                "allowed": True,
                "patchType": "JSONPatch",
                "patch": json_patch(
                    {"op": "add", "path": "/metadata/labels", "value": {"second": "y"}}
                ),
                "warnings": ["careful"],
            }
        return {"allowed": True}

    await configure(store, MUTATING, hook("first", reinvocationPolicy="IfNeeded"), hook("second"))
    admission = Scripted(store, answer)
    call = Call(rt("configmaps"), "ns", "c")
    result = await admission.mutate(call, "CREATE", configmap(), None)
    assert result["metadata"]["labels"] == {"second": "y", "first-again": "y"}
    assert [name for name, _ in admission.calls] == ["first", "second", "first"]
    assert call.warnings == ["careful"]


async def test_failure_policy_and_dry_run() -> None:
    store = Store(None)
    await configure(store, VALIDATING, hook("ignored", failurePolicy="Ignore"), hook("failing"))
    admission = Scripted(
        store, lambda name, request: WebhookCallFailed("failed to call webhook: boom")
    )
    call = Call(rt("configmaps"), "ns", "c")
    with pytest.raises(StatusError) as caught:
        await admission.validate(call, "CREATE", configmap(), None)
    assert caught.value.code == 500
    assert caught.value.message == (
        'Internal error occurred: failed calling webhook "failing": failed to call webhook: boom'
    )
    store = Store(None)
    await configure(store, VALIDATING, hook("effects", sideEffects="Unknown"))
    admission = Scripted(store, lambda name, request: {"allowed": True})
    with pytest.raises(StatusError) as caught:
        await admission.validate(
            Call(rt("configmaps"), "ns", "c", dry_run=True), "CREATE", configmap(), None
        )
    assert caught.value.code == 400
    assert caught.value.message == 'admission webhook "effects" does not support dry run'


async def test_delete_sends_old_object_and_configurations_are_exempt() -> None:
    store = Store(None)
    delete_rule = {**RULE, "operations": ["DELETE"]}
    all_rule = {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}
    await configure(store, VALIDATING, hook("deny", rules=[delete_rule, all_rule]))
    admission = Scripted(
        store, lambda name, request: {"allowed": False, "status": {"message": "kept"}}
    )
    with pytest.raises(StatusError, match="denied the request: kept"):
        await admission.delete(
            Call(rt("configmaps"), "ns", "c"), configmap(), {"propagationPolicy": "Background"}
        )
    request = admission.calls[-1][1]
    assert request["object"] is None
    assert request["oldObject"]["metadata"]["name"] == "c"
    assert request["options"] == {
        "kind": "DeleteOptions",
        "apiVersion": "meta.k8s.io/v1",
        "propagationPolicy": "Background",
    }
    exempt = Call(rt("validatingwebhookconfigurations", "admissionregistration.k8s.io"), "", "cfg")
    await admission.delete(exempt, {"metadata": {"name": "cfg"}}, {})


async def test_service_references_resolve_to_the_local_address() -> None:
    store = Store(None)
    service = {
        "metadata": {
            "name": "hooks",
            "namespace": "ns",
            "annotations": {"localcluster.sympozium.ai/address-https": "127.0.0.1:40123"},
        },
        "spec": {"ports": [{"name": "https", "port": 443}]},
    }
    await store.write("services", ("ns", "hooks"), service, rv=store.next_rv(), event_type=ADDED)
    admission = Admission(store)
    url, host = admission._address(
        {"service": {"namespace": "ns", "name": "hooks", "path": "/validate"}}
    )
    assert (url, host) == ("https://127.0.0.1:40123/validate", "hooks.ns.svc")
    with pytest.raises(WebhookCallFailed, match="no local address for port 8443"):
        admission._address({"service": {"namespace": "ns", "name": "hooks", "port": 8443}})
    with pytest.raises(WebhookCallFailed, match="not found"):
        admission._address({"service": {"namespace": "ns", "name": "missing"}})
