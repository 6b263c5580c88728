"""Adding rollup increments inside a write (the caller's transaction), shared by every write
that records a counted row.

Each increment is `INSERT ... ON CONFLICT DO UPDATE SET value = value + excluded.value`, so
writers on several nodes adding to one rollup at once each add their own: the second waits for
the first's row lock and adds to what it committed. The keys are summed and sorted first, so
two transactions lock shared rows in the same order and never deadlock on them.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.reports.rollups import DIMENSIONS, Increment
from app.store.postgres.connections import Conn

ROLLUP_COLUMNS = ("app_key", "hour", *DIMENSIONS, "metric")
_KEY = ", ".join(ROLLUP_COLUMNS)
UPSERT_ROLLUP = (
    f"INSERT INTO rollups ({_KEY}, value) VALUES ({', '.join(['%s'] * (len(ROLLUP_COLUMNS) + 1))}) "
    f"ON CONFLICT ({_KEY}) DO UPDATE SET value = rollups.value + excluded.value"
)

# The same counts by media source alone: what the headline figures and the daily chart read.
BY_SOURCE = frozenset({"media_source"})
UPSERT_BY_SOURCE = (
    "INSERT INTO rollups_by_source (app_key, hour, media_source, metric, value) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (app_key, hour, media_source, metric) "
    "DO UPDATE SET value = rollups_by_source.value + excluded.value"
)

_Key = tuple[object, ...]


def _sorted_sums(rows: Iterable[tuple[_Key, int]]) -> list[tuple[object, ...]]:
    sums: dict[_Key, int] = {}
    for key, value in rows:
        sums[key] = sums.get(key, 0) + value
    return [(*k, v) for k, v in sorted(sums.items(), key=lambda kv: repr(kv[0])) if v != 0]


async def add_rollups(conn: Conn, increments: Iterable[Increment]) -> None:
    """Add increments to both tables (already summed by key, or not)."""
    items = list(increments)
    if not items:
        return
    full = _sorted_sums((tuple(getattr(i.key, c) for c in ROLLUP_COLUMNS), i.value) for i in items)
    by_source = _sorted_sums(
        ((i.key.app_key, i.key.hour, i.key.media_source, i.key.metric), i.value) for i in items
    )
    async with conn.cursor() as cursor:
        if full:
            await cursor.executemany(UPSERT_ROLLUP, full)
        if by_source:
            await cursor.executemany(UPSERT_BY_SOURCE, by_source)
