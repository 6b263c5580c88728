"""Adding rollup increments inside a write (the writer's transaction), shared by every write
that records a counted row."""

from __future__ import annotations

from collections.abc import Iterable

from sqlite_utils import Database

from app.reports.rollups import DIMENSIONS, Increment

ROLLUP_COLUMNS = ("app_key", "hour", *DIMENSIONS, "metric")
_KEY = ", ".join(ROLLUP_COLUMNS)
UPSERT_ROLLUP = (
    f"INSERT INTO rollups ({_KEY}, value) VALUES ({', '.join('?' * (len(ROLLUP_COLUMNS) + 1))}) "
    f"ON CONFLICT ({_KEY}) DO UPDATE SET value = value + excluded.value"
)


# The same counts by media source alone: what the headline figures and the daily chart read.
BY_SOURCE_COLUMNS = ("app_key", "hour", "media_source", "metric")
BY_SOURCE = frozenset({"media_source"})
UPSERT_BY_SOURCE = (
    "INSERT INTO rollups_by_source (app_key, hour, media_source, metric, value) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_key, hour, media_source, metric) "
    "DO UPDATE SET value = value + excluded.value"
)


def rollup_params(inc: Increment) -> tuple[object, ...]:
    k = inc.key
    return (*(getattr(k, c) for c in ROLLUP_COLUMNS), inc.value)


def add_rollups(db: Database, increments: Iterable[Increment]) -> None:
    """Add increments to both tables (already summed by key, or not)."""
    items = list(increments)
    if not items:
        return
    db.conn.executemany(UPSERT_ROLLUP, [rollup_params(i) for i in items])
    by_source: dict[tuple[str, int, str, str], int] = {}
    for i in items:
        key = (i.key.app_key, i.key.hour, i.key.media_source, i.key.metric)
        by_source[key] = by_source.get(key, 0) + i.value
    db.conn.executemany(UPSERT_BY_SOURCE, [(*k, v) for k, v in by_source.items()])
