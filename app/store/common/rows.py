"""Between a domain value and its row, as both backends convert it: JSON documents as text.

The one thing the backends store differently is a flag (SQLite has no boolean: 0/1), so each
says how it writes one; reading back is the same for both, since `bool` reads either.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar

from app.store.columns import BOOLEAN_COLUMNS, JSON_COLUMNS
from app.store.jsontext import json_text

T = TypeVar("T")


def to_row(value: object, columns: Sequence[str], flag: Callable[[Any], Any]) -> dict[str, Any]:
    """The `columns` of `value` as its backend writes them, a flag through `flag`."""
    row: dict[str, Any] = {}
    for column in columns:
        item = getattr(value, column)
        if column in JSON_COLUMNS:
            item = json_text(item)
        elif column in BOOLEAN_COLUMNS:
            item = flag(item)
        row[column] = item
    return row


def record_of(cls: type[T], row: Mapping[str, Any], *, documents: Collection[str] = ()) -> T:
    """A record whose fields are the row's columns of the same names; `documents` are JSON
    text. One conversion for every such record, so a new field needs its column only."""
    return cls(
        **{
            f.name: json.loads(row[f.name]) if f.name in documents else row[f.name]
            for f in fields(cls)  # type: ignore[arg-type]
        }
    )


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
