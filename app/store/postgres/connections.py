"""The connection pool of one PostgreSQL database, shared by every query class of the backend.

Each query class holds the `Database` (composition, as the SQLite backend's `Connections`): it
writes with `await db.write(fn)`, where `fn` runs inside one transaction and the call returns
only after COMMIT, and reads with `one` or `all` on an autocommit connection (no BEGIN/COMMIT
round trips for a single SELECT).

Durability: every connection runs with `synchronous_commit = on`, so a COMMIT returns once the
WAL is flushed on the server; a 2xx answered after `write` promises the row survives a crash,
as on SQLite. There is no group commit of our own here: PostgreSQL flushes concurrent commits
together, and several nodes write at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from app.store.records import LATENCY_BUCKETS, StoreStats

T = TypeVar("T")
Conn = AsyncConnection[DictRow]


@dataclass
class WriteStats:
    writes: int = 0
    failed_writes: int = 0
    commit_seconds_total: float = 0.0
    buckets: dict[float, int] = field(default_factory=lambda: dict.fromkeys(LATENCY_BUCKETS, 0))

    def observe(self, seconds: float) -> None:
        self.writes += 1
        self.commit_seconds_total += seconds
        for bound in self.buckets:
            if seconds <= bound:
                self.buckets[bound] += 1


class Rollback(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a write that must write nothing after all (an idempotent repeat): the
    transaction rolls back and `write` answers `answer`, counted as no failure."""

    def __init__(self, answer: object) -> None:
        self.answer = answer


async def _configure(conn: Conn) -> None:
    # Explicit, whatever the server's default: an acknowledged write must be on disk.
    await conn.execute("SET synchronous_commit = on")


class Database:
    """Open with `await Database.open(url)`; close with `await close()`."""

    def __init__(self, url: str, pool: AsyncConnectionPool[Conn]) -> None:
        self.url = url
        self.pool = pool
        self.stats = WriteStats()

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 10) -> Database:
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=_configure,
            connection_class=AsyncConnection[DictRow],
            name="gangway",
        )
        await pool.open(wait=True, timeout=30)
        return cls(url, pool)

    async def close(self) -> None:
        await self.pool.close()

    async def write(
        self,
        fn: Callable[[Conn], Awaitable[T]],
        *,
        repair: Callable[[Conn, Exception], Awaitable[bool]] | None = None,
        pipelined: bool = False,
    ) -> T:
        """Run `fn` in one transaction; return its result once committed. When it fails and
        `repair(conn, error)` answers True (it fixed the cause, e.g. made a missing
        partition), `fn` runs once more in a new transaction.

        `pipelined`: the transaction runs in pipeline mode. Statements whose results `fn`
        does not read are sent without waiting for their answers, and COMMIT goes with them:
        a hot row locked by the last statements (a rollup every touch adds to) is held for the
        server's time only, not for round trips and the event loop's turns back to this
        request. An error may then surface at COMMIT rather than at its statement; it is
        handled the same way."""
        started = time.perf_counter()
        async with self.pool.connection() as conn:
            try:
                try:
                    result = await self._transaction(conn, fn, pipelined)
                except Rollback:
                    raise
                except Exception as exc:
                    if repair is None or not await repair(conn, exc):
                        raise
                    result = await self._transaction(conn, fn, pipelined)
            except Rollback as rollback:
                return rollback.answer  # type: ignore[return-value]
            except BaseException:
                self.stats.failed_writes += 1
                raise
        self.stats.observe(time.perf_counter() - started)
        return result

    @staticmethod
    async def _transaction(conn: Conn, fn: Callable[[Conn], Awaitable[T]], pipelined: bool) -> T:
        if not pipelined:
            async with conn.transaction():
                return await fn(conn)
        async with conn.pipeline(), conn.transaction():
            return await fn(conn)

    async def read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        async with self.pool.connection() as conn:
            return await fn(conn)

    async def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone()

    async def all(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return list(await cursor.fetchall())

    def store_stats(self) -> StoreStats:
        s = self.stats
        waiting = int(self.pool.get_stats().get("requests_waiting", 0))
        return StoreStats(
            writes=s.writes,
            # One transaction per write: each commit is its own batch.
            batches=s.writes,
            failed_writes=s.failed_writes,
            queue_depth=waiting,
            commit_seconds_total=s.commit_seconds_total,
            commit_buckets=dict(s.buckets),
        )
