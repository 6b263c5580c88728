"""Cost rows and currency rates as both backends hold them: one row layout, one scope check,
one way back to `CostEntry`, so an upload or a pull stored on either reads back alike."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import date
from decimal import Decimal
from typing import Any

from app.reports.cost import UPLOAD, CostEntry, CostScope, Rate, Replaced

# A cost row is one per key: these are what the upserts conflict on and what a replace compares
# to find the rows a pull no longer has. The values follow the key in every row tuple, both in
# `CostEntry`'s field order.
VALUE_COLUMNS = ("cost", "currency", "amount", "report_currency")
KEY_COLUMNS = tuple(f.name for f in fields(CostEntry) if f.name not in VALUE_COLUMNS)
_COLUMNS = (*KEY_COLUMNS, *VALUE_COLUMNS)

# A row as written (key, values, then what the statement adds) and a key as read back.
Row = tuple[Any, ...]
CostKey = tuple[Any, ...]


def _columns(entry: CostEntry) -> Row:
    # Dates as ISO text: both schemas keep the day as text, so it sorts and compares alike.
    return tuple(entry.date.isoformat() if c == "date" else getattr(entry, c) for c in _COLUMNS)


def uploaded_rows(entries: Sequence[CostEntry], now: float) -> list[Row]:
    """The rows of `put_cost`: key, values, then `updated_at`."""
    return [(*_columns(e), now) for e in entries]


def pulled_rows(scope: CostScope, entries: Sequence[CostEntry], now: float) -> list[Row]:
    """The rows of `replace_cost`: key, values, the scope's account, then `updated_at`. A row
    outside the scope is refused: the replace removes stale rows only inside it, so such a row
    would escape the next pull's replace."""
    for e in entries:
        if (
            e.app_key != scope.app_key
            or e.source != scope.source
            or not scope.start <= e.date <= scope.end
        ):
            raise ValueError(f"cost row of {e.date} {e.source} is outside {scope}")
    return [(*_columns(e), scope.account, now) for e in entries]


def scope_params(scope: CostScope) -> list[Any]:
    """What the scope's `app_key, source, account, date >= , date <=` filter is given; the
    campaigns, when narrowed, each backend binds its own way."""
    return [
        scope.app_key,
        scope.source,
        scope.account,
        scope.start.isoformat(),
        scope.end.isoformat(),
    ]


def superseded_params(app_key: str, start: date, end: date) -> list[Any]:
    """What the count of superseded uploads is given: uploads of an app's days."""
    return [app_key, UPLOAD, start.isoformat(), end.isoformat()]


def stale_keys(existing: Iterable[CostKey], rows: Sequence[Row]) -> list[CostKey]:
    """The keys stored in the scope that the pull no longer has, sorted so two replaces delete
    in the same order."""
    kept = {row[: len(KEY_COLUMNS)] for row in rows}
    return sorted(set(existing) - kept)


def replaced(
    rows: Sequence[Row], written: int, stale: Sequence[CostKey], superseded: int
) -> Replaced:
    # A removed row is a change too: the scope's rows differ from before.
    return Replaced(
        rows=len(rows),
        changed=written + len(stale),
        removed=len(stale),
        superseded=superseded,
    )


def day_range_params(app_key: str, start: date, end: date) -> list[Any]:
    return [app_key, start.isoformat(), end.isoformat()]


def cost_entry(row: dict[str, Any]) -> CostEntry:
    """A row selected as `KEY_COLUMNS` then `VALUE_COLUMNS`, its day read back from text."""
    return CostEntry(**(row | {"date": date.fromisoformat(row["date"])}))


def rate_rows(app_key: str, rates: Sequence[Rate], now: float) -> list[Row]:
    # The rate as decimal text: no float rounding on either backend.
    return [(app_key, r.date.isoformat(), r.currency, str(r.rate), now) for r in rates]


def rates_by_day(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[date, str], Decimal]:
    return {(date.fromisoformat(r["date"]), r["currency"]): Decimal(r["rate"]) for r in rows}
