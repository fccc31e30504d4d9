from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from localcluster.errors import StatusError
from localcluster.resources import BUILTIN_TYPES, ResourceType, from_crd
from localcluster.table import (
    CREATION_TIMESTAMP_DESCRIPTION,
    NAME_DESCRIPTION,
    column_definitions,
    human_duration,
    parse_timestamp,
    row,
    table,
)

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def builtin(kind: str, group: str = "") -> ResourceType:
    return next(rt for rt in BUILTIN_TYPES if rt.kind == kind and rt.group == group)


def meta(name: str = "x", age: float = 300, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": ago(age), **extra}


def names(rt: ResourceType) -> list[str]:
    return [c["name"] for c in column_definitions(rt)]


def cells(rt: ResourceType, obj: dict[str, Any]) -> list[Any]:
    result: list[Any] = row(rt, obj, "None", NOW)["cells"]
    assert len(result) == len(column_definitions(rt))
    return result


def cell(rt: ResourceType, obj: dict[str, Any], column: str) -> Any:
    return cells(rt, obj)[names(rt).index(column)]


# ---- human_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-2, "<invalid>"),
        (-1.5, "0s"),
        (-1, "0s"),
        (0, "0s"),
        (0.9, "0s"),
        (45, "45s"),
        (119, "119s"),
        (120, "2m"),
        (312, "5m12s"),
        (599.9, "9m59s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (8 * 3600 - 60, "7h59m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 3599, "47h"),
        (48 * 3600, "2d"),
        (53 * 3600, "2d5h"),
        (8 * 86400 - 3600, "7d23h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (740 * 86400, "2y10d"),
        (8 * 365 * 86400 - 86400, "7y364d"),
        (8 * 365 * 86400, "8y"),
        (8 * 365 * 86400 + 100 * 86400, "8y"),
        (float("nan"), "<invalid>"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_parse_timestamp() -> None:
    assert parse_timestamp("2024-06-01T12:00:00Z") == NOW
    assert parse_timestamp("2024-06-01T12:00:00.123456789Z") == NOW.replace(microsecond=123456)
    assert parse_timestamp("2024-06-01T14:00:00+02:00") == NOW
    assert parse_timestamp("2024-06-01") is None
    assert parse_timestamp("2024-13-01T00:00:00Z") is None
    assert parse_timestamp(None) is None
    assert parse_timestamp(12) is None


# ---- the Table envelope


def test_table_envelope() -> None:
    rt = builtin("ConfigMap")
    cm = {"kind": "ConfigMap", "metadata": meta("cm", 90), "data": {"a": "1"}}
    result = table(
        rt,
        [cm],
        resource_version="123",
        include_object="Metadata",
        now=NOW,
        continue_token="tok",
        remaining=4,
    )
    assert result["kind"] == "Table"
    assert result["apiVersion"] == "meta.k8s.io/v1"
    assert result["metadata"] == {
        "resourceVersion": "123",
        "continue": "tok",
        "remainingItemCount": 4,
    }
    assert result["columnDefinitions"] == column_definitions(rt)
    assert result["rows"] == [
        {
            "cells": ["cm", 1, "90s"],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": cm["metadata"],
            },
        }
    ]


def test_table_metadata_omits_unset_fields() -> None:
    result = table(builtin("ConfigMap"), [], resource_version="", include_object="", now=NOW)
    assert result["metadata"] == {}
    assert result["rows"] == []
    zero = table(
        builtin("ConfigMap"), [], resource_version="7", include_object="", now=NOW, remaining=0
    )
    assert zero["metadata"] == {"resourceVersion": "7", "remainingItemCount": 0}


def test_rows_keep_object_order() -> None:
    objs = [{"metadata": meta(n)} for n in ("b", "a", "c")]
    result = table(
        builtin("ServiceAccount"), objs, resource_version="1", include_object="None", now=NOW
    )
    assert [r["cells"][0] for r in result["rows"]] == ["b", "a", "c"]


def test_include_object_modes() -> None:
    rt = builtin("ConfigMap")
    cm = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta("cm"), "data": {}}
    assert row(rt, cm, "Object", NOW)["object"] is cm
    assert row(rt, cm, "None", NOW)["object"] is None
    for mode in ("Metadata", ""):
        partial = row(rt, cm, mode, NOW)["object"]
        assert partial["kind"] == "PartialObjectMetadata"
        assert partial["apiVersion"] == "meta.k8s.io/v1"
        assert partial["metadata"] == cm["metadata"]
        assert "data" not in partial


@pytest.mark.parametrize("call", ["row", "table"])
def test_unknown_include_object_is_bad_request(call: str) -> None:
    rt = builtin("ConfigMap")
    with pytest.raises(StatusError) as info:
        if call == "row":
            row(rt, {"metadata": meta()}, "Everything", NOW)
        else:
            table(rt, [], resource_version="1", include_object="Everything", now=NOW)
    assert info.value.code == 400
    assert info.value.message == 'unrecognized includeObject value: "Everything"'


def test_naive_now_is_utc() -> None:
    rt = builtin("ServiceAccount")
    obj = {"metadata": meta(age=45)}
    assert row(rt, obj, "None", NOW.replace(tzinfo=None))["cells"] == ["x", "45s"]


def test_missing_creation_timestamp_is_unknown_age() -> None:
    assert cells(builtin("ServiceAccount"), {"metadata": {"name": "sa"}}) == ["sa", "<unknown>"]


# ---- column definitions


def test_every_column_has_all_fields() -> None:
    for rt in BUILTIN_TYPES:
        for column in column_definitions(rt):
            assert set(column) == {"name", "type", "format", "description", "priority"}
            assert column["description"]


def test_name_and_age_columns() -> None:
    name, age = column_definitions(builtin("ServiceAccount"))
    assert name == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": NAME_DESCRIPTION,
        "priority": 0,
    }
    assert name["description"].startswith("Name must be unique within a namespace.")
    assert age["name"] == "Age"
    assert age["type"] == "string"
    assert age["description"] == CREATION_TIMESTAMP_DESCRIPTION


