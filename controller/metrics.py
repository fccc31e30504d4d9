"""controller-runtime's metric names, scoped to one registry so several managers share a process.

Dashboards and alerts written for Go controllers keep working because the names, labels and
histogram buckets match controller-runtime and client-go. Everything hangs off a `Metrics`
object bound to a `CollectorRegistry`; nothing touches prometheus_client's global registry.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Literal, Protocol, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

ReconcileResult = Literal["success", "error", "requeue", "requeue_after"]
RECONCILE_RESULTS: tuple[ReconcileResult, ...] = get_args(ReconcileResult)

# controller-runtime's reconcile_time_seconds buckets: fine below a second, coarse up to a minute.
RECONCILE_TIME_BUCKETS = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5),
    *(0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0),
    *(6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0),
)
# The workqueue's: ten decades from 10ns to 10s.
WORKQUEUE_BUCKETS = tuple(1e-8 * 10**i for i in range(10))
# client-go's request latency buckets.
REST_CLIENT_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


class SampledQueue(Protocol):
    """What a queue offers for the gauges that are only meaningful when scraped."""

    def unfinished_work_seconds(self) -> float: ...

    def longest_running_processor_seconds(self) -> float: ...


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, Metrics] = weakref.WeakKeyDictionary()
_by_registry_lock = threading.RLock()


class Metrics:
    """Every metric family, registered once in one registry.

    Construct it once per registry (a second `Metrics(registry)` on the same registry raises,
    as prometheus_client refuses duplicate names); `Metrics.of(registry)` returns the existing one.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ctrl = ["controller"]
        self.reconcile_total = Counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller",
            ["controller", "result"],
            registry=r,
        )
        self.reconcile_errors_total = Counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller",
            ctrl,
            registry=r,
        )
        self.terminal_reconcile_errors_total = Counter(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller",
            ctrl,
            registry=r,
        )
        # Go counts recovered panics here. Python has no panics: the controller decides which
        # failures count (e.g. a BaseException that is not an Exception); otherwise it stays 0.
        self.reconcile_panics_total = Counter(
            "controller_runtime_reconcile_panics_total",
            "Total number of reconciliation panics per controller",
            ctrl,
            registry=r,
        )
        self.reconcile_time_seconds = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            ctrl,
            buckets=RECONCILE_TIME_BUCKETS,
            registry=r,
        )
        self.max_concurrent_reconciles = Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            ctrl,
            registry=r,
        )
        self.active_workers = Gauge(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            ctrl,
            registry=r,
        )

        q = ["name", "controller"]
        self.workqueue_depth = Gauge("workqueue_depth", "Current depth of workqueue", q, registry=r)
        self.workqueue_adds_total = Counter(
            "workqueue_adds_total", "Total number of adds handled by workqueue", q, registry=r
        )
        self.workqueue_queue_duration_seconds = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            q,
            buckets=WORKQUEUE_BUCKETS,
            registry=r,
        )
        self.workqueue_work_duration_seconds = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            q,
            buckets=WORKQUEUE_BUCKETS,
            registry=r,
        )
        self.workqueue_retries_total = Counter(
            "workqueue_retries_total", "Total number of retries handled by workqueue", q, registry=r
        )
        self.queue_sampler = _QueueSampler()
        r.register(self.queue_sampler)

        self.leader_election_master_status = Gauge(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates "
            "backup, 1 indicates master. 'name' is the string used to identify the lease.",
            ["name"],
            registry=r,
        )

        self.rest_client_requests_total = Counter(
            "rest_client_requests_total",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            ["code", "method", "host"],
            registry=r,
        )
        self.rest_client_request_duration_seconds = Histogram(
            "rest_client_request_duration_seconds",
            "Request latency in seconds. Broken down by verb, and host.",
            ["verb", "host"],
            buckets=REST_CLIENT_BUCKETS,
            registry=r,
        )
        with _by_registry_lock:
            _by_registry[self.registry] = self

    @classmethod
    def of(cls, registry: CollectorRegistry) -> Metrics:
        """The families already registered in `registry`, registering them on first use."""
        with _by_registry_lock:
            found = _by_registry.get(registry)
            return found if found is not None else cls(registry)


def _metrics(source: Metrics | CollectorRegistry) -> Metrics:
    return source if isinstance(source, Metrics) else Metrics.of(source)


class ControllerMetrics:
    """One controller's reconcile metrics; every series starts at 0 so rates work at once.

    The controller reports each reconcile as `workers_active(+1)`, then `reconcile_error(...)`
    if it failed, then `reconcile_finished(result, seconds)` and `workers_active(-1)`.
    """

    def __init__(
        self,
        metrics: Metrics | CollectorRegistry,
        controller_name: str,
        max_concurrent_reconciles: int = 1,
    ) -> None:
        m = _metrics(metrics)
        self.name = controller_name
        self._total: dict[str, Counter] = {
            result: m.reconcile_total.labels(controller=controller_name, result=result)
            for result in RECONCILE_RESULTS
        }
        self._errors = m.reconcile_errors_total.labels(controller=controller_name)
        self._terminal = m.terminal_reconcile_errors_total.labels(controller=controller_name)
        self._panics = m.reconcile_panics_total.labels(controller=controller_name)
        self._time = m.reconcile_time_seconds.labels(controller=controller_name)
        self._max = m.max_concurrent_reconciles.labels(controller=controller_name)
        self._max.set(max_concurrent_reconciles)
        self._active = m.active_workers.labels(controller=controller_name)
        self._active.set(0)

    def workers_active(self, delta: int) -> None:
        self._active.inc(delta)

    def reconcile_finished(self, result: str, seconds: float) -> None:
        """`result` is one of RECONCILE_RESULTS; anything else would grow the label set."""
        counter = self._total.get(result)
        if counter is None:
            raise ValueError(f"unknown reconcile result {result!r}")
        counter.inc()
        self._time.observe(seconds)

    def reconcile_error(self, terminal: bool = False) -> None:
        self._errors.inc()
        if terminal:
            self._terminal.inc()

    def reconcile_panic(self) -> None:
        """For failures the controller classes as crashes; Python has no panics otherwise."""
        self._panics.inc()


