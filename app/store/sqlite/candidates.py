"""Attribution candidates: the touches one install may be credited to, found by index only.

Three lookups, each riding an index of migration 0001 (`tests/test_installs.py` checks the query
plans, `benchmarks/attribution.py` times them over 10 million touches):
- the click a Play referrer names: the `clicks` primary key, and it must be this app's;
- the probabilistic clicks: `clicks_match (app_key, ip, time)`, the click tier's time range;
- the probabilistic impressions: `impressions_match (app_key, ip, time)`, the view-through range.

The range scans walk the index backwards (latest first, no sort) and stop after
`CANDIDATE_LIMIT` rows plus one, the extra row only telling that the tier was capped. Only the
columns a `Touch` carries are read: the all-params JSON, flags, language and page slug stay on
disk. The functions are plain (a connection in, values out) so the benchmark times exactly what
the server runs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from app.attribution import Candidates, TimeRange
from app.store.columns import CLICK_COLUMNS, TOUCH_COLUMNS
from app.store.common.candidates import (
    Tier,
    candidates_of,
    capped_tier,
    range_params,
    touch_from,
    touch_table,
)
from app.store.records import CandidateQuery
from app.store.sqlite.connections import Connections
from app.touches import Touch, TouchKind

_CLICK_COLUMNS = ", ".join(CLICK_COLUMNS)
_IMPRESSION_COLUMNS = ", ".join(TOUCH_COLUMNS)

REFERRER_CLICK_SQL = f"SELECT {_CLICK_COLUMNS} FROM clicks WHERE id = ? AND app_key = ?"
# `time BETWEEN` after the two equalities is the index's range; ORDER BY its last column, DESC,
# is the index read backwards.
CLICKS_SQL = (
    f"SELECT {_CLICK_COLUMNS} FROM clicks WHERE app_key = ? AND ip = ? "
    "AND time BETWEEN ? AND ? ORDER BY time DESC LIMIT ?"
)
IMPRESSIONS_SQL = (
    f"SELECT {_IMPRESSION_COLUMNS} FROM impressions WHERE app_key = ? AND ip = ? "
    "AND time BETWEEN ? AND ? ORDER BY time DESC LIMIT ?"
)


def find_candidates(conn: sqlite3.Connection, query: CandidateQuery) -> Candidates:
    """The candidates of one install, read on `conn` (a reader connection)."""
    referrer_click = None
    if query.referrer_click_id is not None:
        row = conn.execute(REFERRER_CLICK_SQL, [query.referrer_click_id, query.app_key]).fetchone()
        # A click of another app is no click of this one: the engine sees "unknown id".
        referrer_click = _touch("click", CLICK_COLUMNS, row) if row is not None else None
    if query.ip is None:
        return candidates_of(query, referrer_click, None)
    clicks = _range(conn, CLICKS_SQL, "click", CLICK_COLUMNS, query, query.clicks)
    impressions = _range(
        conn, IMPRESSIONS_SQL, "impression", TOUCH_COLUMNS, query, query.impressions
    )
    return candidates_of(query, referrer_click, (clicks, impressions))


def _range(
    conn: sqlite3.Connection,
    sql: str,
    kind: TouchKind,
    fields: Sequence[str],
    query: CandidateQuery,
    span: TimeRange,
) -> Tier:
    rows = conn.execute(sql, range_params(query, span)).fetchall()
    return capped_tier(rows, query.limit, lambda row: _touch(kind, fields, row))


def _touch(kind: TouchKind, fields: Sequence[str], row: Sequence[Any]) -> Touch:
    # Positional: the reader's rows may be plain tuples or sqlite3.Row, and zip is the fast path.
    return touch_from(kind, dict(zip(fields, row, strict=True)))


class SqliteCandidates:
    """The attribution lookups (`find_candidates`, and a touch by id)."""

    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    async def find_candidates(self, query: CandidateQuery) -> Candidates:
        return await self._conns.read(lambda conn: find_candidates(conn, query))

    async def attributed_touch(self, kind: str, touch_id: str) -> Touch | None:
        source = touch_table(kind)

        def run(conn: sqlite3.Connection) -> Touch | None:
            sql = f"SELECT {', '.join(source.columns)} FROM {source.table} WHERE id = ?"
            row = conn.execute(sql, [touch_id]).fetchone()
            return _touch(source.kind, source.columns, row) if row is not None else None

        return await self._conns.read(run)
