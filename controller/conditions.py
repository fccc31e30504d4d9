"""Status conditions with the semantics of apimachinery's ``meta.SetStatusCondition``.

Conditions are plain dicts with the upstream ``metav1.Condition`` field names (``type``,
``status``, ``observedGeneration``, ``lastTransitionTime``, ``reason``, ``message``) so they
round-trip through any CRD that embeds that schema. ``lastTransitionTime`` moves only when the
status flips: consumers use it to tell how long something has been broken, which a timestamp
that moves on every reconcile would destroy.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "FALSE",
    "TRUE",
    "UNKNOWN",
    "conditions_of",
    "get_condition",
    "is_false",
    "is_true",
    "remove_condition",
    "remove_status_condition",
    "rfc3339",
    "set_condition",
    "set_status_condition",
]

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"
_STATUSES = (TRUE, FALSE, UNKNOWN)

# The patterns and limits the metav1.Condition OpenAPI schema enforces, checked here so a bad
# condition fails in the reconciler that built it instead of as an opaque 422 on the status write.
_TYPE_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
_REASON_RE = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_TYPE_MAX = 316
_REASON_MAX = 1024
_MESSAGE_MAX = 32768


def rfc3339(when: datetime | None = None) -> str:
    """Formats a time the way Kubernetes serializes ``metav1.Time`` (UTC, whole seconds)."""
    when = datetime.now(UTC) if when is None else when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _status_str(status: str | bool) -> str:
    if isinstance(status, bool):
        return TRUE if status else FALSE
    if status not in _STATUSES:
        raise ValueError(f"condition status must be one of {_STATUSES}, got {status!r}")
    return status


def _validate(type: str, reason: str, message: str, observed_generation: int | None) -> None:
    if len(type) > _TYPE_MAX or not _TYPE_RE.match(type):
        raise ValueError(f"invalid condition type {type!r}")
    if len(reason) > _REASON_MAX or not _REASON_RE.match(reason):
        raise ValueError(
            f"invalid condition reason {reason!r}: must be non-empty CamelCase "
            "(letters, digits, '_', ',' or ':', starting with a letter)"
        )
    if len(message) > _MESSAGE_MAX:
        raise ValueError(f"condition message longer than {_MESSAGE_MAX} characters")
    if observed_generation is not None and observed_generation < 0:
        raise ValueError("observedGeneration must not be negative")


def get_condition(conditions: list[dict[str, Any]] | None, type: str) -> dict[str, Any] | None:
    """The condition of that type, or ``None``; returns the live dict so callers can inspect it."""
    for condition in conditions or ():
        if condition.get("type") == type:
            return condition
    return None


def is_true(conditions: list[dict[str, Any]] | None, type: str) -> bool:
    """Whether the condition exists and is ``True``; absent counts as not true."""
    condition = get_condition(conditions, type)
    return condition is not None and condition.get("status") == TRUE


def is_false(conditions: list[dict[str, Any]] | None, type: str) -> bool:
    """Whether the condition exists and is ``False``; absent is neither true nor false."""
    condition = get_condition(conditions, type)
    return condition is not None and condition.get("status") == FALSE


def set_condition(
    conditions: list[dict[str, Any]],
    type: str,
    status: str | bool,
    reason: str,
    message: str = "",
    observed_generation: int | None = None,
    *,
    now: datetime | None = None,
) -> bool:
    """Adds or updates a condition in place; returns whether anything changed.

    ``lastTransitionTime`` is set when the condition is new or its status changes; a change of
    only reason, message or observedGeneration updates those fields and keeps the old time.
    ``now`` exists for tests; ``True``/``False`` booleans are accepted for ``status``.
    """
    status_str = _status_str(status)
    _validate(type, reason, message, observed_generation)
    existing = get_condition(conditions, type)
    if existing is None:
        condition: dict[str, Any] = {"type": type, "status": status_str}
        if observed_generation is not None:
            condition["observedGeneration"] = observed_generation
        condition["lastTransitionTime"] = rfc3339(now)
        condition["reason"] = reason
        condition["message"] = message
        conditions.append(condition)
        return True
    changed = False
    if existing.get("status") != status_str:
        existing["status"] = status_str
        existing["lastTransitionTime"] = rfc3339(now)
        changed = True
    elif not existing.get("lastTransitionTime"):
        # A condition written by someone else without a time still needs one to be valid.
        existing["lastTransitionTime"] = rfc3339(now)
        changed = True
    if existing.get("reason") != reason:
        existing["reason"] = reason
        changed = True
    if existing.get("message", "") != message:
        existing["message"] = message
        changed = True
    if (
        observed_generation is not None
        and existing.get("observedGeneration") != observed_generation
    ):
        existing["observedGeneration"] = observed_generation
        changed = True
    return changed


def remove_condition(conditions: list[dict[str, Any]], type: str) -> bool:
    """Removes every condition of that type in place; returns whether one was there."""
    kept = [c for c in conditions if c.get("type") != type]
    removed = len(kept) != len(conditions)
    conditions[:] = kept
    return removed


def conditions_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """``obj["status"]["conditions"]``, or an empty (detached) list when there is none."""
    status = obj.get("status")
    if not isinstance(status, dict):
        return []
    conditions = status.get("conditions")
    return conditions if isinstance(conditions, list) else []


def set_status_condition(
    obj: dict[str, Any],
    type: str,
    status: str | bool,
    reason: str,
    message: str = "",
    observed_generation: int | None = None,
    *,
    now: datetime | None = None,
) -> bool:
    """``set_condition`` on ``obj["status"]["conditions"]``, creating the path as needed.

    ``observed_generation`` defaults to the object's ``metadata.generation``: a reconciler
    reports on the spec it has just seen, and forgetting to pass it is the common bug.
    """
    if observed_generation is None:
        generation = (obj.get("metadata") or {}).get("generation")
        observed_generation = generation if isinstance(generation, int) else None
    status_obj = obj.get("status")
    if not isinstance(status_obj, dict):
        status_obj = obj["status"] = {}
    conditions = status_obj.get("conditions")
    if not isinstance(conditions, list):
        conditions = status_obj["conditions"] = []
    return set_condition(conditions, type, status, reason, message, observed_generation, now=now)


def remove_status_condition(obj: dict[str, Any], type: str) -> bool:
    """``remove_condition`` on ``obj["status"]["conditions"]``; a missing list is a no-op."""
    status_obj = obj.get("status")
    if not isinstance(status_obj, dict) or not isinstance(status_obj.get("conditions"), list):
        return False
    return remove_condition(status_obj["conditions"], type)
