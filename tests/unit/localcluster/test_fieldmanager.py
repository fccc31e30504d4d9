from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from localcluster.errors import StatusError
from localcluster.fieldmanager import (
    FieldSet,
    field_set,
    from_fields_v1,
    render_path,
    server_side_apply,
    to_fields_v1,
    update_managed_fields,
)
from localcluster.patch import builtin_list_keys, crd_list_keys

T0 = "2026-01-02T03:04:05Z"
T1 = "2026-01-02T03:05:00Z"
T2 = "2026-01-02T03:06:00Z"
BK = builtin_list_keys


def cm(data: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default", **meta},
    }
    if data is not None:
        obj["data"] = data
    return obj


def with_managed(obj: dict[str, Any], managed: list[dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"]["managedFields"] = managed
    return out


def by_manager(managed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{e['manager']}/{e['operation']}": e for e in managed}


def update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    now: str = T0,
    api_version: str = "v1",
    **kw: Any,
) -> dict[str, Any]:
    """`new` with the managedFields an update by `manager` leaves."""
    managed = update_managed_fields(
        old, new, manager=manager, api_version=api_version, list_keys=BK, now=now, **kw
    )
    return with_managed(new, managed)


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    now: str = T0,
    force: bool = False,
    api_version: str = "v1",
    **kw: Any,
) -> dict[str, Any]:
    return server_side_apply(
        live,
        applied,
        manager=manager,
        force=force,
        api_version=api_version,
        list_keys=BK,
        now=now,
        **kw,
    )


def deployment(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers},
            },
            **spec,
        },
    }


# --- field sets and FieldsV1 ------------------------------------------------------------


def test_field_set_ignores_identity_and_server_fields() -> None:
    obj = cm(
        {"k": "v"},
        uid="u",
        resourceVersion="7",
        generation=2,
        creationTimestamp=T0,
        deletionTimestamp=T0,
        selfLink="/x",
        managedFields=[{"manager": "m"}],
        labels={"app": "x"},
        annotations={"note": "y"},
    )
    obj["status"] = {"phase": "Ready"}
    assert field_set(obj, BK) == FieldSet(
        {
            ("f:data", "f:k"),
            ("f:metadata", "f:labels", "f:app"),
            ("f:metadata", "f:annotations", "f:note"),
        }
    )


