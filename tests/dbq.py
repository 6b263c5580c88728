"""Reading what a test's database holds, whichever backend it is (a file path or a URL).

Tests assert on stored rows with SQLite's SQL; for PostgreSQL the few differences are
translated: `?` placeholders, `rowid` (insertion order: the inserting transaction's id, as each
write is its own transaction) and `typeof(x)`.
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
