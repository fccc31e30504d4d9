"""Error mapping, configuration loading, REST mapping and stream parsing, without a server."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar, cast

import aiohttp
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, ConfigDict, Field

from controller import config as config_module
from controller.client import WatchEvent, _encode, _events, _kind_ref
from controller.config import ClientConfig
from controller.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Cause,
    ConfigError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NoKindMatch,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    api_error,
    status_error,
)
from controller.restmapper import Resource, RESTMapper, parse_resource_list


def status(code: int, reason: str, message: str = "m", **details: Any) -> bytes:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    if details:
        body["details"] = details
    return json.dumps(body).encode()


# ---- errors


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (400, "BadRequest", BadRequest),
        (401, "Unauthorized", Unauthorized),
        (403, "Forbidden", Forbidden),
        (404, "NotFound", NotFound),
        (409, "AlreadyExists", AlreadyExists),
        (409, "Conflict", Conflict),
        (410, "Expired", Gone),
        (410, "Gone", Gone),
        (415, "UnsupportedMediaType", UnsupportedMediaType),
        (422, "Invalid", Invalid),
        (429, "TooManyRequests", TooManyRequests),
        (500, "InternalError", ServerError),
        (503, "ServiceUnavailable", ServerError),
        (504, "Timeout", ServerError),
        (405, "MethodNotAllowed", ApiError),
    ],
)
def test_status_codes_pick_the_subclass(code: int, reason: str, cls: type[ApiError]) -> None:
    error = api_error(code, status(code, reason, "why"), {})
    assert type(error) is cls
    assert (error.status, error.reason, error.message) == (code, reason, "why")
    assert str(error) == f"{code} {reason}: why"


def test_invalid_carries_its_causes() -> None:
    body = status(
        422,
        "Invalid",
        'ConfigMap "Bad" is invalid',
        name="Bad",
        kind="ConfigMap",
        causes=[
            {
                "reason": "FieldValueInvalid",
                "message": "a lowercase name",
                "field": "metadata.name",
            },
            {"reason": "FieldValueRequired", "message": "Required value"},
        ],
    )
    error = api_error(422, body, None)
    assert isinstance(error, Invalid)
    assert error.details["name"] == "Bad"
    assert error.causes == [
        Cause("metadata.name", "FieldValueInvalid", "a lowercase name"),
        Cause("", "FieldValueRequired", "Required value"),
    ]
    field, reason, message = error.causes[0]
    assert (field, reason, message) == ("metadata.name", "FieldValueInvalid", "a lowercase name")


def test_retry_after_from_header_or_details() -> None:
    throttled = api_error(429, status(429, "TooManyRequests"), {"Retry-After": "3"})
    assert isinstance(throttled, TooManyRequests) and throttled.retry_after == 3.0
    from_details = api_error(429, status(429, "TooManyRequests", retryAfterSeconds=7), {})
    assert from_details.retry_after == 7.0
    unavailable = api_error(503, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert isinstance(unavailable, ServerError) and unavailable.retry_after is None
    assert api_error(404, status(404, "NotFound"), {}).retry_after is None


def test_bodies_that_are_not_a_status() -> None:
    html = api_error(502, b"<html>Bad Gateway</html>", {})
    assert isinstance(html, ServerError)
    assert html.message == "<html>Bad Gateway</html>" and html.reason == ""
    empty = api_error(404, b"", None)
    assert isinstance(empty, NotFound) and empty.reason == "NotFound" and empty.message
    text = api_error(403, "forbidden: no", {})
    assert isinstance(text, Forbidden) and text.message == "forbidden: no"
    broken = api_error(409, b'{"kind": "Status", "reason": ', {})
    assert isinstance(broken, Conflict) and broken.message.startswith("{")
    not_status = api_error(400, b'["a list"]', {})
    assert isinstance(not_status, BadRequest) and not_status.details == {}
    assert api_error(418, b"teapot", {}).status == 418


def test_watch_error_objects_use_their_own_code() -> None:
    gone = status_error({"kind": "Status", "code": 410, "reason": "Expired", "message": "old"})
    assert isinstance(gone, Gone) and gone.message == "old"
    assert isinstance(status_error({"message": "no code"}), ServerError)


def test_no_kind_match_is_a_not_found() -> None:
    error = NoKindMatch("example.com/v1", "Thing")
    assert isinstance(error, NotFound) and error.status == 404
    assert "Thing" in error.message and error.details["group"] == "example.com"


# ---- config


def kubeconfig_dict(**user: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c1",
                "cluster": {"server": "https://one:6443/", "certificate-authority": "ca.crt"},
            },
            {
                "name": "c2",
                "cluster": {
                    "server": "https://two:6443",
                    "insecure-skip-tls-verify": True,
                    "tls-server-name": "kubernetes",
                },
            },
        ],
        "users": [{"name": "u1", "user": user}, {"name": "u2", "user": {"token": "secret-2"}}],
        "contexts": [
            {"name": "first", "context": {"cluster": "c1", "user": "u1", "namespace": "ns1"}},
            {"name": "second", "context": {"cluster": "c2", "user": "u2"}},
        ],
        "current-context": "first",
    }


def write_kubeconfig(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / "config"
    path.write_text(yaml.safe_dump(data))
    return path


async def test_kubeconfig_contexts_and_relative_paths(tmp_path: Path) -> None:
    path = write_kubeconfig(
        tmp_path, kubeconfig_dict(tokenFile="token", **{"client-certificate": "/abs/tls.crt"})
    )
    (tmp_path / "token").write_text("from-file\n")
    first = await ClientConfig.from_kubeconfig(path)
    assert first.server == "https://one:6443"
    assert first.ca_file == str(tmp_path / "ca.crt")
    assert first.client_cert_file == "/abs/tls.crt"
    assert first.namespace == "ns1" and first.refreshes_auth
    assert await first.authorization() == "Bearer from-file"
    (tmp_path / "token").write_text("rotated")
    assert await first.authorization() == "Bearer rotated"

    second = await ClientConfig.from_kubeconfig(path, context="second")
    assert second.insecure and second.tls_server_name == "kubernetes"
    assert second.namespace == "default" and not second.refreshes_auth
    assert await second.authorization() == "Bearer secret-2"
    assert "secret-2" not in repr(second)

    with pytest.raises(ConfigError, match="no context"):
        await ClientConfig.from_kubeconfig(path, context="third")
    with pytest.raises(ConfigError):
        await ClientConfig.from_kubeconfig(tmp_path / "missing")


async def test_kubeconfig_inline_data_and_basic_auth(tmp_path: Path) -> None:
    data = kubeconfig_dict(username="admin", password="secret")
    data["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(b"PEM").decode()
    config = await ClientConfig.from_kubeconfig_dict(data, base_dir=tmp_path)
    assert config.ca_data == b"PEM"
    assert await config.authorization() == "Basic " + base64.b64encode(b"admin:secret").decode()
    nobody = await ClientConfig.from_kubeconfig_dict(kubeconfig_dict())
    assert await nobody.authorization() is None


async def test_exec_plugin_credentials(tmp_path: Path) -> None:
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": "from-plugin"},
    }
    (tmp_path / "ca.crt").write_text("PEM")  # the loader insists the CA file exists
    script = tmp_path / "plugin.py"
    script.write_text(f"import json\nprint(json.dumps({credential!r}))\n")
    data = kubeconfig_dict(
        exec={
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(script)],
            "interactiveMode": "Never",
        }
    )
    config = await ClientConfig.from_kubeconfig_dict(data, base_dir=tmp_path)
    assert config.refreshes_auth
    assert await config.authorization() == "Bearer from-plugin"

    script.write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(ConfigError, match="plugin"):
        await ClientConfig.from_kubeconfig_dict(data, base_dir=tmp_path)


def service_account(directory: Path, namespace: str | None = "team") -> Path:
    directory.mkdir()
    (directory / "token").write_text("sa-token\n")
    (directory / "ca.crt").write_text("PEM")
    if namespace is not None:
        (directory / "namespace").write_text(namespace)
    return directory


async def test_in_cluster_layout(tmp_path: Path) -> None:
    sa = service_account(tmp_path / "sa")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = ClientConfig.in_cluster(sa, environ=env)
    assert config.server == "https://10.0.0.1:443" and config.namespace == "team"
    assert config.ca_file == str(sa / "ca.crt") and config.token_file == str(sa / "token")
    assert await config.authorization() == "Bearer sa-token"

    bare = service_account(tmp_path / "bare", namespace=None)
    v6 = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    config = ClientConfig.in_cluster(bare, environ={**v6, "POD_NAMESPACE": "pod-ns"})
    assert config.server == "https://[fd00::1]:6443" and config.namespace == "pod-ns"
    assert ClientConfig.in_cluster(bare, environ=v6).namespace == "default"

    with pytest.raises(ConfigError):
        ClientConfig.in_cluster(sa, environ={})
    with pytest.raises(ConfigError):
        ClientConfig.in_cluster(tmp_path / "absent", environ=env)


async def test_load_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(config_module, "DEFAULT_KUBECONFIG", home / "config")
    explicit = write_kubeconfig(tmp_path, kubeconfig_dict(token="t"))
    other = kubeconfig_dict(token="t")
    other["current-context"] = "second"
    from_env = tmp_path / "env-config"
    from_env.write_text(yaml.safe_dump(other))
    sa = service_account(tmp_path / "sa")
    cluster_env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    env = {"KUBECONFIG": f"{tmp_path / 'missing'}:{from_env}", **cluster_env}

    loaded = await ClientConfig.load(explicit, environ=env, service_account_dir=sa)
    assert loaded.server == "https://one:6443"
    loaded = await ClientConfig.load(explicit, "second", environ=env, service_account_dir=sa)
    assert loaded.server == "https://two:6443"
    loaded = await ClientConfig.load(environ=env, service_account_dir=sa)
    assert loaded.server == "https://two:6443"
    write_kubeconfig(home, kubeconfig_dict(token="t"))
    loaded = await ClientConfig.load(environ=cluster_env, service_account_dir=sa)
    assert loaded.server == "https://one:6443"
    (home / "config").unlink()
    loaded = await ClientConfig.load(environ=cluster_env, service_account_dir=sa)
    assert loaded.server == "https://10.0.0.1:443"
    with pytest.raises(ConfigError, match="not running in a cluster"):
        await ClientConfig.load(environ={}, service_account_dir=sa)


def self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_ssl_contexts(tmp_path: Path) -> None:
    cert, key = self_signed()
    trusting = ClientConfig("https://127.0.0.1:1", ca_data=cert).ssl_context()
    assert trusting is not None and trusting.verify_mode == ssl.CERT_REQUIRED
    assert len(trusting.get_ca_certs()) == 1
    insecure = ClientConfig("https://127.0.0.1:1", insecure=True).ssl_context()
    assert insecure is not None and insecure.verify_mode == ssl.CERT_NONE
    assert not insecure.check_hostname
    with_cert = ClientConfig(
        "https://127.0.0.1:1", ca_data=cert, client_cert_data=cert, client_key_data=key
    )
    assert with_cert.ssl_context() is not None
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    from_files = ClientConfig(
        "https://127.0.0.1:1",
        client_cert_file=str(tmp_path / "tls.crt"),
        client_key_file=str(tmp_path / "tls.key"),
    )
    assert from_files.ssl_context() is not None
    assert ClientConfig("http://127.0.0.1:8080").ssl_context() is None


# ---- REST mapping


CORE_V1 = {
    "kind": "APIResourceList",
    "groupVersion": "v1",
    "resources": [
        {"name": "configmaps", "namespaced": True, "kind": "ConfigMap", "verbs": ["get"]},
        {"name": "namespaces", "namespaced": False, "kind": "Namespace", "verbs": ["get"]},
        {"name": "namespaces/status", "namespaced": False, "kind": "Namespace"},
        {"name": "pods", "namespaced": True, "kind": "Pod"},
        {"name": "pods/status", "namespaced": True, "kind": "Pod"},
        {"name": "pods/eviction", "namespaced": True, "kind": "Eviction", "group": "policy"},
    ],
}


class FakeDiscovery:
    def __init__(self, documents: dict[str, Any]) -> None:
        self.documents = documents
        self.calls: list[str] = []

    async def __call__(self, path: str) -> Any:
        self.calls.append(path)
        await asyncio.sleep(0)
        if path not in self.documents:
            raise NotFound(404, "NotFound", "the server could not find the requested resource")
        return self.documents[path]


def test_parse_resource_list() -> None:
    by_kind = {r.kind: r for r in parse_resource_list("v1", CORE_V1)}
    assert set(by_kind) == {"ConfigMap", "Namespace", "Pod"}
    pods = by_kind["Pod"]
    assert pods.subresources == {"status", "eviction"} and pods.namespaced
    assert by_kind["ConfigMap"].verbs == {"get"}
    assert pods.path() == "/api/v1/pods"
    assert pods.path("ns") == "/api/v1/namespaces/ns/pods"
    assert pods.path("ns", "p", "status") == "/api/v1/namespaces/ns/pods/p/status"
    namespaces = by_kind["Namespace"]
    assert namespaces.path("ignored", "n") == "/api/v1/namespaces/n"
    deployments = Resource("apps", "v1", "Deployment", "deployments", True)
    assert deployments.api_version == "apps/v1"
    assert deployments.path("x") == "/apis/apps/v1/namespaces/x/deployments"


async def test_mapper_caches_and_refreshes_once_on_a_miss() -> None:
    fetch = FakeDiscovery({"/api/v1": CORE_V1})
    mapper = RESTMapper(fetch)
    assert mapper.cached("v1", "Pod") is None
    assert (await mapper.resource("v1", "Pod")).plural == "pods"
    assert (await mapper.resource("v1", "ConfigMap")).plural == "configmaps"
    assert fetch.calls == ["/api/v1"]
    assert mapper.cached("v1", "Pod") is not None

    with pytest.raises(NoKindMatch):
        await mapper.resource("v1", "Secret")
    assert fetch.calls == ["/api/v1", "/api/v1"]  # one refresh for the miss
    fetch.documents["/api/v1"] = {
        **CORE_V1,
        "resources": [
            *CORE_V1["resources"],
            {"name": "secrets", "namespaced": True, "kind": "Secret"},
        ],
    }
    assert (await mapper.resource("v1", "Secret")).plural == "secrets"

    with pytest.raises(NoKindMatch):
        await mapper.resource("example.com/v1", "Widget")  # the group is not served yet
    fetch.documents["/apis/example.com/v1"] = {
        "resources": [{"name": "widgets", "namespaced": False, "kind": "Widget"}]
    }
    widget = await mapper.resource("example.com/v1", "Widget")
    assert widget.group == "example.com" and not widget.namespaced

    mapper.invalidate("example.com/v1")
    assert mapper.cached("example.com/v1", "Widget") is None
    mapper.invalidate()
    assert mapper.cached("v1", "Pod") is None


async def test_concurrent_misses_share_one_fetch() -> None:
    fetch = FakeDiscovery({"/apis/apps/v1": {"resources": []}})
    mapper = RESTMapper(fetch)
    results = await asyncio.gather(
        *(mapper.resource("apps/v1", "Deployment") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, NoKindMatch) for r in results)
    assert fetch.calls == ["/apis/apps/v1"]
    mapper.add([Resource("apps", "v1", "Deployment", "deployments", True)])
    assert (await mapper.resource("apps/v1", "Deployment")).plural == "deployments"
    assert fetch.calls == ["/apis/apps/v1"]


# ---- client helpers


class Thing(BaseModel):
    API_VERSION: ClassVar[str] = "example.com/v1"
    KIND: ClassVar[str] = "Thing"
    model_config = ConfigDict(populate_by_name=True)

    metadata: dict[str, Any] = Field(default_factory=dict)
    spec_size: int | None = Field(default=None, alias="specSize")
    note: str | None = None


def test_models_stand_for_their_kind() -> None:
    assert _kind_ref(Thing) == ("example.com/v1", "Thing", Thing)
    assert _kind_ref(("v1", "Pod")) == ("v1", "Pod", None)
    body, model = _encode(Thing(metadata={"name": "t"}, specSize=2))
    assert model is Thing
    assert body == {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t"},
        "specSize": 2,
    }
    plain = {"apiVersion": "v1", "kind": "Pod"}
    assert _encode(plain) == (plain, None)
    with pytest.raises(TypeError):
        _encode(cast(Any, ["not", "an", "object"]))


class FakeContent:
    def __init__(self, chunks: list[bytes], error: Exception | None = None) -> None:
        self._chunks = chunks
        self._error = error

    async def readany(self) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        if self._error is not None:
            raise self._error
        return b""


class FakeResponse:
    def __init__(self, content: FakeContent) -> None:
        self.content = content


async def drain(chunks: list[bytes], error: Exception | None = None) -> list[WatchEvent]:
    response = cast(aiohttp.ClientResponse, FakeResponse(FakeContent(chunks, error)))
    stream: AsyncIterator[WatchEvent] = _events(response)
    return [event async for event in stream]


def line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


async def test_watch_stream_splits_lines_across_chunks() -> None:
    big = {"metadata": {"name": "big"}, "data": {"x": "y" * 300_000}}
    stream = line("ADDED", {"metadata": {"name": "a"}}) + line("MODIFIED", big) + b"\n"
    stream += line("BOOKMARK", {"metadata": {"resourceVersion": "9"}})
    chunks = [stream[i : i + 1000] for i in range(0, len(stream), 1000)]
    events = await drain(chunks)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "BOOKMARK"]
    assert events[1].object == big
    assert events[2].object["metadata"]["resourceVersion"] == "9"


async def test_watch_stream_errors_and_breaks() -> None:
    expired = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    with pytest.raises(Gone, match="too old"):
        await drain([line("ADDED", {}) + line("ERROR", expired)])
    broken = aiohttp.ClientPayloadError("connection reset")
    assert [e.type for e in await drain([line("ADDED", {})], broken)] == ["ADDED"]
