"""What the owner's reports do, as plain functions: the reports API (`app.web.reports_api`) and
the console's dashboard and cost screen both call these, so a number on a screen is the number
the API answers for the same parameters (there is no second implementation of it).

Each takes the `Owner` asking, or an app already checked with `report_app`: a user limited to
some apps gets a 404 for any other app, as if it did not exist. Errors are `ApiError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.accounts import Owner
from app.configs import DEFAULT_REPORT_CURRENCY, DEFAULT_REPORT_TIMEZONE
from app.fields import FieldError
from app.reports import cost as cost_rules
from app.reports.overview import OverviewQuery, overview_json, parse_query
from app.services import Services
from app.store.records import AppRecord
from app.vocabulary import APP_KEY_RE
from app.web.errors import ApiError


async def report_app(svc: Services, owner: Owner, app_key: str | None) -> AppRecord:
    if not app_key:
        raise ApiError.invalid("app_key", "app_key is required")
    app = await svc.store.configs.get_app(app_key) if APP_KEY_RE.fullmatch(app_key) else None
    # An app outside a limited user's apps is no app to them (console.md section 1).
    if app is None or not owner.sees(app.app_key):
        raise ApiError(404, "not_found", f"no app {app_key!r}", "app_key")
    return app


def report_currency(app: AppRecord) -> str:
    return str(app.config.get("report_currency") or DEFAULT_REPORT_CURRENCY)


def report_query(svc: Services, app: AppRecord, params: Mapping[str, str]) -> OverviewQuery:
    """The overview's (and raw data's) query parameters, checked; a 400 names the bad one."""
    try:
        return parse_query(
            params,
            app_key=app.app_key,
            report_timezone=app.config.get("report_timezone") or DEFAULT_REPORT_TIMEZONE,
            report_currency=report_currency(app),
            unified=svc.settings.unified_pids,
            now=svc.clock(),
        )
    except FieldError as exc:
        raise ApiError.from_field(exc) from None


async def overview(svc: Services, app: AppRecord, params: Mapping[str, str]) -> dict[str, Any]:
    """`GET /api/v1/reports/overview`'s answer for these query parameters."""
    query = report_query(svc, app, params)
    previous = query.previous()
    reports = svc.store.reports
    first, end = query.hours()
    sums = await reports.sum_rollups(
        app.app_key, first, end, query.dimension_groups, query.filters, query.segments()
    )
    before_first, before_end = previous.hours()
    before = await reports.sum_rollups(
        app.app_key, before_first, before_end, (), query.filters, previous.segments()
    )
    cost = await svc.store.cost.cost_between(app.app_key, previous.start, query.end)
    rates = await svc.store.cost.rates(app.app_key)
    return overview_json(query, sums, cost, before, cost, rates)


# -- cost ----------------------------------------------------------------------------------------


def _rejected(rows: list[cost_rules.Rejected]) -> list[dict[str, object]]:
    return [{"line": r.line, "error": r.error} for r in rows]


async def upload_cost(svc: Services, app: AppRecord, text: str) -> dict[str, Any]:
    """Import a cost CSV for a checked app: the good rows are kept, the bad ones named by line.
    A file without the required columns is a 400 on `file`."""
    rates = await svc.store.cost.rates(app.app_key)
    try:
        entries, rejected = cost_rules.parse_cost(
            text,
            app_key=app.app_key,
            unified=svc.settings.unified_pids,
            report_currency=report_currency(app),
            rates=rates,
        )
    except FieldError as exc:
        raise ApiError.from_field(exc) from None
    changed = await svc.store.cost.put_cost(entries, svc.clock()) if entries else 0
    return {"imported": len(entries), "changed": changed, "rejected": _rejected(rejected)}


async def upload_rates(svc: Services, app: AppRecord, text: str) -> dict[str, Any]:
    try:
        rates, rejected = cost_rules.parse_rates(text)
    except FieldError as exc:
        raise ApiError.from_field(exc) from None
    changed = await svc.store.cost.put_rates(app.app_key, rates, svc.clock()) if rates else 0
    return {"imported": len(rates), "changed": changed, "rejected": _rejected(rejected)}


@dataclass(frozen=True)
class CostRow:
    entry: cost_rules.CostEntry
    # An uploaded row of a campaign-day that pulled cost also covers: reports leave it out.
    superseded: bool


async def cost_rows(svc: Services, app: AppRecord, start: date, end: date) -> list[CostRow]:
    """The cost rows of these days, newest day first, each saying whether reports count it
    (the rule of `app.reports.cost.effective_cost`)."""
    entries = await svc.store.cost.cost_between(app.app_key, start, end)
    counted = {id(e) for e in cost_rules.effective_cost(entries)}
    rows = [CostRow(e, id(e) not in counted) for e in entries]
    rows.sort(
        key=lambda r: (
            -r.entry.date.toordinal(),
            r.entry.source != cost_rules.PULLED,
            r.entry.media_source,
            r.entry.campaign,
            r.entry.adset,
            r.entry.ad,
            r.entry.country,
        )
    )
    return rows
