"""Between a domain value and its SQLite row: JSON documents as text, flags as 0/1."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from app.store.columns import BOOLEAN_COLUMNS, JSON_COLUMNS
from app.store.jsontext import json_text

T = TypeVar("T")

__all__ = ["from_row", "insert_sql", "json_text", "to_row"]


def to_row(value: object, columns: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in columns:
        item = getattr(value, column)
        if column in JSON_COLUMNS:
            item = json_text(item)
        elif column in BOOLEAN_COLUMNS:
            item = int(item)
        row[column] = item
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


def insert_sql(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    marks = ", ".join(f":{c}" for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({marks})"
