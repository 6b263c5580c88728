"""`python -m app copy --from <sqlite file> --to <postgresql url>`: move an installation over.

Every table, ids unchanged, in batches. Each batch is one PostgreSQL transaction holding its
rows and the table's progress (`gangway_copy`: the last SQLite rowid copied; for the tables
SQLite keeps WITHOUT ROWID, the rollups, cost, rates and audience members, the rows copied so
far in primary key order, the source not changing while it is copied), so an interrupted copy
(Ctrl-C, a lost connection, a reboot) resumes after the last batch that committed, and no
row is copied twice (inserts also skip rows already there: `ON CONFLICT DO NOTHING`). At the
end every table's rows are counted on both sides; a difference fails the command.

What PostgreSQL keeps apart is derived on the way: the page view of each impression with a
`pvid` (`page_views`) and the claim of each claimed click (`click_claims`); the day partitions
of old touches are made as their batches arrive; identity counters continue after the copied
ids. The source is brought to the current schema first (as `serve` would), so both sides have
the same columns.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from app.store.postgres import PostgresStore
from app.store.postgres.connections import Conn
from app.store.postgres.partitions import day_of, ensure_days
from app.store.sqlite import SqliteStore

# Parents before children (foreign keys), configuration first.
TABLES = (
    "apps",
    "integrations",
    "pages",
    "tokens",
    "users",
    "sessions",
    "login_failures",
    "impressions",
    "clicks",
    "installs",
    "events",
    "postbacks",
    "postback_attempts",
    "cost",
    "cost_rates",
    "tiktok_ads_state",
    "tiktok_ads_pulls",
    "oauth_states",
    "audiences",
    "audience_members",
    "rollups",
    "rollups_by_source",
    "privacy_erasures",
)
TOUCH_TABLES = frozenset({"impressions", "clicks"})
DEFAULT_BATCH = 5_000
# Identity columns whose counters must continue after the copied values.
IDENTITIES = (("postbacks", "seq"), ("postback_attempts", "id"), ("login_failures", "id"))


@dataclass
class TableResult:
    table: str
    source_rows: int
    target_rows: int
    # Rows copied over every run of this copy, and by this run alone.
    copied: int
    this_run: int = 0

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows


class Interrupted(Exception):
    """Raised by `copy_database(stop_after_batches=n)`: the copy stops as if interrupted."""


Progress = Callable[[str, int, int], None]


class Bar:
    """A progress bar on a terminal (one line redrawn), a line per table otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last = 0.0

    def __call__(self, table: str, done: int, total: int) -> None:
        finished = done >= total
        if not self.tty:
            if finished:
                print(f"  {table}: {done:,} rows", file=self.out)
            return
        now = time.monotonic()
        if not finished and now - self._last < 0.1:
            return
        self._last = now
        width = 30
        filled = width if total == 0 else int(width * done / total)
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if finished else ""
        self.out.write(f"\r  {table:<18} [{bar}] {done:>12,}/{total:,}{end}")
        self.out.flush()


async def copy_database(
    source: str,
    target: str,
    *,
    batch: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    stop_after_batches: int | None = None,
) -> list[TableResult]:
    """Copy every table of the SQLite file `source` into the PostgreSQL database `target`;
    answers each table's counts. Resumes a copy that was interrupted."""
    SqliteStore.open_sync(source).close_sync()  # the source at the current schema
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    store = await PostgresStore.open(target, max_size=2)
    batches = 0
    try:
        async with store.database.pool.connection() as conn:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS gangway_copy (source_table text PRIMARY KEY, "
                "last_rowid bigint NOT NULL, copied bigint NOT NULL)"
            )
            results = []
            for table in TABLES:
                kinds = await _column_kinds(conn, table)
                info = src.execute(f"PRAGMA table_info({table})").fetchall()
                columns = [r[1] for r in info]
                select = _batch_select(src, table, columns, info)
                missing = [c for c in columns if c not in kinds]
                if missing:
                    raise RuntimeError(f"{table}: the target has no column {missing}")
                total = int(src.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                cursor = await conn.execute(
                    "SELECT last_rowid, copied FROM gangway_copy WHERE source_table = %s", [table]
                )
                row = await cursor.fetchone()
                last, copied = (row["last_rowid"], row["copied"]) if row else (0, 0)
                this_run = 0
                if progress:
                    progress(table, min(copied, total), total)
                while True:
                    rows = src.execute(select, [last, batch]).fetchall()
                    if not rows:
                        break
                    if stop_after_batches is not None and batches >= stop_after_batches:
                        raise Interrupted(f"stopped before a batch of {table}")
                    last = int(rows[-1][0])
                    values = [_convert(r[1:], columns, kinds) for r in rows]
                    await _copy_batch(conn, table, columns, values, last, len(rows))
                    copied += len(rows)
                    this_run += len(rows)
                    batches += 1
                    if progress:
                        progress(table, min(copied, total), total)
                target_rows = await _count(conn, table)
                results.append(TableResult(table, total, target_rows, copied, this_run))
            for table, column in IDENTITIES:
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                    f"GREATEST((SELECT MAX({column}) FROM {table}), 1))"
                )
            return results
    finally:
        src.close()
        await store.close()


