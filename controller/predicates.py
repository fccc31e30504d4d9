"""Filters that decide whether an informer event should enqueue a request at all.

Predicates only cut noise: a reconcile still reads current state, so dropping an event
never loses a change that matters to the predicate's own definition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Predicate:
    """Per-event-type filters; each defaults to letting the event through."""

    create: Callable[[Obj], bool] = lambda obj: True
    update: Callable[[Obj, Obj], bool] = lambda old, new: True
    delete: Callable[[Obj], bool] = lambda obj: True

    def __and__(self, other: Predicate) -> Predicate:
        return Predicate(
            create=lambda o: self.create(o) and other.create(o),
            update=lambda a, b: self.update(a, b) and other.update(a, b),
            delete=lambda o: self.delete(o) and other.delete(o),
        )

    def __or__(self, other: Predicate) -> Predicate:
        return Predicate(
            create=lambda o: self.create(o) or other.create(o),
            update=lambda a, b: self.update(a, b) or other.update(a, b),
            delete=lambda o: self.delete(o) or other.delete(o),
        )

    def __invert__(self) -> Predicate:
        return Predicate(
            create=lambda o: not self.create(o),
            update=lambda a, b: not self.update(a, b),
            delete=lambda o: not self.delete(o),
        )


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _metadata_field_changed(field: str) -> Predicate:
    return Predicate(update=lambda old, new: _meta(old).get(field) != _meta(new).get(field))


GENERATION_CHANGED = _metadata_field_changed("generation")
"""Spec changes only: status writes (the controller's own) do not bump generation."""

LABELS_CHANGED = _metadata_field_changed("labels")
ANNOTATIONS_CHANGED = _metadata_field_changed("annotations")
RESOURCE_VERSION_CHANGED = _metadata_field_changed("resourceVersion")
"""Drops resync re-deliveries, where the object did not change at all."""


def custom(
    *,
    create: Callable[[Obj], bool] | None = None,
    update: Callable[[Obj, Obj], bool] | None = None,
    delete: Callable[[Obj], bool] | None = None,
) -> Predicate:
    return Predicate(
        create=create or (lambda obj: True),
        update=update or (lambda old, new: True),
        delete=delete or (lambda obj: True),
    )


def matches(predicates: tuple[Predicate, ...], kind: str, *objs: Obj) -> bool:
    """Whether every predicate lets this event (`create`, `update` or `delete`) through."""
    for predicate in predicates:
        if kind == "create" and not predicate.create(objs[0]):
            return False
        if kind == "update" and not predicate.update(objs[0], objs[1]):
            return False
        if kind == "delete" and not predicate.delete(objs[0]):
            return False
    return True
