"""Admission webhooks against a real HTTPS webhook server (TLS from a CA made here).

Every configuration is scoped by `namespaceSelector` to a namespace this test labels, so
the shared cluster's other tests never meet these webhooks; each is deleted at the end.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.conftest import Kubectl

Obj = dict[str, Any]


def _make_ca_and_cert(directory: Path) -> tuple[bytes, Path, Path]:
    """A CA, and a serving certificate for 127.0.0.1 signed by it: (CA PEM, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admission-test-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path = directory / "webhook.crt"
    key_path = directory / "webhook.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_cert.public_bytes(serialization.Encoding.PEM), cert_path, key_path


class WebhookServer:
    """An HTTPS AdmissionReview server in its own thread; the path picks the behaviour."""

    def __init__(self, cert: Path, key: Path, ca_pem: bytes) -> None:
        self.ca_bundle = base64.b64encode(ca_pem).decode()
        self.reviews: list[tuple[str, Obj]] = []
        self._cert = cert
        self._key = key
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{mode}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._cert, self._key)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def url(self, mode: str) -> str:
        return f"https://127.0.0.1:{self.port}/{mode}"

    def seen(self, mode: str) -> list[Obj]:
        return [review for m, review in self.reviews if m == mode]

    async def _handle(self, request: web.Request) -> web.Response:
        mode = request.match_info["mode"]
        review = await request.json()
        self.reviews.append((mode, review))
        uid = review["request"]["uid"]
        response: Obj = {"uid": uid, "allowed": True}
        if mode == "deny":
            response = {
                "uid": uid,
                "allowed": False,
                "status": {"code": 403, "reason": "Forbidden", "message": "no configmaps here"},
            }
        elif mode == "teapot":
            response = {"uid": uid, "allowed": False, "status": {"code": 418, "message": "short"}}
        elif mode == "mutate":
            ops = [{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}]
            if (review["request"]["object"]["metadata"].get("labels")) is not None:
                ops = [{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}]
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
            response["warnings"] = ["the mutating webhook added a label"]
        elif mode == "slow":
            await asyncio.sleep(2)
        return web.json_response(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        )


@pytest.fixture(scope="module")
def webhook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    ca_pem, cert, key = _make_ca_and_cert(tmp_path_factory.mktemp("webhook-tls"))
    server = WebhookServer(cert, key, ca_pem)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def scoped(kubectl: Kubectl, namespace: str) -> str:
    """The test's namespace, labelled so only this test's webhooks select it."""
    kubectl("label", "namespace", namespace, f"admission-test={namespace}")
    return namespace


def _webhook(
    server: WebhookServer,
    name: str,
    mode: str,
    namespace: str,
    *,
    operations: tuple[str, ...] = ("CREATE",),
    **extra: Any,
) -> Obj:
    webhook: Obj = {
        "name": name,
        "clientConfig": {"url": server.url(mode), "caBundle": server.ca_bundle},
        "rules": [
            {
                "operations": list(operations),
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["configmaps"],
                "scope": "Namespaced",
            }
        ],
        "namespaceSelector": {"matchLabels": {"admission-test": namespace}},
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    webhook.update(extra)
    return webhook


class Configured:
    """Creates webhook configurations and deletes them again."""

    def __init__(self, kubectl: Kubectl) -> None:
        self.kubectl = kubectl
        self.created: list[tuple[str, str]] = []

    def add(self, kind: str, *webhooks: Obj) -> str:
        name = f"adm-{uuid.uuid4().hex[:10]}"
        body = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": name},
            "webhooks": list(webhooks),
        }
        self.kubectl("create", "-f", "-", stdin=json.dumps(body))
        self.created.append((kind.lower() + "s", name))
        return name

    def cleanup(self) -> None:
        for resource, name in self.created:
            self.kubectl("delete", resource, name, "--ignore-not-found", check=False)


@pytest.fixture
def configure(kubectl: Kubectl) -> Iterator[Configured]:
    configured = Configured(kubectl)
    yield configured
    configured.cleanup()


VALIDATING = "ValidatingWebhookConfiguration"
MUTATING = "MutatingWebhookConfiguration"


