"""Cost (`reporting.md` section 4): the uploaded CSV, checked row by row, converted to the
report currency, and which cost rows count. Pure.

A row is keyed by (app, date, source, media source, campaign, campaign id, ad set, ad set id,
ad, ad id, country): a later row with the same key replaces the earlier one, so uploading a file
twice changes nothing. `source` says where the row came from: `upload` (this CSV), or a
pull (`tiktok_api`, TikTok Ads' reporting API; `api` in rows written before it had a name).
For one campaign-day (app, date, media source, campaign id, else campaign name), pulled rows
win: uploaded rows of that campaign-day are left out of reports (`effective_cost`), so the same
money is never counted twice, and `superseded` names those uploaded rows so they can be
reported as such.

A pull owns what it covered: `CostScope` is the app, source, account (advertiser) and days of
one pull window (and its campaigns, when the connection keeps only some), whose rows the store
replaces by the pull's at once.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from app.fields import FieldError
from app.reports.rollups import REVENUE_SCALE

UPLOAD = "upload"
PULLED = "api"
TIKTOK_API = "tiktok_api"
COST_COLUMNS: tuple[str, ...] = (
    "date",
    "media_source",
    "campaign",
    "campaign_id",
    "adset",
    "adset_id",
    "ad",
    "ad_id",
    "country",
    "cost",
    "currency",
)
REQUIRED_COST_COLUMNS = ("date", "media_source", "cost", "currency")
RATE_COLUMNS = ("date", "currency", "rate_to_report_currency")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
MAX_TEXT = 200
MAX_ROWS = 200_000


@dataclass(frozen=True)
class CostEntry:
    app_key: str
    date: date
    source: str
    media_source: str
    campaign: str
    campaign_id: str
    adset: str
    adset_id: str
    ad: str
    ad_id: str
    country: str
    # As the row said it, and in integer millionths of the report currency.
    cost: str
    currency: str
    amount: int
    report_currency: str

    def campaign_day(self) -> tuple[str, dt.date, str, str]:
        return (
            self.app_key,
            self.date,
            self.media_source,
            f"id:{self.campaign_id}" if self.campaign_id else f"name:{self.campaign}",
        )


@dataclass(frozen=True)
class Rejected:
    line: int
    error: str

    @property
    def field(self) -> str | None:
        """The column the error is about (each message starts with it), for a screen to show
        it in place; None for an error of the whole row."""
        if self.error.startswith("no rate for "):
            return "currency"
        first = self.error.split(" ", 1)[0]
        if first == "rate":
            return "rate_to_report_currency"
        return first if first in COST_COLUMNS or first in RATE_COLUMNS else None


@dataclass(frozen=True)
class Rate:
    date: date
    currency: str
    rate: Decimal


@dataclass(frozen=True)
class CostScope:
    """The rows one pull window replaces: these days (inclusive) of this app, source and
    account, and only these campaigns when `campaign_ids` is not None."""

    app_key: str
    source: str
    account: str
    start: date
    end: date
    campaign_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Replaced:
    """What a replace did: rows now in the scope, rows new or different, rows removed, and the
    uploaded rows of the scope's days that a pulled row now supersedes (`superseded`)."""

    rows: int
    changed: int
    removed: int
    superseded: int = 0


def is_pulled(entry: CostEntry) -> bool:
    return entry.source != UPLOAD


def effective_cost(entries: Iterable[CostEntry]) -> list[CostEntry]:
    """The rows reports count: pulled rows, and uploaded rows of campaign-days with none."""
    rows = list(entries)
    pulled = {e.campaign_day() for e in rows if is_pulled(e)}
    return [e for e in rows if is_pulled(e) or e.campaign_day() not in pulled]


def superseded(entries: Iterable[CostEntry]) -> list[CostEntry]:
    """Uploaded rows that reports leave out because a pulled row has their campaign-day."""
    rows = list(entries)
    pulled = {e.campaign_day() for e in rows if is_pulled(e)}
    return [e for e in rows if not is_pulled(e) and e.campaign_day() in pulled]


