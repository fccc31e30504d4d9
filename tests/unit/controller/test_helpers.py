"""Unit tests for the controller helpers, against an in-memory fake of the API client."""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import pytest

from controller.apply import create_or_update
from controller.conditions import (
    conditions_of,
    get_condition,
    is_false,
    is_true,
    remove_condition,
    remove_status_condition,
    rfc3339,
    set_condition,
    set_status_condition,
)
from controller.errors import AlreadyExists, ApiError, Conflict, NotFound, ServerError
from controller.events import EventRecorder
from controller.finalizers import add_finalizer, finalizers_of, has_finalizer, remove_finalizer
from controller.owners import (
    AlreadyOwned,
    OwnerReferenceError,
    controller_of,
    controller_reference,
    is_owned_by,
    set_controller_reference,
    set_owner_reference,
)

if TYPE_CHECKING:
    from controller.client import Client

Obj = dict[str, Any]
Key = tuple[str, str, str, str]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


class FakeClient:
    """Just enough of `controller.client.Client`: a store with resourceVersion preconditions."""

    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.calls: list[tuple[str, Any]] = []
        self.rv = 0
        # Errors to raise from the next calls of a method, in order.
        self.fail: dict[str, list[Exception]] = {}

    def _key(self, api_version: str, kind: str, name: str, namespace: str | None) -> Key:
        return (api_version, kind, namespace or "", name)

    def _obj_key(self, obj: Obj) -> Key:
        meta = obj["metadata"]
        return self._key(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))

    def _maybe_fail(self, method: str) -> None:
        errors = self.fail.get(method)
        if errors:
            raise errors.pop(0)

    def _store(self, obj: Obj) -> Obj:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[self._obj_key(obj)] = copy.deepcopy(obj)
        return copy.deepcopy(obj)

    def seed(self, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("uid", f"uid-{obj['metadata']['name']}")
        return self._store(obj)

    async def get(self, kind: tuple[str, str], name: str, namespace: str | None = None) -> Obj:
        self.calls.append(("get", (kind, name, namespace)))
        self._maybe_fail("get")
        try:
            return copy.deepcopy(self.objects[self._key(*kind, name, namespace)])
        except KeyError:
            raise NotFound(404, "NotFound", f"{name} not found") from None

    async def create(self, obj: Obj, *, field_manager: str | None = None) -> Obj:
        self.calls.append(("create", copy.deepcopy(obj)))
        self._maybe_fail("create")
        if self._obj_key(obj) in self.objects:
            raise AlreadyExists(409, "AlreadyExists", "exists")
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("uid", f"uid-{obj['metadata']['name']}")
        return self._store(obj)

    def _check_rv(self, key: Key, obj: Obj) -> Obj:
        if key not in self.objects:
            raise NotFound(404, "NotFound", "gone")
        current = self.objects[key]
        rv = obj["metadata"].get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", "the object has been modified")
        return current

    async def update(self, obj: Obj) -> Obj:
        self.calls.append(("update", copy.deepcopy(obj)))
        self._maybe_fail("update")
        self._check_rv(self._obj_key(obj), obj)
        return self._store(copy.deepcopy(obj))

    async def patch(
        self,
        kind: tuple[str, str],
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: str = "merge",
        field_manager: str | None = None,
        force: bool = False,
        subresource: str | None = None,
    ) -> Obj:
        self.calls.append(("patch", (kind, name, namespace, copy.deepcopy(patch), patch_type)))
        self._maybe_fail("patch")
        assert patch_type == "merge"
        key = self._key(*kind, name, namespace)
        current = self._check_rv(key, patch if "metadata" in patch else {"metadata": {}})
        return self._store(merge_patch(current, patch))

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]


@pytest.fixture
def fake() -> FakeClient:
    return FakeClient()


def client_of(fake: FakeClient) -> Client:
    return cast("Client", fake)


def configmap(name: str = "cm", namespace: str | None = "ns", **data: str) -> Obj:
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

# --- conditions ---------------------------------------------------------------------------


