"""Pod bookkeeping shared by the workload controllers (Jobs, Deployments, Services).

Owned pods come from the informer cache; `Expectations` hold an owner back until the
cache shows the pods its controller created or deleted, so a retry never doubles them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller import (
    AlreadyExists,
    Client,
    Conflict,
    EventRecorder,
    NotFound,
    controller_of,
    set_controller_reference,
)
from controller.cache import OWNER_UID_INDEX, Indexer, thaw

log = logging.getLogger("localcluster.controllers.pods")
Obj = dict[str, Any]
# How long a controller waits for its cache to show its own pod writes before acting again.
EXPECTATIONS_TIMEOUT = 60.0
EXPECTATIONS_POLL = 0.2
NAME_ALPHABET = string.ascii_lowercase + string.digits


def close_on_shutdown(recorder: EventRecorder) -> Callable[[], Any]:
    """A manager runnable that sends the recorder's last events when the manager stops."""

    async def run() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await recorder.close()

    return run


# ---- expectations


@dataclass
class _Expected:
    uid: str
    created: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    since: float = 0.0


class Expectations:
    """Pods an owner created or deleted that the cache has not shown yet.

    Acting on a cache that lags our own writes would create a second pod, or delete one
    too many: until every expectation is seen (or `timeout` passes, in case an event was
    missed), the owner waits.
    """

    def __init__(
        self, timeout: float = EXPECTATIONS_TIMEOUT, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._timeout = timeout
        self._clock = clock
        self._pending: dict[str, _Expected] = {}

    def expect(
        self, key: str, uid: str, created: Iterable[str] = (), deleted: Iterable[str] = ()
    ) -> None:
        entry = self._pending.get(key)
        if entry is None or entry.uid != uid:
            entry = self._pending[key] = _Expected(uid)
        entry.created.update(created)
        entry.deleted.update(deleted)
        entry.since = self._clock()

    def observed(self, key: str, created: Iterable[str] = (), deleted: Iterable[str] = ()) -> None:
        """Drops expectations of writes that did not happen after all (failed requests)."""
        entry = self._pending.get(key)
        if entry is not None:
            entry.created.difference_update(created)
            entry.deleted.difference_update(deleted)

    def satisfied(self, key: str, uid: str, pods: Mapping[str, Obj]) -> bool:
        """Whether the owner's cached pods (by name) reflect everything it did."""
        entry = self._pending.get(key)
        if entry is None:
            return True
        if entry.uid != uid:
            del self._pending[key]
            return True
        entry.created = {name for name in entry.created if name not in pods}
        entry.deleted = {
            name for name in entry.deleted if name in pods and not terminating(pods[name])
        }
        if not entry.created and not entry.deleted:
            del self._pending[key]
            return True
        if self._clock() - entry.since > self._timeout:
            log.warning(
                "cache never showed pods owner=%s created=%s deleted=%s; going on",
                key,
                sorted(entry.created),
                sorted(entry.deleted),
            )
            del self._pending[key]
            return True
        return False

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)


# ---- pods


def owned_pods(pods: Indexer, owner: Obj) -> dict[str, Obj]:
    """The cached pods whose controller is `owner` (this uid), by name."""
    uid = owner["metadata"]["uid"]
    found: dict[str, Obj] = {}
    for pod in pods.by_index_readonly(OWNER_UID_INDEX, uid):
        ref = controller_of(pod)
        if ref is not None and ref.get("uid") == uid:
            found[pod["metadata"]["name"]] = pod
    return found


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(NAME_ALPHABET) for _ in range(length))


def pod_name(prefix: str) -> str:
    """`<prefix>-<5 random chars>`, short enough to be a hostname (63), like generateName."""
    return f"{prefix[:57]}-{random_suffix()}"


def pod_from_template(owner: Obj, template: Mapping[str, Any], name: str) -> Obj:
    """A pod of `template`, controlled by `owner` (in its namespace)."""
    meta = template.get("metadata") or {}
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": owner["metadata"]["namespace"],
            "labels": dict(meta.get("labels") or {}),
        },
        "spec": thaw(template.get("spec") or {}),
    }
    if meta.get("annotations"):
        pod["metadata"]["annotations"] = dict(meta["annotations"])
    set_controller_reference(owner, pod)
    return pod


def terminating(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_ready(pod: Mapping[str, Any]) -> bool:
    for found in (pod.get("status") or {}).get("conditions") or ():
        if found.get("type") == "Ready":
            return bool(found.get("status") == "True")
    return False


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def int_or(value: Any, default: int) -> int:
    """An integer field's value, or the default when unset or not an integer (bools are not)."""
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default


POD = ("v1", "Pod")


async def create_pod(
    client: Client,
    expectations: Expectations,
    key: str,
    owner: Obj,
    make_pod: Callable[[], Obj],
    field_manager: str,
) -> Obj:
    """Creates one of the owner's pods under expectations, drawing a new name on a clash."""
    uid = owner["metadata"]["uid"]
    while True:
        pod = make_pod()
        name = pod["metadata"]["name"]
        expectations.expect(key, uid, created=[name])
        try:
            created: Obj = await client.create(pod, field_manager=field_manager)
        except AlreadyExists:
            expectations.observed(key, created=[name])
            continue  # a random name taken: draw another
        except BaseException:
            expectations.observed(key, created=[name])
            raise
        return created


async def delete_pods(
    client: Client,
    expectations: Expectations,
    key: str,
    owner: Obj,
    pods: Iterable[Obj],
    on_deleted: Callable[[str], None],
) -> None:
    """Deletes the owner's pods under expectations; only the exact pods seen (uid guard)."""
    uid = owner["metadata"]["uid"]
    for pod in pods:
        meta = pod["metadata"]
        name = meta["name"]
        expectations.expect(key, uid, deleted=[name])
        try:
            await client.delete(POD, name, meta["namespace"], preconditions={"uid": meta["uid"]})
        except (NotFound, Conflict):
            pass  # already gone, or replaced by someone else's pod
        except BaseException:
            expectations.observed(key, deleted=[name])
            raise
        on_deleted(name)