@pytest.mark.parametrize(
    ("kind", "group", "columns"),
    [
        ("ConfigMap", "", ["Name", "Data", "Age"]),
        ("Secret", "", ["Name", "Type", "Data", "Age"]),
        ("Namespace", "", ["Name", "Status", "Age"]),
        ("ServiceAccount", "", ["Name", "Age"]),
        (
            "Pod",
            "",
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates",
            ],
        ),
        (
            "Job",
            "batch",
            [
                "Name",
                "Status",
                "Completions",
                "Duration",
                "Age",
                "Containers",
                "Images",
                "Selector",
            ],
        ),
        (
            "Deployment",
            "apps",
            ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"],
        ),
        (
            "Service",
            "",
            ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"],
        ),
        (
            "Event",
            "",
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name",
            ],
        ),
        ("CustomResourceDefinition", "apiextensions.k8s.io", ["Name", "Created At"]),
        ("Lease", "coordination.k8s.io", ["Name", "Holder", "Age"]),
        ("Role", "rbac.authorization.k8s.io", ["Name", "Created At"]),
        (
            "RoleBinding",
            "rbac.authorization.k8s.io",
            ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"],
        ),
        (
            "ValidatingWebhookConfiguration",
            "admissionregistration.k8s.io",
            ["Name", "Webhooks", "Age"],
        ),
        ("NetworkPolicy", "networking.k8s.io", ["Name", "Pod-Selector", "Age"]),
        ("Endpoints", "", ["Name", "Endpoints", "Age"]),
    ],
)
def test_builtin_columns(kind: str, group: str, columns: list[str]) -> None:
    assert names(builtin(kind, group)) == columns


def test_wide_columns_have_priority_one() -> None:
    pod_columns = {c["name"]: c["priority"] for c in column_definitions(builtin("Pod"))}
    assert pod_columns["Age"] == 0
    assert pod_columns["IP"] == pod_columns["Node"] == 1
    event_columns = {c["name"]: c for c in column_definitions(builtin("Event"))}
    assert event_columns["Message"]["priority"] == 0
    assert event_columns["Name"]["priority"] == 1
    assert event_columns["Name"]["format"] == "name"


def test_crd_created_at_is_a_date_column() -> None:
    crd = builtin("CustomResourceDefinition", "apiextensions.k8s.io")
    assert column_definitions(crd)[1]["type"] == "date"
    created = {"metadata": {"name": "a.b.c", "creationTimestamp": "2024-05-01T10:00:00+02:00"}}
    assert cells(crd, created) == ["a.b.c", "2024-05-01T08:00:00Z"]
    assert cells(crd, {"metadata": {"name": "n"}}) == ["n", "0001-01-01T00:00:00Z"]


