"""Object storage: the objects in memory, every write made durable in SQLite.

Reads are served from memory. A write is applied to memory at once (so the next request
sees it and conflicts are detected), then handed to one writer thread that commits
batches to SQLite (group commit: many writes, one fsync). The write is acknowledged, and
its watch event published, only after its batch is committed — so nothing acknowledged
is lost and watchers never see a change that a restart would undo.

Watch history is a bounded in-memory ring of events. A watch that starts from a version
older than the ring answers 410 Expired: clients relist, nothing is silently missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"


@dataclass(frozen=True)
class Event:
    """One change, in resourceVersion order. `prev` lets paging rebuild older snapshots."""

    type: str
    bucket: str
    key: ObjectKey
    object: dict[str, Any]
    prev: dict[str, Any] | None
    rv: int


@dataclass(eq=False)
class Subscription:
    """A live watch: receives every published event of its bucket through `queue`."""

    bucket: str
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    limit: int = 10_000
    overflowed: bool = False

    def offer(self, event: Event) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= self.limit:
            # A watcher this far behind is cut off; it re-watches from its last version.
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)

    def close(self) -> None:
        self.queue.put_nowait(None)


@dataclass
class _Batch:
    rows: list[tuple[str, str, str, int, str | None]]
    rv: int
    done: Callable[[BaseException | None], None]


class TooOld(Exception):
    """The requested resourceVersion is older than the kept history."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class Store:
    """All objects of all kinds, grouped in buckets (one per group-resource)."""

    def __init__(self, path: Path | None, history_size: int = 50_000) -> None:
        self._path = path
        self._buckets: dict[str, dict[ObjectKey, dict[str, Any]]] = {}
        self._history: deque[Event] = deque()
        self._history_size = history_size
        self._subscriptions: dict[str, set[Subscription]] = {}
        self.rv = 0  # the latest assigned resourceVersion (what lists report)
        self.published_rv = 0  # the latest durable and published one
        self._compacted_rv = 0  # every event after this one is in the history
        self._writer: _Writer | None = None

    # ---- lifecycle

    def open(self) -> None:
        """Loads every stored object; call once before serving."""
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = _connect(self._path)
        try:
            for bucket, namespace, name, data in db.execute(
                "SELECT bucket, namespace, name, data FROM objects"
            ):
                self._buckets.setdefault(bucket, {})[(namespace, name)] = json.loads(data)
            row = db.execute("SELECT value FROM meta WHERE key = 'rv'").fetchone()
            self.rv = int(row[0]) if row else 0
        finally:
            db.close()
        self.published_rv = self._compacted_rv = self.rv
        self._writer = _Writer(self._path)
        self._writer.start()

    def end_all_watches(self) -> None:
        for subs in self._subscriptions.values():
            for sub in subs:
                sub.close()
        self._subscriptions.clear()

    async def close(self) -> None:
        self.end_all_watches()
        if self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._writer.stop)
            self._writer = None

    # ---- reads (always current memory)

    def get(self, bucket: str, key: ObjectKey) -> dict[str, Any] | None:
        return self._buckets.get(bucket, {}).get(key)

    def items(self, bucket: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects of a bucket (optionally one namespace), ordered by namespace then name."""
        objects = self._buckets.get(bucket, {})
        keys = sorted(k for k in objects if namespace is None or k[0] == namespace)
        return [objects[k] for k in keys]

    def count(self, bucket: str) -> int:
        return len(self._buckets.get(bucket, {}))

    def buckets(self) -> Iterator[str]:
        return iter(list(self._buckets))

    def snapshot_at(self, bucket: str, namespace: str | None, rv: int) -> list[dict[str, Any]]:
        """The bucket as it was at `rv` (for consistent paging), rebuilt from the history."""
        if rv >= self.rv:
            return self.items(bucket, namespace)
        if rv < self._compacted_rv:
            raise TooOld(rv, self._compacted_rv)
        if self.published_rv < self.rv:
            # Unpublished writes are not in the history yet; treat them as not undoable.
            raise TooOld(rv, self.rv)
        state = dict(self._buckets.get(bucket, {}))
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            if event.bucket != bucket:
                continue
            if event.prev is None:
                state.pop(event.key, None)
            else:
                state[event.key] = event.prev
        keys = sorted(k for k in state if namespace is None or k[0] == namespace)
        return [state[k] for k in keys]

    # ---- writes

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    async def write(
        self,
        bucket: str,
        key: ObjectKey,
        obj: dict[str, Any] | None,
        *,
        rv: int,
        event_type: str,
        tombstone: dict[str, Any] | None = None,
    ) -> None:
        """Applies one change (obj None deletes) and returns once it is durable.

        `rv` must come from `next_rv()` in the same synchronous step that computed `obj`.
        """
        objects = self._buckets.setdefault(bucket, {})
        prev = objects.get(key)
        if obj is None:
            objects.pop(key, None)
            shown = tombstone if tombstone is not None else prev
            assert shown is not None, "a delete needs the deleted object"
        else:
            objects[key] = obj
            shown = obj
        event = Event(event_type, bucket, key, shown, prev, rv)
        data = None if obj is None else json.dumps(obj, separators=(",", ":"))
        try:
            await self._persist([(bucket, key[0], key[1], rv, data)], rv, [event])
        except BaseException:
            # Not durable, so not acknowledged: undo it in memory unless a later write won.
            if objects.get(key) is obj:
                if prev is None:
                    objects.pop(key, None)
                else:
                    objects[key] = prev
            raise

    async def drop_bucket(self, bucket: str) -> None:
        """Forgets a whole bucket (a CRD went away); its objects were deleted one by one."""
        self._buckets.pop(bucket, None)

    async def _persist(
        self, rows: list[tuple[str, str, str, int, str | None]], rv: int, events: list[Event]
    ) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finished(error: BaseException | None) -> None:
            # Runs on the event loop, in commit order.
            if error is None:
                for event in events:
                    self._publish(event)
                if not done.done():
                    done.set_result(None)
            elif not done.done():
                done.set_exception(error)

        if self._writer is None:
            finished(None)
        else:

            def done_from_thread(error: BaseException | None) -> None:
                loop.call_soon_threadsafe(finished, error)

            self._writer.submit(_Batch(rows, rv, done_from_thread))
        await done

    def _publish(self, event: Event) -> None:
        self.published_rv = event.rv
        self._history.append(event)
        while len(self._history) > self._history_size:
            self._compacted_rv = self._history.popleft().rv
        for sub in self._subscriptions.get(event.bucket, ()):
            sub.offer(event)

    # ---- watch

    def subscribe(self, bucket: str, since: int) -> tuple[list[Event], Subscription]:
        """Events of `bucket` after `since` from the history, then a live subscription.

        Both come from one synchronous step, so no event is missed or delivered twice.
        """
        if since < self._compacted_rv:
            raise TooOld(since, self._compacted_rv)
        backlog = [e for e in self._history if e.rv > since and e.bucket == bucket]
        sub = Subscription(bucket)
        self._subscriptions.setdefault(bucket, set()).add(sub)
        return backlog, sub

    def subscribe_current(self, bucket: str) -> tuple[int, Subscription]:
        """A live subscription starting after the latest assigned version."""
        sub = Subscription(bucket)
        self._subscriptions.setdefault(bucket, set()).add(sub)
        return self.rv, sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscriptions.get(sub.bucket)
        if subs is not None:
            subs.discard(sub)

    def end_watches(self, bucket: str) -> None:
        """Closes every watch of a bucket (its resource stopped being served)."""
        for sub in self._subscriptions.pop(bucket, set()):
            sub.close()


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS objects (bucket TEXT NOT NULL, namespace TEXT NOT NULL,"
        " name TEXT NOT NULL, rv INTEGER NOT NULL, data TEXT NOT NULL,"
        " PRIMARY KEY (bucket, namespace, name))"
    )
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    return db


class _Writer:
    """The one thread that writes SQLite: drains all waiting batches into one transaction."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._queue: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="localcluster-store", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, batch: _Batch) -> None:
        self._queue.put(batch)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        db = _connect(self._path)
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batches, stopping = _drain(first, self._queue)
                self._commit(db, batches)
                if stopping:
                    return
        finally:
            db.close()

    @staticmethod
    def _commit(db: sqlite3.Connection, batches: list[_Batch]) -> None:
        error: BaseException | None = None
        try:
            db.execute("BEGIN")
            for batch in batches:
                _apply_rows(db, batch.rows)
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('rv', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(max(b.rv for b in batches)),),
            )
            db.execute("COMMIT")
        except sqlite3.Error as exc:  # disk full, I/O error: the writes are not acknowledged
            log.error("storage commit failed: %s", exc)
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            error = exc
        for batch in batches:
            batch.done(error)


def _drain(first: _Batch, pending: queue.SimpleQueue[_Batch | None]) -> tuple[list[_Batch], bool]:
    batches = [first]
    while True:
        try:
            item = pending.get_nowait()
        except queue.Empty:
            return batches, False
        if item is None:
            return batches, True
        batches.append(item)


def _apply_rows(
    db: sqlite3.Connection, rows: Iterable[tuple[str, str, str, int, str | None]]
) -> None:
    for bucket, namespace, name, rv, data in rows:
        if data is None:
            db.execute(
                "DELETE FROM objects WHERE bucket = ? AND namespace = ? AND name = ?",
                (bucket, namespace, name),
            )
        else:
            db.execute(
                "INSERT INTO objects (bucket, namespace, name, rv, data) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(bucket, namespace, name) DO UPDATE SET rv = excluded.rv,"
                " data = excluded.data",
                (bucket, namespace, name, rv, data),
            )
