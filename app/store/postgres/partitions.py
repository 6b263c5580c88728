"""Day partitions of the touch tables.

`impressions` and `clicks` are partitioned by range of `time` (Unix seconds), one partition per
UTC day, named `<table>_pYYYYMMDD`. The store creates them ahead of time (at open, and by the
`store-upkeep` job, a week ahead), so a request never waits for DDL; a touch whose day has no
partition yet (a copied old one, a clock far off) creates it on the spot and is written again.
Creation takes an advisory transaction lock: nodes creating the same day at once queue, and the
second finds it done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from psycopg import sql

from app.store.postgres.connections import Conn

DAY = 86_400
TOUCH_TABLES = ("impressions", "clicks")
AHEAD_DAYS = 7
# An arbitrary constant: the advisory lock of partition creation.
PARTITION_LOCK = 0x6761_6E67_7761_7902


def day_of(t: float) -> int:
    """The first second of the UTC day holding `t`."""
    return int(t // DAY) * DAY


def partition_name(table: str, day: int) -> str:
    return f"{table}_p{dt.datetime.fromtimestamp(day, dt.UTC):%Y%m%d}"


def days_ahead(now: float, ahead: int = AHEAD_DAYS) -> list[int]:
    """Yesterday (a touch racing midnight), today and `ahead` days after."""
    first = day_of(now) - DAY
    return [first + i * DAY for i in range(ahead + 2)]


async def ensure_days(conn: Conn, days: Iterable[int]) -> int:
    """Create the missing day partitions of both touch tables, in their own transaction;
    answers how many were created."""
    wanted = sorted(set(days))
    if not wanted:
        return 0
    cursor = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY(%s)",
        [list(TOUCH_TABLES)],
    )
    existing = {str(row["relname"]) for row in await cursor.fetchall()}
    missing = [
        (table, day)
        for day in wanted
        for table in TOUCH_TABLES
        if partition_name(table, day) not in existing
    ]
    if not missing:
        return 0
    created = 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
        for table, day in missing:
            statement = sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})"
            ).format(
                sql.Identifier(partition_name(table, day)),
                sql.Identifier(table),
                sql.Literal(day),
                sql.Literal(day + DAY),
            )
            await conn.execute(statement)
            created += 1
    return created
