"""Attribution candidates in PostgreSQL: the same three lookups as SQLite's, by index only.

- the click a Play referrer names: the clicks' primary key `(id, time)`, one probe per day
  partition (the id alone does not say its day), and it must be this app's;
- the probabilistic clicks and impressions: `<table>_match (app_key, ip, time)`; the time range
  prunes the scan to the partitions of the tier's days, so a year of touches costs what a week
  does, and each partition's index is read backwards (latest first) up to the cap plus one.

The functions are plain (a connection in, values out) so `benchmarks/nodes.py` times exactly
what the server runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.attribution import Candidates, TimeRange
from app.store.columns import CLICK_COLUMNS, TOUCH_COLUMNS
from app.store.common.candidates import (
    Tier,
    candidates_of,
    capped_tier,
    range_params,
    touch_from_row,
    touch_table,
)
from app.store.postgres.connections import Conn, Database
from app.store.records import CandidateQuery
from app.touches import Touch, TouchKind

_CLICK_COLUMNS = ", ".join(CLICK_COLUMNS)
_IMPRESSION_COLUMNS = ", ".join(TOUCH_COLUMNS)

REFERRER_CLICK_SQL = f"SELECT {_CLICK_COLUMNS} FROM clicks WHERE id = %s AND app_key = %s"
CLICKS_SQL = (
    f"SELECT {_CLICK_COLUMNS} FROM clicks WHERE app_key = %s AND ip = %s "
    "AND time BETWEEN %s AND %s ORDER BY time DESC LIMIT %s"
)
IMPRESSIONS_SQL = (
    f"SELECT {_IMPRESSION_COLUMNS} FROM impressions WHERE app_key = %s AND ip = %s "
    "AND time BETWEEN %s AND %s ORDER BY time DESC LIMIT %s"
)


async def find_candidates(conn: Conn, query: CandidateQuery) -> Candidates:
    """The candidates of one install, read on `conn`."""
    referrer_click = None
    if query.referrer_click_id is not None:
        cursor = await conn.execute(REFERRER_CLICK_SQL, [query.referrer_click_id, query.app_key])
        row = await cursor.fetchone()
        # A click of another app is no click of this one: the engine sees "unknown id".
        referrer_click = touch_from_row("click", CLICK_COLUMNS, row) if row is not None else None
    if query.ip is None:
        return candidates_of(query, referrer_click, None)
    clicks = await _range(conn, CLICKS_SQL, "click", CLICK_COLUMNS, query, query.clicks)
    impressions = await _range(
        conn, IMPRESSIONS_SQL, "impression", TOUCH_COLUMNS, query, query.impressions
    )
    return candidates_of(query, referrer_click, (clicks, impressions))


async def _range(
    conn: Conn,
    sql: str,
    kind: TouchKind,
    fields: Sequence[str],
    query: CandidateQuery,
    span: TimeRange,
) -> Tier:
    cursor = await conn.execute(sql, range_params(query, span))
    rows = await cursor.fetchall()
    return capped_tier(rows, query.limit, lambda row: touch_from_row(kind, fields, row))


class PostgresCandidates:
    """The attribution lookups (`find_candidates`, and a touch by id)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def find_candidates(self, query: CandidateQuery) -> Candidates:
        return await self._db.read(lambda conn: find_candidates(conn, query))

    async def attributed_touch(self, kind: str, touch_id: str) -> Touch | None:
        source = touch_table(kind)
        row = await self._db.one(
            f"SELECT {', '.join(source.columns)} FROM {source.table} WHERE id = %s", [touch_id]
        )
        return touch_from_row(source.kind, source.columns, row) if row is not None else None
