"""Between a domain value and its PostgreSQL row: JSON documents as text, flags as booleans.

PostgreSQL's text cannot hold NUL (U+0000), which SQLite keeps; the tracking routes already drop
it from parameters, and what else arrives with one (an SDK body) has it replaced by U+FFFD here,
rather than the whole write refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.store.common import rows


def clean(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def to_row(value: object, columns: Sequence[str]) -> dict[str, Any]:
    return {column: clean(item) for column, item in rows.to_row(value, columns, bool).items()}


def insert_sql(table: str, columns: Sequence[str], conflict: str = "") -> str:
    names = ", ".join(columns)
    marks = ", ".join(f"%({c})s" for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({marks}){conflict}"
