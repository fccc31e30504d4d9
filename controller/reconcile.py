"""What a reconciler sees and answers: a Request for one object, a Result for the queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, order=True)
class Request:
    """The key of one object to reconcile; level-triggered, so no event is carried."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True)
class Result:
    """`requeue_after` wins over `requeue`; both empty means done until the next change."""

    requeue: bool = False
    requeue_after: float = 0.0


class TerminalError(Exception):
    """A failure that retrying cannot fix: logged and counted, never requeued."""


class Reconciler(Protocol):
    async def reconcile(self, request: Request) -> Result | None: ...


def request_for(obj: dict[str, object]) -> Request:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise ValueError("object has no metadata")
    return Request(str(meta.get("namespace") or ""), str(meta.get("name") or ""))