def test_set_condition_adds_with_upstream_fields() -> None:
    conditions: list[Obj] = []
    assert set_condition(conditions, "Ready", "True", "AllGood", "fine", 3, now=T0)
    assert conditions == [
        {
            "type": "Ready",
            "status": "True",
            "observedGeneration": 3,
            "lastTransitionTime": "2024-05-01T12:00:00Z",
            "reason": "AllGood",
            "message": "fine",
        }
    ]


def test_set_condition_same_values_is_unchanged() -> None:
    conditions: list[Obj] = []
    set_condition(conditions, "Ready", "True", "AllGood", "fine", 1, now=T0)
    assert not set_condition(
        conditions, "Ready", "True", "AllGood", "fine", 1, now=T0 + timedelta(hours=1)
    )
    assert conditions[0]["lastTransitionTime"] == "2024-05-01T12:00:00Z"


def test_set_condition_updates_reason_message_generation_in_place_keeping_time() -> None:
    conditions: list[Obj] = []
    set_condition(conditions, "Ready", "False", "Pending", "waiting", 1, now=T0)
    later = T0 + timedelta(minutes=5)
    assert set_condition(conditions, "Ready", "False", "StillPending", "more waiting", 2, now=later)
    assert conditions == [
        {
            "type": "Ready",
            "status": "False",
            "observedGeneration": 2,
            "lastTransitionTime": "2024-05-01T12:00:00Z",
            "reason": "StillPending",
            "message": "more waiting",
        }
    ]


def test_set_condition_status_change_moves_transition_time() -> None:
    conditions: list[Obj] = []
    set_condition(conditions, "Ready", "False", "Pending", "", now=T0)
    assert set_condition(conditions, "Ready", True, "Done", "", now=T0 + timedelta(seconds=90))
    assert conditions[0]["status"] == "True"
    assert conditions[0]["lastTransitionTime"] == "2024-05-01T12:01:30Z"
    assert "observedGeneration" not in conditions[0]


def test_set_condition_keeps_other_conditions() -> None:
    conditions: list[Obj] = []
    set_condition(conditions, "Ready", "True", "Ok", "")
    set_condition(conditions, "Degraded", "False", "Ok", "")
    set_condition(conditions, "Ready", "False", "Broken", "")
    assert [c["type"] for c in conditions] == ["Ready", "Degraded"]
    assert conditions[1]["status"] == "False"


@pytest.mark.parametrize(
    ("type_", "status", "reason"),
    [
        ("Ready", "true", "Ok"),
        ("Ready", "Maybe", "Ok"),
        ("Ready", "True", ""),
        ("Ready", "True", "not camel case"),
        ("Ready", "True", "1Starts"),
        ("", "True", "Ok"),
        ("bad type!", "True", "Ok"),
    ],
)
def test_set_condition_validates(type_: str, status: str, reason: str) -> None:
    conditions: list[Obj] = []
    with pytest.raises(ValueError):
        set_condition(conditions, type_, status, reason, "")
    assert conditions == []


def test_set_condition_rejects_negative_generation() -> None:
    with pytest.raises(ValueError):
        set_condition([], "Ready", "True", "Ok", "", -1)


def test_set_condition_accepts_prefixed_type_and_upstream_reason_charset() -> None:
    conditions: list[Obj] = []
    assert set_condition(conditions, "example.com/Synced", "Unknown", "Reason_With:Parts,1", "")
    assert get_condition(conditions, "example.com/Synced") is not None


def test_set_condition_fills_missing_transition_time() -> None:
    conditions: list[Obj] = [{"type": "Ready", "status": "True", "reason": "Ok", "message": ""}]
    assert set_condition(conditions, "Ready", "True", "Ok", "", now=T0)
    assert conditions[0]["lastTransitionTime"] == "2024-05-01T12:00:00Z"


def test_get_is_true_is_false_remove() -> None:
    conditions: list[Obj] = []
    assert get_condition(conditions, "Ready") is None
    assert not is_true(conditions, "Ready")
    assert not is_false(conditions, "Ready")
    assert not is_true(None, "Ready")
    set_condition(conditions, "Ready", "True", "Ok", "")
    set_condition(conditions, "Synced", "False", "Nope", "")
    assert is_true(conditions, "Ready")
    assert not is_false(conditions, "Ready")
    assert is_false(conditions, "Synced")
    got = get_condition(conditions, "Synced")
    assert got is not None and got["reason"] == "Nope"
    assert remove_condition(conditions, "Ready")
    assert not remove_condition(conditions, "Ready")
    assert [c["type"] for c in conditions] == ["Synced"]


