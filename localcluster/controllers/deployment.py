"""The Deployment controller: `spec.replicas` pods of the current template, rolled on change.

Simplification for one machine: upstream goes Deployment → ReplicaSets → Pods; here the
Deployment controls its Pods directly. Each pod carries `pod-template-hash`, a short hash
of the template it was made from (upstream's label, minus the ReplicaSet), and is named
`<deployment>-<hash>-<5 random chars>` as upstream's pods are. So:

- pods of the current hash are "updated"; other hashes are old and get replaced;
- `RollingUpdate` adds updated pods up to `replicas + maxSurge` and removes old ones only
  while `replicas - maxUnavailable` pods stay ready; old pods that are not ready go at
  once, since they serve nothing (so a broken rollout is replaced, not waited on);
- `Recreate` removes every old pod, then creates the new ones once they are gone;
- pods that finished (Succeeded/Failed) or were deleted are replaced;
- status: `observedGeneration`, `replicas` (pods not terminating), `updatedReplicas`,
  `readyReplicas`, `availableReplicas` (ready for `minReadySeconds`),
  `unavailableReplicas`, and conditions `Available` (at least `replicas - maxUnavailable`
  available, as upstream) and `Progressing` (`NewReplicaSetAvailable` when done,
  `ProgressDeadlineExceeded` after `progressDeadlineSeconds` without progress), which is
  what `kubectl rollout status` reads.

Not supported: `paused`, revision history (`kubectl rollout undo`), ReplicaSet objects,
adopting orphan pods that match the selector.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from controller import (
    Client,
    Conflict,
    EventRecorder,
    Request,
    Result,
)
from controller.cache import Indexer
from controller.conditions import rfc3339
from localcluster.controllers.pods import (
    EXPECTATIONS_POLL,
    Expectations,
    close_on_shutdown,
    create_pod,
    delete_pods,
    int_or,
    is_ready,
    owned_pods,
    parse_time,
    phase,
    pod_from_template,
    random_suffix,
)

if TYPE_CHECKING:
    from localcluster.workloads import WorkloadContext

Obj = dict[str, Any]
DEPLOYMENT = ("apps/v1", "Deployment")
POD = ("v1", "Pod")
FIELD_MANAGER = "deployment-controller"
TEMPLATE_HASH = "pod-template-hash"


async def setup(context: WorkloadContext) -> None:
    """Registers this controller with the context's manager."""
    manager = context.manager
    recorder = EventRecorder(context.client, "deployment-controller")
    reconciler = DeploymentReconciler(
        context.client,
        deployments=manager.informer(DEPLOYMENT).store,
        pods=manager.informer(POD).store,
        recorder=recorder,
    )
    await (
        manager.controller("deployment")
        .for_(DEPLOYMENT)
        .owns(POD)
        .with_workers(4)
        .complete(reconciler)
    )
    manager.add(close_on_shutdown(recorder))


def template_hash(template: Any) -> str:
    """A short, stable name for one pod template (its canonical JSON, hashed)."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def scaled(value: Any, replicas: int, round_up: bool, default: str) -> int:
    """An int-or-percent of `replicas` (`maxSurge` rounds up, `maxUnavailable` down)."""
    if value is None:
        value = default
    if isinstance(value, int) and not isinstance(value, bool):
        return max(0, value)
    text = str(value).strip()
    if text.endswith("%"):
        try:
            share = replicas * float(text[:-1]) / 100
        except ValueError:
            share = 0.0
        return max(0, math.ceil(share) if round_up else math.floor(share))
    try:
        return max(0, int(text))
    except ValueError:
        return 0


def rolling_limits(spec: Obj, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts; never both zero, as upstream."""
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    surge = scaled(rolling.get("maxSurge"), replicas, True, "25%")
    unavailable = scaled(rolling.get("maxUnavailable"), replicas, False, "25%")
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def ready_since(pod: Obj) -> datetime | None:
    for found in (pod.get("status") or {}).get("conditions") or ():
        if found.get("type") == "Ready" and found.get("status") == "True":
            return parse_time(found.get("lastTransitionTime"))
    return None


def removal_order(pods: Iterable[Obj]) -> list[Obj]:
    """Who goes first when pods must go: not ready, then not running, then the newest."""
    newest_first = sorted(
        pods, key=lambda p: str(p["metadata"].get("creationTimestamp", "")), reverse=True
    )
    return sorted(newest_first, key=lambda p: (is_ready(p), phase(p) == "Running"))


@dataclass
class DeploymentPods:
    """A Deployment's pods: of the current template, older ones, finished and terminating."""

    updated: list[Obj] = field(default_factory=list)
    old: list[Obj] = field(default_factory=list)
    finished: list[Obj] = field(default_factory=list)
    terminating: list[Obj] = field(default_factory=list)

    @classmethod
    def of(cls, pods: Iterable[Obj], current: str) -> DeploymentPods:
        found = cls()
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                found.terminating.append(pod)
            elif phase(pod) in ("Succeeded", "Failed"):
                found.finished.append(pod)
            elif (pod["metadata"].get("labels") or {}).get(TEMPLATE_HASH) == current:
                found.updated.append(pod)
            else:
                found.old.append(pod)
        return found

    @property
    def live(self) -> list[Obj]:
        return self.updated + self.old


