"""The single writer of a SQLite file, with group commit.

SQLite allows one writer at a time; rather than let request handlers fight over the lock, every
write is a function handed to one thread that owns the write connection. The thread takes
whatever is queued (up to `batch_max` writes), runs them all in one transaction, commits once,
and only then resolves the waiting requests. So:

- a handler that awaits `write(fn)` and then answers 2xx has its row on disk (WAL with
  `synchronous=FULL`: the commit is fsynced);
- one fsync serves a whole batch, which is what keeps throughput up under load;
- one failing write fails alone: the batch is rolled back and done again write by write, each
  in its own transaction, so its neighbours still commit. (A SAVEPOINT around every write did
  the same at a cost paid by every write; a failing write is rare, so its batch pays instead.)
- the waiting requests of one event loop are woken together, one wake-up per committed batch,
  not one per write.
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
# Who waits for a write: a thread (a concurrent Future) or a coroutine (an asyncio Future of
# the loop it runs on).
Waiter = Future[Any] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
Outcome = tuple[Waiter, bool, Any]

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
        if self._thread is None:
            raise RuntimeError("writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, (loop, future)))
        return await future

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
            batch: list[tuple[WriteFn, Waiter]] = []
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

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[tuple[WriteFn, Waiter]]) -> None:
        assert self._db is not None
        started = time.perf_counter()
        # A waiter that gave up (its request was cancelled) before the batch began is skipped.
        live = [(fn, waiter) for fn, waiter in batch if _still_waiting(waiter)]
        outcomes: list[Outcome] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            failed = False
            for fn, waiter in live:
                try:
                    outcomes.append((waiter, True, fn(self._db)))
                except BaseException:  # noqa: BLE001 - the batch is redone write by write
                    failed = True
                    break
            if failed:
                conn.execute("ROLLBACK")
                outcomes = [self._write_alone(conn, fn, waiter) for fn, waiter in live]
            else:
                conn.execute("COMMIT")
        except Exception as exc:
            log.exception("group commit failed; %d writes refused", len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.stats.failed_writes += len(live)
            _resolve([(waiter, False, exc) for _, waiter in live])
            return
        elapsed = time.perf_counter() - started
        self.stats.observe(elapsed, len(live))
        self.stats.failed_writes += sum(1 for _, ok, _ in outcomes if not ok)
        # Resolve only after COMMIT: a caller must never answer for a row that is not on disk.
        _resolve(outcomes)

    def _write_alone(self, conn: sqlite3.Connection, fn: WriteFn, waiter: Waiter) -> Outcome:
        """One write in its own transaction: committed, or rolled back and its error kept."""
        assert self._db is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(self._db)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            conn.execute("ROLLBACK")
            return waiter, False, exc
        conn.execute("COMMIT")
        return waiter, True, result


def _still_waiting(waiter: Waiter) -> bool:
    if isinstance(waiter, Future):
        return waiter.set_running_or_notify_cancel()
    return not waiter[1].cancelled()


def _resolve(outcomes: list[Outcome]) -> None:
    """Threads are told at once; each event loop is woken once, for all its coroutines."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for waiter, ok, value in outcomes:
        if isinstance(waiter, Future):
            if ok:
                waiter.set_result(value)
            else:
                waiter.set_exception(value)
        else:
            loop, future = waiter
            by_loop.setdefault(loop, []).append((future, ok, value))
    for loop, results in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, results)
        except RuntimeError:
            pass  # the loop is closed: nobody is left to tell


def _settle(results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in results:
        if future.done():  # cancelled meanwhile
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