def test_rfc3339_is_utc_seconds() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rfc3339())
    plus_two = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=UTC).astimezone()
    assert rfc3339(plus_two) == "2024-05-01T14:00:00Z"


def test_set_status_condition_creates_path_and_defaults_generation() -> None:
    obj: Obj = {"metadata": {"name": "x", "generation": 7}}
    assert set_status_condition(obj, "Ready", "True", "Ok", "up", now=T0)
    assert obj["status"]["conditions"][0]["observedGeneration"] == 7
    assert conditions_of(obj) is obj["status"]["conditions"]
    assert not set_status_condition(obj, "Ready", "True", "Ok", "up", now=T0 + timedelta(hours=1))
    assert set_status_condition(obj, "Ready", "True", "Ok", "up", 9)
    assert obj["status"]["conditions"][0]["observedGeneration"] == 9
    assert obj["status"]["conditions"][0]["lastTransitionTime"] == "2024-05-01T12:00:00Z"


def test_set_status_condition_keeps_existing_status_fields() -> None:
    obj: Obj = {"metadata": {"name": "x"}, "status": {"phase": "Running"}}
    set_status_condition(obj, "Ready", "False", "Starting", "")
    assert obj["status"]["phase"] == "Running"
    assert "observedGeneration" not in obj["status"]["conditions"][0]


def test_remove_status_condition_and_conditions_of_missing() -> None:
    obj: Obj = {"metadata": {"name": "x"}}
    assert conditions_of(obj) == []
    assert not remove_status_condition(obj, "Ready")
    set_status_condition(obj, "Ready", "True", "Ok", "")
    assert remove_status_condition(obj, "Ready")
    assert conditions_of(obj) == []


# --- owners ---------------------------------------------------------------------------------


