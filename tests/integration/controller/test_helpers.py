"""The controller helpers against the real local API server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.apply import create_or_update
from controller.client import Client
from controller.conditions import conditions_of, get_condition, is_true, set_status_condition
from controller.errors import Conflict, NotFound
from controller.events import EventRecorder
from controller.finalizers import add_finalizer, has_finalizer, remove_finalizer
from controller.owners import controller_of, is_owned_by, set_controller_reference
from tests.integration.conftest import RunningCluster

Obj = dict[str, Any]
CM = ("v1", "ConfigMap")
FINALIZER = "example.com/cleanup"


@pytest.fixture
async def client(cluster: RunningCluster) -> AsyncIterator[Client]:
    client = await Client.connect(kubeconfig=str(cluster.kubeconfig))
    yield client
    await client.close()


@pytest.fixture
async def ns(client: Client) -> str:
    name = f"h-{uuid.uuid4().hex[:10]}"
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.fixture
async def widget_kind(client: Client) -> tuple[str, str]:
    """A CRD with a status subresource whose conditions use the metav1.Condition schema."""
    group = f"h{uuid.uuid4().hex[:8]}.example.com"
    condition_schema = {
        "type": "object",
        "required": ["type", "status", "lastTransitionTime", "reason", "message"],
        "properties": {
            "type": {"type": "string", "maxLength": 316},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "reason": {"type": "string", "minLength": 1, "maxLength": 1024},
            "message": {"type": "string", "maxLength": 32768},
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
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
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
                                        "properties": {"size": {"type": "integer"}},
                                    },
                                    "status": {
                                        "type": "object",
                                        "properties": {
                                            "conditions": {
                                                "type": "array",
                                                "items": condition_schema,
                                                "x-kubernetes-list-type": "map",
                                                "x-kubernetes-list-map-keys": ["type"],
                                            }
                                        },
                                    },
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    return (f"{group}/v1", "Widget")


def configmap(ns: str, name: str = "cm", **data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": dict(data),
    }


# --- finalizers ------------------------------------------------------------------------------


async def test_finalizer_add_remove(client: Client, ns: str) -> None:
    obj = await client.create(configmap(ns))
    obj = await add_finalizer(client, obj, FINALIZER)
    assert has_finalizer(obj, FINALIZER)
    assert has_finalizer(await client.get(CM, "cm", ns), FINALIZER)
    assert await add_finalizer(client, obj, FINALIZER) is obj
    obj = await remove_finalizer(client, obj, FINALIZER)
    assert not has_finalizer(obj, FINALIZER)
    assert not (await client.get(CM, "cm", ns))["metadata"].get("finalizers")


async def test_finalizer_write_on_stale_object_conflicts_instead_of_losing_changes(
    client: Client, ns: str
) -> None:
    ours = await client.create(configmap(ns))
    # Someone else adds their finalizer after we read the object.
    theirs = await add_finalizer(client, ours, "other.io/keep")
    with pytest.raises(Conflict):
        await add_finalizer(client, ours, FINALIZER)
    live = await client.get(CM, "cm", ns)
    assert live["metadata"]["finalizers"] == ["other.io/keep"]
    # Retrying from fresh state keeps both.
    both = await add_finalizer(client, live, FINALIZER)
    assert both["metadata"]["finalizers"] == ["other.io/keep", FINALIZER]

    # Removal from a stale copy conflicts too, rather than dropping a finalizer added since.
    await add_finalizer(client, both, "third.io/late")
    with pytest.raises(Conflict):
        await remove_finalizer(client, both, FINALIZER)
    live = await client.get(CM, "cm", ns)
    assert live["metadata"]["finalizers"] == ["other.io/keep", FINALIZER, "third.io/late"]
    assert theirs["metadata"]["finalizers"] == ["other.io/keep"]
    done = await remove_finalizer(client, live, FINALIZER)
    assert done["metadata"]["finalizers"] == ["other.io/keep", "third.io/late"]


async def test_removing_last_finalizer_lets_deletion_finish(client: Client, ns: str) -> None:
    obj = await add_finalizer(client, await client.create(configmap(ns)), FINALIZER)
    await client.delete(CM, "cm", ns)
    obj = await client.get(CM, "cm", ns)
    assert obj["metadata"].get("deletionTimestamp")
    await remove_finalizer(client, obj, FINALIZER)
    with pytest.raises(NotFound):
        await client.get(CM, "cm", ns)


# --- events ---------------------------------------------------------------------------------


async def test_events_are_created_then_aggregated(client: Client, ns: str) -> None:
    obj = await client.create(configmap(ns))
    recorder = EventRecorder(client, "helpers-test", "host-1")
    try:
        recorder.event(obj, "Warning", "SyncFailed", "could not sync")
        await recorder.flush()
        [first] = (await client.list(("v1", "Event"), ns)).items
        assert first["count"] == 1
        recorder.event(obj, "Warning", "SyncFailed", "could not sync")
        recorder.event(obj, "Normal", "Synced", "synced")
        await recorder.flush()
    finally:
        await recorder.close()
    events = {e["reason"]: e for e in (await client.list(("v1", "Event"), ns)).items}
    assert set(events) == {"SyncFailed", "Synced"}
    failed = events["SyncFailed"]
    assert failed["metadata"]["name"] == first["metadata"]["name"]
    assert failed["metadata"]["name"].startswith("cm.")
    assert failed["count"] == 2
    assert failed["type"] == "Warning"
    assert failed["message"] == "could not sync"
    assert failed["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "namespace": ns,
        "name": "cm",
        "uid": obj["metadata"]["uid"],
        "resourceVersion": obj["metadata"]["resourceVersion"],
    }
    assert failed["source"] == {"component": "helpers-test", "host": "host-1"}
    assert failed["reportingComponent"] == "helpers-test"
    assert failed["reportingInstance"] == "host-1"
    assert failed["firstTimestamp"] <= failed["lastTimestamp"]
    assert events["Synced"]["count"] == 1


async def test_event_about_cluster_scoped_object_lands_in_default(client: Client, ns: str) -> None:
    namespace_obj = await client.get(("v1", "Namespace"), ns)
    recorder = EventRecorder(client, "helpers-test")
    recorder.event(namespace_obj, "Normal", "Seen", f"saw {ns}")
    await recorder.close()
    events = (await client.list(("v1", "Event"), "default")).items
    assert any(
        e["involvedObject"]["name"] == ns and e["involvedObject"]["kind"] == "Namespace"
        for e in events
    )


# --- create_or_update ---------------------------------------------------------------------------


async def test_create_or_update_created_updated_unchanged(client: Client, ns: str) -> None:
    size = "1"

    def mutate(obj: Obj) -> None:
        obj.setdefault("data", {})["size"] = size
        obj["metadata"].setdefault("labels", {})["app"] = "demo"

    obj, result = await create_or_update(client, configmap(ns), mutate)
    assert result == "created"
    assert obj["data"] == {"size": "1"}
    assert obj["metadata"]["labels"] == {"app": "demo"}

    again, result = await create_or_update(client, configmap(ns), mutate)
    assert result == "unchanged"
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]

    # A field someone else set survives our update.
    await client.patch(CM, "cm", {"data": {"theirs": "x"}}, namespace=ns)
    size = "2"
    updated, result = await create_or_update(client, configmap(ns), mutate)
    assert result == "updated"
    assert updated["data"] == {"size": "2", "theirs": "x"}
    assert (await client.get(CM, "cm", ns))["data"] == {"size": "2", "theirs": "x"}


async def test_concurrent_create_or_update_both_land(client: Client, ns: str) -> None:
    await client.create(configmap(ns))

    def setter(key: str) -> Any:
        def mutate(obj: Obj) -> None:
            obj.setdefault("data", {})[key] = "1"

        return mutate

    results = await asyncio.gather(
        *(create_or_update(client, configmap(ns), setter(f"k{i}")) for i in range(5))
    )
    assert {r for _, r in results} == {"updated"}
    assert (await client.get(CM, "cm", ns))["data"] == {f"k{i}": "1" for i in range(5)}


async def test_create_or_update_with_controller_reference(
    client: Client, ns: str, widget_kind: tuple[str, str]
) -> None:
    api_version, kind = widget_kind
    widget = await client.create(
        {"apiVersion": api_version, "kind": kind, "metadata": {"name": "w", "namespace": ns}}
    )

    def mutate(obj: Obj) -> None:
        set_controller_reference(widget, obj)
        obj["data"] = {"owner": "w"}

    child, result = await create_or_update(client, configmap(ns, "child"), mutate)
    assert result == "created"
    ref = controller_of(child)
    assert ref is not None and ref["uid"] == widget["metadata"]["uid"]
    assert is_owned_by(child, widget)
    _, result = await create_or_update(client, configmap(ns, "child"), mutate)
    assert result == "unchanged"


# --- status conditions ----------------------------------------------------------------------


async def test_status_conditions_round_trip_through_status_subresource(
    client: Client, ns: str, widget_kind: tuple[str, str]
) -> None:
    api_version, kind = widget_kind
    widget = await client.create(
        {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": "w", "namespace": ns},
            "spec": {"size": 1},
        }
    )
    assert set_status_condition(widget, "Ready", "False", "Provisioning", "starting")
    widget = await client.update_status(widget)
    [written] = conditions_of(widget)
    assert written["status"] == "False"
    assert written["observedGeneration"] == widget["metadata"]["generation"]
    first_transition = written["lastTransitionTime"]

    # Same status, new message: written, but the transition time stays.
    later = datetime.now(UTC) + timedelta(minutes=10)
    assert set_status_condition(widget, "Ready", "False", "Provisioning", "almost", now=later)
    widget = await client.update_status(widget)
    fetched = await client.get(widget_kind, "w", ns)
    condition = get_condition(conditions_of(fetched), "Ready")
    assert condition is not None
    assert condition["message"] == "almost"
    assert condition["lastTransitionTime"] == first_transition

    # Nothing changed: nothing to write.
    assert not set_status_condition(fetched, "Ready", "False", "Provisioning", "almost", now=later)

    # The status flips: the transition time moves.
    assert set_status_condition(fetched, "Ready", "True", "Provisioned", "ready", now=later)
    widget = await client.update_status(fetched)
    condition = get_condition(conditions_of(await client.get(widget_kind, "w", ns)), "Ready")
    assert condition is not None
    assert is_true(conditions_of(widget), "Ready")
    assert condition["lastTransitionTime"] == later.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert condition["lastTransitionTime"] != first_transition