def test_unknown_builtin_kind_gets_name_and_age() -> None:
    rt = ResourceType(
        group="example.com",
        version="v1",
        kind="Thing",
        plural="things",
        singular="thing",
        namespaced=True,
    )
    assert names(rt) == ["Name", "Age"]
    assert cells(rt, {"metadata": meta("t", 61)}) == ["t", "61s"]


# ---- simple built-ins


def test_configmap_counts_data_and_binary_data() -> None:
    rt = builtin("ConfigMap")
    cm = {"metadata": meta("cm", 312), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert cells(rt, cm) == ["cm", 3, "5m12s"]
    assert cells(rt, {"metadata": meta("empty", 3600 * 5)}) == ["empty", 0, "5h"]


def test_secret() -> None:
    rt = builtin("Secret")
    secret = {"metadata": meta("s", 60), "type": "kubernetes.io/tls", "data": {"a": "", "b": ""}}
    assert cells(rt, secret) == ["s", "kubernetes.io/tls", 2, "60s"]
    assert cells(rt, {"metadata": meta("o", 60)}) == ["o", "Opaque", 0, "60s"]


def test_namespace() -> None:
    rt = builtin("Namespace")
    assert cells(rt, {"metadata": meta("ns", 60), "status": {"phase": "Terminating"}}) == [
        "ns",
        "Terminating",
        "60s",
    ]
    assert cells(rt, {"metadata": meta("ns", 60)})[1] == "Active"


def test_lease() -> None:
    rt = builtin("Lease", "coordination.k8s.io")
    lease = {"metadata": meta("l", 30), "spec": {"holderIdentity": "node-1_abc"}}
    assert cells(rt, lease) == ["l", "node-1_abc", "30s"]
    assert cells(rt, {"metadata": meta("free", 30), "spec": {}}) == ["free", "", "30s"]


# ---- pods


def running(name: str, ready: bool = True, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": ago(100)}},
        **extra,
    }


def a_pod(
    containers: int = 1,
    statuses: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    **extra: Any,
) -> dict[str, Any]:
    spec = {"containers": [{"name": f"c{i}", "image": "img"} for i in range(containers)]}
    spec.update(extra.pop("spec", {}))
    status = {"phase": phase, "containerStatuses": statuses or []}
    status.update(extra.pop("status", {}))
    return {
        "kind": "Pod",
        "metadata": extra.pop("metadata", meta("p", 600)),
        "spec": spec,
        "status": status,
    }


POD = builtin("Pod")


def test_running_pod() -> None:
    pod = a_pod(2, [running("c0"), running("c1")])
    assert cells(POD, pod)[:5] == ["p", "2/2", "Running", "0", "10m"]


def test_partially_ready_pod() -> None:
    pod = a_pod(2, [running("c0"), running("c1", ready=False)])
    assert cells(POD, pod)[1:3] == ["1/2", "Running"]


def test_pending_pod_shows_waiting_reason() -> None:
    waiting = {
        "name": "c0",
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ContainerCreating"}},
    }
    pod = a_pod(1, [waiting], phase="Pending")
    assert cells(POD, pod)[1:4] == ["0/1", "ContainerCreating", "0"]
    assert cells(POD, a_pod(1, [], phase="Pending"))[1:3] == ["0/1", "Pending"]


def test_first_container_reason_wins() -> None:
    # Statuses are walked last to first, so the first container's reason is shown.
    def waiting(name: str, reason: str) -> dict[str, Any]:
        return {
            "name": name,
            "ready": False,
            "restartCount": 0,
            "state": {"waiting": {"reason": reason}},
        }

    pod = a_pod(2, [waiting("c0", "ImagePullBackOff"), waiting("c1", "ContainerCreating")])
    assert cells(POD, pod)[2] == "ImagePullBackOff"


def test_crash_looping_pod_shows_restarts_and_when() -> None:
    crashing = {
        "name": "c0",
        "ready": False,
        "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(300)}},
    }
    other = running("c1", restarts=1, lastState={"terminated": {"finishedAt": ago(4000)}})
    pod = a_pod(2, [crashing, other])
    assert cells(POD, pod)[1:4] == ["1/2", "CrashLoopBackOff", "4 (5m ago)"]


def test_restarts_without_termination_time() -> None:
    assert cells(POD, a_pod(1, [running("c0", restarts=2)]))[3] == "2"


def test_terminated_container_reasons() -> None:
    def terminated(**state: Any) -> dict[str, Any]:
        return {"name": "c0", "ready": False, "restartCount": 0, "state": {"terminated": state}}

    assert cells(POD, a_pod(1, [terminated(reason="OOMKilled", exitCode=137)]))[2] == "OOMKilled"
    assert cells(POD, a_pod(1, [terminated(exitCode=2)]))[2] == "ExitCode:2"
    assert cells(POD, a_pod(1, [terminated(exitCode=0, signal=9)]))[2] == "Signal:9"
    done = a_pod(1, [terminated(reason="Completed", exitCode=0)], phase="Succeeded")
    assert cells(POD, done)[1:3] == ["0/1", "Completed"]


def test_pod_status_reason_wins_over_phase() -> None:
    pod = a_pod(1, [], phase="Failed", status={"reason": "Evicted"})
    assert cells(POD, pod)[2] == "Evicted"


def test_scheduling_gated_pod() -> None:
    pod = a_pod(
        1,
        [],
        phase="Pending",
        status={
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]
        },
    )
    assert cells(POD, pod)[2] == "SchedulingGated"


