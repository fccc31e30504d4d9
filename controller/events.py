"""Recording core/v1 Events about objects, the way client-go's recorder does, simplified.

Events are a side channel for humans (``kubectl describe``), so recording one must never slow
down or break a reconcile: ``event()`` only queues, a background task talks to the API server,
and failures are logged, never raised. Two client-go behaviours are kept because without them
a controller stuck in a retry loop floods etcd: repeats of the same event are folded into one
Event whose ``count`` grows, and each object gets a token bucket of events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from controller.errors import ApiError, NotFound

if TYPE_CHECKING:
    from controller.client import Client

__all__ = ["NORMAL", "WARNING", "EventRecorder", "EventType"]

logger = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
NORMAL: EventType = "Normal"
WARNING: EventType = "Warning"

_EVENT_KIND = ("v1", "Event")
K = TypeVar("K")
V = TypeVar("V")
_REF_FIELDS = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion")


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Occurrence:
    """One call to ``event()``, captured at call time so later mutation of the object is moot."""

    ref: dict[str, str]
    type: str
    reason: str
    message: str
    when: datetime
    at: float  # monotonic seconds

    @property
    def key(self) -> tuple[str, ...]:
        return (
            *(self.ref.get(f, "") for f in _REF_FIELDS[:-1]),
            self.type,
            self.reason,
            self.message,
        )


@dataclass
class _Recorded:
    """The Event on the server that repeats of an occurrence are folded into."""

    name: str
    namespace: str
    count: int
    first_timestamp: str
    last_at: float


class _TokenBucket:
    def __init__(self, burst: int, refill_seconds: float, now: float) -> None:
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.tokens = float(burst)
        self.last = now

    def take(self, now: float) -> bool:
        if self.refill_seconds > 0:
            elapsed = max(0.0, now - self.last)
            self.tokens = min(float(self.burst), self.tokens + elapsed / self.refill_seconds)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class _LRU(Generic[K, V]):
    """A bounded map, so recording about many short-lived objects cannot leak memory."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)


