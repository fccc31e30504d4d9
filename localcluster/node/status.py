"""Pod status from what the node knows of its containers, with the kubelet's rules.

Pure functions of the node's container records, so the phase and condition rules can be
tested alone: the phase follows the kubelet's `getPhase` (a container never started
keeps the pod Pending; all stopped means Succeeded/Failed unless the restart policy will
start them again), conditions keep their `lastTransitionTime` until their status flips,
and conditions other components own (e.g. `DisruptionTarget`) are left alone.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

from localcluster.node.env import HOST_IP, POD_IP

Obj = dict[str, Any]

NODE_NAME = "localcluster"
LOST_REASON = "NodeRestart"
LOST_MESSAGE = "The local node restarted; the processes of this pod are gone"
_OWNED_CONDITIONS = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class ContainerRecord:
    """What the node knows of one container: the API's ContainerStatus, kept in memory."""

    name: str
    image: str
    init: bool = False
    sidecar: bool = False
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    container_id: str = ""

    def waiting(self, reason: str, message: str = "") -> None:
        if "terminated" in self.state:
            self.last_state = self.state
        self.state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        self.ready = self.started = False

    def running(self, started_at: str, container_id: str) -> None:
        if "terminated" in self.state:
            self.last_state = self.state
        self.state = {"running": {"startedAt": started_at}}
        self.container_id = container_id
        self.ready = False

    def terminated(
        self,
        exit_code: int,
        *,
        reason: str = "",
        message: str = "",
        started_at: str = "",
        finished_at: str = "",
    ) -> None:
        state: Obj = {
            "exitCode": exit_code,
            "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        }
        if message:
            state["message"] = message
        if started_at:
            state["startedAt"] = started_at
        state["finishedAt"] = finished_at or now()
        if self.container_id:
            state["containerID"] = self.container_id
        self.state = {"terminated": state}
        self.ready = self.started = False

    @property
    def exit_code(self) -> int | None:
        terminated = self.state.get("terminated")
        return None if terminated is None else int(terminated.get("exitCode", 0))

    def to_status(self) -> Obj:
        status: Obj = {
            "name": self.name,
            "image": self.image,
            "imageID": image_id(self.image),
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.started,
            "state": copy.deepcopy(self.state),
            "lastState": copy.deepcopy(self.last_state),
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


def image_id(image: str) -> str:
    """The "image" that really runs is this machine; say so where a digest would be."""
    return f"local://{image}"


def pod_phase(
    restart_policy: str,
    initialized: bool,
    init_records: list[ContainerRecord],
    records: list[ContainerRecord],
) -> str:
    """The kubelet's phase rules over the regular containers (init ones gate Pending)."""
    if not initialized:
        failed = any(
            not r.sidecar and (r.exit_code or 0) != 0 and "terminated" in r.state
            for r in init_records
        )
        return "Failed" if failed and restart_policy == "Never" else "Pending"
    waiting = running = stopped = succeeded = 0
    for record in records:
        state = record.state
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += record.exit_code == 0
        elif record.last_state.get("terminated"):
            stopped += 1  # waiting to restart
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


@dataclass
class Snapshot:
    """Everything `build_status` needs from a pod worker."""

    phase: str
    start_time: str
    init_records: list[ContainerRecord]
    records: list[ContainerRecord]
    sandbox_ready: bool
    initialized: bool
    reason: str = ""
    message: str = ""


def _condition(
    old: dict[str, Obj], kind: str, status: bool, reason: str = "", message: str = ""
) -> Obj:
    value = "True" if status else "False"
    previous = old.get(kind)
    since = now()
    if previous is not None and previous.get("status") == value:
        since = previous.get("lastTransitionTime") or since
    condition: Obj = {
        "type": kind,
        "status": value,
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if not status and reason:
        condition["reason"] = reason
    if not status and message:
        condition["message"] = message
    return condition


def conditions(old_status: Obj, snapshot: Snapshot) -> list[Obj]:
    old = {c.get("type", ""): c for c in old_status.get("conditions") or ()}
    completed = snapshot.phase == "Succeeded"
    incomplete = [
        r.name
        for r in snapshot.init_records
        if not (r.started if r.sidecar else r.exit_code == 0 and "terminated" in r.state)
    ]
    gating = [r for r in snapshot.init_records if r.sidecar] + snapshot.records
    unready = [r.name for r in gating if not r.ready]
    not_ready = (
        ("PodCompleted", "")
        if completed
        else ("ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]")
    )
    ready = not unready and not completed and snapshot.phase == "Running"
    owned = [
        _condition(old, "PodReadyToStartContainers", snapshot.sandbox_ready),
        _condition(
            old,
            "Initialized",
            snapshot.initialized,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]",
        ),
        _condition(old, "Ready", ready, *not_ready),
        _condition(old, "ContainersReady", ready, *not_ready),
        _condition(old, "PodScheduled", True),
    ]
    others = [
        c for c in old_status.get("conditions") or () if c.get("type") not in _OWNED_CONDITIONS
    ]
    return owned + others


def build_status(old_status: Obj, snapshot: Snapshot) -> Obj:
    """The pod's new status: ours replaced, everything else kept."""
    status = copy.deepcopy(old_status)
    status["phase"] = snapshot.phase
    status["conditions"] = conditions(old_status, snapshot)
    status["hostIP"] = HOST_IP
    status["hostIPs"] = [{"ip": HOST_IP}]
    status["podIP"] = POD_IP
    status["podIPs"] = [{"ip": POD_IP}]
    status["startTime"] = snapshot.start_time
    status["containerStatuses"] = [r.to_status() for r in snapshot.records]
    if snapshot.init_records:
        status["initContainerStatuses"] = [r.to_status() for r in snapshot.init_records]
    else:
        status.pop("initContainerStatuses", None)
    for key, value in (("reason", snapshot.reason), ("message", snapshot.message)):
        if value:
            status[key] = value
        else:
            status.pop(key, None)
    return status


def was_started(pod: Obj) -> bool:
    """Whether some earlier run of the node started this pod's containers."""
    status = pod.get("status") or {}
    if status.get("phase") == "Running":
        return True
    for key in ("containerStatuses", "initContainerStatuses"):
        for container in status.get(key) or ():
            state = container.get("state") or {}
            if "running" in state or "terminated" in state or container.get("lastState"):
                return True
    return False


def lost_status(pod: Obj) -> Obj:
    """Failed, for a pod whose processes died with an earlier run of the node."""
    status = copy.deepcopy(pod.get("status") or {})
    finished = now()
    for key in ("containerStatuses", "initContainerStatuses"):
        for container in status.get(key) or ():
            state = container.get("state") or {}
            if "terminated" in state:
                continue
            terminated: Obj = {
                "exitCode": 137,
                "reason": "ContainerStatusUnknown",
                "message": "The container could not be located when the pod was terminated",
                "finishedAt": finished,
            }
            started = (state.get("running") or {}).get("startedAt")
            if started:
                terminated["startedAt"] = started
            if container.get("containerID"):
                terminated["containerID"] = container["containerID"]
            if "running" in state:
                container["lastState"] = {}
            container["state"] = {"terminated": terminated}
            container["ready"] = False
            container["started"] = False
    status["phase"] = "Failed"
    status["reason"] = LOST_REASON
    status["message"] = LOST_MESSAGE
    old = {c.get("type", ""): c for c in status.get("conditions") or ()}
    for kind in ("Ready", "ContainersReady"):
        old[kind] = _condition(old, kind, False, "PodFailed", LOST_MESSAGE)
    status["conditions"] = list(old.values())
    return status
