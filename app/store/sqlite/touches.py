"""Touches in SQLite: recording impressions and clicks, and the page view a click comes from.

Every write goes through the group-commit writer, so `record_touch` returns only once the row
is on disk. The unique `(app_key, pvid)` index of impressions keeps one impression per page view.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from app import jsonfast
from app.reports.rollups import Increment
from app.store.columns import CLICK_ONLY_FIELDS, TOUCH_COLUMNS
from app.store.records import PageView
from app.store.sqlite.connections import Connections
from app.store.sqlite.rollups import add_rollups
from app.touches import CAMPAIGN_PARAMS, TouchRecord


def touch_row(rec: TouchRecord) -> dict[str, Any]:
    """The row of a touch: its `Touch` columns, then what only raw data needs."""
    t = rec.touch
    row: dict[str, Any] = {
        column: t.params.get(column) if column in _CAMPAIGN else getattr(t, column)
        for column in TOUCH_COLUMNS
    }
    row["gpc"] = int(t.gpc)
    row["verdict_reasons"] = ",".join(t.verdict_reasons)
    row["page_slug"] = rec.page_slug
    row["language"] = rec.language
    row["in_app"] = rec.in_app
    row["params"] = jsonfast.dumps(dict(rec.all_params))
    row["flags"] = ",".join(rec.flags)
    if t.kind == "click":
        for column in CLICK_ONLY_FIELDS:
            row[column] = getattr(t, column)
        row["destination"] = rec.destination
    return row


_CAMPAIGN = frozenset(CAMPAIGN_PARAMS)


@functools.lru_cache(maxsize=8)
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    """The INSERT of a touch row: the same two texts (click, impression) for every touch."""
    marks = ", ".join(f":{k}" for k in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


class SqliteTouches:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    async def record_touch(self, rec: TouchRecord, *, rollups: Iterable[Increment] = ()) -> str:
        counted = list(rollups)
        table = "clicks" if rec.touch.kind == "click" else "impressions"
        row = touch_row(rec)
        insert = _insert_sql(table, tuple(row))

        def write(db: Database) -> str:
            if table == "impressions" and rec.touch.pvid is not None:
                existing = db.execute(
                    "SELECT id FROM impressions WHERE app_key = ? AND pvid = ?",
                    [rec.touch.app_key, rec.touch.pvid],
                ).fetchone()
                if existing:
                    return str(existing[0])
            db.execute(insert, row)
            add_rollups(db, counted)
            return rec.touch.id

        return await self._conns.write(write)

    async def page_view(self, app_key: str, pvid: str) -> PageView | None:
        # Every click from a landing page asks. One row by the unique (app_key, pvid) index is
        # read on the calling (event loop's) thread: microseconds, where the hop to a worker
        # thread and back cost more than the read.
        row = self._conns.read_sync(
            lambda conn: conn.execute(
                "SELECT original_url, page_slug FROM impressions WHERE app_key = ? AND pvid = ?",
                [app_key, pvid],
            ).fetchone()
        )
        return PageView(row["original_url"], row["page_slug"]) if row else None