def test_field_set_of_status_subresource_is_status_only() -> None:
    obj = {"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"x": 1}, "status": {"y": 2}}
    assert field_set(obj, BK, subresource="status") == FieldSet(
        {("f:status", "f:y"), ("f:metadata", "f:labels", "f:a")}
    )


def test_field_set_of_lists() -> None:
    obj = {
        "metadata": {
            "finalizers": ["example.com/f"],
            "ownerReferences": [{"uid": "u1", "name": "o"}],
        },
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "args": ["--x"],
                            "resources": {},
                            "ports": [{"containerPort": 80}],
                        }
                    ]
                }
            },
        },
    }
    app = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"app"}')
    port = (*app, "f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')
    assert field_set(obj, BK) == FieldSet(
        {
            ("f:metadata", "f:finalizers", 'v:"example.com/f"'),
            ("f:metadata", "f:ownerReferences", 'k:{"uid":"u1"}'),
            ("f:metadata", "f:ownerReferences", 'k:{"uid":"u1"}', "f:uid"),
            ("f:metadata", "f:ownerReferences", 'k:{"uid":"u1"}', "f:name"),
            ("f:spec", "f:selector"),
            app,
            (*app, "f:name"),
            (*app, "f:args"),
            (*app, "f:resources"),
            port,
            (*port, "f:containerPort"),
        }
    )


# An upstream Deployment's kubectl-client-side-apply entry, and a PVC's finalizers.
UPSTREAM_FIELDS_V1 = [
    (
        '{"f:metadata":{"f:annotations":{".":{},"f:kubectl.kubernetes.io/last-applied-configurati'
        'on":{}},"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:repl'
        'icas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{"."'
        ':{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:l'
        'abels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\\"name\\":\\"nginx\\"}":{".":'
        '{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\\"containerPor'
        't\\":80,\\"protocol\\":\\"TCP\\"}":{".":{},"f:containerPort":{},"f:protocol":{}}},"f:res'
        'ources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy"'
        ':{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGrace'
        'PeriodSeconds":{}}}}}'
    ),
    '{"f:metadata":{"f:finalizers":{".":{},"v:\\"kubernetes.io/pvc-protection\\"":{}}}}',
]


@pytest.mark.parametrize("text", UPSTREAM_FIELDS_V1)
def test_fields_v1_round_trip_is_byte_exact(text: str) -> None:
    parsed = from_fields_v1(json.loads(text))
    assert json.dumps(to_fields_v1(parsed), separators=(",", ":")) == text


def test_from_fields_v1_members() -> None:
    fs = from_fields_v1(json.loads(UPSTREAM_FIELDS_V1[1]))
    assert fs == FieldSet(
        {
            ("f:metadata", "f:finalizers"),
            ("f:metadata", "f:finalizers", 'v:"kubernetes.io/pvc-protection"'),
        }
    )


def test_to_fields_v1_orders_like_upstream() -> None:
    ports = ("f:spec", "f:ports")
    fs = FieldSet(
        {
            ports,
            (*ports, 'k:{"port":443,"protocol":"TCP"}'),
            (*ports, 'k:{"port":80,"protocol":"TCP"}'),
            ("f:spec", "f:type"),
            ("f:spec", "f:clusterIP"),
        }
    )
    assert json.dumps(to_fields_v1(fs), separators=(",", ":")) == (
        '{"f:spec":{"f:clusterIP":{},"f:ports":{".":{},"k:{\\"port\\":80,\\"protocol\\":\\"TCP\\"}'
        '":{},"k:{\\"port\\":443,\\"protocol\\":\\"TCP\\"}":{}},"f:type":{}}}'
    )


@pytest.mark.parametrize("bad", [{"f:a": "x"}, {"a": {}}, {"f:a": {"x:b": {}}}])
def test_from_fields_v1_rejects_malformed(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        from_fields_v1(bad)


def test_render_path() -> None:
    assert render_path(("f:spec", "f:containers", 'k:{"name":"app"}', "f:image")) == (
        '.spec.containers[name="app"].image'
    )
    assert render_path(("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}')) == (
        '.spec.ports[port=80,protocol="TCP"]'
    )
    assert render_path(("f:metadata", "f:finalizers", 'v:"a"')) == '.metadata.finalizers[="a"]'


def test_field_set_ordering_lists_members_before_children() -> None:
    fs = FieldSet({("f:spec", "f:z"), ("f:spec", "f:a", "f:b"), ("f:data", "f:k")})
    assert fs.render() == [".data.k", ".spec.z", ".spec.a.b"]


# --- update_managed_fields --------------------------------------------------------------


def test_create_records_update_entry_exactly_like_upstream() -> None:
    managed = update_managed_fields(
        None,
        cm({"key": "v"}, labels={"app": "x"}),
        manager="kubectl-create",
        api_version="v1",
        list_keys=BK,
        now=T0,
    )
    assert managed == [
        {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:data": {".": {}, "f:key": {}},
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            },
        }
    ]
    assert list(managed[0]) == [
        "manager",
        "operation",
        "apiVersion",
        "time",
        "fieldsType",
        "fieldsV1",
    ]


def test_create_of_builtin_marks_only_fields_a_zero_object_lacks() -> None:
    obj = deployment(
        [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
    )
    managed = update_managed_fields(
        None, obj, manager="kubectl-create", api_version="apps/v1", list_keys=BK, now=T0
    )
    assert managed[0]["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:selector": {},
            "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}}, "f:type": {}},
            "f:template": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"nginx"}': {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {
                                ".": {},
                                'k:{"containerPort":80,"protocol":"TCP"}': {
                                    ".": {},
                                    "f:containerPort": {},
                                    "f:protocol": {},
                                },
                            },
                        }
                    }
                },
            },
        },
    }


