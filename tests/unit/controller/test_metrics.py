"""controller-runtime metric names in a private registry, and the health/metrics HTTP server."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from controller.health import HealthServer
from controller.leaderelection import LeaderStatus
from controller.metrics import (
    ClientMetrics,
    ControllerMetrics,
    LeaderMetrics,
    Metrics,
    WorkqueueMetrics,
)


def value(registry: CollectorRegistry, metric: str, **labels: str) -> float | None:
    return registry.get_sample_value(metric, labels)


# ---- metrics


def test_metrics_live_in_their_own_registry() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    ControllerMetrics(first, "pods").reconcile_finished("success", 0.1)
    ControllerMetrics(second, "pods")
    assert (
        value(first, "controller_runtime_reconcile_total", controller="pods", result="success") == 1
    )
    assert (
        value(second, "controller_runtime_reconcile_total", controller="pods", result="success")
        == 0
    )
    assert (
        value(REGISTRY, "controller_runtime_reconcile_total", controller="pods", result="success")
        is None
    )


def test_families_register_once_per_registry() -> None:
    registry = CollectorRegistry()
    metrics = Metrics.of(registry)
    assert Metrics.of(registry) is metrics
    ControllerMetrics(registry, "a")
    ControllerMetrics(metrics, "b")
    with pytest.raises(ValueError):
        Metrics(registry)  # prometheus_client refuses duplicate names
    assert Metrics().registry is not registry


def test_controller_series_start_at_zero() -> None:
    registry = CollectorRegistry()
    ControllerMetrics(registry, "pods", max_concurrent_reconciles=4)
    for result in ("success", "error", "requeue", "requeue_after"):
        assert (
            value(registry, "controller_runtime_reconcile_total", controller="pods", result=result)
            == 0
        )
    for name in (
        "controller_runtime_reconcile_errors_total",
        "controller_runtime_terminal_reconcile_errors_total",
        "controller_runtime_reconcile_panics_total",
        "controller_runtime_active_workers",
    ):
        assert value(registry, name, controller="pods") == 0, name
    assert value(registry, "controller_runtime_max_concurrent_reconciles", controller="pods") == 4


def test_reconcile_outcomes_are_counted() -> None:
    registry = CollectorRegistry()
    m = ControllerMetrics(registry, "pods")
    m.workers_active(1)
    m.workers_active(1)
    assert value(registry, "controller_runtime_active_workers", controller="pods") == 2
    m.reconcile_finished("success", 0.004)
    m.workers_active(-1)
    m.reconcile_error(terminal=False)
    m.reconcile_finished("error", 0.3)
    m.reconcile_error(terminal=True)
    m.reconcile_finished("error", 0.3)
    m.reconcile_panic()
    m.reconcile_finished("requeue_after", 2.0)
    m.workers_active(-1)

    def total(result: str) -> float | None:
        return value(
            registry, "controller_runtime_reconcile_total", controller="pods", result=result
        )

    assert (total("success"), total("error"), total("requeue"), total("requeue_after")) == (
        1,
        2,
        0,
        1,
    )
    assert value(registry, "controller_runtime_reconcile_errors_total", controller="pods") == 2
    assert (
        value(registry, "controller_runtime_terminal_reconcile_errors_total", controller="pods")
        == 1
    )
    assert value(registry, "controller_runtime_reconcile_panics_total", controller="pods") == 1
    assert value(registry, "controller_runtime_active_workers", controller="pods") == 0
    assert (
        value(registry, "controller_runtime_reconcile_time_seconds_count", controller="pods") == 4
    )
    assert value(
        registry, "controller_runtime_reconcile_time_seconds_sum", controller="pods"
    ) == pytest.approx(2.604)
    bucket = "controller_runtime_reconcile_time_seconds_bucket"
    assert value(registry, bucket, controller="pods", le="0.005") == 1
    assert value(registry, bucket, controller="pods", le="60.0") == 4


def test_unknown_result_is_rejected() -> None:
    m = ControllerMetrics(CollectorRegistry(), "pods")
    with pytest.raises(ValueError):
        m.reconcile_finished("exploded", 1.0)


def test_workqueue_hooks() -> None:
    registry = CollectorRegistry()
    q = WorkqueueMetrics(registry, "pods")
    labels = {"name": "pods", "controller": "pods"}
    assert value(registry, "workqueue_depth", **labels) == 0
    assert value(registry, "workqueue_adds_total", **labels) == 0
    q.on_add("a")
    q.on_add("b")
    q.on_depth(2)
    q.on_get("a", 0.5)
    q.on_depth(1)
    q.on_done("a", 0.25)
    q.on_retry("a")
    assert value(registry, "workqueue_adds_total", **labels) == 2
    assert value(registry, "workqueue_depth", **labels) == 1
    assert value(registry, "workqueue_retries_total", **labels) == 1
    assert value(registry, "workqueue_queue_duration_seconds_count", **labels) == 1
    assert value(registry, "workqueue_queue_duration_seconds_sum", **labels) == 0.5
    assert value(registry, "workqueue_work_duration_seconds_sum", **labels) == 0.25
    assert value(registry, "workqueue_queue_duration_seconds_bucket", le="1e-08", **labels) == 0
    assert value(registry, "workqueue_queue_duration_seconds_bucket", le="1.0", **labels) == 1


def test_workqueue_controller_label_can_differ_from_the_name() -> None:
    registry = CollectorRegistry()
    WorkqueueMetrics(registry, "events", controller="pods").on_add("x")
    assert value(registry, "workqueue_adds_total", name="events", controller="pods") == 1


class FakeQueue:
    def __init__(self, unfinished: float, longest: float) -> None:
        self.unfinished = unfinished
        self.longest = longest

    def unfinished_work_seconds(self) -> float:
        return self.unfinished

    def longest_running_processor_seconds(self) -> float:
        return self.longest


def test_in_flight_gauges_are_sampled_at_scrape_time() -> None:
    registry = CollectorRegistry()
    pods, nodes = WorkqueueMetrics(registry, "pods"), WorkqueueMetrics(registry, "nodes")
    pods_queue, nodes_queue = FakeQueue(1.5, 1.0), FakeQueue(0.0, 0.0)
    pods.track(pods_queue)
    nodes.track(nodes_queue)
    pods_labels = {"name": "pods", "controller": "pods"}
    assert value(registry, "workqueue_unfinished_work_seconds", **pods_labels) == 1.5
    assert value(registry, "workqueue_longest_running_processor_seconds", **pods_labels) == 1.0
    pods_queue.unfinished = 3.0
    assert value(registry, "workqueue_unfinished_work_seconds", **pods_labels) == 3.0
    assert (
        value(registry, "workqueue_unfinished_work_seconds", name="nodes", controller="nodes")
        == 0.0
    )

    nodes.untrack(nodes_queue)
    assert (
        value(registry, "workqueue_unfinished_work_seconds", name="nodes", controller="nodes")
        is None
    )
    del pods_queue
    gc.collect()
    assert value(registry, "workqueue_unfinished_work_seconds", **pods_labels) is None


def test_leader_status() -> None:
    registry = CollectorRegistry()
    status: LeaderStatus = LeaderMetrics(registry, "my-lease")
    assert value(registry, "leader_election_master_status", name="my-lease") == 0
    status.set_leading(True)
    assert value(registry, "leader_election_master_status", name="my-lease") == 1
    status.set_leading(False)
    assert value(registry, "leader_election_master_status", name="my-lease") == 0


def test_client_requests() -> None:
    registry = CollectorRegistry()
    client = ClientMetrics(registry)
    client.observe("get", 200, "10.0.0.1:6443", 0.02)
    client.observe("GET", "200", "10.0.0.1:6443", 0.03)
    client.observe("put", "<error>", "10.0.0.1:6443", 1.0)
    host = "10.0.0.1:6443"
    assert value(registry, "rest_client_requests_total", code="200", method="GET", host=host) == 2
    assert (
        value(registry, "rest_client_requests_total", code="<error>", method="PUT", host=host) == 1
    )
    assert value(registry, "rest_client_request_duration_seconds_count", verb="GET", host=host) == 2
    assert (
        value(
            registry,
            "rest_client_request_duration_seconds_bucket",
            verb="GET",
            host=host,
            le="0.025",
        )
        == 1
    )


# ---- health server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


Started = Callable[..., Awaitable[HealthServer]]


@pytest.fixture
async def serve() -> AsyncIterator[Started]:
    servers: list[HealthServer] = []

    async def start(**kwargs: Any) -> HealthServer:
        server = HealthServer("127.0.0.1", 0, **kwargs)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


async def fetch(
    http: aiohttp.ClientSession, server: HealthServer, path: str, **headers: str
) -> tuple[int, str, str]:
    async with http.get(f"http://127.0.0.1:{server.port}{path}", headers=headers) as response:
        return response.status, await response.text(), response.headers["Content-Type"]


async def test_port_zero_binds_a_free_port_and_stop_releases_it(
    http: aiohttp.ClientSession,
) -> None:
    server = HealthServer("127.0.0.1", 0)
    assert server.port == 0
    await server.start()
    try:
        assert server.port > 0
        assert (await fetch(http, server, "/healthz"))[:2] == (200, "ok")
        with pytest.raises(RuntimeError):
            await server.start()
    finally:
        await server.stop()
    await server.stop()  # idempotent
    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch(http, server, "/healthz")


async def test_passing_checks(serve: Started, http: aiohttp.ClientSession) -> None:
    async def db() -> bool:
        await asyncio.sleep(0)
        return True

    server = await serve(checks={"ping": lambda: True, "db": db})
    for endpoint in ("healthz", "readyz"):
        status, body, content_type = await fetch(http, server, f"/{endpoint}")
        assert (status, body) == (200, "ok")
        assert content_type.startswith("text/plain")
        status, body, _ = await fetch(http, server, f"/{endpoint}?verbose")
        assert status == 200
        assert body == f"[+]ping ok\n[+]db ok\n{endpoint} check passed\n"


async def test_a_failing_check_is_named(serve: Started, http: aiohttp.ClientSession) -> None:
    def broken() -> bool:
        raise RuntimeError("boom")

    async def slow_no() -> bool:
        return False

    server = await serve(checks={"ping": lambda: True, "db": slow_no, "broken": broken})
    status, body, _ = await fetch(http, server, "/healthz")
    assert status == 500
    assert body == "[+]ping ok\n[-]db failed\n[-]broken failed\nhealthz check failed\n"


async def test_exclude_skips_a_check(serve: Started, http: aiohttp.ClientSession) -> None:
    server = await serve(checks={"ping": lambda: True, "db": lambda: False})
    status, body, _ = await fetch(http, server, "/healthz?exclude=db")
    assert (status, body) == (200, "ok")
    status, body, _ = await fetch(http, server, "/healthz?exclude=db&exclude=nope&verbose")
    assert status == 200
    assert "[+]db excluded: ok" in body
    assert "no matches for nope" in body


async def test_single_check_endpoints(serve: Started, http: aiohttp.ClientSession) -> None:
    server = await serve(checks={"ping": lambda: True}, readiness={"synced": lambda: False})
    assert (await fetch(http, server, "/healthz/ping"))[:2] == (200, "ok")
    assert (await fetch(http, server, "/healthz/synced"))[0] == 404
    status, body, _ = await fetch(http, server, "/readyz/synced")
    assert status == 500
    assert "synced" in body


async def test_readiness_checks_only_gate_readyz(
    serve: Started, http: aiohttp.ClientSession
) -> None:
    synced = False
    server = await serve(checks={"ping": lambda: True}, readiness={"synced": lambda: synced})
    assert (await fetch(http, server, "/healthz"))[0] == 200
    status, body, _ = await fetch(http, server, "/readyz")
    assert status == 500
    assert "[-]synced failed" in body
    synced = True
    assert (await fetch(http, server, "/readyz"))[:2] == (200, "ok")


async def test_checks_added_after_start(serve: Started, http: aiohttp.ClientSession) -> None:
    server = await serve()
    server.add_readyz_check("leader", lambda: False)
    assert (await fetch(http, server, "/healthz"))[0] == 200
    assert (await fetch(http, server, "/readyz"))[0] == 500
    server.add_healthz_check("loop", lambda: False)
    assert (await fetch(http, server, "/healthz"))[0] == 500


async def test_metrics_endpoint(serve: Started, http: aiohttp.ClientSession) -> None:
    registry = CollectorRegistry()
    ControllerMetrics(registry, "pods").reconcile_finished("success", 0.1)
    server = await serve(metrics_registry=registry)
    status, body, content_type = await fetch(http, server, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert 'controller_runtime_reconcile_total{controller="pods",result="success"} 1.0' in body
    assert "# TYPE controller_runtime_reconcile_time_seconds histogram" in body

    status, body, content_type = await fetch(
        http, server, "/metrics", Accept="application/openmetrics-text; version=1.0.0"
    )
    assert status == 200
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")


async def test_no_registry_means_no_metrics_route(
    serve: Started, http: aiohttp.ClientSession
) -> None:
    server = await serve()
    assert (await fetch(http, server, "/metrics"))[0] == 404
