# mypy: disable-error-code="arg-type,index,no-untyped-call,union-attr,attr-defined,no-any-return,operator"
"""The official `kubernetes` client and kubernetes-asyncio against the local cluster."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import kubernetes
import pytest
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import config as aconfig
from kubernetes_asyncio import watch as awatch

from tests.integration.conftest import RunningCluster


@pytest.fixture
def sync_api(cluster: RunningCluster) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))


def test_official_client_crud_and_conflict(sync_api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(sync_api)
    ns = f"py-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": ns}})
    created = core.create_namespaced_config_map(
        ns, {"metadata": {"generateName": "gen-"}, "data": {"a": "1"}}
    )
    name = created.metadata.name
    assert name.startswith("gen-") and len(name) == len("gen-") + 5
    assert created.metadata.uid and created.metadata.creation_timestamp
    stale = created.metadata.resource_version
    created.data = {"a": "2"}
    updated = core.replace_namespaced_config_map(name, ns, created)
    assert int(updated.metadata.resource_version) > int(stale)
    created.metadata.resource_version = stale
    with pytest.raises(kubernetes.client.ApiException) as conflict:
        core.replace_namespaced_config_map(name, ns, created)
    assert conflict.value.status == 409
    assert "the object has been modified" in conflict.value.body
    with pytest.raises(kubernetes.client.ApiException) as exists:
        core.create_namespaced_config_map(ns, {"metadata": {"name": name}})
    assert exists.value.status == 409 and '"reason":"AlreadyExists"' in exists.value.body
    listed = core.list_namespaced_config_map(ns)
    assert [c.metadata.name for c in listed.items] == [name]
    core.delete_namespaced_config_map(name, ns)
    with pytest.raises(kubernetes.client.ApiException) as missing:
        core.read_namespaced_config_map(name, ns)
    assert missing.value.status == 404


def test_official_client_watch_and_custom_objects(
    sync_api: kubernetes.client.ApiClient, cluster: RunningCluster
) -> None:
    ext = kubernetes.client.ApiextensionsV1Api(sync_api)
    custom = kubernetes.client.CustomObjectsApi(sync_api)
    core = kubernetes.client.CoreV1Api(sync_api)
    group = f"py{uuid.uuid4().hex[:6]}.example.com"
    ext.create_custom_resource_definition(
        {
            "metadata": {"name": f"gizmos.{group}"},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": "gizmos", "kind": "Gizmo"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "subresources": {"status": {}},
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                    "status": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    ns = f"py-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": ns}})
    listed = custom.list_namespaced_custom_object(group, "v1", ns, "gizmos")
    rv = listed["metadata"]["resourceVersion"]
    events: list[tuple[str, str]] = []

    def watch() -> None:
        w = kubernetes.watch.Watch()
        for event in w.stream(
            custom.list_namespaced_custom_object,
            group,
            "v1",
            ns,
            "gizmos",
            resource_version=rv,
            timeout_seconds=10,
        ):
            events.append((event["type"], event["object"]["metadata"]["name"]))
            if len(events) == 3:
                w.stop()

    thread = threading.Thread(target=watch)
    thread.start()
    body = {
        "apiVersion": f"{group}/v1",
        "kind": "Gizmo",
        "metadata": {"name": "g1"},
        "spec": {"x": 1},
    }
    obj = custom.create_namespaced_custom_object(group, "v1", ns, "gizmos", body)
    obj["status"] = {"phase": "Done"}
    after = custom.replace_namespaced_custom_object_status(group, "v1", ns, "gizmos", "g1", obj)
    assert after["status"] == {"phase": "Done"} and after["metadata"]["generation"] == 1
    custom.delete_namespaced_custom_object(group, "v1", ns, "gizmos", "g1")
    thread.join(timeout=15)
    assert events == [("ADDED", "g1"), ("MODIFIED", "g1"), ("DELETED", "g1")]


async def test_kubernetes_asyncio_list_paging_and_watch(cluster: RunningCluster) -> None:
    api = await aconfig.new_client_from_config(config_file=str(cluster.kubeconfig))
    async with api:
        core = aclient.CoreV1Api(api)
        ns = f"aio-{uuid.uuid4().hex[:8]}"
        await core.create_namespace({"metadata": {"name": ns}})
        for i in range(7):
            await core.create_namespaced_config_map(
                ns, {"metadata": {"name": f"cm-{i}", "labels": {"i": str(i % 2)}}}
            )
        names: list[str] = []
        token = None
        while True:
            page = await core.list_namespaced_config_map(ns, limit=3, _continue=token)
            names += [c.metadata.name for c in page.items]
            token = page.metadata._continue
            if not token:
                break
        assert names == [f"cm-{i}" for i in range(7)]
        odd = await core.list_namespaced_config_map(ns, label_selector="i=1")
        assert [c.metadata.name for c in odd.items] == ["cm-1", "cm-3", "cm-5"]
        seen: list[Any] = []
        w = awatch.Watch()

        async def produce() -> None:
            await asyncio.sleep(0.5)
            await core.patch_namespaced_config_map("cm-0", ns, {"data": {"x": "y"}})

        task = asyncio.create_task(produce())
        async for event in w.stream(core.list_namespaced_config_map, ns, timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "MODIFIED":
                w.stop()
        await task
        assert seen[:7] == [("ADDED", f"cm-{i}") for i in range(7)]
        assert seen[-1] == ("MODIFIED", "cm-0")
