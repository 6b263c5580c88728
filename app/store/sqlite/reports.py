"""Reports in SQLite: the overview's sums over `rollups`, the rebuild, and raw data streams.

`rollups` is a WITHOUT ROWID table whose primary key starts (app_key, hour, dims...), so an
overview reads one contiguous range of it and groups in key order. Each raw export reads from a
connection of its own, opened for the export and closed after it (or when the client goes), so
it holds no reader another request needs; the batches are fetched in a worker thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio.to_thread
from sqlite_utils import Database

from app.conversions import Event, Install
from app.postbacks.postback import PostbackRecord
from app.reports.overview import RollupSum
from app.reports.rollups import RollupFold, RollupKey
from app.store.columns import BOOLEAN_COLUMNS, INSTALL_COLUMNS
from app.store.common.candidates import TOUCH_TABLES, touch_table
from app.store.common.outbox import postback_from_row
from app.store.common.reports import (
    EVENT_INSTALLS_SELECT,
    RebuildTotals,
    event_and_install,
    rollup_groups,
    rollup_sums,
    rollup_values,
    touch_record,
    touch_record_columns,
)
from app.store.sqlite.candidates import _touch
from app.store.sqlite.connections import Connections
from app.store.sqlite.rollups import BY_SOURCE, ROLLUP_COLUMNS, add_rollups
from app.store.sqlite.writer import connect
from app.touches import TouchRecord

T = TypeVar("T")
# Rows summed per rebuild flush: bounds the rebuild's memory by keys, not rows.
_REBUILD_FETCH = 5000

# Each event with its own install (i) and, for a reinstall, the device's first install (f).
EVENTS_WITH_INSTALLS = (
    f"SELECT {EVENT_INSTALLS_SELECT} FROM events e "
    "JOIN installs i ON i.id = e.install_id LEFT JOIN installs f ON f.id = i.reinstall_of"
)


# Raw install rows leave out the receipt and conversion data (raw data shows neither): reading
# and decoding those documents was most of an export's time.
_RAW_INSTALL_SELECT = ", ".join(
    "'{}'" if c in ("receipt", "answer") else c for c in INSTALL_COLUMNS
)
_BOOLEAN_AT = tuple(i for i, c in enumerate(INSTALL_COLUMNS) if c in BOOLEAN_COLUMNS)
_EMPTY_DOCUMENT_AT = tuple(i for i, c in enumerate(INSTALL_COLUMNS) if c in ("receipt", "answer"))


def _raw_install(row: Sequence[Any]) -> Install:
    values = list(row)
    for i in _BOOLEAN_AT:
        values[i] = bool(values[i])
    for i in _EMPTY_DOCUMENT_AT:
        values[i] = {}
    return Install(*values)


class SqliteReports:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

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
        where = ["app_key = ?", "hour >= ?", "hour < ?", *(f"{name} = ?" for name in filters)]
        params: list[Any] = [app_key, first_hour, end_hour, *filters.values()]
        # The local day of each hour, by the offset of its stretch (latest stretch first).
        cases = " ".join(
            f"WHEN hour >= {int(start)} THEN (hour * 3600 + {int(offset)}) / 86400"
            for start, offset in reversed(segments)
        )
        day = f"CASE {cases} ELSE (hour * 3600 + {int(segments[0][1])}) / 86400 END"
        keys = ", ".join(["day", *groups, "metric"])
        sql = (
            f"SELECT {day} AS day, {', '.join([*groups, 'metric'])}, SUM(value) FROM {table} "
            f"WHERE {' AND '.join(where)} GROUP BY {keys}"
        )

        def run(conn: sqlite3.Connection) -> list[RollupSum]:
            cur = conn.execute(sql, params)
            cur.row_factory = None  # plain tuples: the fast path
            return rollup_sums(cur, len(groups))

        return await self._conns.read(run)

    async def rollup_values(self, app_key: str) -> dict[RollupKey, int]:
        rows = await self._conns.all(
            f"SELECT {', '.join(ROLLUP_COLUMNS)}, value FROM rollups "
            "WHERE app_key = ? AND value != 0",
            [app_key],
        )
        return rollup_values(rows, ROLLUP_COLUMNS)

    async def rebuild_rollups(self, app_key: str | None, fold: RollupFold) -> int:
        def write(db: Database) -> int:
            conn = db.conn
            where = " WHERE app_key = ?" if app_key is not None else ""
            args: list[Any] = [app_key] if app_key is not None else []
            totals = RebuildTotals(fold)
            conn.execute(f"DELETE FROM rollups{where}", args)
            conn.execute(f"DELETE FROM rollups_by_source{where}", args)
            for source in TOUCH_TABLES:
                fields = ", ".join(source.columns)
                cur = conn.execute(f"SELECT {fields} FROM {source.table}{where}", args)
                while rows := cur.fetchmany(_REBUILD_FETCH):
                    for row in rows:
                        totals.touch(_touch(source.kind, source.columns, row))
            cur = conn.execute(f"SELECT {', '.join(INSTALL_COLUMNS)} FROM installs{where}", args)
            names = [d[0] for d in cur.description]
            while rows := cur.fetchmany(_REBUILD_FETCH):
                for row in rows:
                    totals.install(dict(zip(names, row, strict=True)))
            event_where = " WHERE e.app_key = ?" if app_key is not None else ""
            cur = conn.execute(EVENTS_WITH_INSTALLS + event_where, args)
            names = [d[0] for d in cur.description]
            while rows := cur.fetchmany(_REBUILD_FETCH):
                for row in rows:
                    totals.event(dict(zip(names, row, strict=True)))
            kept = totals.increments()
            add_rollups(db, kept)
            return len(kept)

        return await self._conns.write(write)

    # -- raw data ------------------------------------------------------------------------------

    async def _stream(
        self,
        sql: str,
        params: Sequence[Any],
        convert: Callable[[Any], T],
        batch: int,
        *,
        plain: bool = False,
    ) -> AsyncIterator[list[T]]:
        """`plain`: rows are tuples in SELECT order (the fast path), else sqlite3.Row."""
        path = self._conns.path

        def open_cursor() -> tuple[sqlite3.Connection, sqlite3.Cursor]:
            conn = connect(path, readonly=True)
            if not plain:
                conn.row_factory = sqlite3.Row
            return conn, conn.execute(sql, params)

        conn, cur = await anyio.to_thread.run_sync(open_cursor)
        try:
            while True:
                rows = await anyio.to_thread.run_sync(cur.fetchmany, batch)
                if not rows:
                    return
                yield [convert(r) for r in rows]
        finally:
            conn.close()

    def stream_installs(
        self, app_key: str, start: float, end: float, *, batch: int = 1000
    ) -> AsyncIterator[list[Install]]:
        return self._stream(
            f"SELECT {_RAW_INSTALL_SELECT} FROM installs "
            "WHERE app_key = ? AND time >= ? AND time < ? ORDER BY time, id",
            [app_key, start, end],
            _raw_install,
            batch,
            plain=True,
        )

    def stream_events(
        self, app_key: str, start: float, end: float, *, batch: int = 1000
    ) -> AsyncIterator[list[tuple[Event, Install]]]:
        return self._stream(
            f"{EVENTS_WITH_INSTALLS} WHERE e.app_key = ? AND e.event_time >= ? "
            "AND e.event_time < ? ORDER BY e.event_time, e.id",
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
            "WHERE app_key = ? AND time >= ? AND time < ? ORDER BY time, id",
            [app_key, start, end],
            lambda row: touch_record(kind, row),
            batch,
        )

    def stream_postbacks(
        self, app_key: str, start: float, end: float, *, batch: int = 1000
    ) -> AsyncIterator[list[PostbackRecord]]:
        return self._stream(
            "SELECT * FROM postbacks WHERE app_key = ? AND created_at >= ? AND created_at < ? "
            "ORDER BY created_at, id",
            [app_key, start, end],
            postback_from_row,
            batch,
        )