class EventRecorder:
    """Queues Events about objects and writes them to the API server in the background.

    ``component`` is the reporting controller (``source.component``/``reportingComponent``),
    ``host`` the instance (``source.host``/``reportingInstance``), e.g. the pod name.
    The keyword knobs exist for tests; the defaults follow client-go (burst 25, one more token
    every 5 minutes, repeats within 10 minutes aggregated).
    """

    def __init__(
        self,
        client: Client,
        component: str,
        host: str = "",
        *,
        burst: int = 25,
        refill_seconds: float = 300.0,
        aggregation_window: float = 600.0,
        queue_size: int = 1000,
        cache_size: int = 4096,
        attempts: int = 3,
        retry_delay: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self.component = component
        self.host = host
        self._burst = burst
        self._refill_seconds = refill_seconds
        self._window = aggregation_window
        self._attempts = max(1, attempts)
        self._retry_delay = retry_delay
        self._clock = clock
        self._wallclock = wallclock
        self._queue: asyncio.Queue[_Occurrence] = asyncio.Queue(maxsize=queue_size)
        self._buckets: _LRU[tuple[str, ...], _TokenBucket] = _LRU(cache_size)
        self._recorded: _LRU[tuple[str, ...], _Recorded] = _LRU(cache_size)
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._last_suffix = 0

    def event(self, obj: dict[str, Any], type: str, reason: str, message: str) -> None:
        """Records an event about ``obj``; returns at once and never raises.

        Must be called from a running event loop (the sender is a task on it). Events that are
        invalid, rate-limited, over the queue bound or recorded after ``close()`` are dropped
        with a log line.
        """
        try:
            self._enqueue(obj, type, reason, message)
        except Exception:
            logger.exception("dropping event %s %r: could not queue it", type, reason)

    def _enqueue(self, obj: dict[str, Any], type: str, reason: str, message: str) -> None:
        if self._closed:
            logger.warning("dropping event %s %r: recorder is closed", type, reason)
            return
        if type not in (NORMAL, WARNING):
            logger.error("dropping event with invalid type %r (want Normal or Warning)", type)
            return
        meta = obj.get("metadata") or {}
        ref = {
            "kind": obj.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "apiVersion": obj.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        clean = {k: str(v) for k, v in ref.items() if v}
        if not clean.get("name") or not clean.get("kind"):
            logger.error("dropping event %r: object has no kind or metadata.name", reason)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            logger.error("dropping event %r: event() needs a running event loop", reason)
            return
        at = self._clock()
        occurrence = _Occurrence(clean, type, reason, message, self._wallclock(), at)
        bucket_key = occurrence.key[:5]
        bucket = self._buckets.get(bucket_key)
        if bucket is None:
            bucket = _TokenBucket(self._burst, self._refill_seconds, at)
            self._buckets.put(bucket_key, bucket)
        if not bucket.take(at):
            logger.debug("dropping event %r about %s: rate limited", reason, clean["name"])
            return
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run(), name=f"events-{self.component}")
        try:
            self._queue.put_nowait(occurrence)
        except asyncio.QueueFull:
            logger.warning("dropping event %r about %s: queue full", reason, clean["name"])
            return
        logger.debug("event %s %s %r: %s", type, clean["name"], reason, message)

    async def flush(self) -> None:
        """Waits until every queued event has been sent (or given up on)."""
        if self._worker is not None and not self._worker.done():
            await self._queue.join()

    async def close(self) -> None:
        """Sends what is queued, then stops the background task; later events are dropped."""
        self._closed = True
        await self.flush()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _run(self) -> None:
        while True:
            occurrence = await self._queue.get()
            try:
                await self._record(occurrence)
            except Exception:
                logger.exception("failed to record event %r", occurrence.reason)
            finally:
                self._queue.task_done()

    def _name(self, object_name: str) -> str:
        # client-go names events <object>.<unix nanos in hex>; keep that, made strictly
        # increasing so two events in the same nanosecond cannot collide.
        suffix = max(time.time_ns(), self._last_suffix + 1)
        self._last_suffix = suffix
        return f"{object_name}.{suffix:016x}"

    async def _record(self, occurrence: _Occurrence) -> None:
        key = occurrence.key
        ref = occurrence.ref
        recorded = self._recorded.get(key)
        now = _rfc3339(occurrence.when)
        if recorded is not None and occurrence.at - recorded.last_at <= self._window:
            recorded.count += 1
            recorded.last_at = occurrence.at
            patch = {"count": recorded.count, "lastTimestamp": now}
            try:
                await self._retrying(
                    lambda: self._client.patch(
                        _EVENT_KIND,
                        recorded.name,
                        patch,
                        namespace=recorded.namespace,
                        patch_type="merge",
                    )
                )
                return
            except NotFound:
                pass  # expired or deleted: write it again under the same name
            except Exception as exc:
                logger.warning(
                    "could not update event %s/%s: %s", recorded.namespace, recorded.name, exc
                )
                return
            body = self._body(occurrence, recorded.name, recorded.namespace)
            body.update(count=recorded.count, firstTimestamp=recorded.first_timestamp)
            await self._create(body)
            return
        namespace = ref.get("namespace") or "default"
        name = self._name(ref["name"])
        if await self._create(self._body(occurrence, name, namespace)):
            self._recorded.put(key, _Recorded(name, namespace, 1, now, occurrence.at))

    def _body(self, occurrence: _Occurrence, name: str, namespace: str) -> dict[str, Any]:
        now = _rfc3339(occurrence.when)
        source = {"component": self.component}
        if self.host:
            source["host"] = self.host
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": dict(occurrence.ref),
            "reason": occurrence.reason,
            "message": occurrence.message,
            "type": occurrence.type,
            "source": source,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }

    async def _create(self, body: dict[str, Any]) -> bool:
        try:
            await self._retrying(lambda: self._client.create(body))
        except Exception as exc:
            logger.warning(
                "could not create event %s/%s: %s",
                body["metadata"]["namespace"],
                body["metadata"]["name"],
                exc,
            )
            return False
        return True

    async def _retrying(self, call: Callable[[], Any]) -> Any:
        """Retries transient failures a few times; client errors (4xx) are final."""
        for attempt in range(self._attempts):
            try:
                return await call()
            except ApiError as exc:
                if (exc.status < 500 and exc.status != 429) or attempt + 1 == self._attempts:
                    raise
                error: Exception = exc
            except Exception as exc:  # connection trouble: worth another try
                if attempt + 1 == self._attempts:
                    raise
                error = exc
            logger.debug("retrying event write after %s", error)
            await asyncio.sleep(self._retry_delay * 2**attempt)
        raise AssertionError("unreachable")