def test_denial_reaches_kubectl_with_the_webhook_message(
    kubectl: Kubectl, scoped: str, webhook_server: WebhookServer, configure: Configured
) -> None:
    configure.add(
        VALIDATING, _webhook(webhook_server, "deny.admission.sympozium.test", "deny", scoped)
    )
    result = kubectl("create", "configmap", "c1", "-n", scoped, check=False)
    assert result.returncode != 0
    message = (
        'admission webhook "deny.admission.sympozium.test" denied the request: no configmaps here'
    )
    assert message in result.stderr
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c2", "namespace": scoped},
    }
    created = kubectl("create", "-f", "-", stdin=json.dumps(body), check=False)
    assert "Error from server (Forbidden): error when creating" in created.stderr
    assert message in created.stderr
    assert kubectl("get", "configmap", "c1", "-n", scoped, check=False).returncode != 0
    request = next(
        r["request"] for r in webhook_server.seen("deny") if r["request"]["namespace"] == scoped
    )
    assert request["operation"] == "CREATE"
    assert request["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert request["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert request["name"] == "c1"
    assert request["object"]["metadata"]["name"] == "c1"
    assert request["oldObject"] is None
    assert request["dryRun"] is False
    assert request["userInfo"]["username"] == "kubernetes-admin"
    assert request["options"]["kind"] == "CreateOptions"


def test_status_code_of_the_webhook_is_returned(
    kubectl: Kubectl, scoped: str, webhook_server: WebhookServer, configure: Configured
) -> None:
    configure.add(
        VALIDATING,
        _webhook(webhook_server, "teapot.admission.sympozium.test", "teapot", scoped),
    )
    result = kubectl("create", "configmap", "c1", "-n", scoped, "-v=6", check=False)
    assert result.returncode != 0
    assert 'admission webhook "teapot.admission.sympozium.test" denied the request: short' in (
        result.stderr
    )
    assert "418" in result.stderr


def test_update_and_delete_are_admitted_with_old_object(
    kubectl: Kubectl, scoped: str, webhook_server: WebhookServer, configure: Configured
) -> None:
    kubectl("create", "configmap", "c1", "-n", scoped)
    configure.add(
        VALIDATING,
        _webhook(
            webhook_server,
            "deny.admission.sympozium.test",
            "deny",
            scoped,
            operations=("UPDATE", "DELETE"),
        ),
    )
    labelled = kubectl("label", "configmap", "c1", "-n", scoped, "x=y", check=False)
    assert "denied the request: no configmaps here" in labelled.stderr
    deleted = kubectl("delete", "configmap", "c1", "-n", scoped, check=False)
    assert "denied the request: no configmaps here" in deleted.stderr
    kubectl("get", "configmap", "c1", "-n", scoped)
    requests = [
        r["request"] for r in webhook_server.seen("deny") if r["request"]["namespace"] == scoped
    ]
    update, delete = requests[-2], requests[-1]
    assert update["operation"] == "UPDATE"
    assert update["object"]["metadata"]["labels"] == {"x": "y"}
    assert update["oldObject"]["metadata"]["name"] == "c1"
    assert update["options"]["kind"] == "UpdateOptions"
    assert delete["operation"] == "DELETE"
    assert delete["object"] is None
    assert delete["oldObject"]["metadata"]["name"] == "c1"
    assert delete["options"]["kind"] == "DeleteOptions"


def test_mutating_patch_is_applied_and_warnings_reach_kubectl(
    kubectl: Kubectl, scoped: str, webhook_server: WebhookServer, configure: Configured
) -> None:
    configure.add(
        MUTATING, _webhook(webhook_server, "label.admission.sympozium.test", "mutate", scoped)
    )
    result = kubectl("create", "configmap", "c1", "-n", scoped)
    assert "Warning: the mutating webhook added a label" in result.stderr
    got = json.loads(kubectl("get", "configmap", "c1", "-n", scoped, "-o", "json").stdout)
    assert got["metadata"]["labels"] == {"mutated": "yes"}


def test_mutation_runs_before_validation_and_validating_sees_the_result(
    kubectl: Kubectl, scoped: str, webhook_server: WebhookServer, configure: Configured
) -> None:
    configure.add(
        MUTATING, _webhook(webhook_server, "label.admission.sympozium.test", "mutate", scoped)
    )
    configure.add(
        VALIDATING, _webhook(webhook_server, "allow.admission.sympozium.test", "allow", scoped)
    )
    kubectl("create", "configmap", "c1", "-n", scoped)
    request = [
        r["request"] for r in webhook_server.seen("allow") if r["request"]["namespace"] == scoped
    ][-1]
    assert request["object"]["metadata"]["labels"] == {"mutated": "yes"}


def test_timeout_follows_failure_policy(
    kubectl: Kubectl, scoped: str, webhook_server: WebhookServer, configure: Configured
) -> None:
    name = configure.add(
        VALIDATING,
        _webhook(webhook_server, "slow.admission.sympozium.test", "slow", scoped, timeoutSeconds=1),
    )
    failed = kubectl("create", "configmap", "c1", "-n", scoped, check=False)
    assert failed.returncode != 0
    assert (
        'Internal error occurred: failed calling webhook "slow.admission.sympozium.test": '
        "failed to call webhook: Post" in failed.stderr
    )
    assert "context deadline exceeded" in failed.stderr
    kubectl(
        "patch",
        "validatingwebhookconfiguration",
        name,
        "--type=json",
        "-p",
        '[{"op": "add", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}]',
    )
    kubectl("create", "configmap", "c1", "-n", scoped)
    kubectl("get", "configmap", "c1", "-n", scoped)


def test_unreachable_webhook_with_ignore_is_skipped(
    kubectl: Kubectl, scoped: str, webhook_server: WebhookServer, configure: Configured
) -> None:
    webhook = _webhook(
        webhook_server, "gone.admission.sympozium.test", "deny", scoped, failurePolicy="Ignore"
    )
    webhook["clientConfig"]["url"] = "https://127.0.0.1:1/deny"
    configure.add(VALIDATING, webhook)
    kubectl("create", "configmap", "c1", "-n", scoped)


def test_selectors_that_do_not_match_skip_the_webhook(
    kubectl: Kubectl,
    scoped: str,
    namespace: str,
    webhook_server: WebhookServer,
    configure: Configured,
) -> None:
    # An objectSelector: only labelled configmaps are sent to the webhook.
    configure.add(
        VALIDATING,
        _webhook(
            webhook_server,
            "deny.admission.sympozium.test",
            "deny",
            scoped,
            objectSelector={"matchLabels": {"deny": "yes"}},
        ),
    )
    kubectl("create", "configmap", "plain", "-n", scoped)
    labelled: Obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "labelled", "namespace": scoped, "labels": {"deny": "yes"}},
    }
    refused = kubectl("create", "-f", "-", stdin=json.dumps(labelled), check=False)
    assert "denied the request: no configmaps here" in refused.stderr
    # A namespaceSelector: another namespace is not sent to the webhook.
    other = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", other)
    try:
        labelled["metadata"]["namespace"] = other
        kubectl("create", "-f", "-", stdin=json.dumps(labelled))
    finally:
        kubectl("delete", "namespace", other, "--wait=false", check=False)
    assert not [r for r in webhook_server.seen("deny") if r["request"]["namespace"] == other]


def test_dry_run_needs_side_effect_free_webhooks(
    kubectl: Kubectl, scoped: str, webhook_server: WebhookServer, configure: Configured
) -> None:
    configure.add(
        VALIDATING,
        _webhook(webhook_server, "allow.admission.sympozium.test", "allow", scoped),
    )
    kubectl("create", "configmap", "c1", "-n", scoped, "--dry-run=server")
    request = [
        r["request"] for r in webhook_server.seen("allow") if r["request"]["namespace"] == scoped
    ][-1]
    assert request["dryRun"] is True
    assert request["options"]["dryRun"] == ["All"]
    configure.add(
        VALIDATING,
        _webhook(
            webhook_server,
            "effects.admission.sympozium.test",
            "allow",
            scoped,
            sideEffects="Unknown",
        ),
    )
    refused = kubectl("create", "configmap", "c2", "-n", scoped, "--dry-run=server", check=False)
    assert (
        'admission webhook "effects.admission.sympozium.test" does not support dry run'
        in refused.stderr
    )
