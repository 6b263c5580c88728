"""Between a domain value and its SQLite row: JSON documents as text, flags as 0/1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.store.common import rows


def to_row(value: object, columns: Sequence[str]) -> dict[str, Any]:
    # SQLite has no boolean type: a flag is kept as 0/1.
    return rows.to_row(value, columns, int)


def insert_sql(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    marks = ", ".join(f":{c}" for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({marks})"
