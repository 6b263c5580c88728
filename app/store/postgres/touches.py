"""Touches in PostgreSQL: recording impressions and clicks, and the page view a click comes from.

A write returns after COMMIT. One impression per page view holds across nodes through the
primary key of `page_views (app_key, pvid)`: the impression and its page view are inserted in
one transaction, and a second node inserting the same `pvid` waits for the first, finds the
conflict and answers the first impression's id, writing nothing.

The write runs pipelined: every touch of a campaign-hour adds to the same rollup row, and
sending those upserts with the COMMIT keeps that row locked for the server's time only
(docs/scale.md, "What breaks first").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg.errors

from app.reports.rollups import Increment
from app.store.columns import CLICK_ONLY_FIELDS, TOUCH_COLUMNS
from app.store.jsontext import json_text
from app.store.postgres.connections import Conn, Database
from app.store.postgres.partitions import day_of, ensure_days
from app.store.postgres.rollups import add_rollups
from app.store.postgres.rows import clean
from app.store.records import PageView
from app.touches import CAMPAIGN_PARAMS, TouchRecord

_CAMPAIGN = frozenset(CAMPAIGN_PARAMS)


def touch_row(rec: TouchRecord) -> dict[str, Any]:
    """The row of a touch: its `Touch` columns, then what only raw data needs."""
    t = rec.touch
    row: dict[str, Any] = {
        column: t.params.get(column) if column in _CAMPAIGN else getattr(t, column)
        for column in TOUCH_COLUMNS
    }
    row["gpc"] = bool(t.gpc)
    row["verdict_reasons"] = ",".join(t.verdict_reasons)
    row["page_slug"] = rec.page_slug
    row["language"] = rec.language
    row["in_app"] = rec.in_app
    row["params"] = json_text(dict(rec.all_params))
    row["flags"] = ",".join(rec.flags)
    if t.kind == "click":
        for column in CLICK_ONLY_FIELDS:
            row[column] = getattr(t, column)
        row["destination"] = rec.destination
    return {k: clean(v) for k, v in row.items()}


async def make_partition(conn: Conn, error: Exception, time: float) -> bool:
    """Repairs a write that found no partition for its day: makes it (partitions are made
    ahead of time; this is for touches outside that range, such as copied old ones)."""
    if not (isinstance(error, psycopg.errors.CheckViolation) and "no partition" in str(error)):
        return False
    await ensure_days(conn, [day_of(time)])
    return True


class PostgresTouches:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_touch(self, rec: TouchRecord, *, rollups: Iterable[Increment] = ()) -> str:
        counted = list(rollups)
        t = rec.touch
        table = "clicks" if t.kind == "click" else "impressions"
        row = touch_row(rec)
        columns = ", ".join(row)
        marks = ", ".join(f"%({k})s" for k in row)
        insert = f"INSERT INTO {table} ({columns}) VALUES ({marks})"

        async def write(conn: Conn) -> str:
            if table == "impressions" and t.pvid is not None:
                cursor = await conn.execute(
                    "INSERT INTO page_views (app_key, pvid, impression_id, time, original_url, "
                    "page_slug) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING "
                    "RETURNING impression_id",
                    [t.app_key, row["pvid"], t.id, t.time, row["original_url"], rec.page_slug],
                )
                if await cursor.fetchone() is None:
                    cursor = await conn.execute(
                        "SELECT impression_id FROM page_views WHERE app_key = %s AND pvid = %s",
                        [t.app_key, row["pvid"]],
                    )
                    existing = await cursor.fetchone()
                    assert existing is not None
                    return str(existing["impression_id"])
            await conn.execute(insert, row)
            # Only a new touch counts: a repeated page view answered above adds nothing.
            await add_rollups(conn, counted)
            return t.id

        async def repair(conn: Conn, error: Exception) -> bool:
            return await make_partition(conn, error, t.time)

        return await self._db.write(write, repair=repair, pipelined=True)

    async def page_view(self, app_key: str, pvid: str) -> PageView | None:
        row = await self._db.one(
            "SELECT original_url, page_slug FROM page_views WHERE app_key = %s AND pvid = %s",
            [app_key, pvid],
        )
        return PageView(row["original_url"], row["page_slug"]) if row else None
