"""The cost pull, planned and read (spec tiktok-ads.md section 2). Pure: dates and rows in,
windows, request parameters and cost rows out; `app/jobs/cost_pull.py` does the calls.

- Windows: the last `days` days of the advertiser (its own time zone: TikTok's report days are
  the advertiser's), today included, cut into windows of at most 30 days, oldest first. A window
  TikTok finds too large (40067) is halved, down to one day.
- Rows: `data.list[{dimensions, metrics}]` become cost rows of media source `tiktokglobal_int`
  (through the unified PID map) and source `tiktok_api`, one per ad, day (and country). Numbers
  arrive as strings; `"-"` is no value, so zero spend. The cost keeps TikTok's figure and
  currency; its amount is converted to the app's report currency like an uploaded row.
- A cost row's `date` is the advertiser's day. When the app's report time zone differs, a day of
  cost is the advertiser's day (TikTok reports no hours to re-cut it by).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from app.reports.cost import TIKTOK_API, CostEntry, report_amount
from app.tiktok_ads.connection import AdvertiserInfo
from app.vocabulary import UNIFIED_PARTNER

MAX_WINDOW_DAYS = 30
PAGE_SIZE = 1000
METRICS = (
    "campaign_id",
    "campaign_name",
    "adgroup_id",
    "adgroup_name",
    "ad_name",
    "currency",
    "spend",
    "impressions",
    "clicks",
)
# Without it TikTok leaves out the spend of deleted ads, which was still spent.
STATUS_ALL_FILTER = [
    {"field_name": "ad_status", "filter_type": "IN", "filter_value": '["STATUS_ALL"]'}
]
NO_VALUE = "-"
MAX_TEXT = 200


def json_param(value: Sequence[Any]) -> str:
    """An array as TikTok wants it in a query string: a JSON string."""
    return json.dumps(list(value), separators=(",", ":"))


@dataclass(frozen=True)
class Window:
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def halves(self) -> tuple[Window, Window]:
        """Two windows of half the days each (the first gets the odd day); needs two days."""
        if self.days < 2:
            raise ValueError("a one-day window cannot be halved")
        middle = self.start + dt.timedelta(days=(self.days + 1) // 2 - 1)
        return Window(self.start, middle), Window(middle + dt.timedelta(days=1), self.end)

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def plan_windows(today: dt.date, days: int, max_days: int = MAX_WINDOW_DAYS) -> list[Window]:
    """The last `days` days up to `today` (inclusive), as windows of at most `max_days`."""
    if days < 1:
        raise ValueError("a pull covers at least one day")
    start = today - dt.timedelta(days=days - 1)
    windows = []
    while start <= today:
        end = min(today, start + dt.timedelta(days=max_days - 1))
        windows.append(Window(start, end))
        start = end + dt.timedelta(days=1)
    return windows


def report_params(
    advertiser_id: str, window: Window, page: int, *, by_country: bool
) -> dict[str, str | int]:
    """The query of one page of `report/integrated/get/` (arrays as JSON strings)."""
    dimensions = ["ad_id", "stat_time_day"] + (["country_code"] if by_country else [])
    return {
        "advertiser_id": advertiser_id,
        "report_type": "BASIC",
        "service_type": "AUCTION",
        "data_level": "AUCTION_AD",
        "dimensions": json_param(dimensions),
        "metrics": json_param(METRICS),
        "filtering": json_param(STATUS_ALL_FILTER),
        "start_date": window.start.isoformat(),
        "end_date": window.end.isoformat(),
        "page": page,
        "page_size": PAGE_SIZE,
    }


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    page: int
    total_page: int
    total_number: int


def read_page(data: Mapping[str, Any]) -> Page:
    rows = data.get("list")
    info = data.get("page_info")
    info = info if isinstance(info, Mapping) else {}

    def number(name: str, default: int) -> int:
        value = info.get(name)
        try:
            return int(value) if value is not None else default
        except (TypeError, ValueError):
            return default

    return Page(
        rows=rows if isinstance(rows, list) else [],
        page=number("page", 1),
        total_page=number("total_page", 0),
        total_number=number("total_number", 0),
    )


def _text(value: Any) -> str:
    text = value if type(value) is str else ("" if value is None else str(value))
    if text == NO_VALUE:
        return ""
    # TikTok's strings come trimmed and short: strip and cut only what needs it.
    if len(text) > MAX_TEXT or text[:1].isspace() or text[-1:].isspace():
        text = text.strip()[:MAX_TEXT]
        return "" if text == NO_VALUE else text
    return text


def _spend(value: Any) -> Decimal:
    text = _text(value)
    if not text:
        return Decimal(0)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"spend {text!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"spend {text!r} is not an amount")
    return amount


@dataclass(frozen=True)
class Mapped:
    entries: list[CostEntry]
    # Rows that could not be stored, with why (a missing rate, a broken row): the pull reports
    # them rather than storing a wrong figure.
    problems: list[str]


def map_rows(
    rows: Iterable[Any],
    *,
    app_key: str,
    advertiser: AdvertiserInfo,
    report_currency: str,
    rates: Mapping[tuple[dt.date, str], Decimal],
    unified: Mapping[str, str],
    campaign_ids: Sequence[str] | None = None,
) -> Mapped:
    """Cost rows of report rows; rows of campaigns outside `campaign_ids` (when given) are
    left out, for an advertiser account shared by several apps."""
    keep = set(campaign_ids) if campaign_ids is not None else None
    media_source = unified.get(UNIFIED_PARTNER, UNIFIED_PARTNER)
    entries: list[CostEntry] = []
    problems: list[str] = []
    # A window has a few dozen distinct days among its thousands of rows.
    days: dict[str, dt.date] = {}
    for row in rows:
        try:
            dims = row["dimensions"]
            metrics = row["metrics"]
            stamp = dims["stat_time_day"]
            day = days.get(stamp) if isinstance(stamp, str) else None
            if day is None:
                day = days[str(stamp)] = dt.date.fromisoformat(str(stamp)[:10])
            ad_id = _text(dims.get("ad_id"))
            campaign_id = _text(metrics.get("campaign_id"))
            if keep is not None and campaign_id not in keep:
                continue
            spend = _spend(metrics.get("spend"))
            currency = (_text(metrics.get("currency")) or advertiser.currency).upper()
            amount = report_amount(spend, currency, day, report_currency, rates)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problems.append(
                str(exc) if isinstance(exc, ValueError) else f"malformed row: {row!r}"[:200]
            )
            continue
        entries.append(
            CostEntry(
                app_key=app_key,
                date=day,
                source=TIKTOK_API,
                media_source=media_source,
                campaign=_text(metrics.get("campaign_name")),
                campaign_id=campaign_id,
                adset=_text(metrics.get("adgroup_name")),
                adset_id=_text(metrics.get("adgroup_id")),
                ad=_text(metrics.get("ad_name")),
                ad_id=ad_id,
                country=_text(dims.get("country_code")).upper(),
                cost=str(spend),
                currency=currency,
                amount=amount,
                report_currency=report_currency,
            )
        )
    return Mapped(entries, problems)
