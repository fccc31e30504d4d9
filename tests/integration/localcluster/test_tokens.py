"""Service-account tokens over the wire: TokenRequest via kubectl, authentication, revocation."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from tests.integration.conftest import Kubectl, RunningCluster
from tests.integration.http import Http


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    loaded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return loaded


def wait_for_default_account(kubectl: Kubectl, namespace: str) -> None:
    deadline = time.monotonic() + 20
    while kubectl("get", "serviceaccount", "default", "-n", namespace, check=False).returncode:
        assert time.monotonic() < deadline, "the default service account never appeared"
        time.sleep(0.2)


async def test_kubectl_create_token_authenticates(
    kubectl: Kubectl, namespace: str, cluster: RunningCluster
) -> None:
    wait_for_default_account(kubectl, namespace)
    token = kubectl("create", "token", "default", "-n", namespace).stdout.strip()
    found = claims(token)
    assert found["sub"] == f"system:serviceaccount:{namespace}:default"
    assert found["exp"] - found["iat"] == 3600

    # Authenticated: discovery is open to every authenticated user ...
    version = kubectl(f"--token={token}", "get", "--raw", "/version")
    assert version.returncode == 0 and '"major"' in version.stdout
    http = Http(cluster, token=token)
    try:
        # ... but RBAC grants this account nothing else: 403, not 401.
        status, body, _ = await http.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")
        assert status == 403 and body["reason"] == "Forbidden", body
    finally:
        await http.close()


async def test_duration_is_honoured_and_validated(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "serviceaccount", "robot", "-n", namespace)
    token = kubectl("create", "token", "robot", "-n", namespace, "--duration=10m").stdout.strip()
    found = claims(token)
    assert found["exp"] - found["iat"] == 600
    too_short = kubectl("create", "token", "robot", "-n", namespace, "--duration=5m", check=False)
    assert too_short.returncode != 0
    assert "may not specify a duration less than 10 minutes" in too_short.stderr
    missing = kubectl("create", "token", "nobody", "-n", namespace, check=False)
    assert missing.returncode != 0
    assert 'serviceaccounts "nobody" not found' in missing.stderr


async def test_token_request_api_and_revocation(cluster: RunningCluster, namespace: str) -> None:
    admin = Http(cluster)
    try:
        status, account, _ = await admin.request(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "bot"}}
        )
        assert status == 201, account
        status, answer, _ = await admin.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/bot/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 1200},
            },
        )
        assert status == 201, answer
        assert answer["kind"] == "TokenRequest"
        assert answer["status"]["expirationTimestamp"]
        token = answer["status"]["token"]
        assert claims(token)["kubernetes.io"]["serviceaccount"]["uid"] == account["metadata"]["uid"]

        as_bot = Http(cluster, token=token)
        try:
            status, body, _ = await as_bot.request("GET", "/api")
            assert status == 200, body
            status, _, _ = await admin.request(
                "DELETE", f"/api/v1/namespaces/{namespace}/serviceaccounts/bot"
            )
            assert status == 200
            status, body, _ = await as_bot.request("GET", f"/api/v1/namespaces/{namespace}/secrets")
            assert status == 401
            assert body["reason"] == "Unauthorized"
        finally:
            await as_bot.close()

        status, body, _ = await admin.request(
            "GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/bot/token"
        )
        assert status == 405
    finally:
        await admin.close()


async def test_garbage_token_is_unauthorized(cluster: RunningCluster, namespace: str) -> None:
    for bad in ("garbage", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"):
        client = Http(cluster, token=bad)
        try:
            status, body, _ = await client.request("GET", f"/api/v1/namespaces/{namespace}/pods")
            assert status == 401
            assert body["reason"] == "Unauthorized"
        finally:
            await client.close()


def test_discovery_lists_the_token_subresource(kubectl: Kubectl) -> None:
    raw = json.loads(kubectl("get", "--raw", "/api/v1").stdout)
    token = next(r for r in raw["resources"] if r["name"] == "serviceaccounts/token")
    assert token["verbs"] == ["create"]
    assert token["kind"] == "TokenRequest"
