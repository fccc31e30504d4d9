"""Who is calling: the admin token, and service-account tokens as signed JWTs.

Service-account tokens are ES256 JWTs shaped like kube-apiserver's bound tokens (claims
`iss`, `sub`, `aud`, `exp`, `iat`, `nbf`, `jti` and `kubernetes.io` {namespace,
serviceaccount, pod?}). The signing key is made once per data dir (`pki/sa.key`). A token
authenticates only while it is unexpired, names one of the API server's audiences, and its
service account (and bound pod, if any) still exists with the same uid — so deleting the
service account revokes its tokens, as upstream.

`TokenRequest` (`serviceaccounts/<name>/token`) and the node's projected
`serviceAccountToken` volumes both issue through `Tokens.issue`.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from localcluster.storage import Store

Obj = dict[str, Any]

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES: tuple[str, ...] = (ISSUER,)
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600  # upstream refuses shorter TokenRequests
MAX_EXPIRATION_SECONDS = 1 << 32
LEEWAY_SECONDS = 60  # clock skew tolerated on exp/nbf, as go-jose's default
ADMIN_USERNAME = "kubernetes-admin"
_SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated user, as authorisers and admission reviews see it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> Obj:
        """The `authentication.k8s.io/v1` UserInfo shape."""
        shown: Obj = {"username": self.username}
        if self.uid:
            shown["uid"] = self.uid
        shown["groups"] = list(self.groups)
        if self.extra:
            shown["extra"] = {k: list(v) for k, v in self.extra.items()}
        return shown

    @property
    def service_account(self) -> tuple[str, str] | None:
        """(namespace, name) for a service account, else None."""
        if not self.username.startswith(_SA_PREFIX):
            return None
        namespace, _, name = self.username[len(_SA_PREFIX) :].partition(":")
        return namespace, name


ADMIN = UserInfo(ADMIN_USERNAME, groups=("system:masters", "system:authenticated"))


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    return UserInfo(
        f"{_SA_PREFIX}{namespace}:{name}",
        uid,
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


@dataclass(frozen=True)
class BoundPod:
    name: str
    uid: str


@dataclass(frozen=True)
class Issued:
    token: str
    expiration: int  # unix seconds


class Tokens:
    """Issues and verifies service-account tokens against the objects in `store`."""

    def __init__(self, store: Store, key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self.store = store
        self._key = key if key is not None else ec.generate_private_key(ec.SECP256R1())
        public = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        digest = hashes.Hash(hashes.SHA256())
        digest.update(public)
        self.key_id = _b64(digest.finalize())
        # The node's projected tokens: (pod uid, path, audiences, seconds) -> issued.
        self._pod_tokens: dict[tuple[str, str, tuple[str, ...], int], tuple[Issued, int, str]] = {}

    @classmethod
    def load(cls, store: Store, path: Path) -> Tokens:
        """Reads the signing key at `path`, creating it (mode 0600) the first time."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{path}: not an EC private key")
            return cls(store, key)
        key = ec.generate_private_key(ec.SECP256R1())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        os.chmod(tmp, 0o600)
        tmp.replace(path)
        return cls(store, key)

    # ---- issuing

    def issue(
        self,
        namespace: str,
        name: str,
        uid: str,
        expiration_seconds: int = DEFAULT_EXPIRATION_SECONDS,
        audiences: list[str] | tuple[str, ...] = (),
        pod: BoundPod | None = None,
        now: float | None = None,
    ) -> Issued:
        issued_at = int(time.time() if now is None else now)
        expiration = issued_at + int(expiration_seconds)
        kube: Obj = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if pod is not None:
            kube["pod"] = {"name": pod.name, "uid": pod.uid}
        claims: Obj = {
            "aud": list(audiences) or list(API_AUDIENCES),
            "exp": expiration,
            "iat": issued_at,
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": kube,
            "nbf": issued_at,
            "sub": f"{_SA_PREFIX}{namespace}:{name}",
        }
        header = {"alg": "ES256", "kid": self.key_id}
        signing_input = f"{_b64_json(header)}.{_b64_json(claims)}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return Issued(f"{signing_input}.{_b64(signature)}", expiration)

    def pod_token(self, pod: Obj, projection: Obj) -> bytes:
        """The token file of a pod's projected `serviceAccountToken`, renewed at 80% of its life.

        Raises LookupError while the pod's service account does not exist.
        """
        meta = pod.get("metadata") or {}
        namespace = str(meta.get("namespace", ""))
        account = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
        seconds = int(projection.get("expirationSeconds") or DEFAULT_EXPIRATION_SECONDS)
        audience = str(projection.get("audience") or "")
        audiences = (audience,) if audience else ()
        key = (str(meta.get("uid", "")), str(projection.get("path", "")), audiences, seconds)
        sa = self.store.get("serviceaccounts", (namespace, account))
        if sa is None:
            raise LookupError(f'serviceaccount "{account}" not found')
        sa_uid = str(sa["metadata"].get("uid", ""))
        now = int(time.time())
        cached = self._pod_tokens.get(key)
        if cached is not None and now < cached[1] and cached[2] == sa_uid:
            return cached[0].token.encode()
        for stale in [k for k, v in self._pod_tokens.items() if v[0].expiration < now]:
            del self._pod_tokens[stale]
        issued = self.issue(
            namespace,
            account,
            sa_uid,
            seconds,
            audiences,
            BoundPod(str(meta.get("name", "")), str(meta.get("uid", ""))),
            now=now,
        )
        self._pod_tokens[key] = (issued, now + int(seconds * 0.8), sa_uid)
        return issued.token.encode()

    # ---- verifying

    def verify(
        self,
        token: str,
        audiences: tuple[str, ...] = API_AUDIENCES,
        now: float | None = None,
    ) -> UserInfo | None:
        """The service account a token authenticates, None if it does not."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except ValueError:
            return None
        if not isinstance(header, dict) or header.get("alg") != "ES256" or len(signature) != 64:
            return None
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            self._key.public_key().verify(
                der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            return None
        return self._check_claims(claims, audiences, time.time() if now is None else now)

    def _check_claims(self, claims: Any, audiences: tuple[str, ...], now: float) -> UserInfo | None:
        if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
            return None
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int) or not isinstance(nbf, int):
            return None
        if now > exp + LEEWAY_SECONDS or now < nbf - LEEWAY_SECONDS:
            return None
        aud = claims.get("aud")
        aud_list = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not set(aud_list) & set(audiences):
            return None
        kube = claims.get("kubernetes.io")
        if not isinstance(kube, dict):
            return None
        namespace = kube.get("namespace")
        account = kube.get("serviceaccount") or {}
        if not isinstance(namespace, str) or not isinstance(account, dict):
            return None
        name, uid = account.get("name"), account.get("uid")
        if claims.get("sub") != f"{_SA_PREFIX}{namespace}:{name}":
            return None
        if not _alive(self.store.get("serviceaccounts", (namespace, str(name))), uid):
            return None
        user = service_account_user(namespace, str(name), str(uid))
        pod = kube.get("pod")
        if isinstance(pod, dict):
            if not _alive(
                self.store.get("pods", (namespace, str(pod.get("name")))), pod.get("uid")
            ):
                return None
            user.extra["authentication.kubernetes.io/pod-name"] = [str(pod.get("name"))]
            user.extra["authentication.kubernetes.io/pod-uid"] = [str(pod.get("uid"))]
        jti = claims.get("jti")
        if isinstance(jti, str) and jti:
            user.extra["authentication.kubernetes.io/credential-id"] = [f"JTI={jti}"]
        return user


def _alive(obj: Obj | None, uid: object) -> bool:
    if obj is None:
        return False
    meta = obj.get("metadata") or {}
    # A deletionTimestamp alone does not revoke: a terminating pod keeps its token until gone.
    return bool(uid) and meta.get("uid") == uid


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_json(value: Obj) -> str:
    return _b64(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None
