"""Reports alike in both backends: checking an overview's query and assembling its sums, the
rollups' rebuild totals, and the records a report row is read back into.

Everything here is the same for both backends, so an overview or an export cannot differ by
backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.conversions import Event, Install, attributing_install
from app.reports.overview import RollupSum
from app.reports.rollups import DIMENSIONS, Increment, RollupFold, RollupKey
from app.store.columns import (
    CLICK_RECORD_COLUMNS,
    EVENT_COLUMNS,
    INSTALL_COLUMNS,
    TOUCH_RECORD_COLUMNS,
)
from app.store.common.candidates import TouchTable, touch_from_row, touch_table
from app.store.common.rows import from_row
from app.touches import Touch, TouchRecord

_DIMS = frozenset(DIMENSIONS)


# -- overview ----------------------------------------------------------------------------------


def rollup_groups(group_by: Sequence[str], filters: Mapping[str, str]) -> list[str]:
    """The dimensions to group by. Names are spliced into the SQL, so only known dimensions
    pass: an unknown grouping is dropped (it cannot split any sum), an unknown filter refused
    (dropping it would widen the answer)."""
    for name in filters:
        if name not in _DIMS:
            raise ValueError(f"unknown dimension {name!r}")
    return [g for g in group_by if g in _DIMS]


def rollup_sums(rows: Iterable[Sequence[Any]], groups: int) -> list[RollupSum]:
    """Rows of (day, *group values, metric, sum) as answers. A driver may hand back its own
    integer types; a zero sum (increments that cancelled out) has nothing to show."""
    return [
        RollupSum(int(r[0]), tuple(r[1 : 1 + groups]), r[1 + groups], int(r[2 + groups]))
        for r in rows
        if r[2 + groups]
    ]


def rollup_values(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str]
) -> dict[RollupKey, int]:
    """Rows of the key `columns` and a value, by key."""
    return {RollupKey(**{c: r[c] for c in columns}): r["value"] for r in rows}


# -- records of report rows --------------------------------------------------------------------


def _aliased(alias: str, columns: Sequence[str]) -> str:
    return ", ".join(f"{alias}.{c} AS {alias}_{c}" for c in columns)


# The select list of an event (e) joined to its install (i) and, for a reinstall, the device's
# first install (f): each column named `<alias>_<column>`, so one row carries all three apart
# and `joined_install` and `joined_event` read them back by the same names.
EVENT_INSTALLS_SELECT = (
    f"{_aliased('e', EVENT_COLUMNS)}, {_aliased('i', INSTALL_COLUMNS)}, "
    f"{_aliased('f', INSTALL_COLUMNS)}"
)


def _unaliased(row: Mapping[str, Any], alias: str, columns: Sequence[str]) -> dict[str, Any]:
    return {c: row[f"{alias}_{c}"] for c in columns}


def joined_install(row: Mapping[str, Any], alias: str) -> Install:
    """The install under `alias` in a row of `EVENT_INSTALLS_SELECT`."""
    return from_row(Install, _unaliased(row, alias, INSTALL_COLUMNS), INSTALL_COLUMNS)


def joined_event(row: Mapping[str, Any]) -> Event:
    return from_row(Event, _unaliased(row, "e", EVENT_COLUMNS), EVENT_COLUMNS)


def event_and_install(row: Mapping[str, Any]) -> tuple[Event, Install]:
    """An event with its own install: what raw data shows (not the attributing one)."""
    return joined_event(row), joined_install(row, "i")


def attributing(row: Mapping[str, Any]) -> Install:
    """The install whose attribution the row's event carries (`attributing_install`); the
    first install is absent when the event's install is no reinstall, or it was erased."""
    install = joined_install(row, "i")
    first = joined_install(row, "f") if row["f_id"] is not None else None
    return attributing_install(install, first)


def install_from(row: Mapping[str, Any]) -> Install:
    return from_row(Install, row, INSTALL_COLUMNS)


def touch_record_columns(source: TouchTable) -> str:
    """What a raw export reads of a touch: its `Touch` columns and what only raw data shows."""
    extra: tuple[str, ...] = TOUCH_RECORD_COLUMNS
    if source.kind == "click":
        extra = (*extra, *CLICK_RECORD_COLUMNS)
    return ", ".join(dict.fromkeys((*source.columns, *extra)))


def touch_record(kind: str, row: Mapping[str, Any]) -> TouchRecord:
    """A row of `touch_record_columns` as raw data shows it."""
    source = touch_table(kind)
    return TouchRecord(
        touch=touch_from_row(source.kind, source.columns, row),
        page_slug=row["page_slug"],
        language=row["language"],
        in_app=row["in_app"],
        all_params=json.loads(row["params"] or "{}"),
        flags=tuple(f for f in (row["flags"] or "").split(",") if f),
        destination=row["destination"] if source.kind == "click" else None,
    )


# -- rebuild -----------------------------------------------------------------------------------


class RebuildTotals:
    """A rollups rebuild's sums by key, added to as the rows stream past, so its memory grows
    with the keys, not the rows."""

    def __init__(self, fold: RollupFold) -> None:
        self._fold = fold
        self._totals: dict[RollupKey, int] = {}

    def _add(self, increments: Sequence[Increment]) -> None:
        for inc in increments:
            self._totals[inc.key] = self._totals.get(inc.key, 0) + inc.value

    def touch(self, touch: Touch) -> None:
        self._add(self._fold.touch(touch))

    def install(self, row: Mapping[str, Any]) -> None:
        """An install row, read by column name."""
        self._add(self._fold.install(install_from(row)))

    def event(self, row: Mapping[str, Any]) -> None:
        """A row of `EVENT_INSTALLS_SELECT`."""
        self._add(self._fold.event(joined_event(row), attributing(row)))

    def increments(self) -> list[Increment]:
        """The rollups to write: a key whose increments cancelled out is no row."""
        return [Increment(k, v) for k, v in self._totals.items() if v != 0]