def test_create_of_custom_resource_marks_spec_itself() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "tags": {
                        "type": "array",
                        "x-kubernetes-list-type": "set",
                        "items": {"type": "string"},
                    }
                },
            }
        },
    }
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1, "tags": ["a"]},
    }
    managed = update_managed_fields(
        None,
        obj,
        manager="m",
        api_version="example.com/v1",
        list_keys=crd_list_keys(schema),
        now=T0,
    )
    assert managed[0]["fieldsV1"] == {
        "f:spec": {".": {}, "f:size": {}, "f:tags": {".": {}, 'v:"a"': {}}}
    }


def test_update_moves_changed_fields_to_the_updater() -> None:
    created = update(None, cm({"a": "1", "b": "1"}), "creator", T0)
    edited = copy.deepcopy(created)
    edited["data"]["a"] = "2"
    managed = update_managed_fields(
        created, edited, manager="editor", api_version="v1", list_keys=BK, now=T1
    )
    assert managed == [
        {
            "manager": "creator",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:b": {}}},
        },
        {
            "manager": "editor",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}},
        },
    ]


def test_removed_fields_leave_every_set_and_empty_entries_go() -> None:
    created = update(None, cm(labels={"x": "1"}), "creator", T0)
    stripped = copy.deepcopy(created)
    del stripped["metadata"]["labels"]
    assert (
        update_managed_fields(
            created, stripped, manager="editor", api_version="v1", list_keys=BK, now=T1
        )
        == []
    )


def test_removing_one_field_keeps_the_rest_of_an_entry() -> None:
    created = update(None, cm({"a": "1", "b": "1"}), "creator", T0)
    edited = copy.deepcopy(created)
    del edited["data"]["a"]
    managed = update_managed_fields(
        created, edited, manager="editor", api_version="v1", list_keys=BK, now=T1
    )
    assert [(e["manager"], e["fieldsV1"]) for e in managed] == [
        ("creator", {"f:data": {".": {}, "f:b": {}}})
    ]


def test_no_op_update_changes_nothing() -> None:
    created = update(None, cm({"a": "1"}), "creator", T0)
    same = copy.deepcopy(created)
    managed = update_managed_fields(
        created, same, manager="someone", api_version="v1", list_keys=BK, now=T1
    )
    assert managed == created["metadata"]["managedFields"]


def test_same_manager_accumulates_and_refreshes_time() -> None:
    created = update(None, cm({"a": "1"}), "m", T0)
    edited = copy.deepcopy(created)
    edited["data"]["b"] = "2"
    managed = update_managed_fields(
        created, edited, manager="m", api_version="v1", list_keys=BK, now=T1
    )
    assert len(managed) == 1
    assert managed[0]["time"] == T1
    assert managed[0]["fieldsV1"] == {"f:data": {".": {}, "f:a": {}, "f:b": {}}}


def test_an_empty_managed_fields_list_in_the_request_resets_tracking() -> None:
    created = update(None, cm({"a": "1"}), "creator", T0)
    edited = copy.deepcopy(created)
    edited["metadata"]["managedFields"] = []
    edited["data"]["b"] = "2"
    managed = update_managed_fields(
        created, edited, manager="editor", api_version="v1", list_keys=BK, now=T1
    )
    assert [(e["manager"], e["fieldsV1"]) for e in managed] == [("editor", {"f:data": {"f:b": {}}})]


def test_managed_fields_sent_by_the_client_replace_the_live_ones() -> None:
    created = update(None, cm({"a": "1"}), "creator", T0)
    edited = copy.deepcopy(created)
    edited["metadata"]["managedFields"] = [
        {
            "manager": "someone-else",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}},
        }
    ]
    managed = update_managed_fields(
        created, edited, manager="editor", api_version="v1", list_keys=BK, now=T1
    )
    assert [e["manager"] for e in managed] == ["someone-else"]