def test_terminating_pod() -> None:
    pod = a_pod(1, [running("c0")], metadata=meta("p", 60, deletionTimestamp=ago(1)))
    assert cells(POD, pod)[2] == "Terminating"
    finished = a_pod(1, [], phase="Succeeded", metadata=meta("p", 60, deletionTimestamp=ago(1)))
    assert cells(POD, finished)[2] == "Succeeded"
    lost = a_pod(
        1, [], status={"reason": "NodeLost"}, metadata=meta("p", 60, deletionTimestamp=ago(1))
    )
    assert cells(POD, lost)[2] == "Unknown"


def init_pod(init_statuses: list[dict[str, Any]], inits: int = 2, **extra: Any) -> dict[str, Any]:
    init_specs = extra.pop("init_specs", [{"name": f"i{i}", "image": "img"} for i in range(inits)])
    return a_pod(
        1,
        [
            {
                "name": "c0",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}},
            }
        ],
        phase="Pending",
        spec={"initContainers": init_specs},
        status={"initContainerStatuses": init_statuses},
        **extra,
    )


def test_init_container_progress() -> None:
    done = {
        "name": "i0",
        "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
    }
    pending = {"name": "i1", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
    running_init = {"name": "i1", "restartCount": 0, "state": {"running": {}}}
    assert cells(POD, init_pod([pending]))[2] == "Init:0/2"
    assert cells(POD, init_pod([done, pending]))[2] == "Init:1/2"
    assert cells(POD, init_pod([done, running_init]))[2] == "Init:1/2"


def test_init_container_failures() -> None:
    def init(state: dict[str, Any], restarts: int = 0) -> dict[str, Any]:
        return {"name": "i0", "restartCount": restarts, "state": state}

    assert (
        cells(POD, init_pod([init({"terminated": {"exitCode": 1, "reason": "Error"}})]))[2]
        == "Init:Error"
    )
    assert cells(POD, init_pod([init({"terminated": {"exitCode": 3}})]))[2] == "Init:ExitCode:3"
    assert (
        cells(POD, init_pod([init({"terminated": {"exitCode": 1, "signal": 15}})]))[2]
        == "Init:Signal:15"
    )
    backoff = init_pod([init({"waiting": {"reason": "CrashLoopBackOff"}}, restarts=4)])
    assert cells(POD, backoff)[2:4] == ["Init:CrashLoopBackOff", "4"]


def test_sidecar_init_containers_count_as_containers() -> None:
    sidecar_spec = {"name": "proxy", "image": "envoy", "restartPolicy": "Always"}
    sidecar = {
        "name": "proxy",
        "restartCount": 1,
        "started": True,
        "ready": True,
        "state": {"running": {}},
        "lastState": {"terminated": {"finishedAt": ago(120)}},
    }
    pod = a_pod(
        1,
        [running("c0")],
        spec={"initContainers": [sidecar_spec]},
        status={"initContainerStatuses": [sidecar]},
    )
    assert cells(POD, pod)[1:4] == ["2/2", "Running", "1 (2m ago)"]


def test_completed_container_next_to_running_one() -> None:
    completed = {
        "name": "c0",
        "ready": False,
        "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
    }
    pod = a_pod(2, [running("c1"), completed])
    assert cells(POD, pod)[2] == "NotReady"
    pod["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert cells(POD, pod)[2] == "Running"


def test_pod_wide_columns() -> None:
    pod = a_pod(
        1,
        [running("c0")],
        spec={
            "nodeName": "node-1",
            "readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}],
        },
        status={
            "podIP": "10.0.0.9",
            "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
            "nominatedNodeName": "node-2",
            "conditions": [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}],
        },
    )
    assert cells(POD, pod)[5:] == ["10.0.0.5", "node-1", "node-2", "1/2"]
    assert cells(POD, a_pod(1, []))[5:] == ["<none>", "<none>", "<none>", "<none>"]
    only_pod_ip = a_pod(1, [], status={"podIP": "10.0.0.7"})
    assert cells(POD, only_pod_ip)[5] == "10.0.0.7"


def test_finished_pods_carry_row_conditions() -> None:
    succeeded = row(POD, a_pod(1, [], phase="Succeeded"), "None", NOW)
    assert succeeded["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]
    failed = row(POD, a_pod(1, [], phase="Failed"), "None", NOW)
    assert failed["conditions"][0]["reason"] == "Failed"
    assert "conditions" not in row(POD, a_pod(1, []), "None", NOW)


# ---- jobs and deployments

JOB = builtin("Job", "batch")


def a_job(
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    full_spec = {
        "completions": 1,
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
        "template": {
            "spec": {
                "containers": [
                    {"name": "main", "image": "busybox"},
                    {"name": "log", "image": "fluent"},
                ]
            }
        },
    }
    full_spec.update(spec or {})
    return {
        "metadata": meta("job", 3600, **(extra_meta or {})),
        "spec": full_spec,
        "status": status or {},
    }


def test_completed_job() -> None:
    job = a_job(
        status={
            "succeeded": 1,
            "startTime": ago(600),
            "completionTime": ago(535),
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True"},
                {"type": "Complete", "status": "True"},
            ],
        }
    )
    assert cells(JOB, job) == [
        "job",
        "Complete",
        "1/1",
        "65s",
        "60m",
        "main,log",
        "busybox,fluent",
        "batch.kubernetes.io/controller-uid=u1",
    ]


def test_running_job_duration_counts_to_now() -> None:
    job = a_job(spec={"completions": 3}, status={"succeeded": 1, "startTime": ago(30)})
    assert cells(JOB, job)[1:4] == ["Running", "1/3", "30s"]


def test_job_completions_without_completions() -> None:
    assert (
        cell(JOB, a_job(spec={"completions": None, "parallelism": 3}), "Completions") == "0/1 of 3"
    )
    assert cell(JOB, a_job(spec={"completions": None, "parallelism": 1}), "Completions") == "0/1"
    assert cell(JOB, a_job(), "Duration") == ""


@pytest.mark.parametrize(
    ("conditions", "deleting", "status"),
    [
        ([{"type": "Failed", "status": "True"}], False, "Failed"),
        ([{"type": "Failed", "status": "False"}], False, "Running"),
        ([{"type": "Suspended", "status": "True"}], False, "Suspended"),
        ([{"type": "Suspended", "status": "True"}], True, "Terminating"),
        ([{"type": "FailureTarget", "status": "True"}], False, "FailureTarget"),
        ([{"type": "Complete", "status": "True"}], True, "Complete"),
        ([], False, "Running"),
    ],
)
def test_job_status(conditions: list[dict[str, Any]], deleting: bool, status: str) -> None:
    extra = {"deletionTimestamp": ago(1)} if deleting else {}
    assert cell(JOB, a_job(status={"conditions": conditions}, extra_meta=extra), "Status") == status


def test_job_without_selector() -> None:
    job = a_job()
    del job["spec"]["selector"]
    assert cell(JOB, job, "Selector") == "<none>"


def test_deployment() -> None:
    rt = builtin("Deployment", "apps")
    deploy = {
        "metadata": meta("web", 86400 * 3),
        "spec": {
            "replicas": 3,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}],
            },
            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert cells(rt, deploy) == [
        "web",
        "2/3",
        3,
        2,
        "3d",
        "nginx",
        "nginx:1.27",
        "app=web,tier in (fe)",
    ]
    fresh = {"metadata": meta("new", 5), "spec": {"selector": {}, "template": {"spec": {}}}}
    assert cells(rt, fresh) == ["new", "0/1", 0, 0, "5s", "", "", ""]
    broken = {"metadata": meta("bad", 5), "spec": {"selector": {"matchLabels": {"-": "x"}}}}
    assert cell(rt, broken, "Selector") == "<invalid>"


# ---- services


SERVICE = builtin("Service")


def a_service(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": meta("svc", 7200), "spec": spec, "status": status or {}}


def test_cluster_ip_service() -> None:
    svc = a_service(
        {
            "type": "ClusterIP",
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "ports": [
                {"port": 80, "protocol": "TCP"},
                {"port": 53, "protocol": "UDP"},
                {"port": 443},
            ],
            "selector": {"b": "2", "a": "1"},
        }
    )
    assert cells(SERVICE, svc) == [
        "svc",
        "ClusterIP",
        "10.96.0.10",
        "<none>",
        "80/TCP,53/UDP,443/TCP",
        "120m",
        "a=1,b=2",
    ]


def test_headless_and_default_service() -> None:
    svc = a_service({"clusterIP": "None", "clusterIPs": ["None"]})
    assert cells(SERVICE, svc)[1:5] == ["ClusterIP", "None", "<none>", "<none>"]
    assert cells(SERVICE, svc)[6] == "<none>"
    bare = a_service({})
    assert cells(SERVICE, bare)[1:5] == ["ClusterIP", "<none>", "<none>", "<none>"]


def test_node_port_service() -> None:
    svc = a_service(
        {
            "type": "NodePort",
            "clusterIPs": ["10.0.0.1"],
            "externalIPs": ["1.2.3.4", "5.6.7.8"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
        }
    )
    assert cells(SERVICE, svc)[1:5] == ["NodePort", "10.0.0.1", "1.2.3.4,5.6.7.8", "80:30080/TCP"]


def test_load_balancer_service() -> None:
    pending = a_service({"type": "LoadBalancer", "clusterIPs": ["10.0.0.2"]})
    assert cell(SERVICE, pending, "External-IP") == "<pending>"
    ready = a_service(
        {"type": "LoadBalancer", "externalIPs": ["9.9.9.9"]},
        {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}, {"hostname": "lb.example.com"}]}},
    )
    assert cell(SERVICE, ready, "External-IP") == "1.1.1.1,lb.example.com,9.9.9.9"


