"""OpenTelemetry for the controller: run metrics and the traces handed to agent pods.

The instruments keep the original's names (`sympozium.agent.runs`, ...), so dashboards
built for it keep working. `setup` wires them to the manager's Prometheus registry
(`/metrics` shows `sympozium_agent_runs_total`), and gives spans real ids so a run's
`status.traceID` and the pod's `TRACEPARENT` belong to one trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry

_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass
class RunTelemetry:
    runs: metrics.Counter
    duration_ms: metrics.Histogram
    errors: metrics.Counter
    tracer: trace.Tracer

    @classmethod
    def create(
        cls,
        meter_provider: metrics.MeterProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> RunTelemetry:
        meter = (meter_provider or metrics.get_meter_provider()).get_meter("sympozium.controller")
        tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("sympozium.controller")
        return cls(
            runs=meter.create_counter(
                "sympozium.agent.runs", unit="{run}", description="Agent runs that finished"
            ),
            duration_ms=meter.create_histogram(
                "sympozium.agent.duration_ms", unit="ms", description="Agent run duration"
            ),
            errors=meter.create_counter(
                "sympozium.errors", unit="{error}", description="Errors by type"
            ),
            tracer=tracer,
        )

    def finished(self, instance: str, succeeded: bool, duration_ms: int | None) -> None:
        status = "succeeded" if succeeded else "failed"
        self.runs.add(1, {"sympozium.agent.status": status, "sympozium.instance": instance})
        if duration_ms:
            self.duration_ms.record(duration_ms, {"sympozium.instance": instance})
        if not succeeded:
            self.errors.add(1, {"error.type": "agent_run_failed", "sympozium.instance": instance})

    @contextmanager
    def span(self, name: str, traceparent: str | None) -> Iterator[trace.Span]:
        """A span continuing the run's trace when it carries a W3C traceparent."""
        parent = _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else None
        token = otel_context.attach(parent) if parent is not None else None
        try:
            with self.tracer.start_as_current_span(name) as span:
                yield span
        finally:
            if token is not None:
                otel_context.detach(token)


def current_traceparent() -> tuple[str, str]:
    """(traceparent, trace id) of the current span; empty strings without a real tracer."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return "", ""
    return carrier.get("traceparent", ""), format(span_context.trace_id, "032x")


def setup(registry: CollectorRegistry) -> tuple[metrics.MeterProvider, trace.TracerProvider]:
    """SDK providers: metrics exported on `registry`, spans with real ids (no exporter)."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    reader = PrometheusMetricReader(registry=registry)
    return MeterProvider(metric_readers=[reader]), TracerProvider()
