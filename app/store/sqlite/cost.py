"""Cost rows and currency rates in SQLite (`app.reports.cost` decides what they mean)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlite_utils import Database

from app.reports.cost import CostEntry, Rate
from app.store.sqlite.connections import Connections

_KEY = (
    "app_key, date, source, media_source, campaign, campaign_id, adset, adset_id, ad, ad_id, "
    "country"
)
_VALUES = "cost, currency, amount, report_currency"
UPSERT_COST = (
    f"INSERT INTO cost ({_KEY}, {_VALUES}, updated_at) VALUES ({', '.join('?' * 16)}) "
    f"ON CONFLICT ({_KEY}) DO UPDATE SET cost = excluded.cost, currency = excluded.currency, "
    "amount = excluded.amount, report_currency = excluded.report_currency, "
    "updated_at = excluded.updated_at "
    "WHERE cost IS NOT excluded.cost OR currency IS NOT excluded.currency "
    "OR amount IS NOT excluded.amount OR report_currency IS NOT excluded.report_currency"
)
UPSERT_RATE = (
    "INSERT INTO cost_rates (app_key, date, currency, rate, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (app_key, date, currency) DO UPDATE SET rate = excluded.rate, "
    "updated_at = excluded.updated_at WHERE rate IS NOT excluded.rate"
)


class SqliteCost:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    async def put_cost(self, entries: Sequence[CostEntry], now: float) -> int:
        rows = [
            (
                e.app_key,
                e.date.isoformat(),
                e.source,
                e.media_source,
                e.campaign,
                e.campaign_id,
                e.adset,
                e.adset_id,
                e.ad,
                e.ad_id,
                e.country,
                e.cost,
                e.currency,
                e.amount,
                e.report_currency,
                now,
            )
            for e in entries
        ]

        def write(db: Database) -> int:
            return sum(db.conn.execute(UPSERT_COST, row).rowcount for row in rows)

        return await self._conns.write(write)

    async def cost_between(self, app_key: str, start: date, end: date) -> list[CostEntry]:
        rows = await self._conns.all(
            f"SELECT {_KEY}, {_VALUES} FROM cost WHERE app_key = ? AND date >= ? AND date <= ?",
            [app_key, start.isoformat(), end.isoformat()],
        )
        return [CostEntry(**(r | {"date": date.fromisoformat(r["date"])})) for r in rows]

    async def put_rates(self, app_key: str, rates: Sequence[Rate], now: float) -> int:
        rows = [(app_key, r.date.isoformat(), r.currency, str(r.rate), now) for r in rates]

        def write(db: Database) -> int:
            return sum(db.conn.execute(UPSERT_RATE, row).rowcount for row in rows)

        return await self._conns.write(write)

    async def rates(self, app_key: str) -> dict[tuple[date, str], Decimal]:
        rows = await self._conns.all(
            "SELECT date, currency, rate FROM cost_rates WHERE app_key = ?", [app_key]
        )
        return {(date.fromisoformat(r["date"]), r["currency"]): Decimal(r["rate"]) for r in rows}