def test_status_updates_are_tracked_per_subresource() -> None:
    obj = deployment([{"name": "app", "image": "a"}])
    created = update(None, obj, "kubectl", T0, api_version="apps/v1")
    with_status = copy.deepcopy(created)
    with_status["status"] = {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
    # Through the main resource status is not tracked at all.
    assert (
        update_managed_fields(
            created, with_status, manager="ctrl", api_version="apps/v1", list_keys=BK, now=T1
        )
        == created["metadata"]["managedFields"]
    )
    managed = update_managed_fields(
        created,
        with_status,
        manager="ctrl",
        api_version="apps/v1",
        list_keys=BK,
        now=T1,
        subresource="status",
    )
    entry = by_manager(managed)["ctrl/Update"]
    assert entry["subresource"] == "status"
    assert list(entry)[-1] == "subresource"
    assert entry["fieldsV1"] == {
        "f:status": {
            "f:conditions": {
                ".": {},
                'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}},
            },
            "f:replicas": {},
        }
    }


def test_entries_sorted_apply_first_then_by_time() -> None:
    live = apply(None, cm({"a": "1"}), "applier", T2)
    edited = copy.deepcopy(live)
    edited["data"]["b"] = "1"
    live = update(live, edited, "early", T0)
    managed = live["metadata"]["managedFields"]
    assert [(e["manager"], e["operation"]) for e in managed] == [
        ("applier", "Apply"),
        ("early", "Update"),
    ]
    edited = copy.deepcopy(live)
    edited["data"]["c"] = "1"
    later = update(live, edited, "aaa-late", T1)
    assert [e["manager"] for e in later["metadata"]["managedFields"]] == [
        "applier",
        "early",
        "aaa-late",
    ]


def test_associative_list_items_move_individually() -> None:
    obj = deployment([{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}])
    created = update(None, obj, "creator", T0, api_version="apps/v1")
    edited = copy.deepcopy(created)
    edited["spec"]["template"]["spec"]["containers"][1]["image"] = "s:2"
    managed = by_manager(
        update_managed_fields(
            created, edited, manager="kubectl-set", api_version="apps/v1", list_keys=BK, now=T1
        )
    )
    assert managed["kubectl-set/Update"]["fieldsV1"] == {
        "f:spec": {
            "f:template": {"f:spec": {"f:containers": {'k:{"name":"side"}': {"f:image": {}}}}}
        }
    }
    containers = managed["creator/Update"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
    assert containers["f:containers"]['k:{"name":"side"}'] == {".": {}, "f:name": {}}


# --- server-side apply --------------------------------------------------------------------


def test_apply_create_returns_applied_object_with_apply_entry() -> None:
    applied = cm({"key": "v"}, labels={"app": "x"})
    result = apply(None, applied, "kubectl")
    expected = cm({"key": "v"}, labels={"app": "x"})
    expected["metadata"]["managedFields"] = [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:key": {}}, "f:metadata": {"f:labels": {"f:app": {}}}},
        }
    ]
    assert result == expected
    assert "managedFields" not in applied["metadata"]


def test_reapply_without_a_field_removes_it() -> None:
    live = apply(None, cm({"a": "1", "b": "2"}, labels={"x": "1"}), "kubectl", T0)
    live["metadata"]["uid"] = "u"
    result = apply(live, cm({"a": "1"}), "kubectl", T1)
    assert result["data"] == {"a": "1"}
    assert "labels" not in result["metadata"]
    assert result["metadata"]["uid"] == "u"
    assert result["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}},
        }
    ]


def test_reapply_keeps_fields_another_manager_owns() -> None:
    live = apply(None, cm({"a": "1", "b": "2"}), "one", T0)
    live = apply(live, cm({"b": "2"}), "two", T1)
    result = apply(live, cm({"a": "1"}), "one", T2)
    assert result["data"] == {"a": "1", "b": "2"}
    managed = by_manager(result["metadata"]["managedFields"])
    assert managed["one/Apply"]["fieldsV1"] == {"f:data": {"f:a": {}}}
    assert managed["two/Apply"]["fieldsV1"] == {"f:data": {"f:b": {}}}


def test_reapply_keeps_fields_an_updater_owns() -> None:
    live = apply(None, cm({"a": "1"}), "kubectl", T0)
    edited = copy.deepcopy(live)
    edited["data"]["b"] = "2"
    live = update(live, edited, "kubectl-edit", T1)
    result = apply(live, cm({"c": "3"}), "kubectl", T2)
    assert result["data"] == {"b": "2", "c": "3"}


