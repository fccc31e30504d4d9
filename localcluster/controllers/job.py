"""The Job controller: a Job's pods run until enough succeed, or the Job fails.

Like kube-controller-manager's, for `completionMode: NonIndexed` Jobs (Indexed ones are
run the same way, without completion indexes):

- pods come from `spec.template`, named `<job>-<5 random chars>`, controlled by the Job;
  at most `parallelism` run at once, until `completions` have succeeded (with no
  `completions`, the first success ends the Job once the others finish);
- a failed pod is replaced after a backoff that doubles from `BACKOFF_BASE`, until more
  than `backoffLimit` pods failed (`Failed`, reason `BackoffLimitExceeded`);
- `activeDeadlineSeconds` counts from `status.startTime` (`Failed`, `DeadlineExceeded`);
- `suspend` deletes the running pods; resuming restarts the deadline clock;
- `ttlSecondsAfterFinished` deletes a finished Job (pods go with it, in the background).

Bookkeeping is level-triggered and survives restarts: every reconcile counts the Job's
pods in the informer cache. Pods the controller deleted itself are never counted as
failures. Because the cache lags the controller's own writes, `Expectations` hold a Job
back until its cache shows the pods it created or deleted, so a retry never makes a
second pod.

Local-cluster deviations: the retry backoff starts at 1 s (upstream 10 s) so a quickly
failing Job finishes in seconds; pods carry no job-tracking finalizer, so
`succeeded`/`failed` never go down but a finished pod deleted by hand is not remembered
as a failure; a failed Job is `Failed` as soon as its pods are told to stop (no
`FailureTarget`/`SuccessCriteriaMet` first). Not supported: `podFailurePolicy`,
`successPolicy`, per-index backoff, adopting orphan pods that match the selector.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from controller import (
    Client,
    Conflict,
    EventRecorder,
    NotFound,
    Request,
    Result,
)
from controller.cache import Indexer, thaw
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
    pod_name,
    terminating,
)

if TYPE_CHECKING:
    from localcluster.workloads import WorkloadContext

log = logging.getLogger("localcluster.controllers.job")

Obj = dict[str, Any]
JOB = ("batch/v1", "Job")
POD = ("v1", "Pod")
FIELD_MANAGER = "job-controller"

BACKOFF_BASE = 1.0
"""Seconds before the first retry of a failed pod; doubles per failure (upstream: 10)."""
BACKOFF_CAP = 360.0
"""The longest wait between retries (upstream's 6 minutes)."""
"""How long a Job waits for its cache to show its own writes before trusting it anyway."""

COMPLETE = "Complete"
FAILED = "Failed"
SUSPENDED = "Suspended"


async def setup(context: WorkloadContext) -> None:
    """Registers this controller with the context's manager."""
    manager = context.manager
    recorder = EventRecorder(context.client, "job-controller")
    reconciler = JobReconciler(
        context.client,
        jobs=manager.informer(JOB).store,
        pods=manager.informer(POD).store,
        recorder=recorder,
    )
    await manager.controller("job").for_(JOB).owns(POD).with_workers(4).complete(reconciler)
    manager.add(close_on_shutdown(recorder))


def finished_at(pod: Mapping[str, Any]) -> datetime | None:
    """When a finished pod ended: its last container's end, else its latest condition change."""
    status = pod.get("status") or {}
    ends = [
        parse_time(((s.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        for s in status.get("containerStatuses") or ()
    ]
    found = [t for t in ends if t is not None]
    if not found:
        changes = [parse_time(c.get("lastTransitionTime")) for c in status.get("conditions") or ()]
        found = [t for t in changes if t is not None]
    if not found:
        start = parse_time(status.get("startTime")) or parse_time(
            (pod.get("metadata") or {}).get("creationTimestamp")
        )
        return start
    return max(found)


@dataclass
class JobPods:
    """A Job's pods by what they mean to it; terminating pods count as neither."""

    active: list[Obj] = field(default_factory=list)
    succeeded: list[Obj] = field(default_factory=list)
    failed: list[Obj] = field(default_factory=list)
    terminating: list[Obj] = field(default_factory=list)

    @classmethod
    def of(cls, pods: Iterable[Obj]) -> JobPods:
        sorted_pods = cls()
        for pod in pods:
            current = phase(pod)
            if current == "Succeeded":
                sorted_pods.succeeded.append(pod)
            elif terminating(pod):
                # Being stopped (by us, a user or a node): a failure nobody should retry
                # twice, and not a success either.
                sorted_pods.terminating.append(pod)
            elif current == "Failed":
                sorted_pods.failed.append(pod)
            else:
                sorted_pods.active.append(pod)
        return sorted_pods

    @property
    def ready(self) -> int:
        return sum(1 for pod in self.active if is_ready(pod))

    def restarts(self) -> int:
        total = 0
        for pod in self.active:
            status = pod.get("status") or {}
            for group in ("initContainerStatuses", "containerStatuses"):
                total += sum(int(s.get("restartCount") or 0) for s in status.get(group) or ())
        return total


def backoff_remaining(pods: JobPods, now: datetime, base: float = BACKOFF_BASE) -> float:
    """Seconds until a failed pod may be replaced: `base` doubled per failure since the
    last success, capped at `BACKOFF_CAP`, counted from the latest failure."""
    finished = [(finished_at(p), False) for p in pods.failed]
    finished += [(finished_at(p), True) for p in pods.succeeded]
    known = sorted(
        ((when, ok) for when, ok in finished if when is not None), key=lambda item: item[0]
    )
    failures = 0
    last_failure: datetime | None = None
    for when, ok in known:
        if ok:
            failures, last_failure = 0, None
        else:
            failures, last_failure = failures + 1, when
    if failures == 0 or last_failure is None:
        return 0.0
    delay = min(BACKOFF_CAP, base * 2.0 ** (failures - 1))
    return max(0.0, (last_failure - now).total_seconds() + delay)


# ---- job conditions (JobCondition: with lastProbeTime, no observedGeneration)


def condition(job: Obj, type_: str) -> Obj | None:
    for found in (job.get("status") or {}).get("conditions") or ():
        if found.get("type") == type_:
            return dict(found)
    return None


def condition_true(job: Obj, type_: str) -> bool:
    found = condition(job, type_)
    return found is not None and found.get("status") == "True"


def set_job_condition(
    status: Obj, type_: str, value: str, reason: str, message: str, now: datetime
) -> bool:
    """Sets a condition in `status`; times move only when its status flips."""
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
        existing.update(status=value, reason=reason, message=message, lastProbeTime=stamp)
        return True
    conditions.append(
        {
            "type": type_,
            "status": value,
            "lastProbeTime": stamp,
            "lastTransitionTime": stamp,
            "reason": reason,
            "message": message,
        }
    )
    return True


def finished(job: Obj) -> bool:
    return condition_true(job, COMPLETE) or condition_true(job, FAILED)


# ---- the reconciler


class JobReconciler:
    def __init__(
        self,
        client: Client,
        *,
        jobs: Indexer,
        pods: Indexer,
        recorder: EventRecorder | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.jobs = jobs
        self.pods = pods
        self.recorder = recorder
        self.now = now
        self.expectations = Expectations()

    async def reconcile(self, request: Request) -> Result | None:
        key = str(request)
        job = self.jobs.get(key)
        if job is None:
            self.expectations.forget(key)
            return None
        if job["metadata"].get("deletionTimestamp"):
            return None  # its pods are the garbage collector's now
        uid = job["metadata"]["uid"]
        owned = owned_pods(self.pods, job)
        if not self.expectations.satisfied(key, uid, owned):
            return Result(requeue_after=EXPECTATIONS_POLL)

        now = self.now()
        spec = job.get("spec") or {}
        old_status = job.get("status") or {}
        status: Obj = thaw(old_status)
        pods = JobPods.of(owned.values())
        succeeded = max(int_or(old_status.get("succeeded"), 0), len(pods.succeeded))
        failed = max(int_or(old_status.get("failed"), 0), len(pods.failed))
        status.update(succeeded=succeeded, failed=failed)
        waits: list[float] = []

        if finished(job):
            # A finished Job never starts pods; one that raced its finish is stopped.
            await self._delete(key, job, pods.active)
            pods.active = []
        elif spec.get("suspend"):
            await self._delete(key, job, pods.active)
            pods.active = []
            if set_job_condition(status, SUSPENDED, "True", "JobSuspended", "Job suspended", now):
                self._event(job, "Normal", "Suspended", "Job suspended")
        else:
            if condition_true(job, SUSPENDED):
                set_job_condition(status, SUSPENDED, "False", "JobResumed", "Job resumed", now)
                status["startTime"] = rfc3339(now)  # the deadline counts active time only
                self._event(job, "Normal", "Resumed", "Job resumed")
            status.setdefault("startTime", rfc3339(now))

            failure = self._failure(spec, status, pods, failed, now)
            if failure is not None:
                reason, message = failure
                await self._delete(key, job, pods.active)
                pods.active = []
                set_job_condition(status, FAILED, "True", reason, message, now)
                self._event(job, "Warning", reason, message)
            elif self._complete(spec, pods, succeeded):
                await self._delete(key, job, pods.active)
                pods.active = []
                set_job_condition(
                    status,
                    COMPLETE,
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                )
                status["completionTime"] = rfc3339(now)
                self._event(job, "Normal", "Completed", "Job completed")
            else:
                waits += await self._run_pods(key, job, pods, succeeded, now)
                deadline = self._deadline_remaining(spec, status, now)
                if deadline is not None:
                    waits.append(deadline)

        status.update(active=len(pods.active), ready=pods.ready, terminating=len(pods.terminating))
        for counter in ("active", "succeeded", "failed"):
            if not status[counter]:
                del status[counter]  # zero is left out, as upstream's omitempty does
        if status != old_status:
            job["status"] = status
            try:
                await self.client.update_status(job, field_manager=FIELD_MANAGER)
            except Conflict:
                # The cached Job was stale: what we did is in the pod cache; decide again.
                return Result(requeue=True)
        if finished(job):
            ttl = await self._expire(job, now)
            if ttl is not None:
                waits.append(ttl)
        waits = [wait for wait in waits if wait > 0]
        return Result(requeue_after=min(waits)) if waits else None

    # ---- deciding

    def _failure(
        self, spec: Obj, status: Obj, pods: JobPods, failed: int, now: datetime
    ) -> tuple[str, str] | None:
        limit = int_or(spec.get("backoffLimit"), 6)
        too_many = failed > limit
        if (
            not too_many
            and (spec.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure"
        ):
            # Containers restarted in place are failures too.
            restarts = pods.restarts()
            too_many = restarts > 0 if limit == 0 else restarts >= limit
        if too_many:
            return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        remaining = self._deadline_remaining(spec, status, now)
        if remaining is not None and remaining <= 0:
            return "DeadlineExceeded", "Job was active longer than specified deadline"
        return None

    @staticmethod
    def _deadline_remaining(spec: Obj, status: Obj, now: datetime) -> float | None:
        deadline = spec.get("activeDeadlineSeconds")
        started = parse_time(status.get("startTime"))
        if not isinstance(deadline, int) or started is None:
            return None
        return deadline - (now - started).total_seconds()

    @staticmethod
    def _complete(spec: Obj, pods: JobPods, succeeded: int) -> bool:
        completions = spec.get("completions")
        if isinstance(completions, int):
            return succeeded >= completions
        # A work queue: done when one pod succeeded and the others have finished.
        return succeeded > 0 and not pods.active

    @staticmethod
    def _wanted_active(spec: Obj, pods: JobPods, succeeded: int) -> int:
        parallelism = max(0, int_or(spec.get("parallelism"), 1))
        completions = spec.get("completions")
        if isinstance(completions, int):
            return min(parallelism, max(0, completions - succeeded))
        if succeeded > 0:
            return len(pods.active)  # no new pods; the running ones finish
        return parallelism

    # ---- acting

    async def _run_pods(
        self, key: str, job: Obj, pods: JobPods, succeeded: int, now: datetime
    ) -> list[float]:
        """Creates or deletes pods toward the wanted number running; returns waits."""
        wanted = self._wanted_active(job.get("spec") or {}, pods, succeeded)
        if len(pods.active) > wanted:
            # Not-ready and newest pods go first: they have done the least work.
            extra = sorted(
                pods.active,
                key=lambda p: (is_ready(p), p["metadata"].get("creationTimestamp", "")),
            )[: len(pods.active) - wanted]
            await self._delete(key, job, extra)
            pods.active = [p for p in pods.active if p not in extra]
            return []
        if len(pods.active) == wanted:
            return []
        wait = backoff_remaining(pods, now)
        if wait > 0:
            return [wait]
        for _ in range(wanted - len(pods.active)):
            pods.active.append(await self._create(key, job))
        return []

    async def _create(self, key: str, job: Obj) -> Obj:
        template = (job.get("spec") or {}).get("template") or {}
        created = await create_pod(
            self.client,
            self.expectations,
            key,
            job,
            lambda: pod_from_template(job, template, pod_name(job["metadata"]["name"])),
            FIELD_MANAGER,
        )
        name = created["metadata"]["name"]
        self._event(job, "Normal", "SuccessfulCreate", f"Created pod: {name}")
        return created

    async def _delete(self, key: str, job: Obj, pods: Iterable[Obj]) -> None:
        await delete_pods(
            self.client,
            self.expectations,
            key,
            job,
            pods,
            lambda name: self._event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {name}"),
        )

    async def _expire(self, job: Obj, now: datetime) -> float | None:
        """Deletes a finished Job once its `ttlSecondsAfterFinished` passed; else the wait."""
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if not isinstance(ttl, int):
            return None
        ended = parse_time((job.get("status") or {}).get("completionTime"))
        if ended is None:
            done = condition(job, COMPLETE) or condition(job, FAILED) or {}
            ended = parse_time(done.get("lastTransitionTime")) or now
        remaining = ttl - (now - ended).total_seconds()
        if remaining > 0:
            return remaining
        meta = job["metadata"]
        with contextlib.suppress(NotFound, Conflict):
            await self.client.delete(
                JOB,
                meta["name"],
                meta["namespace"],
                propagation_policy="Background",
                preconditions={"uid": meta["uid"]},
            )
        return None

    def _event(self, job: Obj, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event(job, type_, reason, message)
