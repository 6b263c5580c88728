"""Touches read back for attribution and reports, alike in both backends.

A touch is stored as one row of `clicks` or `impressions` with its campaign params spread over
columns; turning such a row back into a `Touch`, and capping a candidate tier, needs no
database, so both backends share it here and cannot disagree on what the engine is handed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from app.attribution import Candidates, TimeRange
from app.store.columns import CLICK_COLUMNS, TOUCH_COLUMNS
from app.store.records import CandidateQuery
from app.touches import CAMPAIGN_PARAMS, Touch, TouchKind, Verdict

R = TypeVar("R")
# One tier of candidates: the touches kept, and whether more were there than the cap.
Tier = tuple[list[Touch], bool]


class TouchTable(NamedTuple):
    """Where a kind of touch is kept: its table and the columns a `Touch` is read from."""

    kind: TouchKind
    table: str
    columns: tuple[str, ...]


def touch_table(kind: str) -> TouchTable:
    """Any kind but "click" is an impression: callers pass the kind a request or record names."""
    if kind == "click":
        return TouchTable("click", "clicks", CLICK_COLUMNS)
    return TouchTable("impression", "impressions", TOUCH_COLUMNS)


# Both kinds, impressions first: the rebuild folds them in this order.
TOUCH_TABLES = (touch_table("impression"), touch_table("click"))


def touch_from(kind: TouchKind, values: dict[str, Any]) -> Touch:
    """The `Touch` of one row's column values (consumed: the campaign params are popped)."""
    params = {k: v for k in CAMPAIGN_PARAMS if (v := values.pop(k)) is not None}
    verdict: Verdict = values["verdict"] if values["verdict"] in ("bot", "suspect") else "human"
    values["verdict"] = verdict
    values["verdict_reasons"] = tuple(r for r in (values["verdict_reasons"] or "").split(",") if r)
    values["gpc"] = bool(values["gpc"])
    return Touch(kind=kind, params=params, **values)


def touch_from_row(kind: TouchKind, fields: Sequence[str], row: Mapping[str, Any]) -> Touch:
    """The `Touch` of a row read by column name."""
    return touch_from(kind, {f: row[f] for f in fields})


def range_params(query: CandidateQuery, span: TimeRange) -> list[Any]:
    """The arguments of a tier's range scan, in the order both backends' SQL takes them; the
    limit asks for one row past the cap, which only tells that the tier was capped."""
    return [query.app_key, query.ip, span.start, span.end, query.limit + 1]


def capped_tier(rows: Sequence[R], limit: int, touch: Callable[[R], Touch]) -> Tier:
    """The touches of a range scan's rows up to `limit`, and whether the scan found more."""
    return [touch(row) for row in rows[:limit]], len(rows) > limit


def candidates_of(
    query: CandidateQuery,
    referrer_click: Touch | None,
    tiers: tuple[Tier, Tier] | None,
) -> Candidates:
    """The answer for one install. `tiers` (clicks, impressions) is None when the install has
    no IP: no probabilistic match was looked for, so both tiers are empty and uncapped."""
    if tiers is None:
        tiers = ([], False), ([], False)
    (clicks, clicks_capped), (impressions, impressions_capped) = tiers
    return Candidates(
        referrer_click=referrer_click,
        referrer_click_id=query.referrer_click_id,
        clicks=clicks,
        impressions=impressions,
        clicks_capped=clicks_capped,
        impressions_capped=impressions_capped,
    )
