"""The single writer of a SQLite file, with group commit.

SQLite allows one writer at a time; rather than let request handlers fight over the lock, every
write is a function handed to one thread that owns the write connection. The thread takes
whatever is queued (up to `batch_max` writes), runs each inside its own SAVEPOINT of one
transaction, commits once, and only then resolves the waiting requests. So:

- a handler that awaits `write(fn)` and then answers 2xx has its row on disk (WAL with
  `synchronous=FULL`: the commit is fsynced);
- one fsync serves a whole batch, which is what keeps throughput up under load;
- one failing write rolls back to its savepoint and fails alone; its neighbours still commit.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlite_utils import Database

from app.store.records import LATENCY_BUCKETS

log = logging.getLogger("gangway.writer")

T = TypeVar("T")
WriteFn = Callable[[Database], Any]

_STOP = object()


@dataclass
class WriterStats:
    """What /metrics shows about the writer."""

    batches: int = 0
    writes: int = 0
    failed_writes: int = 0
    last_batch_size: int = 0
    commit_seconds_total: float = 0.0
    commit_seconds_max: float = 0.0
    # Histogram buckets of batch commit latency (seconds -> count), cumulative like Prometheus.
    buckets: dict[float, int] = field(default_factory=lambda: dict.fromkeys(LATENCY_BUCKETS, 0))

    def observe(self, seconds: float, size: int) -> None:
        self.batches += 1
        self.writes += size
        self.last_batch_size = size
        self.commit_seconds_total += seconds
        self.commit_seconds_max = max(self.commit_seconds_max, seconds)
        for bound in self.buckets:
            if seconds <= bound:
                self.buckets[bound] += 1


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the pragmas every Gangway connection needs."""
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
        )
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss, and a
        # 2xx answer promises the row is on disk. Group commit pays for the extra fsync.
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Writer:
    """Owns the write connection; `await write(fn)` runs `fn(db)` and returns after commit."""

    def __init__(self, path: str, *, batch_max: int = 256) -> None:
        self.path = path
        self.batch_max = batch_max
        self.stats = WriterStats()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._db: Database | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="gangway-writer", daemon=True
        )
        self._thread.start()
        ready.result()

    def stop(self) -> None:
        """Commit what is queued, then close the connection."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join()
        self._thread = None

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    # -- submitting ------------------------------------------------------------------------

    async def write(self, fn: Callable[[Database], T]) -> T:
        """Run `fn` in the next batch; return its result once the batch is committed."""
        return await asyncio.wrap_future(self.submit(fn))

    def write_sync(self, fn: Callable[[Database], T]) -> T:
        """The same, for callers outside the event loop (command line, tests)."""
        return self.submit(fn).result()

    def submit(self, fn: Callable[[Database], T]) -> Future[T]:
        if self._thread is None:
            raise RuntimeError("writer is not running")
        future: Future[T] = Future()
        self._queue.put((fn, future))
        return future

    # -- the thread ------------------------------------------------------------------------

    def _run(self, ready: Future[None]) -> None:
        try:
            conn = connect(self.path)
            self._db = Database(conn)
        except Exception as exc:  # start() re-raises it in the caller
            ready.set_exception(exc)
            return
        ready.set_result(None)
        stopping = False
        while not stopping:
            batch: list[tuple[WriteFn, Future[Any]]] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)
                if len(batch) >= self.batch_max:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit_batch(conn, batch)
        conn.close()

    def _commit_batch(
        self, conn: sqlite3.Connection, batch: list[tuple[WriteFn, Future[Any]]]
    ) -> None:
        assert self._db is not None
        started = time.perf_counter()
        outcomes: list[tuple[Future[Any], bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, future in batch:
                if not future.set_running_or_notify_cancel():
                    continue
                conn.execute("SAVEPOINT w")
                try:
                    result = fn(self._db)
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                    conn.execute("ROLLBACK TO w")
                    conn.execute("RELEASE w")
                    outcomes.append((future, False, exc))
                else:
                    conn.execute("RELEASE w")
                    outcomes.append((future, True, result))
            conn.execute("COMMIT")
        except Exception as exc:
            log.exception("group commit failed; %d writes refused", len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            self.stats.failed_writes += len(batch)
            return
        elapsed = time.perf_counter() - started
        self.stats.observe(elapsed, len(batch))
        # Resolve only after COMMIT: a caller must never answer for a row that is not on disk.
        for future, ok, value in outcomes:
            if ok:
                future.set_result(value)
            else:
                self.stats.failed_writes += 1
                future.set_exception(value)
