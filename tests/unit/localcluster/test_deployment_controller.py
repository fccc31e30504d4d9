"""The Deployment controller's decisions, without a server (see test_job_controller.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from controller import Client, Request
from controller.cache import Indexer
from controller.conditions import rfc3339
from localcluster.controllers.deployment import (
    TEMPLATE_HASH,
    DeploymentReconciler,
    removal_order,
    rolling_limits,
    template_hash,
)
from tests.unit.localcluster.test_job_controller import RecordingClient

Obj = dict[str, Any]
NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def make_deployment(replicas: int = 2, image: str = "busybox:1", **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": str(uuid.uuid4()),
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
            **spec,
        },
    }


def make_pod(
    owner: Obj, name: str, *, ready: bool = True, phase: str = "Running", hash_: str = ""
) -> Obj:
    labels = {"app": "web", TEMPLATE_HASH: hash_ or template_hash(owner["spec"]["template"])}
    conditions = [
        {"type": "Ready", "status": str(ready), "lastTransitionTime": rfc3339(NOW - timedelta(1))}
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": str(uuid.uuid4()),
            "labels": labels,
            "creationTimestamp": rfc3339(NOW - timedelta(minutes=1)),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "web",
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": owner["spec"]["template"]["spec"],
        "status": {"phase": phase, "conditions": conditions},
    }


class World:
    def __init__(self) -> None:
        self.deployments = Indexer()
        self.pods = Indexer()
        self.client = RecordingClient()
        self.reconciler = DeploymentReconciler(
            cast(Client, self.client),
            deployments=self.deployments,
            pods=self.pods,
            now=lambda: NOW,
        )

    def add(self, *objs: Obj) -> None:
        for obj in objs:
            (self.deployments if obj["kind"] == "Deployment" else self.pods).upsert(obj)

    async def reconcile(self) -> Any:
        return await self.reconciler.reconcile(Request("ns", "web"))

    def created(self) -> list[str]:
        return [p["metadata"]["labels"][TEMPLATE_HASH] for p in self.client.created]

    def deleted(self) -> list[str]:
        return [name for _, name, _ in self.client.deleted]


def test_the_template_hash_is_stable_and_follows_the_template() -> None:
    one, other = make_deployment(), make_deployment(image="busybox:2")
    assert template_hash(one["spec"]["template"]) == template_hash(
        make_deployment()["spec"]["template"]
    )
    assert template_hash(one["spec"]["template"]) != template_hash(other["spec"]["template"])
    assert len(template_hash(one["spec"]["template"])) == 10


def test_rolling_limits_round_like_upstream() -> None:
    def spec(surge: Any, unavailable: Any) -> Obj:
        return {"strategy": {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}

    assert rolling_limits(spec("25%", "25%"), 2) == (1, 0)
    assert rolling_limits(spec("25%", "25%"), 4) == (1, 1)
    assert rolling_limits(spec(0, 0), 3) == (0, 1), "never both zero"
    assert rolling_limits(spec(2, "50%"), 3) == (2, 1)
    assert rolling_limits({}, 10) == (3, 2)


def test_pods_that_serve_least_go_first() -> None:
    owner = make_deployment()
    ready_old = make_pod(owner, "ready-old")
    ready_new = make_pod(owner, "ready-new")
    ready_new["metadata"]["creationTimestamp"] = rfc3339(NOW)
    unready = make_pod(owner, "unready", ready=False)
    pending = make_pod(owner, "pending", ready=False, phase="Pending")
    order = removal_order([ready_old, ready_new, unready, pending])
    assert [p["metadata"]["name"] for p in order] == [
        "pending",
        "unready",
        "ready-new",
        "ready-old",
    ]


async def test_replicas_are_created_once_even_if_the_cache_lags() -> None:
    world = World()
    deployment = make_deployment(replicas=3)
    world.add(deployment)
    await world.reconcile()
    assert len(world.client.created) == 3
    await world.reconcile()
    assert len(world.client.created) == 3
    status = world.client.statuses[-1]
    assert (status["replicas"], status["updatedReplicas"]) == (3, 3)
    assert status["observedGeneration"] == 1
    available = status["conditions"][0]
    assert (available["type"], available["status"]) == ("Available", "False")


async def test_a_rolling_update_surges_then_removes_old_pods_as_new_ones_get_ready() -> None:
    world = World()
    old = make_deployment()
    old_hash = template_hash(old["spec"]["template"])
    deployment = make_deployment(image="busybox:2")
    deployment["metadata"]["uid"] = old["metadata"]["uid"]
    world.add(deployment, make_pod(old, "old-1"), make_pod(old, "old-2"))
    await world.reconcile()
    new_hash = template_hash(deployment["spec"]["template"])
    assert world.created() == [new_hash], "one surge pod (25% of 2, rounded up)"
    assert world.deleted() == [], "no ready pod goes while the new one is not ready"

    (surge,) = world.client.created
    world.add(make_pod(deployment, surge["metadata"]["name"]))  # now running and ready
    world.client.created.clear()
    await world.reconcile()
    assert len(world.deleted()) == 1, "a ready new pod lets one old pod go"
    assert world.created() == []
    assert old_hash != new_hash


async def test_old_pods_that_are_not_ready_are_replaced_at_once() -> None:
    world = World()
    old = make_deployment()
    deployment = make_deployment(image="busybox:2")
    deployment["metadata"]["uid"] = old["metadata"]["uid"]
    world.add(deployment, make_pod(old, "old-1", ready=False), make_pod(old, "old-2", ready=False))
    await world.reconcile()
    assert sorted(world.deleted()) == ["old-1", "old-2"]
    assert len(world.client.created) == 1


async def test_finished_pods_are_deleted_and_replaced() -> None:
    world = World()
    deployment = make_deployment()
    world.add(
        deployment,
        make_pod(deployment, "ok"),
        make_pod(deployment, "dead", ready=False, phase="Failed"),
    )
    await world.reconcile()
    assert world.deleted() == ["dead"]
    assert len(world.client.created) == 1


async def test_a_settled_deployment_reports_available_and_done() -> None:
    world = World()
    deployment = make_deployment()
    world.add(deployment, make_pod(deployment, "a"), make_pod(deployment, "b"))
    await world.reconcile()
    assert world.client.created == [] and world.client.deleted == []
    status = world.client.statuses[-1]
    assert status["readyReplicas"] == status["availableReplicas"] == 2
    assert "unavailableReplicas" not in status
    types = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert types == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }


async def test_the_recreate_strategy_waits_for_old_pods_to_stop() -> None:
    world = World()
    old = make_deployment()
    deployment = make_deployment(image="busybox:2", strategy={"type": "Recreate"})
    deployment["metadata"]["uid"] = old["metadata"]["uid"]
    stopping = make_pod(old, "old-2")
    stopping["metadata"]["deletionTimestamp"] = rfc3339(NOW)
    world.add(deployment, make_pod(old, "old-1"), stopping)
    await world.reconcile()
    assert world.deleted() == ["old-1"]
    assert world.client.created == []
