"""The overview (`reporting.md` section 2): query parameters, hours folded into local days,
cost joined by day, totals, the previous period, and the ecpi / roas rules. Pure.

The store answers sums of the rollups grouped by local day, the requested dimensions and the
metric (`RollupSum`): it turns each UTC hour into its local day with the time zone's offsets,
which this module works out (`day_segments`), so a day in any zone is summed by the database
and a month is a few hundred rows, not thousands. This module then adds the cost of each group
and derives the rates. Money is kept as integer millionths until it is shown.

Rules where the spec is silent (`docs/decisions.md`, "Reports"):
- `installs` counts attributed and organic installs; `ecpi` is cost over attributed installs,
  `click_to_install_rate` attributed installs over human clicks; each is null when its divisor
  (or the cost) is zero.
- `roas` is revenue converted to the report currency over cost; revenue of a currency without
  a rate for its day is left out of it and named in `revenue_unconverted`.
- Cost has no platform: grouped by platform it shows on rows with an empty platform, and a
  platform filter leaves cost out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.fields import FieldError
from app.reports.cost import CostEntry, effective_cost
from app.reports.rollups import DIMENSIONS, HOUR, REVENUE_SCALE

GROUPS: tuple[str, ...] = ("date", *DIMENSIONS)
FILTERS: tuple[str, ...] = DIMENSIONS
MAX_DAYS = 400
DEFAULT_DAYS = 7
COUNTED_INSTALLS = frozenset({"attributed", "organic"})
_RATE_PLACES = Decimal("0.0001")
_CENTS = Decimal("0.01")


@dataclass(frozen=True)
class OverviewQuery:
    app_key: str
    start: date
    end: date  # inclusive
    zone: str
    group_by: tuple[str, ...]
    filters: Mapping[str, str] = field(default_factory=dict)
    report_currency: str = "USD"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> OverviewQuery:
        """The period of the same length just before this one."""
        span = timedelta(days=self.days)
        return OverviewQuery(
            self.app_key,
            self.start - span,
            self.end - span,
            self.zone,
            self.group_by,
            self.filters,
            self.report_currency,
        )

    def hours(self) -> tuple[int, int]:
        """[first, end) UTC hours of the local days from `start` to `end`."""
        return hour_range(self.start, self.end, self.tz)

    def segments(self) -> DaySegments:
        first, end = self.hours()
        return day_segments(first, end, self.tz)

    @property
    def dimension_groups(self) -> tuple[str, ...]:
        return tuple(g for g in self.group_by if g != "date")


@dataclass(frozen=True)
class RollupSum:
    """One line of the store's answer: a local day (days since 1970-01-01 in the report time
    zone), the values of the grouped dimensions (in `dimension_groups` order), a metric and its
    sum."""

    day: int
    dims: tuple[str, ...]
    metric: str
    value: int


def zone_of(name: str, field_name: str = "timezone") -> ZoneInfo:
    try:
        if not name or name.startswith("/") or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError(field_name, "must be an IANA time zone name (Europe/Paris)") from None


def _date(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FieldError(name, "must be a date, YYYY-MM-DD") from None


def parse_query(
    params: Mapping[str, str],
    *,
    app_key: str,
    report_timezone: str,
    report_currency: str,
    unified: Mapping[str, str],
    now: float,
) -> OverviewQuery:
    """The overview's query parameters, checked: a FieldError names the first bad one."""
    zone_name = params.get("timezone") or report_timezone
    tz = zone_of(zone_name)
    today = datetime.fromtimestamp(now, tz).date()
    end = _date(params["to"], "to") if params.get("to") else today
    start = (
        _date(params["from"], "from")
        if params.get("from")
        else end - timedelta(days=DEFAULT_DAYS - 1)
    )
    if start > end:
        raise FieldError("from", "is after to")
    if (end - start).days + 1 > MAX_DAYS:
        raise FieldError("to", f"makes a range over {MAX_DAYS} days")
    group_by: list[str] = []
    for item in (params.get("group_by") or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item not in GROUPS:
            raise FieldError("group_by", f"unknown group {item!r}; one of {', '.join(GROUPS)}")
        if item not in group_by:
            group_by.append(item)
    filters: dict[str, str] = {}
    for name in FILTERS:
        value = params.get(name)
        if value:
            filters[name] = unified.get(value, value) if name == "media_source" else value
    return OverviewQuery(app_key, start, end, zone_name, tuple(group_by), filters, report_currency)


def hour_range(start: date, end: date, tz: ZoneInfo) -> tuple[int, int]:
    first = datetime.combine(start, time(0), tz).timestamp()
    after = datetime.combine(end + timedelta(days=1), time(0), tz).timestamp()
    # An hour belongs to the local day its start falls in (exact for whole-hour offsets).
    return int(-(-first // HOUR)), int(-(-after // HOUR))


def local_date(hour: int, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(hour * HOUR, UTC).astimezone(tz).date()


# (first UTC hour, UTC offset in seconds) of each stretch of constant offset, in order: the local
# day of hour h is (h * 3600 + offset) // 86400 days after 1970-01-01.
DaySegments = tuple[tuple[int, int], ...]
EPOCH = date(1970, 1, 1)


def _offset(hour: int, tz: ZoneInfo) -> int:
    moment = datetime.fromtimestamp(hour * HOUR, UTC).astimezone(tz)
    delta = moment.utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def day_segments(first: int, end: int, tz: ZoneInfo) -> DaySegments:
    """The offsets of `tz` over hours [first, end): checked a day apart, and where two differ,
    the hour of the change found by bisection (a zone changes offset at most a few times a
    year)."""
    current = _offset(first, tz)
    out = [(first, current)]
    at = first
    while at < end:
        step = min(24, end - at)
        nxt = _offset(at + step, tz) if at + step < end else current
        if nxt != current:
            lo, hi = at, at + step  # offset(lo) == current, offset(hi) != current
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(mid, tz) == current:
                    lo = mid
                else:
                    hi = mid
            current = _offset(hi, tz)
            out.append((hi, current))
            at = hi
        else:
            at += step
    return tuple(out)


def day_number(hour: int, segments: DaySegments) -> int:
    """The local day of `hour` as the store computes it (for tests and the pure path)."""
    offset = segments[0][1]
    for start, off in segments:
        if hour >= start:
            offset = off
    return (hour * HOUR + offset) // 86_400


# -- folding -----------------------------------------------------------------------------------


@dataclass
class _Totals:
    impressions: int = 0
    impressions_all: int = 0
    clicks: int = 0
    clicks_all: int = 0
    installs_by_status: dict[str, int] = field(default_factory=dict)
    installs_by_match_type: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    # event name -> currency -> millionths
    revenue: dict[str, dict[str, int]] = field(default_factory=dict)
    # (local date, currency) -> millionths, for the conversion of each day's revenue
    revenue_by_day: dict[tuple[date, str], int] = field(default_factory=dict)
    cost: int = 0

    def add_metric(self, metric: str, value: int, day: date) -> None:
        kind, _, rest = metric.partition("|")
        if kind in ("impressions", "impressions_all", "clicks", "clicks_all"):
            setattr(self, kind, getattr(self, kind) + value)
        elif kind == "installs":
            status, _, match_type = rest.partition("|")
            _bump(self.installs_by_status, status, value)
            if match_type:
                _bump(self.installs_by_match_type, match_type, value)
        elif kind == "events":
            _bump(self.events, rest, value)
        elif kind == "revenue":
            currency, _, name = rest.partition("|")
            _bump(self.revenue.setdefault(name, {}), currency, value)
            _bump(self.revenue_by_day, (day, currency), value)

    def merge(self, other: _Totals) -> None:
        for name in ("impressions", "impressions_all", "clicks", "clicks_all", "cost"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in (
            (self.installs_by_status, other.installs_by_status),
            (self.installs_by_match_type, other.installs_by_match_type),
            (self.events, other.events),
        ):
            for k, v in theirs.items():
                _bump(mine, k, v)
        for name, by_currency in other.revenue.items():
            for currency, v in by_currency.items():
                _bump(self.revenue.setdefault(name, {}), currency, v)
        for key, v in other.revenue_by_day.items():
            _bump(self.revenue_by_day, key, v)

    def as_json(
        self, report_currency: str, rates: Mapping[tuple[date, str], Decimal]
    ) -> dict[str, Any]:
        attributed = self.installs_by_status.get("attributed", 0)
        converted = Decimal(0)
        unconverted: set[str] = set()
        for (day, currency), units in self.revenue_by_day.items():
            if currency == report_currency:
                converted += units
            elif (rate := rates.get((day, currency))) is not None:
                converted += units * rate
            else:
                unconverted.add(currency)
        return {
            "impressions": self.impressions,
            "impressions_all": self.impressions_all,
            "clicks": self.clicks,
            "clicks_all": self.clicks_all,
            "installs": sum(n for s, n in self.installs_by_status.items() if s in COUNTED_INSTALLS),
            "attributed_installs": attributed,
            "installs_by_status": dict(sorted(self.installs_by_status.items())),
            "installs_by_match_type": dict(sorted(self.installs_by_match_type.items())),
            "reinstalls": self.installs_by_status.get("reinstall", 0),
            "rejected": self.installs_by_status.get("rejected", 0),
            "events": dict(sorted(self.events.items())),
            "revenue": {
                name: {c: money(u) for c, u in sorted(by.items())}
                for name, by in sorted(self.revenue.items())
            },
            "revenue_in_report_currency": money(converted),
            "revenue_unconverted": sorted(unconverted),
            "report_currency": report_currency,
            "cost": money(self.cost),
            "ecpi": _ratio(Decimal(self.cost), Decimal(attributed) * REVENUE_SCALE)
            if self.cost
            else None,
            "roas": _ratio(converted, Decimal(self.cost)) if self.cost else None,
            "click_to_install_rate": _ratio(Decimal(attributed), Decimal(self.clicks)),
        }


def _bump(counts: dict[Any, int], key: Any, value: int) -> None:
    counts[key] = counts.get(key, 0) + value


def _ratio(num: Decimal, den: Decimal) -> str | None:
    if den == 0:
        return None
    return str((num / den).quantize(_RATE_PLACES, rounding=ROUND_HALF_EVEN))


def money(units: int | Decimal) -> str:
    """Millionths as a decimal string: two places, more when the amount has them."""
    amount = (Decimal(units) / REVENUE_SCALE).quantize(Decimal("0.000001"))
    cents = amount.quantize(_CENTS, rounding=ROUND_HALF_EVEN)
    return str(cents) if cents == amount else str(amount.normalize())


def _cost_dims(entry: CostEntry, groups: Sequence[str]) -> tuple[str, ...]:
    # Cost has no platform: it shows on the rows of an empty one.
    return tuple("" if g == "platform" else getattr(entry, g) for g in groups)


def _in_filters(entry: CostEntry, filters: Mapping[str, str]) -> bool:
    for name, value in filters.items():
        if name == "platform" or getattr(entry, name) != value:
            return False
    return True


def fold(
    query: OverviewQuery,
    sums: Iterable[RollupSum],
    cost: Iterable[CostEntry],
) -> dict[tuple[str, ...], _Totals]:
    """Groups (the `group_by` values, a local date as ISO text) -> their totals."""
    groups = query.group_by
    dim_groups = query.dimension_groups
    with_date = "date" in groups
    date_at = groups.index("date") if with_date else -1
    out: dict[tuple[str, ...], _Totals] = {}
    day_cache: dict[int, date] = {}

    def key_of(day: date, dims: Sequence[str]) -> tuple[str, ...]:
        if not with_date:
            return tuple(dims)
        return (*dims[:date_at], day.isoformat(), *dims[date_at:])

    for s in sums:
        day = day_cache.get(s.day)
        if day is None:
            day = day_cache[s.day] = EPOCH + timedelta(days=s.day)
        totals = out.setdefault(key_of(day, s.dims), _Totals())
        totals.add_metric(s.metric, s.value, day)
    for entry in effective_cost(cost):
        if not (query.start <= entry.date <= query.end) or not _in_filters(entry, query.filters):
            continue
        totals = out.setdefault(key_of(entry.date, _cost_dims(entry, dim_groups)), _Totals())
        totals.cost += entry.amount
    return out


def overview_json(
    query: OverviewQuery,
    sums: Iterable[RollupSum],
    cost: Iterable[CostEntry],
    previous_sums: Iterable[RollupSum],
    previous_cost: Iterable[CostEntry],
    rates: Mapping[tuple[date, str], Decimal],
) -> dict[str, Any]:
    groups = fold(query, sums, cost)
    rows = []
    totals = _Totals()
    for key in sorted(groups):
        part = groups[key]
        totals.merge(part)
        rows.append(
            dict(zip(query.group_by, key, strict=True)) | part.as_json(query.report_currency, rates)
        )
    before = _Totals()
    previous = query.previous()
    for part in fold(
        OverviewQuery(
            previous.app_key,
            previous.start,
            previous.end,
            previous.zone,
            (),
            previous.filters,
            previous.report_currency,
        ),
        previous_sums,
        previous_cost,
    ).values():
        before.merge(part)
    return {
        "app_key": query.app_key,
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "timezone": query.zone,
        "group_by": list(query.group_by),
        "filters": dict(query.filters),
        "rows": rows,
        "totals": totals.as_json(query.report_currency, rates),
        "previous": {
            "from": previous.start.isoformat(),
            "to": previous.end.isoformat(),
            "totals": before.as_json(query.report_currency, rates),
        },
    }
