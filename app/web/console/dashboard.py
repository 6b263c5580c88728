"""The dashboard's data, in one function: `dashboard_data()`.

Every number comes from the reports API's own function (`app.web.report_service.overview`),
called with the query parameters the API takes, so what the dashboard shows is what
`GET /api/v1/reports/overview` answers for the same parameters; this module only picks the
parameters from the dashboard's form, lays the answer out (headline tiles with their change, the
daily chart's geometry, the campaign table and its drill-down) and formats it.

One app at a time gets the overview: apps have their own report currency and time zone, so
their money does not add up. With several apps and none chosen, the dashboard shows one line of
totals per app (each again the API's answer) and the activity feed of them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from app.accounts import Owner
from app.configs import DEFAULT_REPORT_TIMEZONE
from app.reports import raw
from app.reports.overview import zone_of
from app.services import Services
from app.store.records import ActivityItem, AppRecord
from app.vocabulary import DIRECT_PLATFORMS, MOBILE_PLATFORMS
from app.web import owner_service, report_service
from app.web.errors import ApiError

# Presets of the date range: days ending today (in the app's report time zone).
PERIODS = {"1": "Today", "7": "Last 7 days", "30": "Last 30 days"}
DEFAULT_PERIOD = "7"
FEED_LENGTH = 30
# The "all apps" view asks one overview per app: bounded.
MAX_APP_SUMMARIES = 20
MAX_TABLE_ROWS = 200
# Filters of the form, passed to the overview as they are (the API's parameter names).
FILTERS = ("media_source", "platform", "country")
# The drill-down: campaign -> ad set -> ad; each level's filter and the next level's groups.
DRILL = ("campaign", "adset")
LEVELS: dict[str, tuple[str, ...]] = {
    "campaign": ("media_source", "campaign"),
    "adset": ("adset",),
    "ad": ("ad",),
}
LEVEL_LABELS = {"campaign": "Campaign", "adset": "Ad set", "ad": "Ad"}
MAX_PARAM = 200


@dataclass(frozen=True)
class Headline:
    key: str
    label: str
    value: str  # as shown
    unit: str  # a currency, "%" or ""
    previous: str
    change: str | None  # "+12%", "new", None: nothing to compare
    trend: str  # "up", "down" or "flat"
    good: bool | None  # is the change good news? (None: neither)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class ChartSeries:
    key: str
    label: str
    total: str
    bars: list[Bar]
    top: str  # the value of the top grid line
    ticks: list[tuple[float, str]]  # (x, date label) under the bars


@dataclass(frozen=True)
class TableRow:
    name: str
    media_source: str
    link: str | None  # the next level of the drill-down
    cells: dict[str, tuple[str, str]]  # column -> (shown, sort key)


@dataclass(frozen=True)
class AppSummary:
    app: AppRecord
    link: str
    cells: dict[str, tuple[str, str]]


@dataclass(frozen=True)
class Overview:
    app: AppRecord
    report: dict[str, Any]  # the API's answer for `params`
    params: dict[str, str]  # the API's query parameters (app_key included)
    headline: list[Headline]
    chart: list[ChartSeries]
    level: str
    crumbs: list[tuple[str, str | None]]  # (label, link) from the top of the drill-down
    rows: list[TableRow]
    more_rows: int
    options: dict[str, list[str]]  # filter -> values seen in the range
    downloads: list[tuple[str, str]]
    api_url: str

    @property
    def has_chart_data(self) -> bool:
        return any(bar.height for series in self.chart for bar in series.bars)


@dataclass(frozen=True)
class Dashboard:
    apps: list[AppRecord]
    app_key: str | None  # the app chosen, None: every app the owner sees
    form: dict[str, str]  # the filter form's values, as the owner sees them
    presets: list[tuple[str, str, bool]]  # (label, link, active)
    activity: list[ActivityItem]
    errors: dict[str, str] = field(default_factory=dict)
    # The reporting overview (headline numbers, chart, campaign table) of the chosen app.
    overview: Overview | None = None
    summaries: list[AppSummary] = field(default_factory=list)

    @property
    def period(self) -> str:
        return next((label for label, _, active in self.presets if active), "")


# -- formatting ----------------------------------------------------------------------------------


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _count(n: int) -> str:
    return f"{n:,}"


def _money(value: Any) -> str:
    d = _dec(value)
    return "–" if d is None else f"{d:,.2f}"


def _percent(value: Any) -> str:
    d = _dec(value)
    return "–" if d is None else f"{d * 100:.1f}"


def sort_key(value: Any) -> str:
    """A number as a sortable table's script reads it (its `String(parseFloat(x)) === x` test):
    "64.5" for 64.50, "4" for 4.0; "" for none."""
    d = _dec(value)
    if d is None or not d.is_finite():
        return ""
    if d == d.to_integral_value():
        return str(int(d))
    return repr(float(d))


def _events(totals: Mapping[str, Any]) -> int:
    return sum(int(n) for n in totals["events"].values())


# (key, label, value of the totals, shown how, is more better?)
_METRICS: tuple[tuple[str, str, str], ...] = (
    ("impressions", "Impressions", "count"),
    ("clicks", "Clicks", "count"),
    ("installs", "Installs", "count"),
    ("click_to_install_rate", "Click to install", "percent"),
    ("events", "In-app events", "count"),
    ("revenue", "Revenue", "money"),
    ("cost", "Cost", "money"),
    ("ecpi", "eCPI", "money"),
    ("roas", "ROAS", "percent"),
)
_LOWER_IS_BETTER = frozenset({"ecpi", "cost"})
_NEUTRAL = frozenset({"cost"})
_RATES = frozenset({"click_to_install_rate", "ecpi", "roas"})


def _metric(totals: Mapping[str, Any], key: str) -> Decimal | None:
    if key == "events":
        return Decimal(_events(totals))
    if key == "revenue":
        return _dec(totals["revenue_in_report_currency"])
    return _dec(totals[key])


def _shown(value: Decimal | None, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "count":
        return _count(int(value))
    if kind == "money":
        return _money(value)
    return _percent(value)


def headline(report: Mapping[str, Any]) -> list[Headline]:
    totals, before = report["totals"], report["previous"]["totals"]
    currency = str(totals["report_currency"])
    out = []
    for key, label, kind in _METRICS:
        now, then = _metric(totals, key), _metric(before, key)
        change: str | None = None
        trend = "flat"
        if now is not None and then:
            ratio = (now - then) / then * 100
            change = f"{ratio:+.0f}%"
            trend = "up" if ratio > 0 else "down" if ratio < 0 else "flat"
        elif now and not then:
            change, trend = "new", "up"
        good: bool | None = None
        # A rate that had no divisor before is new, neither better nor worse.
        if trend != "flat" and key not in _NEUTRAL and not (change == "new" and key in _RATES):
            good = (trend == "up") != (key in _LOWER_IS_BETTER)
        unit = currency if kind == "money" else "%" if kind == "percent" else ""
        out.append(
            Headline(key, label, _shown(now, kind), unit, _shown(then, kind), change, trend, good)
        )
    return out


# -- the chart -----------------------------------------------------------------------------------

CHART_W, CHART_H = 320.0, 150.0
PLOT_LEFT, PLOT_TOP, PLOT_BOTTOM = 4.0, 14.0, 128.0


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def chart(report: Mapping[str, Any]) -> list[ChartSeries]:
    """Bars of installs, clicks and cost per day (each its own scale: they are different
    units), laid out in a CHART_W x CHART_H view box; days without a row are zero."""
    by_day = {row["date"]: row for row in report["rows"]}
    days = _days(date.fromisoformat(report["from"]), date.fromisoformat(report["to"]))
    currency = str(report["totals"]["report_currency"])
    series = []
    for key, label in (("installs", "Installs"), ("clicks", "Clicks"), ("cost", "Cost")):
        values = [
            _dec(by_day[d.isoformat()][key]) or Decimal(0)
            if d.isoformat() in by_day
            else Decimal(0)
            for d in days
        ]
        top = max(values, default=Decimal(0))
        plot_w = CHART_W - 2 * PLOT_LEFT
        slot = plot_w / len(days)
        gap = min(slot * 0.2, 3.0)
        bars = []
        for i, (day, value) in enumerate(zip(days, values, strict=True)):
            height = float(value / top) * (PLOT_BOTTOM - PLOT_TOP) if top else 0.0
            shown = f"{_money(value)} {currency}" if key == "cost" else _count(int(value))
            bars.append(
                Bar(
                    x=round(PLOT_LEFT + i * slot + gap / 2, 2),
                    y=round(PLOT_BOTTOM - height, 2),
                    width=round(max(slot - gap, 0.5), 2),
                    height=round(height, 2),
                    title=f"{day.isoformat()}: {shown} {label.lower()}"
                    if key != "cost"
                    else f"{day.isoformat()}: {shown}",
                )
            )
        ticks = [(bars[0].x, days[0].strftime("%b %-d"))]
        if len(days) > 1:
            ticks.append((bars[-1].x + bars[-1].width, days[-1].strftime("%b %-d")))
        total = report["totals"][key]
        series.append(
            ChartSeries(
                key=key,
                label=label,
                total=f"{_money(total)} {currency}" if key == "cost" else _count(int(total)),
                bars=bars,
                top=_money(top) if key == "cost" else _count(int(top)),
                ticks=ticks,
            )
        )
    return series


# -- parameters ----------------------------------------------------------------------------------


def _clean(value: str | None) -> str:
    return (value or "").strip()[:MAX_PARAM]


def dashboard_link(values: Mapping[str, str], **changes: str | None) -> str:
    """The dashboard's URL for these form values with some changed (None or "": left out)."""
    merged = {**values, **changes}
    query = {k: v for k, v in merged.items() if v}
    return "/admin" + ("?" + urlencode(query) if query else "")


