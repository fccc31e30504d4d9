"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

Only one replica's leader work runs at a time. A candidate takes the Lease over only once it
has watched the record stay unchanged for `leaseDurationSeconds` on its *own* monotonic clock,
so no two machines' wall clocks are ever compared (the timestamps in the Lease are for humans).
The leader stops its work once it has failed to renew for `renew_deadline`, measured from when
its last successful renewal was *sent*; since any other candidate first saw that renewal later,
and waits `lease_duration` > `renew_deadline` after that, the two never overlap — provided the
leader work stops within the remaining `lease_duration - renew_deadline` of cancellation.
client-go's `LeaderTransitions` is stored in the Lease as `spec.leaseTransitions`.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from controller.errors import AlreadyExists, Conflict, NotFound

log = logging.getLogger(__name__)

Obj = dict[str, Any]
LEASE_KIND = ("coordination.k8s.io/v1", "Lease")
# client-go spreads candidates' retries by up to this fraction of retry_period.
_JITTER = 0.2


class LeaseClient(Protocol):
    """The slice of `controller.client.Client` leader election needs."""

    async def get(self, kind: tuple[str, str], name: str, namespace: str | None = None) -> Obj: ...

    async def create(self, obj: Obj) -> Obj: ...

    async def update(self, obj: Obj) -> Obj: ...


class LeaderStatus(Protocol):
    """Where leadership changes are reported (e.g. `controller.metrics.LeaderMetrics`)."""

    def set_leading(self, leading: bool) -> None: ...