def test_external_name_service() -> None:
    svc = a_service({"type": "ExternalName", "externalName": "db.example.com"})
    assert cells(SERVICE, svc)[1:5] == ["ExternalName", "<none>", "db.example.com", "<none>"]


# ---- events


def test_core_event() -> None:
    rt = builtin("Event")
    event = {
        "metadata": meta("web.17a", 400),
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{nginx}"},
        "reason": "Pulled",
        "type": "Normal",
        "message": "  Successfully pulled image \n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(400),
        "lastTimestamp": ago(30),
        "count": 4,
    }
    assert cells(rt, event) == [
        "30s",
        "Normal",
        "Pulled",
        "pod/web",
        "spec.containers{nginx}",
        "kubelet, node-1",
        "Successfully pulled image",
        "6m40s",
        4,
        "web.17a",
    ]


def test_event_without_legacy_timestamps() -> None:
    rt = builtin("Event")
    event = {
        "metadata": meta("e", 100),
        "involvedObject": {"kind": "Node"},
        "reason": "Scheduled",
        "type": "Normal",
        "message": "ok",
        "eventTime": "2024-06-01T11:59:00.000000Z",
        "reportingComponent": "default-scheduler",
        "reportingInstance": "",
    }
    assert cells(rt, event) == [
        "60s",
        "Normal",
        "Scheduled",
        "node",
        "",
        "default-scheduler",
        "ok",
        "60s",
        1,
        "e",
    ]
    event["series"] = {"count": 7, "lastObservedTime": "2024-06-01T11:59:50.000000Z"}
    assert cells(rt, event)[0] == "10s"
    assert cells(rt, event)[8] == 7
    assert cells(rt, {"metadata": {"name": "bare"}})[0] == "<unknown>"


