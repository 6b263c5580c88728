"""Cost rows and currency rates in SQLite (`app.reports.cost` decides what they mean)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlite_utils import Database

from app.reports.cost import CostEntry, CostScope, Rate, Replaced
from app.store.common import cost as common
from app.store.sqlite.connections import Connections

_KEY = ", ".join(common.KEY_COLUMNS)
_VALUES = ", ".join(common.VALUE_COLUMNS)
UPSERT_COST = (
    f"INSERT INTO cost ({_KEY}, {_VALUES}, updated_at) VALUES ({', '.join('?' * 16)}) "
    f"ON CONFLICT ({_KEY}) DO UPDATE SET cost = excluded.cost, currency = excluded.currency, "
    "amount = excluded.amount, report_currency = excluded.report_currency, "
    "updated_at = excluded.updated_at "
    "WHERE cost IS NOT excluded.cost OR currency IS NOT excluded.currency "
    "OR amount IS NOT excluded.amount OR report_currency IS NOT excluded.report_currency"
)
# A pulled row: its account too, and an unchanged row is not written (its updated_at stays).
UPSERT_PULLED = (
    f"INSERT INTO cost ({_KEY}, {_VALUES}, account, updated_at) VALUES ({', '.join('?' * 17)}) "
    f"ON CONFLICT ({_KEY}) DO UPDATE SET cost = excluded.cost, currency = excluded.currency, "
    "amount = excluded.amount, report_currency = excluded.report_currency, "
    "account = excluded.account, updated_at = excluded.updated_at "
    "WHERE cost IS NOT excluded.cost OR currency IS NOT excluded.currency "
    "OR amount IS NOT excluded.amount OR report_currency IS NOT excluded.report_currency "
    "OR account IS NOT excluded.account"
)
# Uploaded rows of an app's days whose campaign-day (`CostEntry.campaign_day`: date, media
# source, campaign id, else campaign name) has a pulled row: what `superseded` says in Python.
COUNT_SUPERSEDED = (
    "SELECT COUNT(*) FROM cost u WHERE u.app_key = ? AND u.source = ? "
    "AND u.date >= ? AND u.date <= ? AND EXISTS (SELECT 1 FROM cost p "
    "WHERE p.app_key = u.app_key AND p.date = u.date AND p.source <> u.source "
    "AND p.media_source = u.media_source AND p.campaign_id = u.campaign_id "
    "AND (u.campaign_id <> '' OR p.campaign = u.campaign))"
)
DELETE_BY_KEY = f"DELETE FROM cost WHERE {' AND '.join(f'{n} = ?' for n in common.KEY_COLUMNS)}"
UPSERT_RATE = (
    "INSERT INTO cost_rates (app_key, date, currency, rate, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (app_key, date, currency) DO UPDATE SET rate = excluded.rate, "
    "updated_at = excluded.updated_at WHERE rate IS NOT excluded.rate"
)


class SqliteCost:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    async def put_cost(self, entries: Sequence[CostEntry], now: float) -> int:
        rows = common.uploaded_rows(entries, now)

        def write(db: Database) -> int:
            return sum(db.conn.execute(UPSERT_COST, row).rowcount for row in rows)

        return await self._conns.write(write)

    async def replace_cost(
        self, scope: CostScope, entries: Sequence[CostEntry], now: float
    ) -> Replaced:
        rows = common.pulled_rows(scope, entries, now)
        where = "app_key = ? AND source = ? AND account = ? AND date >= ? AND date <= ?"
        params = common.scope_params(scope)
        if scope.campaign_ids is not None:
            where += f" AND campaign_id IN ({', '.join('?' * len(scope.campaign_ids))})"
            params += list(scope.campaign_ids)

        def write(db: Database) -> Replaced:
            # One transaction: a report read meanwhile sees the old rows or the new, never a
            # day half replaced. Rows the pull no longer has go; the others are upserted, so
            # an unchanged row is not rewritten and "changed" counts real changes.
            existing = {
                tuple(r) for r in db.execute(f"SELECT {_KEY} FROM cost WHERE {where}", params)
            }
            stale = common.stale_keys(existing, rows)
            db.conn.executemany(DELETE_BY_KEY, stale)
            written = db.conn.executemany(UPSERT_PULLED, rows).rowcount if rows else 0
            superseded = db.execute(
                COUNT_SUPERSEDED, common.superseded_params(scope.app_key, scope.start, scope.end)
            ).fetchone()[0]
            return common.replaced(rows, written, stale, superseded)

        return await self._conns.write(write)

    async def cost_between(self, app_key: str, start: date, end: date) -> list[CostEntry]:
        rows = await self._conns.all(
            f"SELECT {_KEY}, {_VALUES} FROM cost WHERE app_key = ? AND date >= ? AND date <= ?",
            common.day_range_params(app_key, start, end),
        )
        return [common.cost_entry(r) for r in rows]

    async def count_superseded(self, app_key: str, start: date, end: date) -> int:
        rows = await self._conns.all(
            COUNT_SUPERSEDED, common.superseded_params(app_key, start, end)
        )
        return int(next(iter(rows[0].values())))

    async def put_rates(self, app_key: str, rates: Sequence[Rate], now: float) -> int:
        rows = common.rate_rows(app_key, rates, now)

        def write(db: Database) -> int:
            return sum(db.conn.execute(UPSERT_RATE, row).rowcount for row in rows)

        return await self._conns.write(write)

    async def rates(self, app_key: str) -> dict[tuple[date, str], Decimal]:
        rows = await self._conns.all(
            "SELECT date, currency, rate FROM cost_rates WHERE app_key = ?", [app_key]
        )
        return common.rates_by_day(rows)