def _today(svc: Services, app: AppRecord | None) -> date:
    name = (app.config.get("report_timezone") if app else None) or DEFAULT_REPORT_TIMEZONE
    return datetime.fromtimestamp(svc.clock(), zone_of(name)).date()


def _form(query: Mapping[str, str], today: date) -> dict[str, str]:
    """The form's values: an explicit range, else a preset's (the default: the last 7 days)."""
    form = {name: _clean(query.get(name)) for name in ("app", "from", "to", *FILTERS, *DRILL)}
    form["country"] = form["country"].upper()
    if not form["from"] and not form["to"]:
        period = query.get("period") if query.get("period") in PERIODS else DEFAULT_PERIOD
        form["from"] = (today - timedelta(days=int(period or DEFAULT_PERIOD) - 1)).isoformat()
        form["to"] = today.isoformat()
    return form


def _presets(form: Mapping[str, str], today: date) -> list[tuple[str, str, bool]]:
    out = []
    for key, label in PERIODS.items():
        start = (today - timedelta(days=int(key) - 1)).isoformat()
        end = today.isoformat()
        active = form["from"] == start and form["to"] == end
        out.append((label, dashboard_link(form, **{"from": start, "to": end}), active))
    return out


def _api_params(app: AppRecord, form: Mapping[str, str], **extra: str) -> dict[str, str]:
    params = {"app_key": app.app_key, "from": form["from"], "to": form["to"]}
    params |= {name: form[name] for name in (*FILTERS, *DRILL) if form.get(name)}
    return params | extra


