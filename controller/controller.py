"""A controller: events from informers become requests in a queue, workers reconcile them.

Level-triggered like controller-runtime: the queue holds keys, never events, so a burst
of changes to one object is one reconcile, and a reconcile always reads current state.
A key is never reconciled by two workers at once (the workqueue guarantees it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from controller.handlers import Mapper
from controller.predicates import Predicate, matches
from controller.ratelimit import default_controller_rate_limiter
from controller.reconcile import Request, Result, TerminalError
from controller.workqueue import RateLimitingQueue, ShutDown

log = logging.getLogger("controller")
Obj = dict[str, Any]
ReconcileFunc = Callable[[Request], Awaitable[Result | None]]


class EventSource(Protocol):
    """What a controller needs of an informer: ordered add/update/delete callbacks."""

    def add_handler(
        self,
        on_add: Callable[[Obj], None],
        on_update: Callable[[Obj, Obj], None],
        on_delete: Callable[[Obj], None],
    ) -> Any: ...


class ReconcileObserver(Protocol):
    """Where reconcile outcomes are counted (Prometheus in the manager)."""

    def reconcile_finished(self, result: str, seconds: float) -> None: ...
    def reconcile_error(self, terminal: bool) -> None: ...
    def workers_active(self, delta: int) -> None: ...


class _NoObserver:
    def reconcile_finished(self, result: str, seconds: float) -> None:
        pass

    def reconcile_error(self, terminal: bool) -> None:
        pass

    def workers_active(self, delta: int) -> None:
        pass


@dataclass
class Watch:
    source: EventSource
    mapper: Mapper
    predicates: tuple[Predicate, ...] = ()


@dataclass
class Controller:
    name: str
    reconcile: ReconcileFunc
    workers: int = 1
    reconcile_timeout: float | None = None
    queue: RateLimitingQueue[Request] = field(
        default_factory=lambda: RateLimitingQueue(default_controller_rate_limiter())
    )
    observer: ReconcileObserver = field(default_factory=_NoObserver)
    watches: list[Watch] = field(default_factory=list)

    def watch(
        self, source: EventSource, mapper: Mapper, predicates: Iterable[Predicate] = ()
    ) -> None:
        """Enqueues what `mapper` returns for every event that passes the predicates."""
        chosen = tuple(predicates)

        def enqueue(requests: Iterable[Request]) -> None:
            for request in requests:
                self.queue.add(request)

        def on_add(obj: Obj) -> None:
            if matches(chosen, "create", obj):
                enqueue(mapper(obj))

        def on_update(old: Obj, new: Obj) -> None:
            if matches(chosen, "update", old, new):
                # An owner change moves the object: both the old and new owner hear of it.
                enqueue({*mapper(old), *mapper(new)})

        def on_delete(obj: Obj) -> None:
            if matches(chosen, "delete", obj):
                enqueue(mapper(obj))

        source.add_handler(on_add, on_update, on_delete)
        self.watches.append(Watch(source, mapper, chosen))

    async def run(self, drain_timeout: float = 30.0) -> None:
        """Runs the workers until cancelled; then lets in-flight reconciles finish (bounded)."""
        tasks = [
            asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
            for i in range(self.workers)
        ]
        try:
            # asyncio.wait, unlike gather, does not cancel the workers when we are cancelled.
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.shutdown_with_drain(), drain_timeout)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            raise

    async def _worker(self) -> None:
        while True:
            try:
                request = await self.queue.get()
            except ShutDown:
                return
            self.observer.workers_active(1)
            try:
                await self._process(request)
            finally:
                self.observer.workers_active(-1)
                self.queue.done(request)

    async def _process(self, request: Request) -> None:
        started = time.perf_counter()
        outcome = "error"
        try:
            if self.reconcile_timeout is None:
                result = await self.reconcile(request)
            else:
                result = await asyncio.wait_for(self.reconcile(request), self.reconcile_timeout)
        except TerminalError as exc:
            log.error(
                "reconcile failed terminally controller=%s request=%s error=%s",
                self.name,
                request,
                exc,
            )
            self.observer.reconcile_error(terminal=True)
            self.queue.forget(request)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            log.error(
                "reconcile timed out controller=%s request=%s after=%ss",
                self.name,
                request,
                self.reconcile_timeout,
            )
            self.observer.reconcile_error(terminal=False)
            self.queue.add_rate_limited(request)
        except Exception:
            log.exception("reconcile failed controller=%s request=%s", self.name, request)
            self.observer.reconcile_error(terminal=False)
            self.queue.add_rate_limited(request)
        else:
            result = result or Result()
            if result.requeue_after > 0:
                outcome = "requeue_after"
                self.queue.forget(request)
                self.queue.add_after(request, result.requeue_after)
            elif result.requeue:
                outcome = "requeue"
                self.queue.add_rate_limited(request)
            else:
                outcome = "success"
                self.queue.forget(request)
        self.observer.reconcile_finished(outcome, time.perf_counter() - started)