def test_events_k8s_io_event_prints_like_core() -> None:
    rt = builtin("Event", "events.k8s.io")
    event = {
        "metadata": meta("e", 100),
        "regarding": {"kind": "Deployment", "name": "web"},
        "note": "Scaled up",
        "reason": "ScalingReplicaSet",
        "type": "Normal",
        "eventTime": ago(90),
        "reportingController": "deployment-controller",
        "reportingInstance": "cm-1",
        "deprecatedCount": 2,
    }
    assert cells(rt, event) == [
        "90s",
        "Normal",
        "ScalingReplicaSet",
        "deployment/web",
        "",
        "deployment-controller, cm-1",
        "Scaled up",
        "90s",
        2,
        "e",
    ]


# ---- rbac, admission, networking, endpoints, volumes


def test_role_and_bindings() -> None:
    role = builtin("ClusterRole", "rbac.authorization.k8s.io")
    assert cells(
        role, {"metadata": {"name": "admin", "creationTimestamp": "2024-01-02T03:04:05Z"}}
    ) == ["admin", "2024-01-02T03:04:05Z"]
    binding = builtin("RoleBinding", "rbac.authorization.k8s.io")
    obj = {
        "metadata": meta("rb", 60),
        "roleRef": {"kind": "ClusterRole", "name": "edit"},
        "subjects": [
            {"kind": "User", "name": "alice"},
            {"kind": "User", "name": "bob"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "robot", "namespace": "ci"},
        ],
    }
    assert cells(binding, obj) == [
        "rb",
        "ClusterRole/edit",
        "60s",
        "alice, bob",
        "devs",
        "ci/robot",
    ]


