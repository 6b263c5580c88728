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


def rollup_params(inc: Increment) -> tuple[object, ...]:
    k = inc.key
    return (*(getattr(k, c) for c in ROLLUP_COLUMNS), inc.value)


def add_rollups(db: Database, increments: Iterable[Increment]) -> None:
    db.conn.executemany(UPSERT_ROLLUP, [rollup_params(i) for i in increments])
