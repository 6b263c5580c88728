"""Cost rows and currency rates in PostgreSQL (`app.reports.cost` decides what they mean).

An upsert changes a row only when a value differs (`IS DISTINCT FROM`), so its row count is
what was new or changed, as on SQLite.

A pull's replace (`replace_cost`) is one transaction holding a transaction-scoped advisory lock
on its app, source and account: two nodes pulling the same advertiser at once (a scheduled pull
and an asked-for one) replace one after the other, each seeing the other's rows, so the rows
left are exactly one pull's, never a mix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from app.reports.cost import CostEntry, CostScope, Rate, Replaced
from app.store.common import cost as common
from app.store.postgres.connections import Conn, Database

_KEY = ", ".join(common.KEY_COLUMNS)
_VALUES = ", ".join(common.VALUE_COLUMNS)
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
# A pulled row: its account too, and an unchanged row is not written (its updated_at stays).
UPSERT_PULLED = (
    f"INSERT INTO cost ({_KEY}, {_VALUES}, account, updated_at) "
    f"VALUES ({', '.join(['%s'] * 17)}) "
    f"ON CONFLICT ({_KEY}) DO UPDATE SET cost = excluded.cost, currency = excluded.currency, "
    "amount = excluded.amount, report_currency = excluded.report_currency, "
    "account = excluded.account, updated_at = excluded.updated_at "
    "WHERE cost.cost IS DISTINCT FROM excluded.cost "
    "OR cost.currency IS DISTINCT FROM excluded.currency "
    "OR cost.amount IS DISTINCT FROM excluded.amount "
    "OR cost.report_currency IS DISTINCT FROM excluded.report_currency "
    "OR cost.account IS DISTINCT FROM excluded.account"
)
# Uploaded rows of an app's days whose campaign-day (`CostEntry.campaign_day`: date, media
# source, campaign id, else campaign name) has a pulled row: what `superseded` says in Python.
COUNT_SUPERSEDED = (
    "SELECT COUNT(*) AS n FROM cost u WHERE u.app_key = %s AND u.source = %s "
    "AND u.date >= %s AND u.date <= %s AND EXISTS (SELECT 1 FROM cost p "
    "WHERE p.app_key = u.app_key AND p.date = u.date AND p.source <> u.source "
    "AND p.media_source = u.media_source AND p.campaign_id = u.campaign_id "
    "AND (u.campaign_id <> '' OR p.campaign = u.campaign))"
)
DELETE_BY_KEY = f"DELETE FROM cost WHERE {' AND '.join(f'{n} = %s' for n in common.KEY_COLUMNS)}"
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
        rows = common.uploaded_rows(entries, now)

        async def write(conn: Conn) -> int:
            return await _upsert_each(conn, UPSERT_COST, rows)

        return await self._db.write(write)

    async def replace_cost(
        self, scope: CostScope, entries: Sequence[CostEntry], now: float
    ) -> Replaced:
        rows = common.pulled_rows(scope, entries, now)
        where = "app_key = %s AND source = %s AND account = %s AND date >= %s AND date <= %s"
        params = common.scope_params(scope)
        if scope.campaign_ids is not None:
            where += " AND campaign_id = ANY(%s)"
            params.append(list(scope.campaign_ids))
        lock = json.dumps(["cost", scope.app_key, scope.source, scope.account])

        async def write(conn: Conn) -> Replaced:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [lock])
            cursor = await conn.execute(f"SELECT {_KEY} FROM cost WHERE {where}", params)
            existing = {tuple(r[n] for n in common.KEY_COLUMNS) for r in await cursor.fetchall()}
            stale = common.stale_keys(existing, rows)
            if stale:
                async with conn.cursor() as deleting:
                    await deleting.executemany(DELETE_BY_KEY, stale)
            written = await _upsert_each(conn, UPSERT_PULLED, rows)
            cursor = await conn.execute(
                COUNT_SUPERSEDED, common.superseded_params(scope.app_key, scope.start, scope.end)
            )
            counted = await cursor.fetchone()
            return common.replaced(rows, written, stale, int(counted["n"]) if counted else 0)

        return await self._db.write(write)

    async def cost_between(self, app_key: str, start: date, end: date) -> list[CostEntry]:
        rows = await self._db.all(
            f"SELECT {_KEY}, {_VALUES} FROM cost WHERE app_key = %s AND date >= %s AND date <= %s",
            common.day_range_params(app_key, start, end),
        )
        return [common.cost_entry(r) for r in rows]

    async def count_superseded(self, app_key: str, start: date, end: date) -> int:
        row = await self._db.one(COUNT_SUPERSEDED, common.superseded_params(app_key, start, end))
        return int(row["n"]) if row else 0

    async def put_rates(self, app_key: str, rates: Sequence[Rate], now: float) -> int:
        rows = common.rate_rows(app_key, rates, now)

        async def write(conn: Conn) -> int:
            return await _upsert_each(conn, UPSERT_RATE, rows)

        return await self._db.write(write)

    async def rates(self, app_key: str) -> dict[tuple[date, str], Decimal]:
        rows = await self._db.all(
            "SELECT date, currency, rate FROM cost_rates WHERE app_key = %s", [app_key]
        )
        return common.rates_by_day(rows)