def owner(
    name: str = "parent",
    namespace: str | None = "ns",
    uid: str = "u-1",
    api_version: str = "example.com/v1",
    kind: str = "Parent",
) -> Obj:
    meta: Obj = {"name": name, "uid": uid}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def test_controller_reference() -> None:
    assert controller_reference(owner()) == {
        "apiVersion": "example.com/v1",
        "kind": "Parent",
        "name": "parent",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_controller_reference_needs_a_persisted_owner() -> None:
    unsaved = owner()
    del unsaved["metadata"]["uid"]
    with pytest.raises(OwnerReferenceError):
        controller_reference(unsaved)


def test_set_controller_reference_adds_once() -> None:
    child = configmap()
    set_controller_reference(owner(), child)
    set_controller_reference(owner(), child)
    assert child["metadata"]["ownerReferences"] == [controller_reference(owner())]
    assert controller_of(child) == controller_reference(owner())


def test_set_controller_reference_updates_same_owner_at_other_version_and_uid() -> None:
    child = configmap()
    set_controller_reference(owner(), child)
    newer = owner(uid="u-2", api_version="example.com/v2")
    set_controller_reference(newer, child)
    assert child["metadata"]["ownerReferences"] == [controller_reference(newer)]


def test_set_controller_reference_refuses_second_controller() -> None:
    child = configmap()
    set_controller_reference(owner(), child)
    with pytest.raises(AlreadyOwned) as info:
        set_controller_reference(owner(name="other", uid="u-9"), child)
    assert info.value.existing["name"] == "parent"
    assert len(child["metadata"]["ownerReferences"]) == 1


def test_set_controller_reference_keeps_plain_owners() -> None:
    child = configmap()
    set_owner_reference(owner(name="a", uid="u-a"), child)
    set_controller_reference(owner(), child)
    refs = child["metadata"]["ownerReferences"]
    assert [r["name"] for r in refs] == ["a", "parent"]
    assert "controller" not in refs[0]


def test_cluster_scoped_owner_may_own_namespaced_object() -> None:
    child = configmap()
    set_controller_reference(owner(namespace=None), child)
    assert controller_of(child) is not None


def test_cluster_scoped_owner_may_own_cluster_scoped_object() -> None:
    child = configmap(namespace=None)
    set_controller_reference(owner(namespace=None), child)
    assert controller_of(child) is not None


def test_namespaced_owner_of_cluster_scoped_object_is_refused() -> None:
    child = configmap(namespace=None)
    with pytest.raises(OwnerReferenceError, match="cluster-scoped resource"):
        set_controller_reference(owner(), child)
    with pytest.raises(OwnerReferenceError):
        set_owner_reference(owner(), child)
    assert "ownerReferences" not in child["metadata"]


def test_cross_namespace_owner_is_refused() -> None:
    child = configmap(namespace="elsewhere")
    with pytest.raises(OwnerReferenceError, match="cross-namespace"):
        set_controller_reference(owner(), child)
    with pytest.raises(OwnerReferenceError, match="cross-namespace"):
        set_owner_reference(owner(), child)


def test_set_owner_reference_is_plain() -> None:
    child = configmap()
    set_owner_reference(owner(), child)
    set_owner_reference(owner(), child)
    assert child["metadata"]["ownerReferences"] == [
        {"apiVersion": "example.com/v1", "kind": "Parent", "name": "parent", "uid": "u-1"}
    ]
    assert controller_of(child) is None
    set_owner_reference(owner(name="b", uid="u-b"), child, block_owner_deletion=True)
    assert child["metadata"]["ownerReferences"][1]["blockOwnerDeletion"] is True


def test_set_owner_reference_does_not_demote_the_controller() -> None:
    child = configmap()
    set_controller_reference(owner(), child)
    set_owner_reference(owner(), child)
    assert child["metadata"]["ownerReferences"] == [controller_reference(owner())]


def test_is_owned_by() -> None:
    child = configmap()
    assert not is_owned_by(child, owner())
    set_owner_reference(owner(), child)
    assert is_owned_by(child, owner())
    assert is_owned_by(child, owner(api_version="example.com/v2"))
    assert not is_owned_by(child, owner(uid="recreated"))
    assert not is_owned_by(child, owner(kind="Other"))
    assert not is_owned_by(child, owner(api_version="other.io/v1"))
    assert not is_owned_by(child, owner(name="nope"))


def test_controller_of_returns_a_copy() -> None:
    child = configmap()
    set_controller_reference(owner(), child)
    ref = controller_of(child)
    assert ref is not None
    ref["name"] = "changed"
    assert child["metadata"]["ownerReferences"][0]["name"] == "parent"


# --- finalizers ------------------------------------------------------------------------------


def test_has_finalizer() -> None:
    obj = configmap()
    assert not has_finalizer(obj, "a/b")
    obj["metadata"]["finalizers"] = ["a/b"]
    assert has_finalizer(obj, "a/b")
    assert finalizers_of(obj) == ["a/b"]


async def test_add_finalizer_patches_full_list_with_resource_version(fake: FakeClient) -> None:
    cm = configmap()
    cm["metadata"]["finalizers"] = ["other/keep"]
    obj = fake.seed(cm)
    updated = await add_finalizer(client_of(fake), obj, "example.com/cleanup")
    assert updated["metadata"]["finalizers"] == ["other/keep", "example.com/cleanup"]
    assert updated["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]
    assert fake.calls == [
        (
            "patch",
            (
                ("v1", "ConfigMap"),
                "cm",
                "ns",
                {
                    "metadata": {
                        "finalizers": ["other/keep", "example.com/cleanup"],
                        "resourceVersion": obj["metadata"]["resourceVersion"],
                    }
                },
                "merge",
            ),
        )
    ]
    assert obj["metadata"]["finalizers"] == ["other/keep"], "the input is not modified"


async def test_add_finalizer_is_a_noop_when_present(fake: FakeClient) -> None:
    obj = fake.seed({**configmap(), "metadata": {"name": "cm", "finalizers": ["x/y"]}})
    assert await add_finalizer(client_of(fake), obj, "x/y") is obj
    assert fake.calls == []


async def test_add_finalizer_on_stale_object_conflicts(fake: FakeClient) -> None:
    obj = fake.seed(configmap())
    fresh = await add_finalizer(client_of(fake), obj, "a/one")
    with pytest.raises(Conflict):
        await add_finalizer(client_of(fake), obj, "a/two")
    assert fake.objects[fake._obj_key(fresh)]["metadata"]["finalizers"] == ["a/one"]


async def test_remove_finalizer(fake: FakeClient) -> None:
    cm = configmap()
    cm["metadata"]["finalizers"] = ["a/one", "a/two"]
    obj = fake.seed(cm)
    obj = await remove_finalizer(client_of(fake), obj, "a/one")
    assert obj["metadata"]["finalizers"] == ["a/two"]
    obj = await remove_finalizer(client_of(fake), obj, "a/two")
    assert "finalizers" not in obj["metadata"]
    calls = len(fake.calls)
    assert await remove_finalizer(client_of(fake), obj, "a/two") is obj
    assert len(fake.calls) == calls


async def test_remove_finalizer_on_stale_object_conflicts(fake: FakeClient) -> None:
    cm = configmap()
    cm["metadata"]["finalizers"] = ["a/one"]
    obj = fake.seed(cm)
    await fake.patch(("v1", "ConfigMap"), "cm", {"data": {"k": "v"}}, namespace="ns")
    with pytest.raises(Conflict):
        await remove_finalizer(client_of(fake), obj, "a/one")


async def test_finalizer_write_needs_resource_version(fake: FakeClient) -> None:
    with pytest.raises(ValueError, match="resourceVersion"):
        await add_finalizer(client_of(fake), configmap(), "a/b")
    assert fake.calls == []


async def test_finalizer_on_cluster_scoped_object(fake: FakeClient) -> None:
    obj = fake.seed(configmap(namespace=None))
    updated = await add_finalizer(client_of(fake), obj, "a/b")
    assert updated["metadata"]["finalizers"] == ["a/b"]
    assert fake.calls[0][1][2] is None


# --- events ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.wall = T0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self.wall += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def recorder(fake: FakeClient, clock: Clock, **kwargs: Any) -> EventRecorder:
    kwargs.setdefault("retry_delay", 0)
    return EventRecorder(
        client_of(fake),
        "my-controller",
        "pod-1",
        clock=clock.monotonic,
        wallclock=clock.now,
        **kwargs,
    )


def events(fake: FakeClient) -> list[Obj]:
    return [o for k, o in fake.objects.items() if k[1] == "Event"]


def subject(name: str = "cm", namespace: str | None = "ns") -> Obj:
    obj = configmap(name, namespace)
    obj["metadata"].update(uid=f"uid-{name}", resourceVersion="42")
    return obj


async def test_event_creates_core_v1_event(fake: FakeClient, clock: Clock) -> None:
    rec = recorder(fake, clock)
    rec.event(subject(), "Normal", "Synced", "all good")
    assert fake.calls == [], "event() only queues"
    await rec.flush()
    [event] = events(fake)
    name = event["metadata"].pop("name")
    assert re.fullmatch(r"cm\.[0-9a-f]{16}", name)
    event["metadata"].pop("resourceVersion")
    event["metadata"].pop("uid")
    assert event == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": "ns"},
        "involvedObject": {
            "kind": "ConfigMap",
            "namespace": "ns",
            "name": "cm",
            "uid": "uid-cm",
            "apiVersion": "v1",
            "resourceVersion": "42",
        },
        "reason": "Synced",
        "message": "all good",
        "type": "Normal",
        "source": {"component": "my-controller", "host": "pod-1"},
        "reportingComponent": "my-controller",
        "reportingInstance": "pod-1",
        "firstTimestamp": "2024-05-01T12:00:00Z",
        "lastTimestamp": "2024-05-01T12:00:00Z",
        "count": 1,
    }
    await rec.close()


async def test_event_about_cluster_scoped_object_goes_to_default(
    fake: FakeClient, clock: Clock
) -> None:
    rec = EventRecorder(client_of(fake), "ctl")
    rec.event(subject(namespace=None), "Warning", "Broken", "oops")
    await rec.close()
    [event] = events(fake)
    assert event["metadata"]["namespace"] == "default"
    assert "namespace" not in event["involvedObject"]
    assert event["source"] == {"component": "ctl"}
    assert event["type"] == "Warning"


async def test_repeated_event_is_aggregated(fake: FakeClient, clock: Clock) -> None:
    rec = recorder(fake, clock)
    rec.event(subject(), "Warning", "Failed", "boom")
    clock.advance(60)
    rec.event(subject(), "Warning", "Failed", "boom")
    clock.advance(60)
    rec.event(subject(), "Warning", "Failed", "boom")
    await rec.flush()
    [event] = events(fake)
    assert event["count"] == 3
    assert event["firstTimestamp"] == "2024-05-01T12:00:00Z"
    assert event["lastTimestamp"] == "2024-05-01T12:02:00Z"
    assert fake.methods() == ["create", "patch", "patch"]
    await rec.close()


async def test_different_message_reason_type_or_object_is_a_new_event(
    fake: FakeClient, clock: Clock
) -> None:
    rec = recorder(fake, clock)
    rec.event(subject(), "Warning", "Failed", "boom")
    rec.event(subject(), "Warning", "Failed", "bang")
    rec.event(subject(), "Warning", "Crashed", "boom")
    rec.event(subject(), "Normal", "Failed", "boom")
    rec.event(subject("other"), "Warning", "Failed", "boom")
    await rec.close()
    assert len(events(fake)) == 5
    assert all(e["count"] == 1 for e in events(fake))


async def test_aggregation_window_expires(fake: FakeClient, clock: Clock) -> None:
    rec = recorder(fake, clock)
    rec.event(subject(), "Normal", "Synced", "ok")
    clock.advance(601)
    rec.event(subject(), "Normal", "Synced", "ok")
    await rec.close()
    assert sorted(e["count"] for e in events(fake)) == [1, 1]


async def test_aggregated_event_recreated_when_deleted(fake: FakeClient, clock: Clock) -> None:
    rec = recorder(fake, clock)
    rec.event(subject(), "Normal", "Synced", "ok")
    await rec.flush()
    [key] = [k for k in fake.objects if k[1] == "Event"]
    del fake.objects[key]
    rec.event(subject(), "Normal", "Synced", "ok")
    await rec.close()
    [event] = events(fake)
    assert event["metadata"]["name"] == key[3]
    assert event["count"] == 2


async def test_rate_limit_per_object(fake: FakeClient, clock: Clock) -> None:
    rec = recorder(fake, clock)
    for i in range(40):
        rec.event(subject(), "Normal", "Tick", f"tick {i}")
    rec.event(subject("other"), "Normal", "Tick", "other object has its own bucket")
    await rec.flush()
    assert len(events(fake)) == 26
    clock.advance(299)
    rec.event(subject(), "Normal", "Tick", "still limited")
    clock.advance(1)
    rec.event(subject(), "Normal", "Tick", "one token refilled")
    rec.event(subject(), "Normal", "Tick", "and spent")
    await rec.close()
    messages = {e["message"] for e in events(fake)}
    assert len(events(fake)) == 27
    assert "one token refilled" in messages
    assert "tick 24" in messages and "tick 25" not in messages


async def test_rate_limit_caps_aggregated_repeats_too(fake: FakeClient, clock: Clock) -> None:
    rec = recorder(fake, clock, burst=3)
    for _ in range(10):
        rec.event(subject(), "Warning", "Failed", "boom")
    await rec.close()
    [event] = events(fake)
    assert event["count"] == 3


async def test_invalid_event_type_is_dropped(
    fake: FakeClient, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    rec = recorder(fake, clock)
    with caplog.at_level(logging.ERROR, logger="controller.events"):
        rec.event(subject(), "Info", "Synced", "ok")
        rec.event({"kind": "ConfigMap"}, "Normal", "Synced", "no name")
    await rec.close()
    assert events(fake) == []
    assert "invalid type" in caplog.text


async def test_event_never_raises_on_api_errors(
    fake: FakeClient, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    rec = recorder(fake, clock)
    fake.fail["create"] = [ApiError(403, "Forbidden", "no")]
    with caplog.at_level(logging.WARNING, logger="controller.events"):
        rec.event(subject(), "Normal", "Synced", "ok")
        await rec.flush()
    assert events(fake) == []
    assert "Forbidden" in caplog.text
    # The failed create was not remembered: the repeat creates rather than patches.
    rec.event(subject(), "Normal", "Synced", "ok")
    await rec.close()
    assert fake.methods() == ["create", "create"]
    assert events(fake)[0]["count"] == 1


async def test_event_retries_server_errors(fake: FakeClient, clock: Clock) -> None:
    rec = recorder(fake, clock)
    fake.fail["create"] = [ServerError(503, "ServiceUnavailable", ""), ConnectionResetError()]
    rec.event(subject(), "Normal", "Synced", "ok")
    await rec.close()
    assert fake.methods() == ["create", "create", "create"]
    assert len(events(fake)) == 1


async def test_event_gives_up_after_attempts(fake: FakeClient, clock: Clock) -> None:
    rec = recorder(fake, clock, attempts=2)
    fake.fail["create"] = [ServerError(500, "InternalError", "")] * 5
    rec.event(subject(), "Normal", "Synced", "ok")
    await rec.close()
    assert fake.methods() == ["create", "create"]


async def test_failed_aggregation_patch_is_logged(
    fake: FakeClient, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    rec = recorder(fake, clock)
    rec.event(subject(), "Normal", "Synced", "ok")
    await rec.flush()
    fake.fail["patch"] = [ApiError(403, "Forbidden", "no")]
    with caplog.at_level(logging.WARNING, logger="controller.events"):
        rec.event(subject(), "Normal", "Synced", "ok")
        await rec.flush()
    assert "could not update event" in caplog.text
    rec.event(subject(), "Normal", "Synced", "ok")
    await rec.close()
    assert events(fake)[0]["count"] == 3


async def test_event_snapshots_the_object(fake: FakeClient, clock: Clock) -> None:
    rec = recorder(fake, clock)
    obj = subject()
    rec.event(obj, "Normal", "Synced", "ok")
    obj["metadata"]["name"] = "mutated"
    await rec.close()
    assert events(fake)[0]["involvedObject"]["name"] == "cm"


async def test_closed_recorder_drops_events(fake: FakeClient, clock: Clock) -> None:
    rec = recorder(fake, clock)
    await rec.flush()  # nothing queued, no worker: returns at once
    await rec.close()
    rec.event(subject(), "Normal", "Synced", "ok")
    await asyncio.sleep(0)
    assert fake.calls == []


async def test_full_queue_drops_instead_of_blocking(fake: FakeClient, clock: Clock) -> None:
    rec = recorder(fake, clock, queue_size=2)
    for i in range(5):
        rec.event(subject(f"o{i}"), "Normal", "Synced", "ok")
    await rec.close()
    assert len(events(fake)) == 2


def test_event_without_running_loop_does_not_raise(fake: FakeClient, clock: Clock) -> None:
    recorder(fake, clock).event(subject(), "Normal", "Synced", "ok")
    assert fake.calls == []


# --- create_or_update ---------------------------------------------------------------------------


def set_data(**data: str) -> Any:
    def mutate(obj: Obj) -> None:
        obj.setdefault("data", {}).update(data)

    return mutate


async def test_create_or_update_creates(fake: FakeClient) -> None:
    desired = configmap(seed="1")
    obj, result = await create_or_update(client_of(fake), desired, set_data(a="1"))
    assert result == "created"
    assert obj["data"] == {"seed": "1", "a": "1"}
    assert obj["metadata"]["resourceVersion"]
    assert desired == configmap(seed="1"), "the desired object is not modified"
    assert fake.methods() == ["get", "create"]


async def test_create_or_update_unchanged_makes_no_write(fake: FakeClient) -> None:
    stored = fake.seed(configmap(a="1"))
    obj, result = await create_or_update(client_of(fake), configmap(), set_data(a="1"))
    assert result == "unchanged"
    assert obj == stored
    assert fake.methods() == ["get"]


async def test_create_or_update_ignores_managed_fields_and_resource_version(
    fake: FakeClient,
) -> None:
    cm = configmap(a="1")
    cm["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    fake.seed(cm)

    def mutate(obj: Obj) -> None:
        obj["metadata"].pop("managedFields")
        obj["metadata"].pop("resourceVersion")

    _, result = await create_or_update(client_of(fake), configmap(), mutate)
    assert result == "unchanged"


async def test_create_or_update_updates_live_object(fake: FakeClient) -> None:
    live = configmap(a="1", theirs="keep")
    live["metadata"]["labels"] = {"set-by": "someone-else"}
    stored = fake.seed(live)
    obj, result = await create_or_update(client_of(fake), configmap(a="ignored"), set_data(a="2"))
    assert result == "updated"
    assert obj["data"] == {"a": "2", "theirs": "keep"}
    assert obj["metadata"]["labels"] == {"set-by": "someone-else"}
    [(_, sent)] = [c for c in fake.calls if c[0] == "update"]
    assert sent["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]


async def test_create_or_update_retries_conflicts(fake: FakeClient) -> None:
    fake.seed(configmap(a="1"))
    fake.fail["update"] = [Conflict(409, "Conflict", "modified")]
    obj, result = await create_or_update(client_of(fake), configmap(), set_data(a="2"))
    assert result == "updated"
    assert obj["data"]["a"] == "2"
    assert fake.methods() == ["get", "update", "get", "update"]


async def test_create_or_update_retry_sees_fresh_state(fake: FakeClient) -> None:
    fake.seed(configmap(a="1"))
    real_update = fake.update
    raced = False

    async def racing_update(obj: Obj) -> Obj:
        nonlocal raced
        if not raced:
            raced = True
            await fake.patch(("v1", "ConfigMap"), "cm", {"data": {"b": "theirs"}}, namespace="ns")
        return await real_update(obj)

    fake.update = racing_update  # type: ignore[method-assign]
    obj, result = await create_or_update(client_of(fake), configmap(), set_data(a="2"))
    assert result == "updated"
    assert obj["data"] == {"a": "2", "b": "theirs"}


async def test_create_or_update_gives_up_after_attempts(fake: FakeClient) -> None:
    fake.seed(configmap(a="1"))
    fake.fail["update"] = [Conflict(409, "Conflict", "modified")] * 3
    with pytest.raises(Conflict):
        await create_or_update(client_of(fake), configmap(), set_data(a="2"), attempts=3)
    assert fake.methods().count("update") == 3


async def test_create_or_update_lost_create_race_updates(fake: FakeClient) -> None:
    real_create = fake.create

    async def racing_create(obj: Obj, *, field_manager: str | None = None) -> Obj:
        fake.seed(configmap(a="1", theirs="x"))
        return await real_create(obj)

    fake.create = racing_create  # type: ignore[method-assign]
    obj, result = await create_or_update(client_of(fake), configmap(), set_data(a="2"))
    assert result == "updated"
    assert obj["data"] == {"a": "2", "theirs": "x"}


async def test_create_or_update_refuses_identity_changes(fake: FakeClient) -> None:
    def rename(obj: Obj) -> None:
        obj["metadata"]["name"] = "other"

    with pytest.raises(ValueError, match="must not change"):
        await create_or_update(client_of(fake), configmap(), rename)
    fake.seed(configmap())
    with pytest.raises(ValueError, match="must not change"):
        await create_or_update(client_of(fake), configmap(), rename)
    assert "create" not in fake.methods() and "update" not in fake.methods()


async def test_create_or_update_needs_a_name(fake: FakeClient) -> None:
    with pytest.raises(ValueError):
        await create_or_update(
            client_of(fake), {"apiVersion": "v1", "kind": "ConfigMap"}, set_data()
        )


async def test_create_or_update_propagates_other_errors(fake: FakeClient) -> None:
    fake.fail["get"] = [ApiError(403, "Forbidden", "no")]
    with pytest.raises(ApiError):
        await create_or_update(client_of(fake), configmap(), set_data(a="1"))
