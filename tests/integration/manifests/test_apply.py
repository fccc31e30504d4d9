"""Applying the manifests and examples to a real local cluster with the real kubectl.

Each cluster here is our own (`--no-workloads`): the full install registers a webhook
with failurePolicy Fail that would refuse other tests' AgentRuns, and nothing here
should start the images.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tests.integration.conftest import KUBECTL, Kubectl, RunningCluster, start_cluster

from ._render import (
    EXAMPLES,
    EXPECTED,
    MANIFESTS,
    NAMESPACE,
    Obj,
    is_subset,
    key,
    kustomize,
    load_file,
    to_yaml,
)

CUSTOM_KINDS = {"SympoziumPolicy", "SkillPack", "PersonaPack"}


def own_cluster(base: Path) -> RunningCluster:
    data = base / "data"
    data.mkdir(parents=True)
    return start_cluster(data, extra_args=("--no-workloads",))


def install_crds(kubectl: Kubectl) -> None:
    kubectl("apply", "-k", str(MANIFESTS / "crds"))
    kubectl(
        "wait",
        "--for=condition=Established",
        "crd",
        "-l",
        "app.kubernetes.io/part-of=sympozium",
        "--timeout=60s",
    )


def get_json(kubectl: Kubectl, kind: str, name: str, namespace: str = "") -> Obj:
    args = ["get", kind, name, "-o", "json"]
    if namespace:
        args += ["-n", namespace]
    loaded: Obj = json.loads(kubectl(*args).stdout)
    return loaded


# ---- examples against the CRDs alone ----------------------------------------------------


@pytest.fixture(scope="module")
def crd_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    base = tmp_path_factory.mktemp("crd-cluster")
    running = own_cluster(base)
    try:
        kubectl = Kubectl(running, base / "kubectl-cache")
        install_crds(kubectl)
        yield kubectl
    finally:
        running.stop()


@pytest.fixture
def example_ns(crd_cluster: Kubectl) -> str:
    name = f"ex-{uuid.uuid4().hex[:8]}"
    crd_cluster("create", "namespace", name)
    return name


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_there_is_one_example_per_sample_scenario() -> None:
    names = {p.name for p in EXAMPLE_FILES}
    assert names >= {
        "agentrun-hello.yaml",
        "agentrun-sample.yaml",
        "agentrun-agent-sandbox.yaml",
        "sympoziuminstance-sample.yaml",
        "sympoziuminstance-agent-sandbox.yaml",
        "sympoziumpolicy-sample.yaml",
        "sympoziumschedule-sample.yaml",
        "skillpack-sample.yaml",
        "personapack-sample.yaml",
        "personapack-developer-team-github.yaml",
        "personapack-adhoc-with-github.yaml",
    }


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_applies_strictly_and_keeps_every_field(
    crd_cluster: Kubectl, example_ns: str, path: Path
) -> None:
    crd_cluster("apply", "--server-side", "--validate=strict", "-n", example_ns, "-f", str(path))
    for obj in load_file(path):
        live = get_json(crd_cluster, obj["kind"], obj["metadata"]["name"], example_ns)
        problems = is_subset(obj["spec"], live["spec"], "spec")
        assert problems == [], f"{path.name} {key(obj)}"


def test_an_unknown_field_is_refused_by_name(crd_cluster: Kubectl, example_ns: str) -> None:
    objs = load_file(EXAMPLES / "agentrun-hello.yaml")
    run = next(o for o in objs if o["kind"] == "AgentRun")
    run["spec"]["model"]["maxTokens"] = 4096  # the stale field of the original sample
    result = crd_cluster(
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        example_ns,
        "-f",
        "-",
        stdin=to_yaml([run]),
        check=False,
    )
    assert result.returncode != 0
    assert "maxTokens" in result.stderr
    # …and the same object without it is accepted.
    del run["spec"]["model"]["maxTokens"]
    crd_cluster(
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        example_ns,
        "-f",
        "-",
        stdin=to_yaml([run]),
    )


def test_a_stale_sample_field_is_refused(crd_cluster: Kubectl, example_ns: str) -> None:
    stale = {
        "apiVersion": "sympozium.ai/v1alpha1",
        "kind": "AgentRun",
        "metadata": {"name": "stale"},
        "spec": {
            "instanceRef": "x",
            "agentID": "primary",
            "agentId": "primary",
            "sessionKey": "",
            "task": "t",
            "model": {"provider": "openai", "model": "m", "authSecretRef": ""},
        },
    }
    result = crd_cluster(
        "apply",
        "--dry-run=server",
        "-n",
        example_ns,
        "-f",
        "-",
        stdin=to_yaml([stale]),
        check=False,
    )
    assert result.returncode != 0
    assert "agentID" in result.stderr


# ---- the whole system ---------------------------------------------------------------------


@dataclass
class Installed:
    kubectl: Kubectl
    rendered: list[Obj]
    kubeconfig: Path
    home: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """A fresh cluster with `manifests/` installed the documented way."""
    base = tmp_path_factory.mktemp("install")
    running = own_cluster(base)
    try:
        kubectl = Kubectl(running, base / "kubectl-cache")
        rendered = kustomize(MANIFESTS)
        install_crds(kubectl)
        kubectl("apply", "-k", str(MANIFESTS))
        # A server-side dry run needs the namespace to exist: it is an upgrade check.
        kubectl("apply", "-k", str(MANIFESTS), "--dry-run=server")
        yield Installed(kubectl, rendered, running.kubeconfig, base)
    finally:
        running.stop()


def test_every_object_exists_after_install(installed: Installed) -> None:
    kubectl = installed.kubectl
    missing = []
    for kind, name, namespace in EXPECTED:
        args = ["get", kind, name, "-o", "name"]
        if namespace:
            args += ["-n", namespace]
        if kubectl(*args, check=False).returncode != 0:
            missing.append((kind, name, namespace))
    assert missing == []


def test_custom_resources_keep_every_field(installed: Installed) -> None:
    problems = {}
    for obj in installed.rendered:
        if obj["kind"] not in CUSTOM_KINDS:
            continue
        live = get_json(installed.kubectl, obj["kind"], obj["metadata"]["name"], NAMESPACE)
        found = is_subset(obj["spec"], live["spec"], "spec")
        if found:
            problems[key(obj)] = found
    assert problems == {}


def test_reapply_is_clean_and_the_overlays_dry_run(installed: Installed) -> None:
    kubectl = installed.kubectl
    out = kubectl("apply", "-k", str(MANIFESTS)).stdout
    kubectl("apply", "-k", str(MANIFESTS / "overlays" / "no-webhook"), "--dry-run=server")
    assert "created" not in out


def test_service_accounts_can_do_their_job_and_no_more(installed: Installed) -> None:
    kubectl = installed.kubectl

    # With the ServiceAccounts' own tokens: the local cluster ignores impersonation
    # (`--as`), answering every `auth can-i --as=…` as the admin.
    tokens = {
        sa: kubectl("create", "token", sa, "-n", NAMESPACE).stdout.strip()
        for sa in ("sympozium-controller-manager", "sympozium-webhook", "sympozium-apiserver")
    }

    def can(sa: str, verb: str, resource: str, namespace: str = "default") -> bool:
        result = kubectl(
            f"--token={tokens[sa]}", "auth", "can-i", verb, resource, "-n", namespace, check=False
        )
        return result.stdout.strip() == "yes"

    controller = "sympozium-controller-manager"
    assert can(controller, "create", "jobs.batch")
    assert can(controller, "update", "agentruns.sympozium.ai/status")
    assert can(controller, "escalate", "roles.rbac.authorization.k8s.io")
    assert can(controller, "bind", "clusterroles.rbac.authorization.k8s.io")
    assert can(controller, "create", "leases.coordination.k8s.io", NAMESPACE)
    assert not can(controller, "create", "leases.coordination.k8s.io", "default")
    assert not can(controller, "update", "secrets")
    assert not can(controller, "create", "pods")
    assert can("sympozium-webhook", "list", "sympoziumpolicies.sympozium.ai")
    assert not can("sympozium-webhook", "create", "agentruns.sympozium.ai")
    assert not can("sympozium-webhook", "get", "secrets")
    assert can("sympozium-apiserver", "create", "agentruns.sympozium.ai")
    assert can("sympozium-apiserver", "get", "pods", "team-a")
    assert can("sympozium-apiserver", "list", "namespaces")
    assert not can("sympozium-apiserver", "delete", "pods")
    assert not can("sympozium-apiserver", "list", "secrets")


def test_the_webhook_registration_is_live(installed: Installed) -> None:
    """With failurePolicy Fail and no webhook serving, AgentRuns are refused — as documented."""
    kubectl = installed.kubectl
    run = next(o for o in load_file(EXAMPLES / "agentrun-hello.yaml") if o["kind"] == "AgentRun")
    result = kubectl(
        "apply", "--dry-run=server", "-n", "default", "-f", "-", stdin=to_yaml([run]), check=False
    )
    assert result.returncode != 0
    assert "vagentrun.sympozium.ai" in result.stderr


def test_bootstrap_cert_script_creates_the_secret_and_ca_bundle(installed: Installed) -> None:
    env = {
        **os.environ,
        "KUBECONFIG": str(installed.kubeconfig),
        "HOME": str(installed.home),  # kubectl's discovery cache
        "KUBECTL_KUBERC": "false",
    }
    result = subprocess.run(
        [str(MANIFESTS / "webhook" / "bootstrap-cert.sh"), "--kubectl", KUBECTL, "--days", "30"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    kubectl = installed.kubectl
    secret = get_json(kubectl, "secret", "sympozium-webhook-tls", NAMESPACE)
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    cert = x509.load_pem_x509_certificate(data["tls.crt"])
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "sympozium-webhook-service.sympozium-system.svc" in names.get_values_for_type(
        x509.DNSName
    )
    assert cert.issuer == ca.subject
    public_key = ca.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    if isinstance(public_key, rsa.RSAPublicKey):
        assert cert.signature_hash_algorithm is not None
        public_key.verify(
            cert.signature,
            cert.tbs_certificate_bytes,
            padding.PKCS1v15(),
            cert.signature_hash_algorithm,
        )
    vwc = get_json(kubectl, "validatingwebhookconfiguration", "sympozium-validating-webhook")
    assert base64.b64decode(vwc["webhooks"][0]["clientConfig"]["caBundle"]) == data["ca.crt"]
    # Re-applying the manifests keeps the patched caBundle.
    vwc_yaml = to_yaml(
        o for o in installed.rendered if o["kind"] == "ValidatingWebhookConfiguration"
    )
    kubectl("apply", "-f", "-", stdin=vwc_yaml)
    vwc = get_json(kubectl, "validatingwebhookconfiguration", "sympozium-validating-webhook")
    assert base64.b64decode(vwc["webhooks"][0]["clientConfig"]["caBundle"]) == data["ca.crt"]


def test_statefulsets_apply(installed: Installed) -> None:
    """NATS and PostgreSQL are StatefulSets with their data on claims."""
    for name in ("nats", "postgres"):
        sts = get_json(installed.kubectl, "statefulset", name, NAMESPACE)
        assert sts["spec"]["volumeClaimTemplates"]
