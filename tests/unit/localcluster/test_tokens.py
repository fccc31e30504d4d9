"""Service-account tokens: signed JWTs that die with their service account."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from localcluster import tokens
from localcluster.storage import ADDED, DELETED, Store
from localcluster.tokens import Tokens


async def put(store: Store, bucket: str, name: str, uid: str) -> None:
    rv = store.next_rv()
    obj = {"metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": str(rv)}}
    await store.write(bucket, ("ns", name), obj, rv=rv, event_type=ADDED)


async def remove(store: Store, bucket: str, name: str) -> None:
    rv = store.next_rv()
    await store.write(bucket, ("ns", name), None, rv=rv, event_type=DELETED)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = Store(tmp_path / "state.sqlite")
    opened.open()
    await put(opened, "serviceaccounts", "robot", "sa-uid-1")
    yield opened
    await opened.close()


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    loaded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return loaded


async def test_issue_then_verify(store: Store) -> None:
    issuer = Tokens(store)
    issued = issuer.issue("ns", "robot", "sa-uid-1", 600)
    found = claims(issued.token)
    assert found["sub"] == "system:serviceaccount:ns:robot"
    assert found["aud"] == list(tokens.API_AUDIENCES)
    assert found["exp"] - found["iat"] == 600 and found["nbf"] == found["iat"]
    assert found["kubernetes.io"] == {
        "namespace": "ns",
        "serviceaccount": {"name": "robot", "uid": "sa-uid-1"},
    }
    user = issuer.verify(issued.token)
    assert user is not None
    assert user.username == "system:serviceaccount:ns:robot"
    assert user.uid == "sa-uid-1"
    assert user.groups == (
        "system:serviceaccounts",
        "system:serviceaccounts:ns",
        "system:authenticated",
    )
    assert user.service_account == ("ns", "robot")
    assert user.to_dict()["username"] == "system:serviceaccount:ns:robot"


async def test_expired_token_is_refused(store: Store) -> None:
    issuer = Tokens(store)
    now = time.time()
    issued = issuer.issue("ns", "robot", "sa-uid-1", 600, now=now)
    assert issuer.verify(issued.token, now=now + 600) is not None  # within the leeway
    assert issuer.verify(issued.token, now=now + 600 + tokens.LEEWAY_SECONDS + 1) is None
    assert issuer.verify(issued.token, now=now - tokens.LEEWAY_SECONDS - 1) is None  # not yet


async def test_tampered_or_foreign_tokens_are_refused(store: Store) -> None:
    issuer = Tokens(store)
    token = issuer.issue("ns", "robot", "sa-uid-1").token
    header, payload, signature = token.split(".")
    changed = claims(token)
    changed["sub"] = "system:serviceaccount:ns:other"
    forged = base64.urlsafe_b64encode(json.dumps(changed).encode()).rstrip(b"=").decode()
    assert issuer.verify(f"{header}.{forged}.{signature}") is None
    assert issuer.verify(f"{header}.{payload}.{signature[:-4]}AAAA") is None
    assert issuer.verify("garbage") is None
    assert issuer.verify("a.b.c") is None
    assert Tokens(store).verify(token) is None  # another key


async def test_other_audiences_do_not_authenticate_to_the_api(store: Store) -> None:
    issuer = Tokens(store)
    token = issuer.issue("ns", "robot", "sa-uid-1", audiences=["vault"]).token
    assert issuer.verify(token) is None
    assert issuer.verify(token, audiences=("vault",)) is not None


async def test_deleted_or_recreated_service_account_revokes(store: Store) -> None:
    issuer = Tokens(store)
    token = issuer.issue("ns", "robot", "sa-uid-1").token
    await remove(store, "serviceaccounts", "robot")
    assert issuer.verify(token) is None
    await put(store, "serviceaccounts", "robot", "sa-uid-2")
    assert issuer.verify(token) is None


async def test_pod_bound_token_dies_with_the_pod(store: Store) -> None:
    issuer = Tokens(store)
    await put(store, "pods", "p", "pod-uid")
    token = issuer.issue("ns", "robot", "sa-uid-1", pod=tokens.BoundPod("p", "pod-uid")).token
    assert claims(token)["kubernetes.io"]["pod"] == {"name": "p", "uid": "pod-uid"}
    user = issuer.verify(token)
    assert user is not None
    assert user.extra["authentication.kubernetes.io/pod-name"] == ["p"]
    await remove(store, "pods", "p")
    assert issuer.verify(token) is None


async def test_key_is_kept_in_the_data_dir(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "pki" / "sa.key"
    token = Tokens.load(store, path).issue("ns", "robot", "sa-uid-1").token
    assert path.stat().st_mode & 0o777 == 0o600
    assert Tokens.load(store, path).verify(token) is not None


async def test_pod_token_is_cached_and_needs_the_service_account(store: Store) -> None:
    issuer = Tokens(store)
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "pod-uid"},
        "spec": {"serviceAccountName": "robot"},
    }
    await put(store, "pods", "p", "pod-uid")
    projection = {"path": "token", "expirationSeconds": 7200}
    first = issuer.pod_token(pod, projection)
    assert issuer.pod_token(pod, projection) == first
    found = claims(first.decode())
    assert found["exp"] - found["iat"] == 7200
    assert issuer.verify(first.decode()) is not None
    with pytest.raises(LookupError):
        issuer.pod_token({**pod, "spec": {"serviceAccountName": "missing"}}, projection)


def test_admin_user() -> None:
    assert tokens.ADMIN.to_dict() == {
        "username": "kubernetes-admin",
        "groups": ["system:masters", "system:authenticated"],
    }


async def test_projected_volume_holds_a_real_token(store: Store) -> None:
    from localcluster.node import volumes

    issuer = Tokens(store)
    await put(store, "pods", "p", "pod-uid")
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "pod-uid"},
        "spec": {"serviceAccountName": "robot"},
    }
    volume = {"projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}

    async def fetch(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    files = await volumes.volume_files(pod, volume, fetch, issuer.pod_token)
    assert files is not None
    user = issuer.verify(files["token"][0].decode())
    assert user is not None and user.username == "system:serviceaccount:ns:robot"
    with pytest.raises(volumes.VolumeError, match='serviceaccount "gone" not found'):
        await volumes.volume_files(
            {**pod, "spec": {"serviceAccountName": "gone"}}, volume, fetch, issuer.pod_token
        )
