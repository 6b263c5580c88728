"""Between a domain value and its PostgreSQL row: JSON documents as text, flags as booleans.

PostgreSQL's text cannot hold NUL (U+0000), which SQLite keeps; the tracking routes already drop
it from parameters, and what else arrives with one (an SDK body) has it replaced by U+FFFD here,
rather than the whole write refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from app.store.columns import BOOLEAN_COLUMNS, JSON_COLUMNS
from app.store.jsontext import json_text

T = TypeVar("T")


def clean(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def to_row(value: object, columns: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in columns:
        item = getattr(value, column)
        if column in JSON_COLUMNS:
            item = json_text(item)
        elif column in BOOLEAN_COLUMNS:
            item = bool(item)
        row[column] = clean(item)
    return row


def from_row(cls: type[T], row: Mapping[str, Any], columns: Sequence[str]) -> T:
    values: dict[str, Any] = {}
    for column in columns:
        item = row[column]
        if column in JSON_COLUMNS:
            item = json.loads(item)
        elif column in BOOLEAN_COLUMNS:
            item = bool(item)
        values[column] = item
    return cls(**values)


def insert_sql(table: str, columns: Sequence[str], conflict: str = "") -> str:
    names = ", ".join(columns)
    marks = ", ".join(f"%({c})s" for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({marks}){conflict}"
