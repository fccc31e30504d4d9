"""Kubernetes API failures as exceptions, one class per reason a caller branches on.

The API server answers every failure with a `Status` object; reconcilers care about
*which* failure (retry on Conflict, ignore NotFound, relist on Gone), so the status
code and reason pick a subclass and callers use `except NotFound:` instead of
comparing numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple


class Cause(NamedTuple):
    """One failing field of an `Invalid` error (`details.causes[]`)."""

    field: str
    reason: str
    message: str


class ConfigError(Exception):
    """No usable connection settings (no kubeconfig, not in a cluster, or a broken file)."""


class ApiError(Exception):
    """A non-2xx answer from the API server, with the parts of its `Status` body."""

    def __init__(
        self,
        status: int,
        reason: str = "",
        message: str = "",
        details: dict[str, Any] | None = None,
        causes: list[Cause] | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = details if details is not None else {}
        self.causes: list[Cause] = causes if causes is not None else []
        # Seconds the server asked us to wait (Retry-After or details.retryAfterSeconds).
        self.retry_after = retry_after
        super().__init__(status, reason, message)

    def __str__(self) -> str:
        if self.reason:
            return f"{self.status} {self.reason}: {self.message}"
        return f"{self.status}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.reason!r}, {self.message!r})"


class BadRequest(ApiError):
    """400: the request itself is malformed (bad selector, bad body)."""


class Unauthorized(ApiError):
    """401: the credentials were missing, wrong or expired."""


class Forbidden(ApiError):
    """403: authenticated, but RBAC (or an admission rule) said no."""


class NotFound(ApiError):
    """404: the object, or the resource type itself, does not exist."""


class NoKindMatch(NotFound):
    """The server's discovery does not list the kind: no CRD installed, or a typo."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(
            404,
            "NotFound",
            f'no matches for kind "{kind}" in version "{api_version}"',
            {"kind": kind, "group": api_version.rpartition("/")[0]},
        )
        self.api_version = api_version
        self.kind = kind


class AlreadyExists(ApiError):
    """409 AlreadyExists: a create hit an existing name."""


class Conflict(ApiError):
    """409 (any other reason): a stale resourceVersion or a server-side apply conflict."""


class Gone(ApiError):
    """410 Expired/Gone: the resourceVersion is older than the server's history; relist."""


class UnsupportedMediaType(ApiError):
    """415: e.g. a strategic merge patch on a custom resource."""


class Invalid(ApiError):
    """422: the object failed validation; `causes` names each failing field."""


class TooManyRequests(ApiError):
    """429: throttled (or an eviction blocked); wait `retry_after` seconds if given."""


class ServerError(ApiError):
    """5xx: the server failed; usually worth retrying."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    410: Gone,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
}

_DEFAULT_REASON = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def _error_class(status: int, reason: str) -> type[ApiError]:
    if status == 409:
        return AlreadyExists if reason == "AlreadyExists" else Conflict
    if 500 <= status <= 599:
        return ServerError
    return _BY_STATUS.get(status, ApiError)


def _retry_after(headers: Mapping[str, str] | None, details: Mapping[str, Any]) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value is not None:
        try:
            return max(float(value), 0.0)
        except ValueError:
            pass  # an HTTP date: rare from the API server, and details may still say
    seconds = details.get("retryAfterSeconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return float(seconds)
    return None


def _causes(details: Mapping[str, Any]) -> list[Cause]:
    raw = details.get("causes")
    if not isinstance(raw, list):
        return []
    return [
        Cause(str(c.get("field", "")), str(c.get("reason", "")), str(c.get("message", "")))
        for c in raw
        if isinstance(c, dict)
    ]


def status_error(
    status: Mapping[str, Any], code: int | None = None, headers: Mapping[str, str] | None = None
) -> ApiError:
    """The exception for a parsed `Status` object (as in a response or a watch ERROR event).

    `code` is the HTTP status when known; otherwise the Status's own `code` is used.
    """
    if code is None:
        raw_code = status.get("code")
        code = raw_code if isinstance(raw_code, int) else 500
    details = status.get("details")
    if not isinstance(details, dict):
        details = {}
    reason = str(status.get("reason") or _DEFAULT_REASON.get(code, ""))
    message = str(status.get("message") or "")
    cls = _error_class(code, reason)
    return cls(
        code,
        reason,
        message,
        details,
        _causes(details),
        retry_after=_retry_after(headers, details),
    )


def api_error(status: int, body: bytes | str, headers: Mapping[str, str] | None = None) -> ApiError:
    """The exception for a non-2xx response; tolerates bodies that are not a `Status`.

    Proxies and load balancers in front of the API server answer with HTML or plain
    text, so anything unparsable becomes the message.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    parsed: Any = None
    if text.lstrip()[:1] == "{":
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
    if isinstance(parsed, dict) and (
        parsed.get("kind") == "Status" or "reason" in parsed or "message" in parsed
    ):
        return status_error(parsed, status, headers)
    message = text.strip()[:1024] or _DEFAULT_REASON.get(status, f"HTTP {status}")
    return status_error({"message": message}, status, headers)


__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "Cause",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "NoKindMatch",
    "NotFound",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "api_error",
    "status_error",
]
