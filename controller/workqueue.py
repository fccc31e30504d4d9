"""An asyncio rate-limiting work queue with client-go's workqueue semantics.

Controllers enqueue object keys from watch events and process them with a few
workers. The queue guarantees what makes reconcilers simple to write:

* an item waiting in the queue is held once, however often it is added;
* an item is never handed to two workers at once: adding it while it is being
  processed marks it dirty, and ``done`` queues it again (once);
* failed items come back after a delay chosen by a rate limiter, and
  ``add_after`` schedules a requeue, keeping the earliest deadline per item.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

from controller.ratelimit import RateLimiter, default_controller_rate_limiter

__all__ = ["NoopMetrics", "QueueMetrics", "RateLimitingQueue", "ShutDown"]

T = TypeVar("T", bound=Hashable)


class ShutDown(Exception):
    """Raised by ``get`` once the queue has shut down; workers should exit."""


class QueueMetrics(Protocol):
    """Hooks through which a manager exports controller-runtime's workqueue metrics.

    ``on_add`` counts adds that were not deduplicated (``workqueue_adds_total``),
    ``on_get`` gives the time an item spent queued (``workqueue_queue_duration_seconds``),
    ``on_done`` the time it was processed (``workqueue_work_duration_seconds``),
    ``on_depth`` the new queue length whenever it changes (``workqueue_depth``), and
    ``on_retry`` counts ``add_after``/``add_rate_limited`` calls, as client-go does
    (``workqueue_retries_total``). The gauges for
    in-flight work are read from the queue's ``unfinished_work_seconds`` and
    ``longest_running_processor_seconds``.
    """

    def on_add(self, item: Hashable) -> None: ...

    def on_get(self, item: Hashable, waited_seconds: float) -> None: ...

    def on_done(self, item: Hashable, worked_seconds: float) -> None: ...

    def on_depth(self, n: int) -> None: ...

    def on_retry(self, item: Hashable) -> None: ...


class NoopMetrics:
    """Metrics that record nothing, for queues nobody observes."""

    def on_add(self, item: Hashable) -> None:
        pass

    def on_get(self, item: Hashable, waited_seconds: float) -> None:
        pass

    def on_done(self, item: Hashable, worked_seconds: float) -> None:
        pass

    def on_depth(self, n: int) -> None:
        pass

    def on_retry(self, item: Hashable) -> None:
        pass


class RateLimitingQueue(Generic[T]):
    """A deduplicating FIFO work queue with delayed and rate-limited adds.

    Meant for a single event loop and not thread-safe; all methods but ``get`` and
    ``shutdown_with_drain`` are synchronous, so loop callbacks (informer handlers)
    may call them.
    ``clock`` times the metrics only; delays always follow the monotonic clock.
    """

    def __init__(
        self,
        rate_limiter: RateLimiter | None = None,
        *,
        metrics: QueueMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limiter: RateLimiter = (
            rate_limiter if rate_limiter is not None else default_controller_rate_limiter()
        )
        self._metrics: QueueMetrics = metrics if metrics is not None else NoopMetrics()
        self._clock = clock

        # Invariants: every queued item is dirty and not processing; a dirty item
        # that is not queued is processing and gets queued again by ``done``.
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._added_at: dict[T, float] = {}  # dirty item -> when it was added
        self._started_at: dict[T, float] = {}  # processing item -> when it was handed out
        self._getters: deque[asyncio.Future[None]] = deque()

        # Delayed adds: a heap of (deadline, seq, item) with lazy deletion; an entry
        # is live only while ``_waiting[item]`` still names its (deadline, seq).
        self._heap: list[tuple[float, int, T]] = []
        self._waiting: dict[T, tuple[float, int]] = {}
        self._seq = itertools.count()
        self._timer: asyncio.Task[None] | None = None
        self._timer_wake = asyncio.Event()

        self._shutting_down = False  # no adds accepted, ``get`` raises ShutDown
        self._drained = asyncio.Event()  # set once shut down and nothing is processing

    # ---- adding

    def add(self, item: T) -> None:
        """Queue ``item`` unless it is already waiting; ignored once shutting down."""
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        self._added_at[item] = self._clock()
        self._metrics.on_add(item)
        if item in self._processing:
            return  # ``done`` will queue it again
        self._push(item)

    def add_after(self, item: T, delay: float) -> None:
        """Add ``item`` once ``delay`` seconds have passed.

        If the item is already scheduled, the earlier deadline wins, so a
        requeue can be brought forward but never pushed back.
        """
        if self._shutting_down:
            return
        self._metrics.on_retry(item)
        if delay <= 0:
            self.add(item)
            return
        deadline = time.monotonic() + delay
        scheduled = self._waiting.get(item)
        if scheduled is not None and scheduled[0] <= deadline:
            return
        seq = next(self._seq)
        self._waiting[item] = (deadline, seq)
        heapq.heappush(self._heap, (deadline, seq, item))
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._waiting):
            self._compact_heap()
        if self._heap[0][1] == seq:
            self._timer_wake.set()  # the timer may be sleeping towards a later deadline
        self._ensure_timer()

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` after the delay its rate limiter prescribes (one more failure)."""
        if self._shutting_down:
            return
        self.add_after(item, self._limiter.when(item))

    def forget(self, item: T) -> None:
        """Clear ``item``'s failure history so its next failure starts the backoff afresh."""
        self._limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """Return how many rate-limited re-adds of ``item`` are on record."""
        return self._limiter.retries(item)

    # ---- processing

    async def get(self) -> T:
        """Wait for the next item and mark it as being processed.

        Raises ``ShutDown`` once the queue is shutting down (drained or not), so
        no new work starts after shutdown; items still queued are abandoned.
        """
        while True:
            if self._shutting_down:
                raise ShutDown
            if self._queue:
                break
            self._ensure_timer()  # delayed adds made outside a running loop
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if not waiter.cancelled():
                    # We were woken for an item we will not take: pass the wake-up on.
                    self._wake_one()
                else:
                    self._remove_getter(waiter)
                raise
        item = self._queue.popleft()
        now = self._clock()
        self._dirty.discard(item)
        self._processing.add(item)
        self._started_at[item] = now
        self._metrics.on_depth(len(self._queue))
        self._metrics.on_get(item, now - self._added_at.pop(item, now))
        return item

    def done(self, item: T) -> None:
        """Mark ``item`` processed; if it was added meanwhile, queue it again.

        Calling it for an item that is not being processed does nothing.
        """
        if item not in self._processing:
            return
        self._processing.discard(item)
        started = self._started_at.pop(item)
        self._metrics.on_done(item, self._clock() - started)
        if self._shutting_down:
            if not self._processing:
                self._drained.set()
        elif item in self._dirty:
            self._push(item)

    # ---- shutting down

    @property
    def shutting_down(self) -> bool:
        """Whether ``shutdown`` or ``shutdown_with_drain`` was called (adds are ignored)."""
        return self._shutting_down

    def shutdown(self) -> None:
        """Stop now: adds are ignored and every pending and future ``get`` raises ``ShutDown``.

        Queued, delayed and dirty items are abandoned (a restarted controller
        relists anyway); workers still holding an item may call ``done`` as usual.
        """
        if self._shutting_down:
            return
        self._shutting_down = True
        self._queue.clear()
        self._dirty.clear()
        self._added_at.clear()
        self._metrics.on_depth(0)
        self._heap.clear()
        self._waiting.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        if not self._processing:
            self._drained.set()

    async def shutdown_with_drain(self) -> None:
        """Shut down as ``shutdown`` does, then wait until every processing item is ``done``.

        Waiting only for in-flight work (not for the queue to empty) means it
        finishes even when the workers have been cancelled. It waits on workers
        calling ``done``, so bound it with a timeout if a worker may hang.
        """
        self.shutdown()
        await self._drained.wait()

    # ---- introspection

    def __len__(self) -> int:
        """The queue depth: items ready to be handed out."""
        return len(self._queue)

    def unfinished_work_seconds(self) -> float:
        """Total seconds items currently being processed have been at it."""
        now = self._clock()
        return sum(now - started for started in self._started_at.values())

    def longest_running_processor_seconds(self) -> float:
        """Seconds the longest-running item currently being processed has been at it."""
        if not self._started_at:
            return 0.0
        return self._clock() - min(self._started_at.values())

    # ---- internals

    def _push(self, item: T) -> None:
        self._queue.append(item)
        self._metrics.on_depth(len(self._queue))
        self._wake_one()

    def _wake_one(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _remove_getter(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._getters.remove(waiter)

    def _compact_heap(self) -> None:
        self._heap = [(deadline, seq, item) for item, (deadline, seq) in self._waiting.items()]
        heapq.heapify(self._heap)

    def _ensure_timer(self) -> None:
        if (self._timer is not None and not self._timer.done()) or not self._heap:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # started by the next ``get`` or ``add_after`` on the loop
        self._timer = loop.create_task(self._run_timer(), name="workqueue-delayed-adds")

    async def _run_timer(self) -> None:
        """Move delayed items into the queue as they fall due; exit when none are left."""
        while True:
            self._timer_wake.clear()
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                deadline, seq, item = heapq.heappop(self._heap)
                if self._waiting.get(item) == (deadline, seq):
                    del self._waiting[item]
                    self.add(item)
            if not self._heap:
                self._timer = None
                return
            try:
                async with asyncio.timeout(self._heap[0][0] - now):
                    await self._timer_wake.wait()
            except TimeoutError:
                pass
