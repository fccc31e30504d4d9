"""The Job controller's decisions, without a server: a cache we fill by hand, a client
that records what the controller asked for."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from controller import Client, Request
from controller.cache import Indexer
from controller.conditions import rfc3339
from localcluster.controllers.job import (
    JobPods,
    JobReconciler,
    backoff_remaining,
    set_job_condition,
)
from localcluster.controllers.pods import EXPECTATIONS_POLL, Expectations

Obj = dict[str, Any]
NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


class RecordingClient:
    """Answers writes like a server would, without touching the caches (they lag)."""

    def __init__(self) -> None:
        self.created: list[Obj] = []
        self.deleted: list[tuple[str, str, dict[str, Any]]] = []
        self.statuses: list[Obj] = []

    async def create(self, obj: Obj, **_: Any) -> Obj:
        obj = dict(obj, metadata=dict(obj["metadata"], uid=str(uuid.uuid4())))
        self.created.append(obj)
        return obj

    async def delete(self, kind: tuple[str, str], name: str, namespace: str, **options: Any) -> Obj:
        self.deleted.append((kind[1], name, options))
        return {}

    async def update_status(self, obj: Obj, **_: Any) -> Obj:
        self.statuses.append(obj["status"])
        return obj


def make_job(name: str = "work", **spec: Any) -> Obj:
    uid = str(uuid.uuid4())
    labels = {"batch.kubernetes.io/controller-uid": uid, "job-name": name}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "1"},
        "spec": {
            "parallelism": 1,
            "completions": 1,
            "backoffLimit": 6,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}],
                },
            },
            **spec,
        },
    }


def make_pod(job: Obj, name: str, phase: str = "Pending", **status: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": str(uuid.uuid4()),
            "creationTimestamp": rfc3339(NOW - timedelta(seconds=30)),
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": job["metadata"]["name"],
                    "uid": job["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": phase, **status},
    }


def ended(job: Obj, name: str, exit_code: int, at: datetime) -> Obj:
    terminated = {"exitCode": exit_code, "finishedAt": rfc3339(at)}
    return make_pod(
        job,
        name,
        "Succeeded" if exit_code == 0 else "Failed",
        containerStatuses=[{"name": "c", "state": {"terminated": terminated}}],
    )


class World:
    def __init__(self, now: datetime = NOW) -> None:
        self.jobs = Indexer()
        self.pods = Indexer()
        self.client = RecordingClient()
        self.now = now
        self.reconciler = JobReconciler(
            cast(Client, self.client), jobs=self.jobs, pods=self.pods, now=lambda: self.now
        )

    def add(self, *objs: Obj) -> None:
        for obj in objs:
            (self.jobs if obj["kind"] == "Job" else self.pods).upsert(obj)

    async def reconcile(self, job: Obj) -> Any:
        return await self.reconciler.reconcile(Request("ns", job["metadata"]["name"]))

    @property
    def status(self) -> Obj:
        return self.client.statuses[-1]


async def test_a_new_job_gets_one_pod_from_its_template() -> None:
    world = World()
    job = make_job()
    world.add(job)
    await world.reconcile(job)
    (pod,) = world.client.created
    assert pod["metadata"]["name"].startswith("work-")
    assert pod["metadata"]["labels"] == job["spec"]["template"]["metadata"]["labels"]
    (ref,) = pod["metadata"]["ownerReferences"]
    assert (ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
        job["metadata"]["uid"],
        True,
        True,
    )
    assert world.status["active"] == 1
    assert world.status["startTime"] == rfc3339(NOW)


async def test_a_lagging_cache_never_makes_a_second_pod() -> None:
    world = World()
    job = make_job()
    world.add(job)
    await world.reconcile(job)
    result = await world.reconcile(job)  # the cache has not seen the pod yet
    assert len(world.client.created) == 1
    assert result.requeue_after == EXPECTATIONS_POLL
    world.add(world.client.created[0])
    await world.reconcile(job)
    assert len(world.client.created) == 1


async def test_a_failed_pod_is_retried_after_the_backoff() -> None:
    world = World()
    job = make_job()
    world.add(job, ended(job, "work-aaaaa", 1, NOW))
    result = await world.reconcile(job)
    assert world.client.created == []
    assert result.requeue_after == pytest.approx(1.0)
    assert world.status["failed"] == 1
    world.now = NOW + timedelta(seconds=1)
    await world.reconcile(job)
    assert len(world.client.created) == 1


def test_the_backoff_doubles_per_failure_and_resets_on_success() -> None:
    job = make_job()
    failures = [ended(job, f"f{i}", 1, NOW - timedelta(seconds=4 - 2 * i)) for i in range(3)]
    # Three failures, the last just now: 1 s, 2 s, then 4 s after the third.
    assert backoff_remaining(JobPods.of(failures), NOW) == pytest.approx(4.0)
    # A success after the first failure: two failures since, so 2 s.
    success = ended(job, "ok", 0, NOW - timedelta(seconds=3))
    assert backoff_remaining(JobPods.of([*failures, success]), NOW) == pytest.approx(2.0)
    assert backoff_remaining(JobPods.of([success]), NOW) == 0.0


async def test_more_failures_than_the_backoff_limit_fail_the_job() -> None:
    world = World()
    job = make_job(backoffLimit=1)
    world.add(job, ended(job, "a", 1, NOW), ended(job, "b", 1, NOW))
    await world.reconcile(job)
    assert world.client.created == []
    (failed,) = world.status["conditions"]
    assert (failed["type"], failed["status"], failed["reason"]) == (
        "Failed",
        "True",
        "BackoffLimitExceeded",
    )
    assert failed["lastProbeTime"] == failed["lastTransitionTime"] == rfc3339(NOW)
    assert "completionTime" not in world.status


async def test_container_restarts_count_against_the_limit_with_on_failure() -> None:
    world = World()
    job = make_job(backoffLimit=2)
    job["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    restarted = make_pod(job, "a", "Running", containerStatuses=[{"name": "c", "restartCount": 2}])
    world.add(job, restarted)
    await world.reconcile(job)
    assert world.status["conditions"][0]["reason"] == "BackoffLimitExceeded"
    assert [name for _, name, _ in world.client.deleted] == ["a"]


async def test_the_deadline_stops_active_pods_without_counting_them_failed() -> None:
    world = World()
    job = make_job(activeDeadlineSeconds=5)
    job["status"] = {"startTime": rfc3339(NOW - timedelta(seconds=3)), "active": 1}
    running = make_pod(job, "a", "Running")
    world.add(job, running)
    result = await world.reconcile(job)
    assert world.client.deleted == []
    assert result.requeue_after == pytest.approx(2.0)

    world.now = NOW + timedelta(seconds=2)
    await world.reconcile(job)
    ((kind, name, options),) = world.client.deleted
    assert (kind, name) == ("Pod", "a")
    assert options["preconditions"] == {"uid": running["metadata"]["uid"]}
    assert world.status["conditions"][0]["reason"] == "DeadlineExceeded"
    assert "failed" not in world.status and "active" not in world.status

    # The node then marks the stopped pod Failed while it is being deleted: still no failure.
    stopped = make_pod(job, "a", "Failed")
    stopped["metadata"]["deletionTimestamp"] = rfc3339(world.now)
    job["status"] = world.status
    world.add(job, stopped)
    await world.reconcile(job)
    assert "failed" not in world.status
    assert world.status["terminating"] == 1


async def test_a_finished_job_starts_nothing_and_expires_after_its_ttl() -> None:
    world = World()
    job = make_job(completions=2, ttlSecondsAfterFinished=10)
    status: Obj = {"succeeded": 1, "completionTime": rfc3339(NOW)}
    set_job_condition(status, "Complete", "True", "CompletionsReached", "done", NOW)
    job["status"] = status
    world.add(job, ended(job, "a", 0, NOW))
    result = await world.reconcile(job)
    assert world.client.created == [] and world.client.deleted == []
    assert result.requeue_after == pytest.approx(10.0)
    world.now = NOW + timedelta(seconds=10)
    await world.reconcile(job)
    ((kind, name, options),) = world.client.deleted
    assert (kind, name, options["propagation_policy"]) == ("Job", "work", "Background")


async def test_a_suspended_job_stops_its_pods_and_resuming_restarts_the_clock() -> None:
    world = World()
    job = make_job(suspend=True)
    job["status"] = {"startTime": rfc3339(NOW - timedelta(hours=1))}
    world.add(job, make_pod(job, "a", "Running"))
    await world.reconcile(job)
    assert [name for _, name, _ in world.client.deleted] == ["a"]
    assert world.status["conditions"][0]["type"] == "Suspended"
    job["status"] = world.status
    job["spec"]["suspend"] = False
    world.pods.delete_key("ns/a")
    world.add(job)
    await world.reconcile(job)
    assert world.status["conditions"][0]["status"] == "False"
    assert world.status["startTime"] == rfc3339(NOW)
    assert len(world.client.created) == 1


async def test_pods_succeeding_complete_the_job() -> None:
    world = World()
    job = make_job()
    world.add(job, ended(job, "a", 0, NOW))
    await world.reconcile(job)
    assert world.status["succeeded"] == 1
    assert world.status["completionTime"] == rfc3339(NOW)
    assert world.status["conditions"][0]["type"] == "Complete"


def test_expectations_wait_for_the_cache_then_time_out() -> None:
    clock = [0.0]
    expectations = Expectations(timeout=5.0, clock=lambda: clock[0])
    expectations.expect("ns/j", "u1", created=["p1"], deleted=["p0"])
    assert not expectations.satisfied("ns/j", "u1", {"p0": {"metadata": {}}})
    assert not expectations.satisfied(
        "ns/j", "u1", {"p1": {"metadata": {}}, "p0": {"metadata": {}}}
    )
    assert expectations.satisfied(
        "ns/j", "u1", {"p1": {"metadata": {}}, "p0": {"metadata": {"deletionTimestamp": "x"}}}
    )
    expectations.expect("ns/j", "u1", created=["p2"])
    clock[0] = 6.0
    assert expectations.satisfied("ns/j", "u1", {})
    expectations.expect("ns/j", "u1", created=["p3"])
    assert expectations.satisfied("ns/j", "u2", {}), "a new Job under the same name starts afresh"
