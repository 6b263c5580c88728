"""Cost rows and currency rates in PostgreSQL (`app.reports.cost` decides what they mean).

An upsert changes a row only when a value differs (`IS DISTINCT FROM`), so its row count is
what was new or changed, as on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from app.reports.cost import CostEntry, Rate
from app.store.postgres.connections import Conn, Database

_KEY = (
    "app_key, date, source, media_source, campaign, campaign_id, adset, adset_id, ad, ad_id, "
    "country"
)
_VALUES = "cost, currency, amount, report_currency"
UPSERT_COST = (
    f"INSERT INTO cost ({_KEY}, {_VALUES}, updated_at) VALUES ({', '.join(['%s'] * 16)}) "
    f"ON CONFLICT ({_KEY}) DO UPDATE SET cost = excluded.cost, currency = excluded.currency, "
    "amount = excluded.amount, report_currency = excluded.report_currency, "
    "updated_at = excluded.updated_at "
    "WHERE cost.cost IS DISTINCT FROM excluded.cost "
    "OR cost.currency IS DISTINCT FROM excluded.currency "
    "OR cost.amount IS DISTINCT FROM excluded.amount "
    "OR cost.report_currency IS DISTINCT FROM excluded.report_currency"
)
UPSERT_RATE = (
    "INSERT INTO cost_rates (app_key, date, currency, rate, updated_at) "
    "VALUES (%s, %s, %s, %s, %s) "
    "ON CONFLICT (app_key, date, currency) DO UPDATE SET rate = excluded.rate, "
    "updated_at = excluded.updated_at WHERE cost_rates.rate IS DISTINCT FROM excluded.rate"
)


async def _upsert_each(conn: Conn, sql: str, rows: Sequence[Sequence[object]]) -> int:
    if not rows:
        return 0
    async with conn.cursor() as cursor:
        # In key order: two uploads of overlapping rows lock them in the same order. After
        # executemany, rowcount is the sum over the statements (pipelined, one round trip).
        await cursor.executemany(sql, sorted(rows, key=repr))
        return max(cursor.rowcount, 0)


class PostgresCost:
    def __init__(self, db: Database) -> None:
        self._db = db

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

        async def write(conn: Conn) -> int:
            return await _upsert_each(conn, UPSERT_COST, rows)

        return await self._db.write(write)

    async def cost_between(self, app_key: str, start: date, end: date) -> list[CostEntry]:
        rows = await self._db.all(
            f"SELECT {_KEY}, {_VALUES} FROM cost WHERE app_key = %s AND date >= %s AND date <= %s",
            [app_key, start.isoformat(), end.isoformat()],
        )
        return [CostEntry(**(r | {"date": date.fromisoformat(r["date"])})) for r in rows]

    async def put_rates(self, app_key: str, rates: Sequence[Rate], now: float) -> int:
        rows = [(app_key, r.date.isoformat(), r.currency, str(r.rate), now) for r in rates]

        async def write(conn: Conn) -> int:
            return await _upsert_each(conn, UPSERT_RATE, rows)

        return await self._db.write(write)

    async def rates(self, app_key: str) -> dict[tuple[date, str], Decimal]:
        rows = await self._db.all(
            "SELECT date, currency, rate FROM cost_rates WHERE app_key = %s", [app_key]
        )
        return {(date.fromisoformat(r["date"]), r["currency"]): Decimal(r["rate"]) for r in rows}