def test_conflict_with_an_updater_is_409_with_upstream_message() -> None:
    live = update(None, cm({"key": "v"}), "other-manager", T0)
    before = copy.deepcopy(live)
    with pytest.raises(StatusError) as e:
        apply(live, cm({"key": "changed"}), "kubectl", T1)
    assert (e.value.code, e.value.reason) == (409, "Conflict")
    assert e.value.message == (
        'Apply failed with 1 conflict: conflict with "other-manager" using v1: .data.key'
    )
    assert e.value.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "other-manager" using v1',
                "field": ".data.key",
            }
        ]
    }
    assert e.value.to_status()["details"] == e.value.details
    assert live == before


def test_several_conflicts_are_grouped_by_manager() -> None:
    live = update(None, cm({"a": "1", "b": "1"}), "m1", T0)
    live = apply(live, cm(labels={"x": "1"}), "m0", T1)
    with pytest.raises(StatusError) as e:
        apply(live, cm({"a": "2", "b": "2"}, labels={"x": "2"}), "kubectl", T2)
    assert e.value.message == (
        'Apply failed with 3 conflicts: conflicts with "m0":\n'
        "- .metadata.labels.x\n"
        'conflicts with "m1" using v1:\n'
        "- .data.a\n"
        "- .data.b"
    )
    assert [c["field"] for c in e.value.details["causes"]] == [
        ".metadata.labels.x",
        ".data.a",
        ".data.b",
    ]
    assert e.value.details["causes"][0]["message"] == 'conflict with "m0"'


def test_conflict_on_a_list_item_field_renders_its_key() -> None:
    live = update(
        None, deployment([{"name": "app", "image": "a:1"}]), "kubectl-edit", T0, "apps/v1"
    )
    with pytest.raises(StatusError) as e:
        apply(
            live,
            deployment([{"name": "app", "image": "a:2"}]),
            "ci",
            T1,
            api_version="apps/v1",
        )
    assert e.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: '
        '.spec.template.spec.containers[name="app"].image'
    )


def test_force_takes_ownership() -> None:
    live = update(None, cm({"a": "1", "b": "1"}), "m1", T0)
    live = apply(live, cm(labels={"x": "1"}), "m0", T1)
    result = apply(live, cm({"a": "2"}, labels={"x": "2"}), "kubectl", T2, force=True)
    assert result["data"] == {"a": "2", "b": "1"}
    assert result["metadata"]["labels"] == {"x": "2"}
    managed = by_manager(result["metadata"]["managedFields"])
    assert set(managed) == {"kubectl/Apply", "m1/Update"}  # m0 owned nothing else
    assert managed["kubectl/Apply"]["fieldsV1"] == {
        "f:data": {"f:a": {}},
        "f:metadata": {"f:labels": {"f:x": {}}},
    }
    assert managed["m1/Update"]["fieldsV1"] == {"f:data": {".": {}, "f:b": {}}}


def test_appliers_agreeing_on_a_value_share_it() -> None:
    live = apply(None, cm({"shared": "same", "a": "1"}), "one", T0)
    live = apply(live, cm({"shared": "same"}), "two", T1)
    managed = by_manager(live["metadata"]["managedFields"])
    assert managed["one/Apply"]["fieldsV1"] == {"f:data": {"f:a": {}, "f:shared": {}}}
    assert managed["two/Apply"]["fieldsV1"] == {"f:data": {"f:shared": {}}}
    # Dropping it from one applier's config leaves it with the other.
    result = apply(live, cm({"a": "1"}), "one", T2)
    assert result["data"] == {"a": "1", "shared": "same"}
    # ...and a different value now conflicts with the co-owner that remains.
    with pytest.raises(StatusError) as e:
        apply(result, cm({"a": "1", "shared": "new"}), "one", T2)
    assert e.value.message.endswith('conflict with "two": .data.shared')


