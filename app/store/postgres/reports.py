"""Reports in PostgreSQL: the overview's sums over `rollups`, the rebuild, and raw data streams.

An overview reads one range of the rollups' primary key (app_key, hour, ...). Each raw export
reads from a server-side cursor on a connection of its own, opened for the export and closed
after it (or when the client goes), so it holds no pooled connection another request needs.

The rebuild is one transaction that first locks both rollup tables against writers (readers go
on): a row written meanwhile waits to add its rollups until the rebuild has committed, and the
rebuild, reading committed rows only, has not counted it; so no increment is lost or counted
twice, as with SQLite's single writer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row, tuple_row

from app.conversions import Event, Install
from app.postbacks.postback import PostbackRecord
from app.reports.overview import RollupSum
from app.reports.rollups import RollupFold, RollupKey
from app.store.columns import INSTALL_COLUMNS
from app.store.common.candidates import TOUCH_TABLES, touch_from_row, touch_table
from app.store.common.outbox import postback_from_row
from app.store.common.reports import (
    EVENT_INSTALLS_SELECT,
    RebuildTotals,
    event_and_install,
    install_from,
    rollup_groups,
    rollup_sums,
    rollup_values,
    touch_record,
    touch_record_columns,
)
from app.store.postgres.connections import Conn, Database
from app.store.postgres.rollups import BY_SOURCE, ROLLUP_COLUMNS, add_rollups
from app.touches import TouchRecord

T = TypeVar("T")
# Rows fetched per round trip of the rebuild's cursors.
_REBUILD_FETCH = 5000

# Each event with its own install (i) and, for a reinstall, the device's first install (f).
EVENTS_WITH_INSTALLS = (
    f"SELECT {EVENT_INSTALLS_SELECT} FROM events e "
    "JOIN installs i ON i.id = e.install_id LEFT JOIN installs f ON f.id = i.reinstall_of"
)


# Raw install rows leave out the receipt and conversion data (raw data shows neither).
_RAW_INSTALL_SELECT = ", ".join(
    f"'{{}}' AS {c}" if c in ("receipt", "answer") else c for c in INSTALL_COLUMNS
)


class PostgresReports:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- overview ------------------------------------------------------------------------------

    async def sum_rollups(
        self,
        app_key: str,
        first_hour: int,
        end_hour: int,
        group_by: Sequence[str],
        filters: Mapping[str, str],
        segments: Sequence[tuple[int, int]],
    ) -> list[RollupSum]:
        groups = rollup_groups(group_by, filters)
        # Grouped and filtered by media source at most: the narrow table has the same sums.
        table = "rollups_by_source" if set(groups) | set(filters) <= BY_SOURCE else "rollups"
        where = ["app_key = %s", "hour >= %s", "hour < %s", *(f"{name} = %s" for name in filters)]
        params: list[Any] = [app_key, first_hour, end_hour, *filters.values()]
        # The local day of each hour, by the offset of its stretch (latest stretch first);
        # integer division truncates as SQLite's does.
        cases = " ".join(
            f"WHEN hour >= {int(start)} THEN (hour * 3600 + {int(offset)}) / 86400"
            for start, offset in reversed(segments)
        )
        day = f"CASE {cases} ELSE (hour * 3600 + {int(segments[0][1])}) / 86400 END"
        keys = ", ".join(["day", *groups, "metric"])
        sql = (
            f"SELECT {day} AS day, {', '.join([*groups, 'metric'])}, SUM(value)::bigint "
            f"FROM {table} WHERE {' AND '.join(where)} GROUP BY {keys}"
        )

        async def run(conn: Conn) -> list[RollupSum]:
            async with conn.cursor(row_factory=tuple_row) as cur:
                await cur.execute(sql, params)
                rows = await cur.fetchall()
            return rollup_sums(rows, len(groups))

        return await self._db.read(run)

    async def rollup_values(self, app_key: str) -> dict[RollupKey, int]:
        rows = await self._db.all(
            f"SELECT {', '.join(ROLLUP_COLUMNS)}, value FROM rollups "
            "WHERE app_key = %s AND value != 0",
            [app_key],
        )
        return rollup_values(rows, ROLLUP_COLUMNS)

    async def rebuild_rollups(self, app_key: str | None, fold: RollupFold) -> int:
        where = " WHERE app_key = %s" if app_key is not None else ""
        args: list[Any] = [app_key] if app_key is not None else []

        async def rows_of(conn: Conn, sql: str) -> AsyncIterator[dict[str, Any]]:
            async with conn.cursor(name="gangway_rebuild") as cur:
                await cur.execute(sql, args)
                while rows := await cur.fetchmany(_REBUILD_FETCH):
                    for row in rows:
                        yield row

        async def write(conn: Conn) -> int:
            await conn.execute("LOCK TABLE rollups, rollups_by_source IN EXCLUSIVE MODE")
            totals = RebuildTotals(fold)
            await conn.execute(f"DELETE FROM rollups{where}", args)
            await conn.execute(f"DELETE FROM rollups_by_source{where}", args)
            for source in TOUCH_TABLES:
                touch_sql = f"SELECT {', '.join(source.columns)} FROM {source.table}{where}"
                async for row in rows_of(conn, touch_sql):
                    totals.touch(touch_from_row(source.kind, source.columns, row))
            install_sql = f"SELECT {', '.join(INSTALL_COLUMNS)} FROM installs{where}"
            async for row in rows_of(conn, install_sql):
                totals.install(row)
            event_where = " WHERE e.app_key = %s" if app_key is not None else ""
            async for row in rows_of(conn, EVENTS_WITH_INSTALLS + event_where):
                totals.event(row)
            kept = totals.increments()
            await add_rollups(conn, kept)
            return len(kept)

        return await self._db.write(write)

    # -- raw data ------------------------------------------------------------------------------

    async def _stream(
        self,
        sql: str,
        params: Sequence[Any],
        convert: Callable[[dict[str, Any]], T],
        batch: int,
    ) -> AsyncIterator[list[T]]:
        conn = await psycopg.AsyncConnection.connect(self._db.url, row_factory=dict_row)
        try:
            async with conn.transaction(), conn.cursor(name="gangway_export") as cur:
                await cur.execute(sql, params)
                while rows := await cur.fetchmany(batch):
                    yield [convert(r) for r in rows]
        finally:
            await conn.close()

    def stream_installs(
        self, app_key: str, start: float, end: float, *, batch: int = 1000
    ) -> AsyncIterator[list[Install]]:
        return self._stream(
            f"SELECT {_RAW_INSTALL_SELECT} FROM installs "
            'WHERE app_key = %s AND time >= %s AND time < %s ORDER BY time, id COLLATE "C"',
            [app_key, start, end],
            install_from,
            batch,
        )

    def stream_events(
        self, app_key: str, start: float, end: float, *, batch: int = 1000
    ) -> AsyncIterator[list[tuple[Event, Install]]]:
        return self._stream(
            f"{EVENTS_WITH_INSTALLS} WHERE e.app_key = %s AND e.event_time >= %s "
            'AND e.event_time < %s ORDER BY e.event_time, e.id COLLATE "C"',
            [app_key, start, end],
            event_and_install,
            batch,
        )

    def stream_touches(
        self, kind: str, app_key: str, start: float, end: float, *, batch: int = 1000
    ) -> AsyncIterator[list[TouchRecord]]:
        source = touch_table(kind)
        return self._stream(
            f"SELECT {touch_record_columns(source)} FROM {source.table} "
            'WHERE app_key = %s AND time >= %s AND time < %s ORDER BY time, id COLLATE "C"',
            [app_key, start, end],
            lambda row: touch_record(kind, row),
            batch,
        )

    def stream_postbacks(
        self, app_key: str, start: float, end: float, *, batch: int = 1000
    ) -> AsyncIterator[list[PostbackRecord]]:
        return self._stream(
            "SELECT * FROM postbacks WHERE app_key = %s AND created_at >= %s "
            'AND created_at < %s ORDER BY created_at, id COLLATE "C"',
            [app_key, start, end],
            postback_from_row,
            batch,
        )