def report_amount(
    cost: Decimal,
    currency: str,
    day: date,
    report_currency: str,
    rates: Mapping[tuple[date, str], Decimal],
) -> int:
    """`cost` in integer millionths of the report currency; ValueError without a rate."""
    if currency == report_currency:
        converted = cost
    else:
        rate = rates.get((day, currency))
        if rate is None:
            raise ValueError(f"no rate for {currency} on {day.isoformat()} (upload it first)")
        converted = cost * rate
    return int((converted * REVENUE_SCALE).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _rows(text: str, columns: tuple[str, ...], required: tuple[str, ...]) -> csv.DictReader[str]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise FieldError(
            "file", f"has no column {', '.join(missing)} (header: {', '.join(columns)})"
        )
    reader.fieldnames = header
    return reader


def _decimal(raw: str, name: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{name} must be a number") from None
    if not value.is_finite():
        raise ValueError(f"{name} must be a number")
    return value


def _day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError("date must be YYYY-MM-DD") from None


def parse_cost(
    text: str,
    *,
    app_key: str,
    unified: Mapping[str, str],
    report_currency: str,
    rates: Mapping[tuple[date, str], Decimal],
) -> tuple[list[CostEntry], list[Rejected]]:
    """The good rows (a later row of the same key replaces an earlier one) and the bad lines.
    Line numbers count the header as line 1. A file without the required columns is a
    FieldError (`file`)."""
    reader = _rows(text, COST_COLUMNS, REQUIRED_COST_COLUMNS)
    good: dict[tuple[object, ...], CostEntry] = {}
    rejected: list[Rejected] = []
    for count, raw in enumerate(reader):
        line = reader.line_num
        if count >= MAX_ROWS:
            rejected.append(Rejected(line, f"a file holds at most {MAX_ROWS} rows"))
            break
        try:
            entry = _cost_row(raw, app_key, unified, report_currency, rates)
        except ValueError as exc:
            rejected.append(Rejected(line, str(exc)))
            continue
        key = (entry.date, entry.media_source, *(getattr(entry, c) for c in COST_COLUMNS[2:9]))
        good.pop(key, None)
        good[key] = entry
    return list(good.values()), rejected


def _cost_row(
    raw: Mapping[str, str | None],
    app_key: str,
    unified: Mapping[str, str],
    report_currency: str,
    rates: Mapping[tuple[date, str], Decimal],
) -> CostEntry:
    cells: dict[str, str] = {}
    for column in COST_COLUMNS:
        value = raw.get(column)
        text = value.strip() if isinstance(value, str) else ""
        if len(text) > MAX_TEXT or "\x00" in text:
            raise ValueError(f"{column} is longer than {MAX_TEXT} characters or holds a NUL")
        cells[column] = text
    for column in REQUIRED_COST_COLUMNS:
        if not cells[column]:
            raise ValueError(f"{column} is required")
    day = _day(cells["date"])
    cost = _decimal(cells["cost"], "cost")
    if cost < 0:
        raise ValueError("cost must not be negative")
    currency = cells["currency"].upper()
    if not CURRENCY_RE.match(currency):
        raise ValueError("currency must be a three-letter ISO 4217 code")
    amount = report_amount(cost, currency, day, report_currency, rates)
    media_source = cells["media_source"]
    return CostEntry(
        app_key=app_key,
        date=day,
        source=UPLOAD,
        media_source=unified.get(media_source, media_source),
        campaign=cells["campaign"],
        campaign_id=cells["campaign_id"],
        adset=cells["adset"],
        adset_id=cells["adset_id"],
        ad=cells["ad"],
        ad_id=cells["ad_id"],
        country=cells["country"].upper(),
        cost=str(cost),
        currency=currency,
        amount=amount,
        report_currency=report_currency,
    )


def parse_rates(text: str) -> tuple[list[Rate], list[Rejected]]:
    reader = _rows(text, RATE_COLUMNS, RATE_COLUMNS)
    good: dict[tuple[date, str], Rate] = {}
    rejected: list[Rejected] = []
    for count, raw in enumerate(reader):
        line = reader.line_num
        if count >= MAX_ROWS:
            rejected.append(Rejected(line, f"a file holds at most {MAX_ROWS} rows"))
            break
        try:
            day = _day((raw.get("date") or "").strip())
            currency = (raw.get("currency") or "").strip().upper()
            if not CURRENCY_RE.match(currency):
                raise ValueError("currency must be a three-letter ISO 4217 code")
            rate = _decimal((raw.get("rate_to_report_currency") or "").strip(), "rate")
            if rate <= 0:
                raise ValueError("rate_to_report_currency must be above zero")
        except ValueError as exc:
            rejected.append(Rejected(line, str(exc)))
            continue
        good[(day, currency)] = Rate(day, currency, rate)
    return list(good.values()), rejected
