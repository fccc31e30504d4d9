"""Pod phase and conditions from container records, and the status of a lost pod."""

from __future__ import annotations

from typing import Any

import pytest

from localcluster.node.status import (
    LOST_REASON,
    ContainerRecord,
    Snapshot,
    build_status,
    lost_status,
    pod_phase,
)

Obj = dict[str, Any]


def running(name: str = "c", ready: bool = True) -> ContainerRecord:
    record = ContainerRecord(name, "img")
    record.running("2026-01-01T00:00:00Z", "local://1")
    record.started, record.ready = True, ready
    return record


def exited(code: int, name: str = "c", init: bool = False) -> ContainerRecord:
    record = ContainerRecord(name, "img", init=init)
    record.running("2026-01-01T00:00:00Z", "local://1")
    record.terminated(code, started_at="2026-01-01T00:00:00Z")
    return record


def backing_off(name: str = "c") -> ContainerRecord:
    record = exited(1, name)
    record.waiting("CrashLoopBackOff", "back-off")
    return record


def test_record_transitions_keep_the_last_termination() -> None:
    record = exited(2)
    assert record.state["terminated"]["reason"] == "Error"
    assert record.state["terminated"]["containerID"] == "local://1"
    record.waiting("CrashLoopBackOff")
    assert record.last_state["terminated"]["exitCode"] == 2
    record.restart_count += 1
    record.running("2026-01-01T00:00:09Z", "local://2")
    assert record.last_state["terminated"]["exitCode"] == 2
    status = record.to_status()
    assert status["containerID"] == "local://2" and status["restartCount"] == 1
    assert status["state"] == {"running": {"startedAt": "2026-01-01T00:00:09Z"}}
    assert exited(0).state["terminated"]["reason"] == "Completed"


@pytest.mark.parametrize(
    ("policy", "records", "phase"),
    [
        ("Always", [ContainerRecord("c", "i")], "Pending"),
        ("Always", [running()], "Running"),
        ("Always", [running("a"), ContainerRecord("b", "i")], "Pending"),
        ("Always", [exited(0)], "Running"),  # it will be restarted
        ("Never", [exited(0), exited(0, "b")], "Succeeded"),
        ("Never", [exited(0), exited(3, "b")], "Failed"),
        ("Never", [running(), exited(3, "b")], "Running"),
        ("OnFailure", [exited(0)], "Succeeded"),
        ("OnFailure", [backing_off()], "Running"),
        ("OnFailure", [exited(0), backing_off("b")], "Running"),
    ],
)
def test_phase(policy: str, records: list[ContainerRecord], phase: str) -> None:
    assert pod_phase(policy, True, [], records) == phase


def test_phase_while_initialising() -> None:
    assert (
        pod_phase("Never", False, [exited(0, init=True)], [ContainerRecord("c", "i")]) == "Pending"
    )
    assert pod_phase("Never", False, [exited(1, init=True)], []) == "Failed"
    assert pod_phase("OnFailure", False, [exited(1, init=True)], []) == "Pending"


def snapshot(**extra: Any) -> Snapshot:
    base: dict[str, Any] = {
        "phase": "Running",
        "start_time": "2026-01-01T00:00:00Z",
        "init_records": [],
        "records": [running("a"), running("b", ready=False)],
        "sandbox_ready": True,
        "initialized": True,
    }
    return Snapshot(**{**base, **extra})


def test_build_status_conditions_and_addresses() -> None:
    old = {
        "phase": "Pending",
        "qosClass": "BestEffort",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "True",
                "lastTransitionTime": "2020-01-01T00:00:00Z",
            },
            {"type": "DisruptionTarget", "status": "True"},
        ],
    }
    status = build_status(old, snapshot())
    assert status["phase"] == "Running" and status["qosClass"] == "BestEffort"
    assert status["podIP"] == "127.0.0.1" and status["podIPs"] == [{"ip": "127.0.0.1"}]
    assert status["hostIP"] == "127.0.0.1" and status["startTime"] == "2026-01-01T00:00:00Z"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["PodScheduled"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert conditions["DisruptionTarget"] == {"type": "DisruptionTarget", "status": "True"}
    assert conditions["Initialized"]["status"] == "True"
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["message"] == "containers with unready status: [b]"
    assert "initContainerStatuses" not in status
    assert [c["name"] for c in status["containerStatuses"]] == ["a", "b"]
    again = build_status(status, snapshot())
    assert again == status  # nothing changed, nothing to write


def test_ready_and_completed_pods() -> None:
    ready = build_status({}, snapshot(records=[running("a")]))
    assert {c["type"]: c["status"] for c in ready["conditions"]}["Ready"] == "True"
    done = build_status({}, snapshot(phase="Succeeded", records=[exited(0)]))
    ready_condition = next(c for c in done["conditions"] if c["type"] == "Ready")
    assert ready_condition["reason"] == "PodCompleted"
    sidecar = ContainerRecord("side", "i", init=True, sidecar=True)
    init = build_status(
        {}, snapshot(phase="Pending", initialized=False, init_records=[sidecar], records=[])
    )
    initialized = next(c for c in init["conditions"] if c["type"] == "Initialized")
    assert initialized["message"] == "containers with incomplete status: [side]"
    assert init["initContainerStatuses"][0]["name"] == "side"
    with_reason = build_status(ready, snapshot(phase="Failed", reason="R", message="M"))
    assert (with_reason["reason"], with_reason["message"]) == ("R", "M")
    assert "reason" not in build_status(with_reason, snapshot())


def test_lost_status() -> None:
    pod: Obj = {
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "a",
                    "containerID": "local://9",
                    "ready": True,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                },
                {"name": "b", "state": {"terminated": {"exitCode": 0}}},
            ],
        }
    }
    status = lost_status(pod)
    assert status["phase"] == "Failed" and status["reason"] == LOST_REASON
    a, b = status["containerStatuses"]
    terminated = a["state"]["terminated"]
    assert terminated["exitCode"] == 137 and terminated["reason"] == "ContainerStatusUnknown"
    assert terminated["startedAt"] == "2026-01-01T00:00:00Z" and not a["ready"]
    assert b["state"] == {"terminated": {"exitCode": 0}}
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "False"