async def _checked_overview(
    svc: Services, app: AppRecord, params: dict[str, str], errors: dict[str, str]
) -> dict[str, Any]:
    """The overview; a bad parameter is named in `errors` and left out, then asked again."""
    for _ in range(len(params)):
        try:
            return await report_service.overview(svc, app, params)
        except ApiError as exc:
            if exc.status != 400 or not exc.field or exc.field not in params:
                raise
            message = exc.message.removeprefix(exc.field).lstrip(" :") or exc.message
            errors[exc.field] = message[:1].upper() + message[1:]
            params.pop(exc.field)
            if exc.field == "to":
                params.pop("from", None)
    return await report_service.overview(svc, app, {"app_key": app.app_key})


# -- the table -----------------------------------------------------------------------------------

COLUMNS = (
    ("impressions", "Impressions"),
    ("clicks", "Clicks"),
    ("installs", "Installs"),
    ("click_to_install_rate", "CTI %"),
    ("events", "Events"),
    ("revenue", "Revenue"),
    ("cost", "Cost"),
    ("ecpi", "eCPI"),
    ("roas", "ROAS %"),
)


def _cells(totals: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    out = {}
    for key, _, kind in _METRICS:
        value = _metric(totals, key)
        out[key] = (_shown(value, kind), sort_key(value))
    return out


def _level(form: Mapping[str, str]) -> str:
    if form.get("campaign") and form.get("adset"):
        return "ad"
    if form.get("campaign"):
        return "adset"
    return "campaign"


def _table(
    report: Mapping[str, Any], form: Mapping[str, str], level: str
) -> tuple[list[TableRow], int]:
    dim = LEVELS[level][-1]
    rows = sorted(
        report["rows"],
        key=lambda r: (
            -int(r["installs"]),
            -(_dec(r["cost"]) or Decimal(0)),
            -int(r["clicks"]),
            r.get(dim, ""),
        ),
    )
    out = []
    for row in rows[:MAX_TABLE_ROWS]:
        name = str(row.get(dim, ""))
        link = None
        if name and level == "campaign":
            link = dashboard_link(
                form, campaign=name, adset=None, media_source=str(row["media_source"])
            )
        elif name and level == "adset":
            link = dashboard_link(form, adset=name)
        out.append(TableRow(name, str(row.get("media_source", "")), link, _cells(row)))
    return out, max(len(rows) - MAX_TABLE_ROWS, 0)


def _crumbs(form: Mapping[str, str], level: str) -> list[tuple[str, str | None]]:
    crumbs: list[tuple[str, str | None]] = [
        (
            "All campaigns",
            dashboard_link(form, campaign=None, adset=None) if level != "campaign" else None,
        )
    ]
    if form.get("campaign"):
        crumbs.append(
            (
                f"Campaign {form['campaign']}",
                dashboard_link(form, adset=None) if level == "ad" else None,
            )
        )
    if form.get("adset"):
        crumbs.append((f"Ad set {form['adset']}", None))
    return crumbs


def _options(
    app: AppRecord, table: Mapping[str, Any], form: Mapping[str, str]
) -> dict[str, list[str]]:
    """The values offered by the media source and platform filters: the media sources of the
    campaign table (no query of their own: a grouping by the wide dimensions costs as much as
    the table), the phones and the platforms the app has a destination for; what is chosen
    stays offered. Countries are typed (two letters)."""
    sources = {str(r["media_source"]) for r in table["rows"] if r.get("media_source")}
    destinations = app.config.get("destinations") or {}
    platforms = {p for p in DIRECT_PLATFORMS if p in MOBILE_PLATFORMS or p in destinations}
    for name, values in (("media_source", sources), ("platform", platforms)):
        if form.get(name):
            values.add(form[name])
    return {"media_source": sorted(sources), "platform": sorted(platforms)}


def _link(path: str, params: Mapping[str, str]) -> str:
    return path + "?" + urlencode(params)


async def _overview(
    svc: Services, app: AppRecord, form: dict[str, str], errors: dict[str, str]
) -> Overview:
    level = _level(form)
    params = _api_params(app, form, group_by="date")
    report = await _checked_overview(svc, app, params, errors)
    for name in list(form):
        if name in errors:
            form[name] = ""
    form["from"], form["to"] = report["from"], report["to"]
    table_params = {k: v for k, v in params.items() if k != "group_by"}
    table_report = await report_service.overview(
        svc, app, table_params | {"group_by": ",".join(LEVELS[level])}
    )
    rows, more = _table(table_report, form, level)
    span = {"app_key": app.app_key, "from": report["from"], "to": report["to"]}
    # The raw rows of what the screen shows: its filters, where the kind has that column.
    shown: dict[str, str] = report.get("filters") or {}
    downloads = [
        (
            kind,
            _link(
                f"/api/v1/raw/{kind}.csv",
                span | {k: v for k, v in shown.items() if k in raw.COLUMNS[kind]},
            ),
        )
        for kind in raw.KINDS
    ]
    return Overview(
        app=app,
        report=report,
        params=params,
        headline=headline(report),
        chart=chart(report),
        level=level,
        crumbs=_crumbs(form, level),
        rows=rows,
        more_rows=more,
        options=_options(app, table_report, form),
        downloads=downloads,
        api_url=_link("/api/v1/reports/overview", table_params),
    )


async def _summaries(
    svc: Services, apps: Sequence[AppRecord], form: dict[str, str], errors: dict[str, str]
) -> list[AppSummary]:
    out = []
    for app in apps[:MAX_APP_SUMMARIES]:
        params = _api_params(app, form)
        report = await _checked_overview(svc, app, params, errors)
        if errors:  # the range every line fell back to, shown in the form
            form["from"], form["to"] = report["from"], report["to"]
        cells = _cells(report["totals"])
        cells["currency"] = (str(report["totals"]["report_currency"]),) * 2
        out.append(AppSummary(app, dashboard_link(form, app=app.app_key), cells))
    return out


async def dashboard_data(svc: Services, owner: Owner, query: Mapping[str, str]) -> Dashboard:
    """What the dashboard shows this owner for the form's query parameters (`app`, `from`,
    `to`, `period`, the filters and the drill-down)."""
    apps = await owner_service.list_apps(svc, owner)
    keys = [a.app_key for a in apps]
    asked = _clean(query.get("app"))
    # An app the owner does not see is as if none were asked for.
    chosen = next((a for a in apps if a.app_key == asked), None)
    if chosen is None and len(apps) == 1:
        chosen = apps[0]
    today = _today(svc, chosen)
    form = _form(query, today)
    form["app"] = chosen.app_key if chosen else ""
    errors: dict[str, str] = {}
    overview = summaries = None
    if chosen is not None:
        overview = await _overview(svc, chosen, form, errors)
    elif apps:
        summaries = await _summaries(svc, apps, form, errors)
    scope = [chosen.app_key] if chosen else keys
    return Dashboard(
        apps=apps,
        app_key=chosen.app_key if chosen else None,
        form=form,
        presets=_presets(form, today),
        activity=await svc.store.activity.latest_activity(scope, FEED_LENGTH) if apps else [],
        errors=errors,
        overview=overview,
        summaries=summaries or [],
    )