class WorkqueueMetrics:
    """The workqueue's `QueueMetrics` hooks: the queue calls these and never sees prometheus.

    `controller` defaults to `name`, as controller-runtime names a controller's queue after it.
    """

    def __init__(
        self, metrics: Metrics | CollectorRegistry, name: str, controller: str | None = None
    ) -> None:
        m = _metrics(metrics)
        self._sampler = m.queue_sampler
        self.name = name
        self.controller = name if controller is None else controller
        labels = {"name": name, "controller": self.controller}
        self._depth = m.workqueue_depth.labels(**labels)
        self._depth.set(0)
        self._adds = m.workqueue_adds_total.labels(**labels)
        self._retries = m.workqueue_retries_total.labels(**labels)
        self._queue_duration = m.workqueue_queue_duration_seconds.labels(**labels)
        self._work_duration = m.workqueue_work_duration_seconds.labels(**labels)

    def on_add(self, item: object) -> None:
        self._adds.inc()

    def on_get(self, item: object, waited_seconds: float) -> None:
        self._queue_duration.observe(waited_seconds)

    def on_done(self, item: object, worked_seconds: float) -> None:
        self._work_duration.observe(worked_seconds)

    def on_depth(self, n: int) -> None:
        self._depth.set(n)

    def on_retry(self, item: object) -> None:
        self._retries.inc()

    def track(self, queue: SampledQueue) -> None:
        """Samples the queue's in-flight gauges at scrape time; held weakly, so no untrack is needed."""
        self._sampler.add(queue, self.name, self.controller)

    def untrack(self, queue: SampledQueue) -> None:
        self._sampler.remove(queue)


class _QueueSampler(Collector):
    """Unfinished and longest-running work only make sense "now", so they are read when scraped."""

    _FAMILIES = (
        (
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been observed "
            "by work_duration. Large values indicate stuck threads. One can deduce the number of "
            "stuck threads by observing the rate at which this increases.",
            "unfinished_work_seconds",
        ),
        (
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            "longest_running_processor_seconds",
        ),
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[int, tuple[weakref.ref[SampledQueue], str, str]] = {}

    def add(self, queue: SampledQueue, name: str, controller: str) -> None:
        key = id(queue)
        with self._lock:
            self._queues[key] = (weakref.ref(queue, lambda _: self._forget(key)), name, controller)

    def remove(self, queue: SampledQueue) -> None:
        self._forget(id(queue))

    def _forget(self, key: int) -> None:
        with self._lock:
            self._queues.pop(key, None)

    def _live(self) -> Iterator[tuple[SampledQueue, str, str]]:
        with self._lock:
            entries = list(self._queues.values())
        for ref, name, controller in entries:
            queue = ref()
            if queue is not None:
                yield queue, name, controller

    def describe(self) -> Iterable[Metric]:
        return [self._family(metric, doc) for metric, doc, _ in self._FAMILIES]

    def collect(self) -> Iterable[Metric]:
        live = list(self._live())
        families = []
        for metric, doc, method in self._FAMILIES:
            family = self._family(metric, doc)
            for queue, name, controller in live:
                family.add_metric([name, controller], float(getattr(queue, method)()))
            families.append(family)
        return families

    @staticmethod
    def _family(metric: str, doc: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(metric, doc, labels=["name", "controller"])


class LeaderMetrics:
    """`leader_election_master_status{name}` for one lease: 1 while leading, else 0."""

    def __init__(self, metrics: Metrics | CollectorRegistry, name: str) -> None:
        self.name = name
        self._status = _metrics(metrics).leader_election_master_status.labels(name=name)
        self._status.set(0)

    def set_leading(self, leading: bool) -> None:
        self._status.set(1 if leading else 0)


class ClientMetrics:
    """client-go's request metrics, so the API client can be wired without knowing prometheus.

    `code` is the HTTP status, or "<error>" when no response arrived (client-go's convention).
    """

    def __init__(self, metrics: Metrics | CollectorRegistry) -> None:
        m = _metrics(metrics)
        self._requests = m.rest_client_requests_total
        self._duration = m.rest_client_request_duration_seconds

    def observe(self, method: str, code: int | str, host: str, seconds: float) -> None:
        self._requests.labels(code=str(code), method=method.upper(), host=host).inc()
        self._duration.labels(verb=method.upper(), host=host).observe(seconds)