def set_deployment_condition(
    status: Obj, type_: str, value: str, reason: str, message: str, now: datetime
) -> bool:
    """DeploymentCondition semantics: `lastUpdateTime` moves on any change,
    `lastTransitionTime` only when the status flips."""
    conditions: list[Obj] = status.setdefault("conditions", [])
    stamp = rfc3339(now)
    for existing in conditions:
        if existing.get("type") != type_:
            continue
        if (existing.get("status"), existing.get("reason"), existing.get("message")) == (
            value,
            reason,
            message,
        ):
            return False
        if existing.get("status") != value:
            existing["lastTransitionTime"] = stamp
        existing.update(status=value, reason=reason, message=message, lastUpdateTime=stamp)
        return True
    conditions.append(
        {
            "type": type_,
            "status": value,
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
            "reason": reason,
            "message": message,
        }
    )
    return True


def _condition(status: Obj, type_: str) -> Obj:
    for found in status.get("conditions") or ():
        if found.get("type") == type_:
            return dict(found)
    return {}


class DeploymentReconciler:
    def __init__(
        self,
        client: Client,
        *,
        deployments: Indexer,
        pods: Indexer,
        recorder: EventRecorder | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.deployments = deployments
        self.pods = pods
        self.recorder = recorder
        self.now = now
        self.expectations = Expectations()

    async def reconcile(self, request: Request) -> Result | None:
        key = str(request)
        deployment = self.deployments.get(key)
        if deployment is None:
            self.expectations.forget(key)
            return None
        meta = deployment["metadata"]
        if meta.get("deletionTimestamp"):
            return None  # its pods are the garbage collector's now
        owned = owned_pods(self.pods, deployment)
        if not self.expectations.satisfied(key, meta["uid"], owned):
            return Result(requeue_after=EXPECTATIONS_POLL)

        spec = deployment.get("spec") or {}
        replicas = max(0, int_or(spec.get("replicas"), 1))
        current = template_hash(spec.get("template") or {})
        pods = DeploymentPods.of(owned.values(), current)

        # Finished pods serve nothing: they go, and are replaced below like deleted ones.
        await self._delete(key, deployment, pods.finished)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            await self._recreate(key, deployment, pods, replicas, current)
        else:
            await self._roll(key, deployment, pods, replicas, current)

        now = self.now()
        status, wait = self._status(deployment, pods, replicas, current, now)
        if status != (deployment.get("status") or {}):
            deployment["status"] = status
            try:
                await self.client.update_status(deployment, field_manager=FIELD_MANAGER)
            except Conflict:
                return Result(requeue=True)  # a stale cached Deployment: decide again
        return Result(requeue_after=wait) if wait > 0 else None

    # ---- strategies

    async def _roll(
        self, key: str, deployment: Obj, pods: DeploymentPods, replicas: int, current: str
    ) -> None:
        surge, unavailable = rolling_limits(deployment.get("spec") or {}, replicas)
        room = replicas + surge - len(pods.live)
        missing = min(replicas - len(pods.updated), room)
        for _ in range(max(0, missing)):
            pods.updated.append(await self._create(key, deployment, current))
        if len(pods.updated) > replicas:
            extra = removal_order(pods.updated)[: len(pods.updated) - replicas]
            await self._delete(key, deployment, extra)
            pods.updated = [p for p in pods.updated if p not in extra]
        if not pods.old:
            return
        # Old pods that are not ready serve nothing: replace them at once. Ready ones go
        # only while enough pods stay ready.
        doomed = [p for p in pods.old if not is_ready(p)]
        spare = sum(1 for p in pods.live if is_ready(p)) - (replicas - unavailable)
        ready_old = [p for p in removal_order(pods.old) if is_ready(p)]
        doomed += ready_old[: max(0, spare)]
        await self._delete(key, deployment, doomed)
        pods.old = [p for p in pods.old if p not in doomed]

    async def _recreate(
        self, key: str, deployment: Obj, pods: DeploymentPods, replicas: int, current: str
    ) -> None:
        if pods.old:
            await self._delete(key, deployment, pods.old)
            pods.old = []
            return
        stopping = [
            p
            for p in pods.terminating
            if (p["metadata"].get("labels") or {}).get(TEMPLATE_HASH) != current
        ]
        if stopping:
            return  # new pods start once the old ones have stopped
        for _ in range(replicas - len(pods.updated)):
            pods.updated.append(await self._create(key, deployment, current))
        if len(pods.updated) > replicas:
            extra = removal_order(pods.updated)[: len(pods.updated) - replicas]
            await self._delete(key, deployment, extra)
            pods.updated = [p for p in pods.updated if p not in extra]

    # ---- status

    def _status(
        self, deployment: Obj, pods: DeploymentPods, replicas: int, current: str, now: datetime
    ) -> tuple[Obj, float]:
        """The new status, and how long until it changes by the clock alone."""
        spec = deployment.get("spec") or {}
        old: Obj = deployment.get("status") or {}
        min_ready = max(0, int_or(spec.get("minReadySeconds"), 0))
        waits: list[float] = []
        available = 0
        for pod in pods.live:
            since = ready_since(pod)
            if since is None:
                continue
            remaining = min_ready - (now - since).total_seconds()
            if remaining <= 0:
                available += 1
            else:
                waits.append(remaining)
        counts = {
            "replicas": len(pods.live),
            "updatedReplicas": len(pods.updated),
            "readyReplicas": sum(1 for p in pods.live if is_ready(p)),
            "availableReplicas": available,
            "unavailableReplicas": max(0, replicas - available),
        }
        status: Obj = {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            # Zero counts are left out, as upstream's omitempty does.
            **{k: v for k, v in counts.items() if v},
            "conditions": [dict(c) for c in old.get("conditions") or ()],
        }
        self._set_available(status, spec, replicas, available, now)
        progressed = status["observedGeneration"] != old.get("observedGeneration") or any(
            old.get(k, 0) != v for k, v in counts.items()
        )
        done = len(pods.updated) == replicas and available == replicas and not pods.old
        deadline = self._set_progressing(deployment, status, current, done, progressed, now)
        if deadline is not None:
            waits.append(deadline)
        status["conditions"].sort(key=lambda c: c.get("type") != "Available")
        return status, min(waits) if waits else 0.0

    @staticmethod
    def _set_available(
        status: Obj, spec: Obj, replicas: int, available: int, now: datetime
    ) -> None:
        """Available: at least `replicas - maxUnavailable` pods available (Recreate: all)."""
        rolling = (spec.get("strategy") or {}).get("type") != "Recreate"
        unavailable = rolling_limits(spec, replicas)[1] if rolling else 0
        if available >= replicas - unavailable:
            set_deployment_condition(
                status,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
            )
        else:
            set_deployment_condition(
                status,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
            )

    @staticmethod
    def _set_progressing(
        deployment: Obj, status: Obj, current: str, done: bool, progressed: bool, now: datetime
    ) -> float | None:
        """Progressing: done, making progress, or stuck past the progress deadline.

        Returns the seconds until a rollout without progress would pass its deadline.
        """
        name = deployment["metadata"]["name"]
        deadline = int_or((deployment.get("spec") or {}).get("progressDeadlineSeconds"), 600)
        progressing = _condition(status, "Progressing")
        if done:
            set_deployment_condition(
                status,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'Deployment "{name}" has successfully progressed.',
                now,
            )
            return None
        if progressed or progressing.get("reason") in (None, "NewReplicaSetAvailable"):
            message = f'Deployment "{name}" is progressing to pods of template {current}.'
            set_deployment_condition(
                status, "Progressing", "True", "ReplicaSetUpdated", message, now
            )
            for found in status["conditions"]:
                if found.get("type") == "Progressing":
                    found["lastUpdateTime"] = rfc3339(now)  # progress: the deadline restarts
            return float(deadline)
        if progressing.get("reason") == "ProgressDeadlineExceeded":
            return None
        since = parse_time(progressing.get("lastUpdateTime")) or now
        remaining = deadline - (now - since).total_seconds()
        if remaining > 0:
            return remaining
        set_deployment_condition(
            status,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'Deployment "{name}" has timed out progressing.',
            now,
        )
        return None

    # ---- acting

    async def _create(self, key: str, deployment: Obj, current: str) -> Obj:
        meta = deployment["metadata"]
        template = (deployment.get("spec") or {}).get("template") or {}

        def make_pod() -> Obj:
            name = f"{meta['name'][:46]}-{current}-{random_suffix()}"
            pod = pod_from_template(deployment, template, name)
            pod["metadata"]["labels"][TEMPLATE_HASH] = current
            return pod

        created = await create_pod(
            self.client, self.expectations, key, deployment, make_pod, FIELD_MANAGER
        )
        name = created["metadata"]["name"]
        self._event(deployment, "Normal", "SuccessfulCreate", f"Created pod: {name}")
        return created

    async def _delete(self, key: str, deployment: Obj, pods: Iterable[Obj]) -> None:
        await delete_pods(
            self.client,
            self.expectations,
            key,
            deployment,
            pods,
            lambda name: self._event(
                deployment, "Normal", "SuccessfulDelete", f"Deleted pod: {name}"
            ),
        )

    def _event(self, deployment: Obj, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(deployment, type_, reason, message)