def test_apply_merges_associative_lists_and_keeps_others_items() -> None:
    live = apply(
        None,
        deployment([{"name": "app", "image": "a:1"}]),
        "ci",
        T0,
        api_version="apps/v1",
    )
    injected = copy.deepcopy(live)
    injected["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": "p"})
    injected["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    live = update(live, injected, "injector", T1, api_version="apps/v1")
    result = apply(
        live,
        deployment([{"name": "app", "image": "a:2", "env": [{"name": "E", "value": "1"}]}]),
        "ci",
        T2,
        api_version="apps/v1",
    )
    assert result["spec"]["template"]["spec"]["containers"] == [
        {
            "name": "app",
            "image": "a:2",
            "imagePullPolicy": "Always",
            "env": [{"name": "E", "value": "1"}],
        },
        {"name": "proxy", "image": "p"},
    ]
    injector = by_manager(result["metadata"]["managedFields"])["injector/Update"]
    assert injector["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"] == {
        'k:{"name":"app"}': {"f:imagePullPolicy": {}},
        'k:{"name":"proxy"}': {".": {}, "f:image": {}, "f:name": {}},
    }


def test_reapply_without_a_list_item_removes_it() -> None:
    two = [{"name": "app", "image": "a"}, {"name": "worker", "image": "w"}]
    live = apply(None, deployment(two), "ci", T0, api_version="apps/v1")
    result = apply(
        live, deployment([{"name": "app", "image": "a"}]), "ci", T1, api_version="apps/v1"
    )
    assert result["spec"]["template"]["spec"]["containers"] == [{"name": "app", "image": "a"}]


def test_set_lists_are_merged_as_unions() -> None:
    live = update(None, cm(finalizers=["a"]), "ctrl", T0)
    result = apply(live, cm(finalizers=["b"]), "kubectl", T1)
    assert result["metadata"]["finalizers"] == ["a", "b"]
    assert by_manager(result["metadata"]["managedFields"])["kubectl/Apply"]["fieldsV1"] == {
        "f:metadata": {"f:finalizers": {'v:"b"': {}}}
    }


def test_noop_reapply_keeps_the_entry_time() -> None:
    live = apply(None, cm({"a": "1"}), "kubectl", T0)
    result = apply(live, cm({"a": "1"}), "kubectl", T1)
    assert result == live


def test_status_subresource_apply_owns_status_only() -> None:
    live = apply(None, deployment([{"name": "app"}]), "ci", T0, api_version="apps/v1")
    config = deployment([{"name": "app", "image": "sneaky"}])
    config["status"] = {"readyReplicas": 1}
    result = apply(live, config, "ctrl", T1, api_version="apps/v1", subresource="status")
    assert result["status"] == {"readyReplicas": 1}
    assert result["spec"] == live["spec"]
    entry = by_manager(result["metadata"]["managedFields"])["ctrl/Apply"]
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:status": {"f:readyReplicas": {}},
    }


def test_applied_nulls_neither_set_nor_claim() -> None:
    live = apply(None, cm({"a": "1"}), "one", T0)
    result = apply(live, cm({"a": None, "b": "2"}), "two", T1)
    assert result["data"] == {"a": "1", "b": "2"}
    assert by_manager(result["metadata"]["managedFields"])["two/Apply"]["fieldsV1"] == {
        "f:data": {"f:b": {}}
    }


def test_apply_rejects_managed_fields_in_the_request() -> None:
    with pytest.raises(StatusError) as e:
        apply(None, cm({"a": "1"}, managedFields=[]), "kubectl")
    assert (e.value.code, e.value.message) == (400, "metadata.managedFields must be nil")


def test_apply_rejects_another_version() -> None:
    config = cm({"a": "1"})
    with pytest.raises(StatusError) as e:
        apply(None, config, "kubectl", api_version="v2")
    assert e.value.code == 400
    assert e.value.message == (
        "Incorrect version specified in apply patch. Specified patch version: v1, expected: v2"
    )


def test_apply_keeps_key_fields_of_items_others_still_own() -> None:
    live = apply(None, deployment([{"name": "app", "image": "a"}]), "ci", T0, api_version="apps/v1")
    edited = copy.deepcopy(live)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "b"
    live = update(live, edited, "kubectl-set", T1, api_version="apps/v1")
    result = apply(live, deployment([]), "ci", T2, api_version="apps/v1")
    assert result["spec"]["template"]["spec"]["containers"] == [{"name": "app", "image": "b"}]
