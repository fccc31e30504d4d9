"""Declaring a controller: what it reconciles, what it owns, what else it watches."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from controller.controller import Controller, ReconcileFunc
from controller.handlers import Mapper, enqueue_controller_owner, enqueue_object
from controller.predicates import Predicate
from controller.reconcile import Reconciler, Request, Result

if TYPE_CHECKING:
    from controller.manager import Manager

Kind = tuple[str, str]


@dataclass
class _Watched:
    kind: Kind
    mapper: Mapper | None
    predicates: tuple[Predicate, ...]
    namespace: str | None = None
    label_selector: str = ""


@dataclass
class Builder:
    """`manager.controller("name").for_(kind).owns(kind).complete(reconciler)`."""

    manager: Manager
    name: str
    _for: _Watched | None = None
    _owns: list[_Watched] = field(default_factory=list)
    _watches: list[_Watched] = field(default_factory=list)
    _workers: int = 1
    _timeout: float | None = None

    def for_(
        self,
        kind: Kind,
        *predicates: Predicate,
        namespace: str | None = None,
        label_selector: str = "",
    ) -> Builder:
        self._for = _Watched(kind, None, predicates, namespace, label_selector)
        return self

    def owns(
        self,
        kind: Kind,
        *predicates: Predicate,
        namespace: str | None = None,
        label_selector: str = "",
    ) -> Builder:
        """Reconciles the controller owner (of the `for_` kind) when an owned object changes."""
        self._owns.append(_Watched(kind, None, predicates, namespace, label_selector))
        return self

    def watches(
        self,
        kind: Kind,
        mapper: Mapper,
        *predicates: Predicate,
        namespace: str | None = None,
        label_selector: str = "",
    ) -> Builder:
        self._watches.append(_Watched(kind, mapper, predicates, namespace, label_selector))
        return self

    def with_workers(self, workers: int) -> Builder:
        if workers < 1:
            raise ValueError("a controller needs at least one worker")
        self._workers = workers
        return self

    def with_timeout(self, seconds: float) -> Builder:
        """Bounds one reconcile; a timed-out reconcile is retried with backoff."""
        self._timeout = seconds
        return self

    async def complete(self, reconciler: Reconciler | ReconcileFunc) -> Controller:
        if self._for is None:
            raise ValueError(f"controller {self.name}: for_() names the kind it reconciles")
        reconcile = _as_function(reconciler)
        controller = Controller(
            name=self.name,
            reconcile=reconcile,
            workers=self._workers,
            reconcile_timeout=self._timeout,
            queue=self.manager.new_queue(self.name),
            observer=self.manager.observer_for(self.name, self._workers),
        )
        primary = self._for
        informers = self.manager.informers
        controller.watch(
            informers.informer_for(primary.kind, primary.namespace, primary.label_selector),
            enqueue_object,
            primary.predicates,
        )
        if self._owns:
            owner = await self.manager.client.resource(primary.kind)
            to_owner = enqueue_controller_owner(primary.kind[0], primary.kind[1], owner.namespaced)
            for owned in self._owns:
                controller.watch(
                    informers.informer_for(owned.kind, owned.namespace, owned.label_selector),
                    to_owner,
                    owned.predicates,
                )
        for watched in self._watches:
            assert watched.mapper is not None
            controller.watch(
                informers.informer_for(watched.kind, watched.namespace, watched.label_selector),
                watched.mapper,
                watched.predicates,
            )
        self.manager.add_controller(controller)
        return controller


def _as_function(reconciler: Reconciler | ReconcileFunc) -> ReconcileFunc:
    method = getattr(reconciler, "reconcile", None)
    if method is not None and inspect.iscoroutinefunction(method):
        bound: Callable[[Request], Awaitable[Result | None]] = method
        return bound
    if callable(reconciler):
        return reconciler
    raise TypeError("a reconciler is an object with `async reconcile(request)` or such a function")
