"""Reading what a test's database holds, whichever backend it is (a file path or a URL).

Tests assert on stored rows with SQLite's SQL; for PostgreSQL the few differences are
translated: `?` placeholders, `rowid` (insertion order: the inserting transaction's id, as each
write is its own transaction), `typeof(x)` and flags compared with 0 or 1.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import psycopg
from psycopg.rows import dict_row

from app.store.urls import is_postgres_url


def _postgres(sql: str) -> str:
    sql = sql.replace("%", "%%").replace("?", "%s")
    sql = re.sub(r"\browid\b", "xmin::text::bigint", sql)
    sql = re.sub(r"\btypeof\((\w+)\)", r"pg_typeof(\1)::text", sql)
    sql = re.sub(
        r"\b(is_retained_organic|is_limited_data_use|gpc) = ([01])\b", r"\1::int = \2", sql
    )
    return re.sub(r"\bWHERE 1\b", "WHERE true", sql)


def query(db: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if is_postgres_url(db):
        with psycopg.connect(db, autocommit=True) as conn:
            return list(conn.execute(_postgres(sql), params).fetchall())  # type: ignore[arg-type]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def query_dicts(db: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    if is_postgres_url(db):
        with psycopg.connect(db, autocommit=True, row_factory=dict_row) as conn:
            return list(conn.execute(_postgres(sql), params).fetchall())  # type: ignore[arg-type]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def tables(db: str) -> list[str]:
    """Every table of the database (on PostgreSQL: the touch partitions' parents, not each
    partition), for tests that look for a value anywhere."""
    if is_postgres_url(db):
        sql = (
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relkind IN ('r', 'p') AND NOT relispartition ORDER BY relname"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    return [str(r[0]) for r in query(db, sql)]
