"""The controller client against the real local API server over HTTPS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict, Field

from controller.client import Client, WatchEvent
from controller.config import ClientConfig
from controller.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Gone,
    Invalid,
    NoKindMatch,
    NotFound,
    Unauthorized,
    UnsupportedMediaType,
)
from tests.integration.conftest import RunningCluster, start_cluster

CM = ("v1", "ConfigMap")
CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")


class ObjectMeta(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    name: str | None = None
    namespace: str | None = None
    resource_version: str | None = Field(default=None, alias="resourceVersion")
    uid: str | None = None
    labels: dict[str, str] | None = None


class ConfigMap(BaseModel):
    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "ConfigMap"
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    api_version: str | None = Field(default=None, alias="apiVersion")
    kind: str | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    data: dict[str, str] | None = None


@pytest.fixture
async def client(cluster: RunningCluster) -> AsyncIterator[Client]:
    async with await Client.connect(kubeconfig=str(cluster.kubeconfig)) as connected:
        yield connected


@pytest.fixture
async def ns(client: Client) -> str:
    name = f"c-{uuid.uuid4().hex[:10]}"
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def cm(name: str, ns: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }


async def make_crd(client: Client) -> str:
    """A namespaced `Widget` kind with a status subresource; returns its apiVersion."""
    group = f"w{uuid.uuid4().hex[:8]}.example.com"
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
        },
    }
    await client.create(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}"},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "subresources": {"status": {}},
                        "schema": {"openAPIV3Schema": schema},
                    }
                ],
            },
        }
    )
    return f"{group}/v1"


# ---- CRUD and errors


async def test_configmap_crud_and_every_error(client: Client, ns: str) -> None:
    created = await client.create(cm("one", ns, a="1"), field_manager="tests")
    assert created["metadata"]["uid"] and created["data"] == {"a": "1"}
    got = await client.get(CM, "one", ns)
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    with pytest.raises(AlreadyExists) as exists:
        await client.create(cm("one", ns))
    assert exists.value.status == 409 and exists.value.reason == "AlreadyExists"
    assert exists.value.details["name"] == "one"

    got["data"]["a"] = "2"
    updated = await client.update(got)
    assert updated["data"] == {"a": "2"}
    with pytest.raises(Conflict) as stale:
        await client.update(got)  # still carries the old resourceVersion
    assert stale.value.status == 409 and "has been modified" in stale.value.message

    with pytest.raises(Invalid) as invalid:
        await client.create(cm("Bad_Name", ns))
    assert invalid.value.status == 422
    assert "metadata.name" in [cause.field for cause in invalid.value.causes]
    assert all(cause.message for cause in invalid.value.causes)

    with pytest.raises(NotFound) as missing:
        await client.get(CM, "nope", ns)
    assert missing.value.status == 404 and missing.value.details["name"] == "nope"

    dry = await client.create(cm("dry", ns), dry_run=True)
    assert dry["metadata"]["name"] == "dry"
    with pytest.raises(NotFound):
        await client.get(CM, "dry", ns)

    deleted = await client.delete(CM, "one", ns)
    assert deleted["kind"] in ("Status", "ConfigMap")
    with pytest.raises(NotFound):
        await client.get(CM, "one", ns)
    with pytest.raises(NotFound):
        await client.delete(CM, "one", ns)


async def test_namespace_defaults_to_the_objects_then_the_configs(client: Client) -> None:
    name = f"d-{uuid.uuid4().hex[:8]}"
    assert client.default_namespace == "default"
    created = await client.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    )
    assert created["metadata"]["namespace"] == "default"
    assert (await client.get(CM, name))["metadata"]["name"] == name
    await client.delete(CM, name)


async def test_generate_name_and_cluster_scoped_kinds(client: Client, ns: str) -> None:
    created = await client.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"generateName": "gen-", "namespace": ns},
        }
    )
    assert created["metadata"]["name"].startswith("gen-")
    namespace = await client.get(("v1", "Namespace"), ns, "ignored-for-cluster-scope")
    assert namespace["metadata"]["name"] == ns


async def test_unauthorized_with_a_wrong_token(cluster: RunningCluster) -> None:
    config = await ClientConfig.from_kubeconfig(cluster.kubeconfig)
    config.token = "wrong"
    async with await Client.connect(config) as client:
        with pytest.raises(Unauthorized) as denied:
            await client.get(CM, "x", "default")
    assert denied.value.status == 401


async def test_raw_request_and_server_warnings(
    client: Client, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    version = await client.request("GET", "/version")
    assert version["major"] == "1"
    body = cm("raw", ns)
    body["bogus"] = 1
    path = f"/api/v1/namespaces/{ns}/configmaps"
    with caplog.at_level(logging.WARNING, logger="controller.client"):
        created = await client.request("POST", path, body=body)
    assert created["metadata"]["name"] == "raw"
    assert "API server warning" in caplog.text and "bogus" in caplog.text
    yaml_body = (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\n  namespace: {ns}\n"
    )
    created = await client.request("POST", path, body=yaml_body, content_type="application/yaml")
    assert created["metadata"]["name"] == "from-yaml"


# ---- patches and server-side apply


async def test_patch_types(client: Client, ns: str) -> None:
    await client.create(cm("p", ns, a="1", b="2"))
    merged = await client.patch(CM, "p", {"data": {"a": None, "c": "3"}}, namespace=ns)
    assert merged["data"] == {"b": "2", "c": "3"}
    replaced = await client.patch(
        CM,
        "p",
        [{"op": "replace", "path": "/data/b", "value": "20"}],
        namespace=ns,
        patch_type="json",
    )
    assert replaced["data"] == {"b": "20", "c": "3"}
    strategic = await client.patch(
        CM, "p", {"metadata": {"labels": {"x": "y"}}}, namespace=ns, patch_type="strategic"
    )
    assert strategic["metadata"]["labels"] == {"x": "y"}
    raw = await client.patch(CM, "p", b'{"data":{"raw":"yes"}}', namespace=ns)
    assert raw["data"]["raw"] == "yes"
    with pytest.raises(NotFound):
        await client.patch(CM, "absent", {"data": {}}, namespace=ns)
    with pytest.raises(ValueError):
        await client.patch(CM, "p", {}, namespace=ns, force=True)


async def test_server_side_apply_conflict_and_force(client: Client, ns: str) -> None:
    created = await client.apply(cm("ssa", ns, key="alice"), field_manager="alice")
    assert created["data"] == {"key": "alice"}
    managers = {entry["manager"] for entry in created["metadata"]["managedFields"]}
    assert "alice" in managers
    with pytest.raises(Conflict) as conflict:
        await client.apply(cm("ssa", ns, key="bob"), field_manager="bob")
    assert conflict.value.status == 409 and conflict.value.reason == "Conflict"
    assert any("data.key" in cause.field for cause in conflict.value.causes)
    forced = await client.apply(cm("ssa", ns, key="bob"), field_manager="bob", force=True)
    assert forced["data"] == {"key": "bob"}
    dry = await client.apply(cm("ssa", ns, key="x"), field_manager="bob", dry_run=True)
    assert dry["data"] == {"key": "x"}
    assert (await client.get(CM, "ssa", ns))["data"] == {"key": "bob"}


# ---- custom resources: discovery, status subresource, 415


async def test_custom_resource_status_subresource(client: Client, ns: str) -> None:
    group = f"w{uuid.uuid4().hex[:8]}.example.com"
    with pytest.raises(NoKindMatch):
        await client.resource((f"{group}/v1", "Widget"))
    api_version = await make_crd(client)
    widget_kind = (api_version, "Widget")
    resource = await client.resource(widget_kind)
    assert (resource.plural, resource.namespaced) == ("widgets", True)
    assert "status" in resource.subresources

    widget = await client.create(
        {
            "apiVersion": api_version,
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": ns},
            "spec": {"size": 1},
        }
    )
    widget["status"] = {"phase": "Ready"}
    widget["spec"]["size"] = 5  # ignored by the status endpoint
    after_status = await client.update_status(widget)
    assert after_status["status"] == {"phase": "Ready"}
    assert after_status["spec"] == {"size": 1}

    after_status["status"] = {"phase": "Ignored"}
    after_status["spec"]["size"] = 2
    after_update = await client.update(after_status)
    assert after_update["spec"] == {"size": 2}
    assert after_update["status"] == {"phase": "Ready"}  # the main resource ignores status

    patched = await client.patch(
        widget_kind, "w", {"status": {"phase": "Done"}}, namespace=ns, subresource="status"
    )
    assert patched["status"] == {"phase": "Done"}
    applied = await client.apply(
        {
            "apiVersion": api_version,
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": ns},
            "status": {"phase": "Applied"},
        },
        field_manager="status-writer",
        subresource="status",
        force=True,
    )
    assert applied["status"] == {"phase": "Applied"}

    with pytest.raises(UnsupportedMediaType) as unsupported:
        await client.patch(
            widget_kind, "w", {"spec": {"size": 3}}, namespace=ns, patch_type="strategic"
        )
    assert unsupported.value.status == 415


async def test_resource_mapping_of_builtins(client: Client) -> None:
    deployments = await client.resource(("apps/v1", "Deployment"))
    assert deployments.plural == "deployments" and deployments.namespaced
    assert {"status", "scale"} <= deployments.subresources
    assert deployments.path("x", "y", "scale") == "/apis/apps/v1/namespaces/x/deployments/y/scale"
    namespaces = await client.resource(("v1", "Namespace"))
    assert not namespaces.namespaced
    with pytest.raises(NoKindMatch):
        await client.resource(("v1", "NoSuchKind"))
    with pytest.raises(NoKindMatch):
        await client.resource(("nosuchgroup.example.com/v1", "Thing"))


# ---- lists


async def test_list_paging_and_list_all(client: Client, ns: str) -> None:
    await asyncio.gather(
        *(
            client.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": f"item-{i:02}",
                        "namespace": ns,
                        "labels": {"parity": "even" if i % 2 == 0 else "odd"},
                    },
                }
            )
            for i in range(25)
        )
    )
    first = await client.list(CM, ns, limit=10)
    assert len(first.items) == 10 and first.continue_token and first.resource_version
    assert first.items[0]["kind"] == "ConfigMap" and first.items[0]["apiVersion"] == "v1"
    second = await client.list(CM, ns, limit=10, continue_token=first.continue_token)
    assert len(second.items) == 10
    everything = await client.list_all(CM, ns, page_size=7)
    names = [item["metadata"]["name"] for item in everything.items]
    assert names == [f"item-{i:02}" for i in range(25)]
    assert everything.resource_version and not everything.continue_token
    even = await client.list_all(CM, ns, label_selector="parity=even", page_size=5)
    assert len(even.items) == 13
    by_name = await client.list(CM, ns, field_selector="metadata.name=item-03")
    assert [i["metadata"]["name"] for i in by_name.items] == ["item-03"]
    across = await client.list(CM, label_selector="parity=odd")
    assert {i["metadata"]["namespace"] for i in across.items} >= {ns}
    with pytest.raises(BadRequest):
        await client.list(CM, ns, label_selector="!!bad")


# ---- typed models


async def test_typed_configmap_model(client: Client, ns: str) -> None:
    created = await client.create(
        ConfigMap(metadata=ObjectMeta(name="typed", namespace=ns), data={"k": "v"})
    )
    assert isinstance(created, ConfigMap)
    assert created.api_version == "v1" and created.metadata.uid
    got = await client.get(ConfigMap, "typed", ns)
    assert isinstance(got, ConfigMap) and got.data == {"k": "v"}
    got.data = {"k": "v2"}
    updated = await client.update(got)
    assert updated.data == {"k": "v2"}
    assert updated.metadata.resource_version != got.metadata.resource_version
    with pytest.raises(Conflict):
        await client.update(got)
    listed = await client.list(ConfigMap, ns)
    assert [type(item) for item in listed.items] == [ConfigMap]
    everything = await client.list_all(ConfigMap, ns, page_size=1)
    assert everything.items[0].metadata.name == "typed"
    patched = await client.patch(ConfigMap, "typed", {"data": {"p": "1"}}, namespace=ns)
    assert isinstance(patched, ConfigMap) and patched.data == {"k": "v2", "p": "1"}
    applied = await client.apply(
        ConfigMap(metadata=ObjectMeta(name="typed-ssa", namespace=ns), data={"a": "b"}),
        field_manager="typed",
    )
    assert isinstance(applied, ConfigMap) and applied.data == {"a": "b"}
    assert (await client.resource(ConfigMap)).plural == "configmaps"
    await client.delete(ConfigMap, "typed", ns)
    with pytest.raises(NotFound):
        await client.get(ConfigMap, "typed", ns)


# ---- delete options


async def test_delete_propagation_and_preconditions(client: Client, ns: str) -> None:
    owners = {}
    for name in ("fg", "bg", "orphan"):
        owner = await client.create(cm(name, ns))
        owners[name] = owner
        dependent = cm(f"{name}-child", ns)
        dependent["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": name,
                "uid": owner["metadata"]["uid"],
            }
        ]
        await client.create(dependent)

    foreground = await client.delete(CM, "fg", ns, propagation_policy="Foreground")
    assert "foregroundDeletion" in foreground["metadata"]["finalizers"]
    assert foreground["metadata"]["deletionTimestamp"]
    orphan = await client.delete(CM, "orphan", ns, propagation_policy="Orphan")
    assert "orphan" in orphan["metadata"]["finalizers"]
    background = await client.delete(CM, "bg", ns, propagation_policy="Background")
    assert background["kind"] == "Status" and background["status"] == "Success"

    victim = await client.create(cm("victim", ns))
    with pytest.raises(Conflict):
        await client.delete(CM, "victim", ns, preconditions={"uid": "not-the-uid"})
    await client.delete(CM, "victim", ns, dry_run=True)
    assert (await client.get(CM, "victim", ns))["metadata"]["uid"] == victim["metadata"]["uid"]
    await client.delete(
        CM,
        "victim",
        ns,
        preconditions={"uid": victim["metadata"]["uid"]},
        grace_period_seconds=0,
    )
    with pytest.raises(NotFound):
        await client.get(CM, "victim", ns)

    await client.delete_collection(CM, ns, label_selector="")
    left = {i["metadata"]["name"] for i in (await client.list(CM, ns)).items}
    assert left <= {"fg", "orphan"}  # only what finalizers hold back


# ---- watch


async def collect(
    events: AsyncGenerator[WatchEvent, None], count: int, *, bookmarks: bool = False
) -> list[WatchEvent]:
    seen: list[WatchEvent] = []
    async with contextlib.aclosing(events) as stream:
        async for event in stream:
            if event.type == "BOOKMARK" and not bookmarks:
                continue
            seen.append(event)
            if len(seen) == count:
                break
    return seen


async def test_watch_from_resource_version(client: Client, ns: str) -> None:
    start = (await client.list(CM, ns)).resource_version
    await client.create(cm("w", ns, a="1"))
    await client.patch(CM, "w", {"data": {"a": "2"}}, namespace=ns)
    await client.delete(CM, "w", ns)
    events = await asyncio.wait_for(
        collect(client.watch(CM, ns, resource_version=start), 3), timeout=10
    )
    assert [(e.type, e.object["data"]["a"]) for e in events] == [
        ("ADDED", "1"),
        ("MODIFIED", "2"),
        ("DELETED", "2"),
    ]


async def test_watch_live_large_objects_and_selectors(client: Client, ns: str) -> None:
    start = (await client.list(CM, ns)).resource_version
    big = "x" * 600_000  # far over aiohttp's default line limit
    stream = client.watch(CM, ns, resource_version=start, label_selector="pick=yes")
    collecting = asyncio.ensure_future(collect(stream, 2))
    skipped = cm("skipped", ns)
    await client.create(skipped)
    picked = cm("big", ns, blob=big)
    picked["metadata"]["labels"] = {"pick": "yes"}
    await client.create(picked)
    await client.patch(CM, "big", {"data": {"blob": big + "y"}}, namespace=ns)
    events = await asyncio.wait_for(collecting, timeout=10)
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "big"),
        ("MODIFIED", "big"),
    ]
    assert len(events[1].object["data"]["blob"]) == 600_001


async def test_watch_initial_events_timeout_and_errors(client: Client, ns: str) -> None:
    await client.create(cm("existing", ns))
    initial = await asyncio.wait_for(
        collect(client.watch(CM, ns, send_initial_events=True), 2, bookmarks=True), timeout=10
    )
    assert [e.type for e in initial] == ["ADDED", "BOOKMARK"]
    annotations = initial[1].object["metadata"]["annotations"]
    assert annotations["k8s.io/initial-events-end"] == "true"

    # The server ends the stream after timeoutSeconds: the iterator just finishes.
    rv = (await client.list(CM, ns)).resource_version
    ended = [
        e
        async for e in client.watch(
            CM, ns, resource_version=rv, timeout_seconds=1, allow_bookmarks=False
        )
    ]
    assert ended == []

    with pytest.raises(BadRequest):
        async for _ in client.watch(CM, ns, field_selector="spec.nothing=1"):
            pass
    with pytest.raises(BadRequest):
        async for _ in client.watch(CM, ns, resource_version="not-a-version"):
            pass


async def test_watch_of_expired_version_raises_gone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_cluster(data)
    try:
        async with await Client.connect(kubeconfig=str(first.kubeconfig)) as client:
            created = await client.create(cm("kept", "default", k="v"))
            await client.patch(CM, "kept", {"data": {"k": "v2"}})
            old = created["metadata"]["resourceVersion"]
    finally:
        first.stop()
    second = start_cluster(data)
    try:
        async with await Client.connect(kubeconfig=str(second.kubeconfig)) as client:
            assert (await client.get(CM, "kept"))["data"] == {"k": "v2"}
            with pytest.raises(Gone) as gone:
                async for _ in client.watch(CM, "default", resource_version=old):
                    pass
            assert gone.value.status == 410 and gone.value.reason == "Expired"
    finally:
        second.stop()


# ---- configuration


async def test_config_from_kubeconfig_and_env(cluster: RunningCluster) -> None:
    config = await ClientConfig.from_kubeconfig(cluster.kubeconfig)
    assert config.server == cluster.url and config.namespace == "default"
    assert config.ca_data and config.token == cluster.token
    from_env = await ClientConfig.load(environ={"KUBECONFIG": str(cluster.kubeconfig)})
    assert from_env.server == cluster.url
    async with await Client.connect(from_env) as client:
        assert (await client.request("GET", "/version"))["major"] == "1"


async def test_in_cluster_layout_rereads_a_rotated_token(
    cluster: RunningCluster, tmp_path: Path
) -> None:
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "ca.crt").write_bytes(cluster.ca_file.read_bytes())
    (sa / "namespace").write_text("kube-system\n")
    token = sa / "token"
    token.write_text("stale-token\n")
    host, _, port = cluster.url.removeprefix("https://").rpartition(":")
    environ = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
    config = ClientConfig.in_cluster(sa, environ=environ)
    assert config.server == cluster.url and config.namespace == "kube-system"
    assert config.ca_file == str(sa / "ca.crt") and config.refreshes_auth
    loaded = await ClientConfig.load(
        service_account_dir=sa, environ={**environ, "KUBECONFIG": str(tmp_path / "none")}
    )
    assert loaded.token_file == str(token)

    async with await Client.connect(config) as client:
        with pytest.raises(Unauthorized):
            await client.request("GET", "/api/v1/namespaces")
        token.write_text(cluster.token + "\n")  # the kubelet rotated the projected token
        listed = await client.list(("v1", "Namespace"))
        assert "kube-system" in {item["metadata"]["name"] for item in listed.items}
