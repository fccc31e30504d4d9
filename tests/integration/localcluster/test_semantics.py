"""API conventions on the wire: versions, generation, status, finalizers, watch, paging."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import RunningCluster, start_cluster
from tests.integration.http import Http

CM = "/api/v1/namespaces/{ns}/configmaps"


@pytest.fixture
async def http(cluster: RunningCluster) -> AsyncIterator[Http]:
    client = Http(cluster)
    yield client
    await client.close()


@pytest.fixture
async def ns(http: Http) -> str:
    name = f"s-{uuid.uuid4().hex[:10]}"
    status, _, _ = await http.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert status == 201
    return name


async def make_crd(http: Http, *, scope: str = "Namespaced") -> str:
    group = f"s{uuid.uuid4().hex[:8]}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"things.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": "things", "kind": "Thing", "shortNames": ["th"]},
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
                                    "properties": {
                                        "replicas": {"type": "integer", "default": 1},
                                        "name": {"type": "string", "pattern": "^[a-z]+$"},
                                        "when": {"type": "string", "format": "date-time"},
                                        "port": {"x-kubernetes-int-or-string": True},
                                        "extra": {
                                            "type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True,
                                        },
                                    },
                                    "required": ["name"],
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {"phase": {"type": "string"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }
    status, body, _ = await http.request(
        "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd
    )
    assert status == 201, body
    assert {c["type"]: c["status"] for c in body["status"]["conditions"]}["Established"] == "True"
    return group


async def test_unauthenticated_requests_are_refused(cluster: RunningCluster) -> None:
    anonymous = Http(cluster, token="wrong")
    try:
        status, body, _ = await anonymous.request("GET", "/api/v1/namespaces")
        assert status == 401 and body["reason"] == "Unauthorized" and body["kind"] == "Status"
        status, body, _ = await anonymous.request("GET", "/readyz")
        assert status == 200 and body == "ok"
    finally:
        await anonymous.close()


async def test_unknown_resource_is_a_404_status(http: Http) -> None:
    status, body, _ = await http.request("GET", "/apis/nope.example.com/v1/frobs")
    assert status == 404 and body["kind"] == "Status" and body["reason"] == "NotFound"
    status, body, _ = await http.request("GET", "/api/v1/namespaces/default/configmaps/missing")
    assert status == 404 and body["message"] == 'configmaps "missing" not found'
    assert body["details"] == {"name": "missing", "kind": "configmaps"}


async def test_resource_version_generation_and_status_subresource(http: Http, ns: str) -> None:
    group = await make_crd(http)
    base = f"/apis/{group}/v1/namespaces/{ns}/things"
    status, obj, _ = await http.request(
        "POST",
        base,
        {
            "apiVersion": f"{group}/v1",
            "kind": "Thing",
            "metadata": {"name": "t"},
            "spec": {"name": "abc"},
            "status": {"phase": "ignored"},
        },
    )
    assert status == 201
    assert (
        obj["spec"]["replicas"] == 1 and "status" not in obj and obj["metadata"]["generation"] == 1
    )
    rv1 = int(obj["metadata"]["resourceVersion"])
    # Metadata-only change: new version, same generation.
    status, obj, _ = await http.request(
        "PATCH",
        f"{base}/t",
        {"metadata": {"labels": {"a": "b"}}},
        content_type="application/merge-patch+json",
    )
    assert (
        status == 200
        and obj["metadata"]["generation"] == 1
        and int(obj["metadata"]["resourceVersion"]) > rv1
    )
    # The main endpoint ignores status; /status ignores everything else.
    status, obj, _ = await http.request(
        "PATCH",
        f"{base}/t",
        {"spec": {"replicas": 2}, "status": {"phase": "x"}},
        content_type="application/merge-patch+json",
    )
    assert obj["metadata"]["generation"] == 2 and "status" not in obj
    status, obj, _ = await http.request(
        "PATCH",
        f"{base}/t/status",
        {"spec": {"replicas": 9}, "status": {"phase": "Running"}},
        content_type="application/merge-patch+json",
    )
    assert status == 200 and obj["status"] == {"phase": "Running"} and obj["spec"]["replicas"] == 2
    assert obj["metadata"]["generation"] == 2
    # A stale update conflicts.
    stale = dict(obj, metadata=dict(obj["metadata"], resourceVersion=str(rv1)))
    status, body, _ = await http.request("PUT", f"{base}/t", stale)
    assert status == 409 and body["reason"] == "Conflict"
    # A no-op update writes nothing.
    status, same, _ = await http.request("PUT", f"{base}/t", obj)
    assert (
        status == 200 and same["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    )
    # Strategic merge patch on a custom resource is 415, as upstream.
    status, body, _ = await http.request(
        "PATCH", f"{base}/t", {"spec": {}}, content_type="application/strategic-merge-patch+json"
    )
    assert status == 415 and body["reason"] == "UnsupportedMediaType"


async def test_invalid_custom_object_names_every_field(http: Http, ns: str) -> None:
    group = await make_crd(http)
    status, body, _ = await http.request(
        "POST",
        f"/apis/{group}/v1/namespaces/{ns}/things",
        {
            "apiVersion": f"{group}/v1",
            "kind": "Thing",
            "metadata": {"name": "Bad_Name"},
            "spec": {"replicas": "many", "name": "ABC", "when": "yesterday", "port": True},
        },
    )
    assert status == 422 and body["reason"] == "Invalid"
    fields = {c["field"] for c in body["details"]["causes"]}
    assert fields == {"metadata.name", "spec.replicas", "spec.name", "spec.when", "spec.port"}
    status, body, _ = await http.request(
        "POST",
        f"/apis/{group}/v1/namespaces/{ns}/things",
        {
            "apiVersion": f"{group}/v1",
            "kind": "Thing",
            "metadata": {"name": "ok"},
            "spec": {"port": "http"},
        },
    )
    assert status == 422 and [c["field"] for c in body["details"]["causes"]] == ["spec.name"]
    assert body["details"]["causes"][0]["reason"] == "FieldValueRequired"


async def test_field_validation_modes(http: Http, ns: str) -> None:
    group = await make_crd(http)
    base = f"/apis/{group}/v1/namespaces/{ns}/things"
    thing = {
        "apiVersion": f"{group}/v1",
        "kind": "Thing",
        "spec": {"name": "a", "bogus": 1, "extra": {"free": 1}},
    }
    status, body, _ = await http.request(
        "POST", base + "?fieldValidation=Strict", dict(thing, metadata={"name": "strict"})
    )
    assert status == 400 and 'unknown field "spec.bogus"' in body["message"]
    status, body, headers = await http.request(
        "POST", base + "?fieldValidation=Warn", dict(thing, metadata={"name": "warn"})
    )
    assert status == 201 and "bogus" not in body["spec"] and body["spec"]["extra"] == {"free": 1}
    assert 'unknown field \\"spec.bogus\\"' in headers.get("Warning", "")
    status, body, headers = await http.request(
        "POST", base + "?fieldValidation=Ignore", dict(thing, metadata={"name": "ignore"})
    )
    assert status == 201 and "Warning" not in headers
    status, body, _ = await http.request(
        "POST",
        f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Strict",
        {"metadata": {"name": "c"}, "dataa": {}},
    )
    assert status == 400 and 'unknown field "dataa"' in body["message"]


async def test_dry_run_changes_nothing(http: Http, ns: str) -> None:
    status, body, _ = await http.request(
        "POST", CM.format(ns=ns) + "?dryRun=All", {"metadata": {"name": "dry"}}
    )
    assert status == 201 and body["metadata"]["name"] == "dry"
    status, _, _ = await http.request("GET", CM.format(ns=ns) + "/dry")
    assert status == 404


async def test_finalizers_hold_deletion_until_removed(http: Http, ns: str) -> None:
    path = CM.format(ns=ns)
    await http.request("POST", path, {"metadata": {"name": "f", "finalizers": ["example.com/x"]}})
    status, obj, _ = await http.request("DELETE", f"{path}/f")
    assert status == 200 and obj["metadata"]["deletionTimestamp"]
    status, _, _ = await http.request(
        "PATCH",
        f"{path}/f",
        {"metadata": {"finalizers": ["example.com/x", "b.io/y"]}},
        content_type="application/merge-patch+json",
    )
    assert status == 403
    status, _, _ = await http.request(
        "PATCH",
        f"{path}/f",
        {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    assert status == 200
    status, _, _ = await http.request("GET", f"{path}/f")
    assert status == 404
    status, _, _ = await http.request("DELETE", f"{path}/f")
    assert status == 404


async def test_strategic_merge_patch_on_deployment_containers(http: Http, ns: str) -> None:
    deployment = {
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {
                    "containers": [
                        {"name": "one", "image": "x:1", "env": [{"name": "A", "value": "1"}]},
                        {"name": "two", "image": "y:1"},
                    ]
                },
            },
        },
    }
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    status, _, _ = await http.request("POST", path, deployment)
    assert status == 201
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "two", "image": "y:2"}]}}}}
    status, obj, _ = await http.request(
        "PATCH", f"{path}/d", patch, content_type="application/strategic-merge-patch+json"
    )
    assert status == 200
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("one", "x:1"), ("two", "y:2")]
    assert containers[0]["env"] == [{"name": "A", "value": "1"}]
    assert obj["metadata"]["generation"] == 2


async def test_label_and_field_selectors(http: Http, ns: str) -> None:
    path = CM.format(ns=ns)
    for name, labels in (("a", {"env": "prod", "tier": "web"}), ("b", {"env": "dev"}), ("c", {})):
        await http.request("POST", path, {"metadata": {"name": name, "labels": labels}})

    async def names(query: str) -> list[str]:
        status, body, _ = await http.request("GET", f"{path}?{query}")
        assert status == 200, body
        return [i["metadata"]["name"] for i in body["items"]]

    assert await names("labelSelector=env%3Dprod") == ["a"]
    assert await names("labelSelector=env%3D%3Dprod") == ["a"]
    assert await names("labelSelector=env!%3Dprod") == ["b", "c"]
    assert await names("labelSelector=env+in+(prod,dev)") == ["a", "b"]
    assert await names("labelSelector=env+notin+(prod)") == ["b", "c"]
    assert await names("labelSelector=tier") == ["a"]
    assert await names("labelSelector=!tier") == ["b", "c"]
    assert await names("fieldSelector=metadata.name%3Db") == ["b"]
    assert await names("fieldSelector=metadata.name!%3Db") == ["a", "c"]
    status, body, _ = await http.request("GET", f"{path}?fieldSelector=spec.nope%3D1")
    assert status == 400 and body["reason"] == "BadRequest"


async def test_paging_is_consistent_across_writes(http: Http, ns: str) -> None:
    path = CM.format(ns=ns)
    for i in range(6):
        await http.request("POST", path, {"metadata": {"name": f"p{i}"}})
    status, page, _ = await http.request("GET", f"{path}?limit=2")
    assert [i["metadata"]["name"] for i in page["items"]] == ["p0", "p1"]
    assert page["metadata"]["remainingItemCount"] == 4
    # Changes after the first page do not show up in the later pages of the same list.
    await http.request("DELETE", f"{path}/p3")
    await http.request("POST", path, {"metadata": {"name": "p9"}})
    names = []
    token = page["metadata"]["continue"]
    while token:
        status, page, _ = await http.request("GET", f"{path}?limit=2&continue={token}")
        assert status == 200
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert names == ["p2", "p3", "p4", "p5"]


async def collect(http: Http, path: str, count: int, wait: float = 10) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    async def run() -> None:
        async for event in http.stream(path):
            events.append(event)
            if len(events) >= count:
                return

    await asyncio.wait_for(run(), wait)
    return events


async def test_watch_from_version_initial_events_and_bookmarks(http: Http, ns: str) -> None:
    path = CM.format(ns=ns)
    _, first, _ = await http.request("POST", path, {"metadata": {"name": "w1"}})
    rv = first["metadata"]["resourceVersion"]
    await http.request("POST", path, {"metadata": {"name": "w2"}})
    await http.request("DELETE", f"{path}/w1")
    events = await collect(http, f"{path}?watch=1&resourceVersion={rv}", 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w2"),
        ("DELETED", "w1"),
    ]
    # From "0": the current state as ADDED.
    events = await collect(http, f"{path}?watch=1&resourceVersion=0", 1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w2")]
    # Watch-list: initial events, then a bookmark that marks their end.
    events = await collect(
        http,
        f"{path}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        "&allowWatchBookmarks=true",
        2,
    )
    assert events[0]["type"] == "ADDED"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_watch_timeout_closes_the_stream(http: Http, ns: str) -> None:
    events = await collect(
        http, f"{CM.format(ns=ns)}?watch=1&resourceVersion=0&timeoutSeconds=1", 10, wait=10
    )
    assert events == []


async def test_restart_keeps_objects_and_old_watches_get_410(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_cluster(data)
    try:
        http = Http(first)
        await wait_ready(http)
        await http.request(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            {"metadata": {"name": "kept"}, "data": {"k": "v"}},
        )
        status, obj, _ = await http.request(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/kept",
            {"data": {"k": "v2"}},
            content_type="application/merge-patch+json",
        )
        old_rv = int(obj["metadata"]["resourceVersion"]) - 1
        await http.close()
    finally:
        first.stop()
    second = start_cluster(data)
    try:
        http = Http(second)
        await wait_ready(http)
        status, kept, _ = await http.request("GET", "/api/v1/namespaces/default/configmaps/kept")
        assert status == 200 and kept["data"] == {"k": "v2"}
        events = await collect(
            http, f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={old_rv}", 1
        )
        assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410
        assert events[0]["object"]["reason"] == "Expired"
        await http.close()
    finally:
        second.stop()


async def wait_ready(http: Http) -> None:
    for _ in range(100):
        try:
            status, _, _ = await http.request("GET", "/readyz")
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("not ready")


async def test_crd_deletion_removes_resource_and_objects(http: Http, ns: str) -> None:
    group = await make_crd(http)
    base = f"/apis/{group}/v1/namespaces/{ns}/things"
    await http.request(
        "POST",
        base,
        {
            "apiVersion": f"{group}/v1",
            "kind": "Thing",
            "metadata": {"name": "t"},
            "spec": {"name": "a"},
        },
    )
    status, _, _ = await http.request(
        "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.{group}"
    )
    assert status == 200
    status, _, _ = await http.request("GET", base)
    assert status == 404
    status, _, _ = await http.request("GET", f"/apis/{group}/v1")
    assert status == 404


async def test_discovery_documents(http: Http) -> None:
    status, body, _ = await http.request("GET", "/api/v1")
    resources = {r["name"]: r for r in body["resources"]}
    assert resources["pods"]["namespaced"] is True and resources["pods"]["kind"] == "Pod"
    assert "pods/status" in resources and "pods/log" in resources
    assert resources["namespaces"]["namespaced"] is False
    assert resources["configmaps"]["shortNames"] == ["cm"]
    status, body, _ = await http.request("GET", "/apis")
    groups = [g["name"] for g in body["groups"]]
    assert {
        "apps",
        "batch",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "coordination.k8s.io",
        "networking.k8s.io",
        "admissionregistration.k8s.io",
    } <= set(groups)
    status, body, _ = await http.request("GET", "/version")
    assert status == 200 and body["major"] == "1"
    status, body, _ = await http.request("GET", "/openapi/v3")
    assert "api/v1" in body["paths"] and "apis/apps/v1" in body["paths"]
    status, doc, _ = await http.request(
        "GET", "/" + body["paths"]["apis/apps/v1"]["serverRelativeURL"].lstrip("/")
    )
    assert status == 200 and doc["openapi"].startswith("3.")
