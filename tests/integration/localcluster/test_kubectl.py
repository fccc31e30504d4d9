"""The real kubectl against the local cluster: the flows a user types."""

from __future__ import annotations

import json
import time
import uuid

import yaml

from tests.integration.conftest import Kubectl


def widget_crd(group: str) -> str:
    return f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget, shortNames: [wd], categories: [gadgets]}}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {{status: {{}}}}
    additionalPrinterColumns:
    - {{name: Size, type: integer, jsonPath: .spec.size}}
    - {{name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {{type: integer, minimum: 1, maximum: 10}}
              color: {{type: string, enum: [red, blue], default: red}}
              tags: {{type: array, items: {{type: string}}}}
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
"""


def install_crd(kubectl: Kubectl) -> str:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    kubectl("apply", "-f", "-", stdin=widget_crd(group))
    kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=20s")
    return group


def test_apply_builtin_objects_then_change(kubectl: Kubectl, namespace: str) -> None:
    manifest = f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {namespace}, labels: {{app: demo}}}}
data: {{mode: fast}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds, namespace: {namespace}}}
stringData: {{password: hunter2}}
"""
    out = kubectl("apply", "-f", "-", stdin=manifest).stdout
    assert "configmap/settings created" in out
    assert "secret/creds created" in out
    secret = json.loads(kubectl("get", "secret", "creds", "-n", namespace, "-o", "json").stdout)
    assert secret["data"] == {"password": "aHVudGVyMg=="}
    assert "stringData" not in secret
    out = kubectl("apply", "-f", "-", stdin=manifest.replace("mode: fast", "mode: slow")).stdout
    assert "configmap/settings configured" in out
    # kubectl always re-sends stringData (the server folds it into data), as upstream.
    assert "secret/creds" in out
    assert (
        json.loads(kubectl("get", "secret", "creds", "-n", namespace, "-o", "json").stdout)["data"]
        == secret["data"]
    )
    cm = yaml.safe_load(kubectl("get", "cm", "settings", "-n", namespace, "-o", "yaml").stdout)
    assert cm["data"] == {"mode": "slow"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in cm["metadata"]["annotations"]


def test_apply_crd_and_custom_object_with_defaults_and_validation(
    kubectl: Kubectl, namespace: str
) -> None:
    group = install_crd(kubectl)
    resources = kubectl("api-resources", f"--api-group={group}", "-o", "wide").stdout
    assert "widgets" in resources and "wd" in resources and "Widget" in resources
    widget = f"""
apiVersion: {group}/v1
kind: Widget
metadata: {{name: w1, namespace: {namespace}}}
spec: {{size: 3}}
"""
    kubectl("apply", "-f", "-", stdin=widget)
    got = json.loads(kubectl("get", "widgets", "w1", "-n", namespace, "-o", "json").stdout)
    assert got["spec"] == {"size": 3, "color": "red"}
    assert got["metadata"]["generation"] == 1
    table = kubectl("get", "wd", "-n", namespace).stdout
    # Declared printer columns replace the default Age column, as upstream.
    assert table.split()[:3] == ["NAME", "SIZE", "READY"]
    assert "w1" in table and " 3 " in table

    bad = widget.replace("size: 3", "size: 11, color: green")
    result = kubectl("apply", "-f", "-", stdin=bad.replace("w1", "w2"), check=False)
    assert result.returncode != 0
    assert "spec.size" in result.stderr and "less than or equal to 10" in result.stderr
    assert "spec.color" in result.stderr and 'supported values: "red", "blue"' in result.stderr

    unknown = widget.replace("size: 3", "size: 3, colour: red")
    result = kubectl("apply", "-f", "-", stdin=unknown.replace("w1", "w3"), check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.colour"' in result.stderr


def test_server_side_apply_and_conflicts(kubectl: Kubectl, namespace: str) -> None:
    manifest = f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: ssa, namespace: {namespace}}}
data: {{a: "1", b: "2"}}
"""
    out = kubectl("apply", "--server-side", "-f", "-", stdin=manifest).stdout
    assert "serverside-applied" in out
    cm = json.loads(
        kubectl("get", "cm", "ssa", "-n", namespace, "-o", "json", "--show-managed-fields").stdout
    )
    managers = {(m["manager"], m["operation"]) for m in cm["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    # Another manager takes field a; applying it back must conflict unless forced.
    kubectl("patch", "cm", "ssa", "-n", namespace, "--type=merge", "-p", '{"data":{"a":"x"}}')
    result = kubectl("apply", "--server-side", "-f", "-", stdin=manifest, check=False)
    assert result.returncode != 0
    assert "conflict" in result.stderr.lower() and ".data.a" in result.stderr
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=manifest)
    cm = json.loads(kubectl("get", "cm", "ssa", "-n", namespace, "-o", "json").stdout)
    assert cm["data"] == {"a": "1", "b": "2"}
    # Dropping a field from the applied config removes it.
    kubectl("apply", "--server-side", "-f", "-", stdin=manifest.replace(', b: "2"', ""))
    cm = json.loads(kubectl("get", "cm", "ssa", "-n", namespace, "-o", "json").stdout)
    assert cm["data"] == {"a": "1"}


def test_get_with_label_selector_and_label_command(kubectl: Kubectl, namespace: str) -> None:
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        kubectl("create", "configmap", name, "-n", namespace)
        kubectl("label", "configmap", name, "-n", namespace, f"tier={tier}")
    names = kubectl("get", "cm", "-n", namespace, "-l", "tier=web", "-o", "name").stdout.split()
    assert names == ["configmap/a", "configmap/c"]
    names = kubectl(
        "get", "cm", "-n", namespace, "-l", "tier notin (web)", "-o", "name"
    ).stdout.split()
    assert names == ["configmap/b"]
    kubectl("label", "configmap", "b", "-n", namespace, "tier-")
    names = kubectl("get", "cm", "-n", namespace, "-l", "!tier", "-o", "name").stdout.split()
    assert "configmap/b" in names and "configmap/a" not in names


def test_patch_json_and_merge(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "configmap", "p", "-n", namespace, "--from-literal=k=v")
    kubectl(
        "patch",
        "cm",
        "p",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op":"add","path":"/data/k2","value":"v2"}]',
    )
    kubectl("patch", "cm", "p", "-n", namespace, "--type=merge", "-p", '{"data":{"k":null}}')
    cm = json.loads(kubectl("get", "cm", "p", "-n", namespace, "-o", "json").stdout)
    assert cm["data"] == {"k2": "v2"}
    result = kubectl(
        "patch",
        "cm",
        "p",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op":"test","path":"/data/k2","value":"nope"}]',
        check=False,
    )
    assert result.returncode != 0


def test_wait_for_condition_on_status(kubectl: Kubectl, namespace: str) -> None:
    group = install_crd(kubectl)
    kubectl(
        "apply",
        "-f",
        "-",
        stdin=f"apiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: w, namespace: {namespace}}}\nspec: {{size: 1}}\n",
    )
    waiter = kubectl.popen(
        "wait", "--for=condition=Ready", f"widgets.{group}/w", "-n", namespace, "--timeout=30s"
    )
    time.sleep(1)
    status = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    kubectl(
        "patch",
        f"widgets.{group}",
        "w",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert "condition met" in out
    table = kubectl("get", f"widgets.{group}", "w", "-n", namespace).stdout
    assert "True" in table


def test_watch_prints_changes(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "configmap", "watched", "-n", namespace)
    watcher = kubectl.popen(
        "get", "cm", "-n", namespace, "-w", "-o", "name", "--request-timeout=8s"
    )
    time.sleep(1.5)
    kubectl("label", "cm", "watched", "-n", namespace, "x=y")
    kubectl("create", "configmap", "second", "-n", namespace)
    try:
        out, _ = watcher.communicate(timeout=20)
    finally:
        watcher.kill()
    lines = out.split()
    assert lines.count("configmap/watched") >= 2
    assert "configmap/second" in lines


def test_delete_with_and_without_finalizers(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "configmap", "plain", "-n", namespace)
    assert 'configmap "plain" deleted' in kubectl("delete", "cm", "plain", "-n", namespace).stdout
    assert kubectl("get", "cm", "plain", "-n", namespace, check=False).returncode != 0

    kubectl(
        "apply",
        "-f",
        "-",
        stdin=f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: held, namespace: {namespace}, finalizers: [example.com/hold]}}\n",
    )
    kubectl("delete", "cm", "held", "-n", namespace, "--wait=false")
    held = json.loads(kubectl("get", "cm", "held", "-n", namespace, "-o", "json").stdout)
    assert held["metadata"]["deletionTimestamp"]
    kubectl(
        "patch",
        "cm",
        "held",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )
    result = kubectl("get", "cm", "held", "-n", namespace, check=False)
    assert result.returncode != 0 and "NotFound" in result.stderr


def test_unknown_kind_and_api_resources(kubectl: Kubectl) -> None:
    resources = kubectl("api-resources").stdout
    for expected in (
        "configmaps",
        "deployments",
        "customresourcedefinitions",
        "networkpolicies",
        "leases",
        "validatingwebhookconfigurations",
        "rolebindings",
        "persistentvolumeclaims",
    ):
        assert expected in resources
    result = kubectl("get", "frobnicators", check=False)
    assert result.returncode != 0
    assert "frobnicators" in result.stderr


def test_apply_deployment_twice_then_scale(kubectl: Kubectl, namespace: str) -> None:
    manifest = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {namespace}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - {{name: app, image: "nginx:1.27", env: [{{name: A, value: "1"}}], ports: [{{containerPort: 80}}]}}
      - {{name: side, image: "busybox:1"}}
"""
    kubectl("apply", "-f", "-", stdin=manifest)
    # Client-side apply sends a strategic merge patch with $setElementOrder directives.
    out = kubectl("apply", "-f", "-", stdin=manifest.replace('value: "1"', 'value: "2"')).stdout
    assert "deployment.apps/web configured" in out
    deployment = json.loads(kubectl("get", "deploy", "web", "-n", namespace, "-o", "json").stdout)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "side"]
    assert containers[0]["env"] == [{"name": "A", "value": "2"}]
    assert deployment["metadata"]["generation"] == 2
    assert (
        "deployment.apps/web scaled"
        in kubectl("scale", "deploy", "web", "-n", namespace, "--replicas=4").stdout
    )
    deployment = json.loads(kubectl("get", "deploy", "web", "-n", namespace, "-o", "json").stdout)
    assert deployment["spec"]["replicas"] == 4 and deployment["metadata"]["generation"] == 3
    table = kubectl("get", "deploy", "-n", namespace).stdout
    assert table.split()[:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert "0/4" in table


def test_typed_create_commands_send_protobuf(kubectl: Kubectl, namespace: str) -> None:
    """kubectl's typed `create` subcommands encode bodies as Kubernetes protobuf."""
    n = ("-n", namespace)
    kubectl("create", "deployment", "d", "--image=nginx:1", "--replicas=3", "--port=80", *n)
    kubectl("create", "secret", "generic", "s", "--from-literal=p=q", *n)
    kubectl("create", "serviceaccount", "robot", *n)
    kubectl("create", "role", "reader", "--verb=get,list", "--resource=pods", *n)
    kubectl(
        "create", "rolebinding", "rb", "--role=reader", "--serviceaccount", f"{namespace}:robot", *n
    )
    kubectl("create", "service", "clusterip", "svc", "--tcp=80:8080", *n)
    kubectl("create", "job", "j", "--image=busybox:1", *n)
    deployment = json.loads(kubectl("get", "deploy", "d", "-o", "json", *n).stdout)
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1" and container["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}
    ]
    secret = json.loads(kubectl("get", "secret", "s", "-o", "json", *n).stdout)
    assert secret["data"] == {"p": "cQ=="} and secret["type"] == "Opaque"
    role = json.loads(kubectl("get", "role", "reader", "-o", "json", *n).stdout)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    binding = json.loads(kubectl("get", "rolebinding", "rb", "-o", "json", *n).stdout)
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "robot", "namespace": namespace}
    ]
    service = json.loads(kubectl("get", "svc", "svc", "-o", "json", *n).stdout)
    assert service["spec"]["ports"][0]["targetPort"] == 8080
    job = json.loads(kubectl("get", "job", "j", "-o", "json", *n).stdout)
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