def _batch_select(
    src: sqlite3.Connection, table: str, columns: Sequence[str], info: Sequence[Any]
) -> str:
    """The SELECT of the next batch after `last` (a rowid, or for a WITHOUT ROWID table the
    rows already copied): its first column is the new `last`."""
    names = ", ".join(columns)
    try:
        src.execute(f"SELECT rowid FROM {table} LIMIT 0")
    except sqlite3.OperationalError:  # WITHOUT ROWID: in primary key order, by position
        key = ", ".join(r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))
        return (
            f"SELECT ROW_NUMBER() OVER (ORDER BY {key}), {names} FROM {table} "
            f"ORDER BY {key} LIMIT ?2 OFFSET ?1"
        )
    return f"SELECT rowid, {names} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?"


async def _column_kinds(conn: Conn, table: str) -> dict[str, str]:
    cursor = await conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s",
        [table],
    )
    return {r["column_name"]: r["data_type"] for r in await cursor.fetchall()}


def _convert(row: Sequence[Any], columns: Sequence[str], kinds: dict[str, str]) -> list[Any]:
    values = []
    for column, value in zip(columns, row, strict=True):
        if value is not None and kinds[column] == "boolean":
            value = bool(value)
        elif isinstance(value, str) and "\x00" in value:  # PostgreSQL text holds no NUL
            value = value.replace("\x00", "\ufffd")
        values.append(value)
    return values


async def _copy_batch(
    conn: Conn,
    table: str,
    columns: Sequence[str],
    values: list[list[Any]],
    last_rowid: int,
    n: int,
) -> None:
    marks = ", ".join(["%s"] * len(columns))
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING"
    async with conn.transaction():
        if table in TOUCH_TABLES:
            at = columns.index("time")
            await ensure_days(conn, {day_of(v[at]) for v in values})
        async with conn.cursor() as cursor:
            await cursor.executemany(insert, values)
            if table == "impressions":
                await cursor.executemany(
                    "INSERT INTO page_views (app_key, pvid, impression_id, time, original_url, "
                    "page_slug) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [
                        [
                            r["app_key"],
                            r["pvid"],
                            r["id"],
                            r["time"],
                            r["original_url"],
                            r["page_slug"],
                        ]
                        for r in (dict(zip(columns, v, strict=True)) for v in values)
                        if r["pvid"] is not None
                    ],
                )
            if table == "clicks":
                await cursor.executemany(
                    "INSERT INTO click_claims (click_id, app_key, claimed_by, claimed_at) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [
                        [r["id"], r["app_key"], r["claimed_by"], r["claimed_at"] or r["time"]]
                        for r in (dict(zip(columns, v, strict=True)) for v in values)
                        if r["claimed_by"] is not None
                    ],
                )
        await conn.execute(
            "INSERT INTO gangway_copy (source_table, last_rowid, copied) VALUES (%s, %s, %s) "
            "ON CONFLICT (source_table) DO UPDATE SET last_rowid = excluded.last_rowid, "
            "copied = gangway_copy.copied + %s",
            [table, last_rowid, n, n],
        )


async def _count(conn: Conn, table: str) -> int:
    cursor = await conn.execute(f"SELECT COUNT(*) AS n FROM {table}")
    row = await cursor.fetchone()
    return int(row["n"]) if row else 0


def report(results: Sequence[TableResult], out: TextIO | None = None) -> bool:
    """Print the verification table (on standard output unless `out`); answers whether every
    table matched."""
    out = out or sys.stdout  # looked up now: whatever sys.stdout is when the command runs
    print(f"{'table':<18} {'sqlite':>12} {'postgresql':>12}", file=out)
    for r in results:
        mark = "ok" if r.ok else "DIFFERENT"
        print(f"{r.table:<18} {r.source_rows:>12,} {r.target_rows:>12,}  {mark}", file=out)
    return all(r.ok for r in results)
