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

from collections.abc import Mapping, Sequence
from typing import Any

from app.attribution import Candidates, TimeRange
from app.store.columns import CLICK_COLUMNS, TOUCH_COLUMNS
from app.store.postgres.connections import Conn, Database
from app.store.records import CandidateQuery
from app.touches import CAMPAIGN_PARAMS, Touch, TouchKind, Verdict

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
        referrer_click = _touch("click", CLICK_COLUMNS, row) if row is not None else None
    clicks: list[Touch] = []
    impressions: list[Touch] = []
    clicks_capped = impressions_capped = False
    if query.ip is not None:
        clicks, clicks_capped = await _range(
            conn, CLICKS_SQL, "click", CLICK_COLUMNS, query, query.clicks
        )
        impressions, impressions_capped = await _range(
            conn, IMPRESSIONS_SQL, "impression", TOUCH_COLUMNS, query, query.impressions
        )
    return Candidates(
        referrer_click=referrer_click,
        referrer_click_id=query.referrer_click_id,
        clicks=clicks,
        impressions=impressions,
        clicks_capped=clicks_capped,
        impressions_capped=impressions_capped,
    )


async def _range(
    conn: Conn,
    sql: str,
    kind: TouchKind,
    fields: Sequence[str],
    query: CandidateQuery,
    span: TimeRange,
) -> tuple[list[Touch], bool]:
    cursor = await conn.execute(
        sql,
        [query.app_key, query.ip, span.start, span.end, query.limit + 1],
    )
    rows = await cursor.fetchall()
    capped = len(rows) > query.limit
    return [_touch(kind, fields, row) for row in rows[: query.limit]], capped


def _touch(kind: TouchKind, fields: Sequence[str], row: Mapping[str, Any]) -> Touch:
    values = {f: row[f] for f in fields}
    params = {k: v for k in CAMPAIGN_PARAMS if (v := values.pop(k)) is not None}
    verdict: Verdict = values["verdict"] if values["verdict"] in ("bot", "suspect") else "human"
    values["verdict"] = verdict
    values["verdict_reasons"] = tuple(r for r in (values["verdict_reasons"] or "").split(",") if r)
    values["gpc"] = bool(values["gpc"])
    return Touch(kind=kind, params=params, **values)


class PostgresCandidates:
    """The attribution lookups (`find_candidates`, and a touch by id)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def find_candidates(self, query: CandidateQuery) -> Candidates:
        return await self._db.read(lambda conn: find_candidates(conn, query))

    async def attributed_touch(self, kind: str, touch_id: str) -> Touch | None:
        touch_kind: TouchKind = "click" if kind == "click" else "impression"
        fields = CLICK_COLUMNS if touch_kind == "click" else TOUCH_COLUMNS
        table = "clicks" if touch_kind == "click" else "impressions"
        row = await self._db.one(
            f"SELECT {', '.join(fields)} FROM {table} WHERE id = %s", [touch_id]
        )
        return _touch(touch_kind, fields, row) if row is not None else None