def test_webhook_configurations_count_webhooks() -> None:
    rt = builtin("MutatingWebhookConfiguration", "admissionregistration.k8s.io")
    assert column_definitions(rt)[1]["type"] == "integer"
    obj = {"metadata": meta("hooks", 60), "webhooks": [{"name": "a"}, {"name": "b"}]}
    assert cells(rt, obj) == ["hooks", 2, "60s"]


def test_network_policy_pod_selector() -> None:
    rt = builtin("NetworkPolicy", "networking.k8s.io")
    everything = {"metadata": meta("all", 60), "spec": {"podSelector": {}}}
    assert cells(rt, everything) == ["all", "<none>", "60s"]
    some = {"metadata": meta("web", 60), "spec": {"podSelector": {"matchLabels": {"app": "web"}}}}
    assert cells(rt, some)[1] == "app=web"


def test_endpoints() -> None:
    rt = builtin("Endpoints")
    assert cells(rt, {"metadata": meta("none", 60)})[1] == "<none>"
    obj = {
        "metadata": meta("svc", 60),
        "subsets": [
            {
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
                "ports": [{"port": 80}, {"port": 443}],
            }
        ],
    }
    assert cells(rt, obj)[1] == "10.0.0.1:80,[fd00::1]:80,10.0.0.1:443 + 1 more..."
    headless = {"metadata": meta("h", 60), "subsets": [{"addresses": [{"ip": "10.0.0.2"}]}]}
    assert cells(rt, headless)[1] == "10.0.0.2"


def test_persistent_volume_claims() -> None:
    rt = builtin("PersistentVolumeClaim")
    bound = {
        "metadata": meta("data", 60),
        "spec": {"volumeName": "pv-1", "storageClassName": "standard", "volumeMode": "Filesystem"},
        "status": {
            "phase": "Bound",
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
        },
    }
    assert cells(rt, bound) == [
        "data",
        "Bound",
        "pv-1",
        "1Gi",
        "RWO,RWX",
        "standard",
        "<unset>",
        "60s",
        "Filesystem",
    ]
    pending = {"metadata": meta("new", 5), "spec": {}}
    assert cells(rt, pending) == [
        "new",
        "Pending",
        "",
        "",
        "",
        "<unset>",
        "<unset>",
        "5s",
        "<unset>",
    ]


# ---- custom resources


def crd(columns: list[dict[str, Any]] | None) -> ResourceType:
    version: dict[str, Any] = {"name": "v1", "served": True, "storage": True}
    if columns is not None:
        version["additionalPrinterColumns"] = columns
    return from_crd(
        {
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": "Widget", "plural": "widgets"},
                "scope": "Namespaced",
                "versions": [version],
            },
        }
    )[0]


WIDGET = crd(
    [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
        {"name": "Enabled", "type": "boolean", "jsonPath": ".spec.enabled"},
        {"name": "Started", "type": "date", "jsonPath": ".status.startTime"},
        {
            "name": "Tags",
            "type": "string",
            "jsonPath": ".spec.tags",
            "priority": 1,
            "description": "Widget tags",
        },
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        },
    ]
)


