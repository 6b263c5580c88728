"""The cost screen (console.md section 3, reporting.md section 4): the cost rows of an app with
where each came from (uploaded, or pulled from TikTok Ads) and whether reports count it, the
currency rates, and the uploads of both files.

The uploads run the reports API's own import (`app.web.report_service.upload_cost`,
`upload_rates`): the same rows are kept and the same lines refused as with `POST /api/v1/cost`;
the refused lines are shown in place, with their line number and column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.responses import Response

from app.configs import DEFAULT_REPORT_TIMEZONE
from app.reports import cost as cost_rules
from app.reports.overview import zone_of
from app.reports.rollups import REVENUE_SCALE
from app.store.records import AppRecord
from app.web import owner_service as ops
from app.web import report_service
from app.web.console.dashboard import sort_key
from app.web.console.guard import Screen, field_errors, screen
from app.web.errors import ApiError

DEFAULT_DAYS = 30
MAX_DAYS = 400
MAX_COST_ROWS = 500
MAX_RATES = 200
KINDS = {"cost": "Cost", "rates": "Currency rates"}


@dataclass(frozen=True)
class Refused:
    line: int
    field: str | None
    error: str


@dataclass(frozen=True)
class UploadResult:
    kind: str  # a key of KINDS
    filename: str
    imported: int
    changed: int
    refused: list[Refused]


def _today(app: AppRecord, now: float) -> date:
    name = app.config.get("report_timezone") or DEFAULT_REPORT_TIMEZONE
    return datetime.fromtimestamp(now, zone_of(name)).date()


def _range(s: Screen, app: AppRecord) -> tuple[date, date, dict[str, str]]:
    """The days shown: `from` and `to` of the query, else the last DEFAULT_DAYS days."""
    q = s.request.query_params
    errors: dict[str, str] = {}
    end = _today(app, s.svc.clock())
    start = end - timedelta(days=DEFAULT_DAYS - 1)
    for name in ("from", "to"):
        text = (q.get(name) or "").strip()
        if not text:
            continue
        try:
            day = date.fromisoformat(text)
        except ValueError:
            errors[name] = "Must be a date, YYYY-MM-DD"
            continue
        if name == "from":
            start = day
        else:
            end = day
    if start > end:
        errors["from"] = "Is after to"
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    if (end - start).days + 1 > MAX_DAYS:
        errors["to"] = f"Makes a range over {MAX_DAYS} days"
        start = end - timedelta(days=MAX_DAYS - 1)
    return start, end, errors


async def _context(s: Screen, app_key: str | None) -> dict[str, Any]:
    apps = await ops.list_apps(s.svc, s.owner)
    app = next((a for a in apps if a.app_key == app_key), apps[0] if apps else None)
    if app is None:
        return {"apps": apps, "app": None}
    start, end, errors = _range(s, app)
    rows = await report_service.cost_rows(s.svc, app, start, end)
    rates = sorted(
        (await s.svc.store.cost.rates(app.app_key)).items(),
        key=lambda item: (-item[0][0].toordinal(), item[0][1]),
    )
    counted = sum(r.entry.amount for r in rows if not r.superseded)
    return {
        "apps": apps,
        "app": app,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "range_errors": errors,
        "rows": rows[:MAX_COST_ROWS],
        "more_rows": max(len(rows) - MAX_COST_ROWS, 0),
        "superseded": sum(1 for r in rows if r.superseded),
        "counted": f"{Decimal(counted) / REVENUE_SCALE:,.2f}",
        "report_currency": report_service.report_currency(app),
        "rates": rates[:MAX_RATES],
        "more_rates": max(len(rates) - MAX_RATES, 0),
        "cost_columns": cost_rules.COST_COLUMNS,
        "required": cost_rules.REQUIRED_COST_COLUMNS,
        "rate_columns": cost_rules.RATE_COLUMNS,
        "pulled": cost_rules.PULLED,
        "result": None,
        "sort_key": sort_key,
    }


@screen()
async def cost(s: Screen) -> Response:
    context = await _context(s, s.request.query_params.get("app"))
    return s.render("console/cost.html", context, 400 if context.get("range_errors") else 200)


async def _upload(s: Screen, kind: str) -> Response:
    app = await report_service.report_app(s.svc, s.owner, s.field("app_key"))
    data = s.upload("file")
    value = s.form.get("file") if s.form is not None else None
    filename = getattr(value, "filename", "") or ""
    result = None
    errors: dict[str, str] = {}
    try:
        if data is None:
            raise ApiError.invalid("file", "Choose a CSV file to upload")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ApiError.invalid(
                "file", "Must be UTF-8 text (save the sheet as CSV UTF-8)"
            ) from None
        if kind == "cost":
            answer = await report_service.upload_cost(s.svc, app, text)
        else:
            answer = await report_service.upload_rates(s.svc, app, text)
    except ApiError as exc:
        if exc.status != 400:
            raise
        errors = field_errors(exc)
    else:
        refused = [
            Refused(r["line"], cost_rules.Rejected(r["line"], r["error"]).field, r["error"])
            for r in answer["rejected"]
        ]
        result = UploadResult(kind, filename, answer["imported"], answer["changed"], refused)
    context = await _context(s, app.app_key)
    context |= {"result": result, "errors": {f"{kind}.{k}": v for k, v in errors.items()}}
    # Nothing kept is a refusal; some rows kept and some refused is a partial success.
    failed = bool(errors) or (result is not None and result.refused and not result.imported)
    return s.render("console/cost.html", context, 400 if failed else 200)


@screen(admin=True, upload=True)
async def cost_upload(s: Screen) -> Response:
    return await _upload(s, "cost")


@screen(admin=True, upload=True)
async def rates_upload(s: Screen) -> Response:
    return await _upload(s, "rates")