def micro_time(dt: datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 in UTC with exactly six fractional digits."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(spec: Obj) -> tuple[Any, ...]:
    """The fields whose change proves the holder is alive (client-go compares the same)."""
    return (
        spec.get("holderIdentity"),
        spec.get("leaseDurationSeconds"),
        spec.get("acquireTime"),
        spec.get("renewTime"),
        spec.get("leaseTransitions"),
    )


class LeaderElector:
    """Acquires and keeps one Lease, running `on_started_leading` only while it holds it.

    `run()` returns when leadership is lost (the caller should then exit, as
    controller-runtime's manager does), re-raises if the leader work raised, and on
    cancellation stops the work and, with `release_on_cancel`, hands the Lease over at once.
    """

    def __init__(
        self,
        client: LeaseClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_started_leading: Callable[[], Awaitable[None]] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        release_on_cancel: bool = True,
        clock: Callable[[], float] = time.monotonic,
        metrics: LeaderStatus | None = None,
    ) -> None:
        if not identity:
            raise ValueError("leader election identity must not be empty")
        if not lease_duration > renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if not renew_deadline > retry_period * (1 + _JITTER):
            raise ValueError("renew_deadline must be greater than 1.2 * retry_period")
        if retry_period <= 0:
            raise ValueError("retry_period must be positive")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.release_on_cancel = release_on_cancel
        self.clock = clock
        self.metrics = metrics

        self._lock = asyncio.Lock()
        self._lease: Obj | None = None  # the last Lease read or written
        self._observed_record: tuple[Any, ...] | None = None
        self._observed_time = 0.0
        self._renewed_at = 0.0  # when the last successful acquire/renew request was sent
        self._leading = False
        self._lost_to: str | None = None
        self._work: asyncio.Task[None] | None = None
        self._running = False
        if metrics is not None:
            metrics.set_leading(False)

    @property
    def is_leader(self) -> bool:
        """True from acquisition until this elector gives up (or loses) the Lease."""
        return self._leading

    @property
    def observed_holder(self) -> str:
        """The holder in the last Lease record seen; "" if none or released."""
        if self._lease is None:
            return ""
        return str((self._lease.get("spec") or {}).get("holderIdentity") or "")

    async def run(self) -> None:
        if self._running:
            raise RuntimeError("LeaderElector.run() is already running")
        self._running = True
        release = False
        try:
            await self._acquire()
            self._start_leading()
            failure = await self._renew()
            release = failure is not None
            if failure is not None:
                raise failure
        except asyncio.CancelledError:
            release = True
            raise
        finally:
            self._running = False
            # Shielded so that a second cancellation cannot leave the work running unreleased.
            await asyncio.shield(self._finish(release and self.release_on_cancel))

    async def _finish(self, release: bool) -> None:
        await self._stop_leading()
        if release:
            try:
                async with asyncio.timeout(self.renew_deadline):
                    await self.release()
            except Exception:
                log.warning(
                    "failed to release lease %s/%s", self.namespace, self.name, exc_info=True
                )

    async def release(self) -> bool:
        """Hands the Lease over at once: clears the holder and shortens the duration to 1s.

        Stops the leader work first if it is running, so the next leader never overlaps it.
        Returns False when there was nothing of ours to release (or someone else won the race).
        """
        await self._stop_leading()
        async with self._lock:
            lease = self._lease
            if lease is None or self.observed_holder != self.identity:
                return False
            now = micro_time(datetime.now(UTC))
            released = copy.deepcopy(lease)
            released["spec"] = {
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": (lease.get("spec") or {}).get("leaseTransitions") or 0,
            }
            try:
                self._lease = await self.client.update(released)
            except (Conflict, NotFound):
                return False
            log.info("released lease %s/%s identity=%s", self.namespace, self.name, self.identity)
            return True

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: create, take over an expired or released Lease, or renew our own.

        Losing a race (Conflict, AlreadyExists) is False; transport and server errors raise.
        """
        async with self._lock:
            return await self._try_acquire_or_renew()

    async def _try_acquire_or_renew(self) -> bool:
        try:
            lease = await self.client.get(LEASE_KIND, self.name, self.namespace)
        except NotFound:
            return await self._create()
        observed_at = self.clock()
        spec: Obj = lease.get("spec") or {}
        record = _record(spec)
        if record != self._observed_record:
            self._observed_record = record
            self._observed_time = observed_at
        self._lease = lease

        holder = str(spec.get("holderIdentity") or "")
        duration = spec.get("leaseDurationSeconds")
        if not isinstance(duration, int | float) or isinstance(duration, bool):
            duration = self.lease_duration  # a malformed record: assume the longest safe wait
        if holder and holder != self.identity:
            if self._leading:
                self._lost_to = holder
                return False
            if self._observed_time + duration > observed_at:
                return False

        now = micro_time(datetime.now(UTC))
        transitions = spec.get("leaseTransitions") or 0
        updated = copy.deepcopy(lease)
        updated["spec"] = {
            **spec,
            "holderIdentity": self.identity,
            "leaseDurationSeconds": _seconds(self.lease_duration),
            "acquireTime": spec.get("acquireTime") or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        if holder != self.identity:
            updated["spec"]["acquireTime"] = now
            updated["spec"]["leaseTransitions"] = transitions + 1
        try:
            written = await self.client.update(updated)
        except (Conflict, NotFound):
            return False
        self._observe_own(written)
        return True

    async def _create(self) -> bool:
        now = micro_time(datetime.now(UTC))
        lease: Obj = {
            "apiVersion": LEASE_KIND[0],
            "kind": LEASE_KIND[1],
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": _seconds(self.lease_duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        try:
            written = await self.client.create(lease)
        except (AlreadyExists, Conflict):
            return False
        self._observe_own(written)
        return True

    def _observe_own(self, lease: Obj) -> None:
        self._lease = lease
        self._observed_record = _record(lease.get("spec") or {})
        self._observed_time = self.clock()

    async def _attempt(self, budget: float) -> bool:
        """One attempt bounded by `budget` seconds; failing to reach the server means "not now"."""
        try:
            async with asyncio.timeout(budget):
                return await self.try_acquire_or_renew()
        except TimeoutError:
            log.warning("lease %s/%s: request timed out", self.namespace, self.name)
        except Exception:
            log.warning("lease %s/%s: request failed", self.namespace, self.name, exc_info=True)
        return False

    async def _acquire(self) -> None:
        log.info(
            "attempting to acquire lease %s/%s identity=%s",
            self.namespace,
            self.name,
            self.identity,
        )
        while True:
            started = self.clock()
            # Bounded by renew_deadline, as measured from when the request was sent.
            if await self._attempt(self.renew_deadline):
                self._renewed_at = started
                log.info(
                    "acquired lease %s/%s identity=%s", self.namespace, self.name, self.identity
                )
                return
            await asyncio.sleep(self.retry_period * (1 + random.random() * _JITTER))

    def _start_leading(self) -> None:
        self._leading = True
        self._lost_to = None
        if self.metrics is not None:
            self.metrics.set_leading(True)
        if self.on_started_leading is not None:
            self._work = asyncio.create_task(
                _await(self.on_started_leading()), name=f"leader-{self.name}"
            )

    async def _renew(self) -> BaseException | None:
        """Renews every retry_period until the deadline passes; returns the work's failure."""
        while self._leading:
            deadline = self._renewed_at + self.renew_deadline
            await self._wait_for_work(min(self.retry_period, deadline - self.clock()))
            work = self._work
            if work is not None and work.done() and not work.cancelled():
                failure = work.exception()
                if failure is not None:
                    log.error(
                        "leader work failed; stepping down from %s/%s", self.namespace, self.name
                    )
                    return failure
            if self._released():
                return None
            started = self.clock()
            if started < deadline and await self._attempt(deadline - started):
                self._renewed_at = started
                continue
            if self._lost_to is not None:
                log.error("lease %s/%s taken over by %s", self.namespace, self.name, self._lost_to)
                return None
            if self.clock() >= deadline:
                log.error(
                    "failed to renew lease %s/%s within %ss; stopping leading",
                    self.namespace,
                    self.name,
                    self.renew_deadline,
                )
                return None
        return None

    def _released(self) -> bool:
        """release() ran meanwhile (a method, so type narrowing does not survive the await)."""
        return not self._leading

    async def _wait_for_work(self, delay: float) -> None:
        """Sleeps `delay`, waking early if the leader work ends so a failure surfaces at once."""
        work = self._work
        if delay <= 0:
            return
        if work is None or work.done():
            await asyncio.sleep(delay)
        else:
            await asyncio.wait({work}, timeout=delay)

    async def _stop_leading(self) -> None:
        """Idempotent: cancels the work, waits for it to end, then reports."""
        if not self._leading:
            return
        self._leading = False
        work, self._work = self._work, None
        if work is not None:
            work.cancel()
            # wait() never raises the work's outcome, but does propagate our own cancellation.
            await asyncio.wait({work})
            if not work.cancelled() and work.exception() is not None:
                log.debug("leader work ended with %r", work.exception())
        if self.metrics is not None:
            self.metrics.set_leading(False)
        if self.on_stopped_leading is not None:
            try:
                self.on_stopped_leading()
            except Exception:
                log.exception("on_stopped_leading raised")
        log.info("stopped leading %s/%s identity=%s", self.namespace, self.name, self.identity)


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable


def _seconds(duration: float) -> int:
    """leaseDurationSeconds is an int32; round up so candidates never wait less than asked."""
    return max(1, int(-(-duration // 1)))