def test_custom_resource_columns() -> None:
    columns = column_definitions(WIDGET)
    assert [c["name"] for c in columns] == [
        "Name",
        "Phase",
        "Replicas",
        "Ratio",
        "Enabled",
        "Started",
        "Tags",
        "Ready",
    ]
    assert columns[0]["description"] == NAME_DESCRIPTION
    assert columns[1] == {
        "name": "Phase",
        "type": "string",
        "format": "",
        "description": "Custom resource definition column (in JSONPath format): .status.phase",
        "priority": 0,
    }
    assert columns[6]["priority"] == 1
    assert columns[6]["description"] == "Widget tags"


def test_declared_columns_replace_the_default_age() -> None:
    assert "Age" not in names(WIDGET)


def test_custom_resource_cells_keep_json_types() -> None:
    widget = {
        "metadata": meta("w1", 60),
        "spec": {"replicas": 3, "ratio": 2, "enabled": False, "tags": {"b": [1, "<x>"], "a": None}},
        "status": {
            "phase": "Ready",
            "startTime": ago(7200),
            "conditions": [
                {"type": "Synced", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
        },
    }
    assert cells(WIDGET, widget) == [
        "w1",
        "Ready",
        3,
        2.0,
        False,
        "120m",
        '{"a":null,"b":[1,"\\u003cx\\u003e"]}',
        "True",
    ]
    replicas = cells(WIDGET, widget)[2]
    assert isinstance(replicas, int)


def test_custom_resource_missing_or_mistyped_values_are_null() -> None:
    assert cells(WIDGET, {"metadata": meta("empty", 60)}) == ["empty"] + [None] * 7
    odd = {
        "metadata": meta("odd", 60),
        "spec": {"replicas": "three", "ratio": True, "enabled": "yes", "tags": None},
        "status": {"phase": 42, "startTime": 5},
    }
    assert cells(WIDGET, odd) == ["odd", "42", None, None, None, None, "<no value>", None]


def test_integer_column_truncates_floats() -> None:
    assert cells(WIDGET, {"metadata": meta(), "spec": {"replicas": 2.9}})[2] == 2


def test_date_column_text() -> None:
    started = [
        cells(WIDGET, {"metadata": meta(), "status": {"startTime": value}})[5]
        for value in ("not-a-date", "", ago(45), "2024-06-01T11:59:15.5+00:00")
    ]
    assert started == ["<invalid>", "<unknown>", "45s", "44s"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (7, "7"),
        (1.5, "1.5"),
        (3.0, "3"),
        (-2.5, "-2.5"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1e21, "1e+21"),
        ([1, 2], "[1,2]"),
        ("text", "text"),
    ],
)
def test_string_column_prints_values_like_go(value: Any, text: str) -> None:
    assert cells(WIDGET, {"metadata": meta(), "status": {"phase": value}})[1] == text


def test_crd_without_columns_gets_age_date_column() -> None:
    rt = crd(None)
    columns = column_definitions(rt)
    assert [c["name"] for c in columns] == ["Name", "Age"]
    assert columns[1]["type"] == "date"
    assert columns[1]["description"] == CREATION_TIMESTAMP_DESCRIPTION
    assert cells(rt, {"metadata": meta("w", 312)}) == ["w", "5m12s"]
    assert cells(rt, {"metadata": {"name": "w"}}) == ["w", None]


def test_crd_with_explicit_age_column() -> None:
    rt = crd(
        [
            {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ]
    )
    assert names(rt) == ["Name", "Size", "Age"]
    assert cells(rt, {"metadata": meta("w", 90), "spec": {"size": 1}}) == ["w", 1, "90s"]


def test_invalid_column_path_prints_null() -> None:
    rt = crd([{"name": "Broken", "type": "string", "jsonPath": ".spec[?(@.x ~ 1)]"}])
    assert cells(rt, {"metadata": meta("w"), "spec": {"x": 1}}) == ["w", None]


def test_custom_resource_table() -> None:
    widget = {"kind": "Widget", "apiVersion": "example.com/v1", "metadata": meta("w1", 60)}
    result = table(WIDGET, [widget], resource_version="9", include_object="Object", now=NOW)
    assert result["rows"][0]["object"] is widget
    assert result["rows"][0]["cells"][0] == "w1"
    assert [c["name"] for c in result["columnDefinitions"]][:2] == ["Name", "Phase"]
