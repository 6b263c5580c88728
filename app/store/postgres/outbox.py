"""Outbox queries in PostgreSQL: due postbacks taken with a lease, attempts, owner retries.

Several nodes run a delivery worker each. `claim_postbacks` takes the due rows it answers with a
lease: in one statement it picks them (each integration's share capped, as on SQLite), locks
them `FOR UPDATE SKIP LOCKED` (rows another node is claiming this instant are skipped, not
waited for) and sets `lease_until`. Until then no other node sees them as due. The worker's
`record_attempts` moves each to its next state and ends the lease. A node that dies holding a
lease leaves its rows to expire and be claimed by another node: at least once, with the same
`event_id`, which TikTok drops when it arrives twice within 48 hours.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from app.postbacks.postback import NewPostback, PostbackAttempt, PostbackDetail, PostbackRecord
from app.store.common.outbox import (
    attempt_log_rows,
    attempt_state_rows,
    postback_detail,
    postback_from_row,
    queued_rows,
    state_counts,
)
from app.store.postgres.connections import Conn, Database

_DUE = (
    "state IN ('pending', 'retrying') AND next_attempt_at <= %(now)s "
    "AND (lease_until IS NULL OR lease_until <= %(now)s)"
)


def _due_window(exclude: Collection[tuple[str, str]], params: dict[str, Any]) -> str:
    """The ids due at `now`, each integration's share capped, oldest first."""
    skip = ""
    for i, (app_key, partner) in enumerate(exclude):
        skip += f" AND NOT (app_key = %(xa{i})s AND partner = %(xp{i})s)"
        params[f"xa{i}"] = app_key
        params[f"xp{i}"] = partner
    return (
        "SELECT id, next_attempt_at, seq FROM (SELECT id, next_attempt_at, seq, ROW_NUMBER() "
        "OVER (PARTITION BY app_key, partner ORDER BY next_attempt_at, seq) AS n "
        f"FROM postbacks WHERE {_DUE}{skip}) AS due WHERE n <= %(per)s "
        "ORDER BY next_attempt_at, seq LIMIT %(limit)s"
    )


class PostgresOutbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- delivery ----------------------------------------------------------------------------

    async def queue_postbacks(self, postbacks: Sequence[NewPostback], now: float) -> None:
        rows = list(postbacks)

        async def write(conn: Conn) -> None:
            await queue_postbacks(conn, rows, now)

        await self._db.write(write)

    async def due_postbacks(
        self,
        now: float,
        *,
        per_integration: int,
        limit: int,
        exclude: Collection[tuple[str, str]] = (),
    ) -> list[PostbackRecord]:
        params: dict[str, Any] = {"now": now, "per": per_integration, "limit": limit}
        window = _due_window(exclude, params)
        rows = await self._db.all(
            f"SELECT p.* FROM postbacks p JOIN ({window}) d ON d.id = p.id "
            "ORDER BY d.next_attempt_at, d.seq",
            params,
        )
        return [postback_from_row(r) for r in rows]

    async def claim_postbacks(
        self,
        now: float,
        *,
        per_integration: int,
        limit: int,
        lease_seconds: float,
        exclude: Collection[tuple[str, str]] = (),
    ) -> list[PostbackRecord]:
        params: dict[str, Any] = {
            "now": now,
            "per": per_integration,
            "limit": limit,
            "until": now + lease_seconds,
        }
        window = _due_window(exclude, params)
        # The outer WHERE repeats the due test: a row another node leased between the window's
        # snapshot and our lock is re-checked on its new version, and left alone.
        sql = (
            "UPDATE postbacks SET lease_until = %(until)s WHERE id IN ("
            f"SELECT id FROM postbacks WHERE id IN (SELECT id FROM ({window}) AS w) AND {_DUE} "
            "FOR UPDATE SKIP LOCKED) RETURNING *"
        )

        async def write(conn: Conn) -> list[dict[str, Any]]:
            cursor = await conn.execute(sql, params)
            return list(await cursor.fetchall())

        rows = await self._db.write(write)
        rows.sort(key=lambda r: (r["next_attempt_at"], r["seq"]))
        return [postback_from_row(r) for r in rows]

    async def next_postback_due(self) -> float | None:
        row = await self._db.one(
            "SELECT MIN(GREATEST(next_attempt_at, COALESCE(lease_until, 0))) AS t "
            "FROM postbacks WHERE state IN ('pending', 'retrying')"
        )
        return row["t"] if row else None

    async def outbox_pending(self) -> int:
        row = await self._db.one(
            "SELECT COUNT(*) AS n FROM postbacks WHERE state IN ('pending', 'retrying')"
        )
        return int(row["n"]) if row else 0

    async def postback_states(self) -> dict[str, int]:
        rows = await self._db.all("SELECT state, COUNT(*) AS n FROM postbacks GROUP BY state")
        return state_counts(rows)

    async def record_attempts(self, attempts: Sequence[PostbackAttempt]) -> None:
        """Log one delivery attempt per postback, move each to its next state and end its
        lease, together."""
        log_rows = attempt_log_rows(attempts)
        updates = attempt_state_rows(attempts)

        async def write(conn: Conn) -> None:
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO postback_attempts (postback_id, time, http_status, code, "
                    "message, request_id, state, pixel_code, test_event_code, batch_size) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    log_rows,
                )
                await cursor.executemany(
                    "UPDATE postbacks SET state = %s, attempts = attempts + 1, "
                    "retry_attempts = retry_attempts + 1, last_attempt_at = %s, "
                    "last_http_status = %s, last_code = %s, last_message = %s, "
                    "last_request_id = %s, next_attempt_at = %s, lease_until = NULL, "
                    "sent_at = CASE WHEN %s = 'sent' THEN %s ELSE sent_at END WHERE id = %s "
                    # Erased while another node was sending it: it stays dropped.
                    "AND state <> 'dropped'",
                    updates,
                )

        await self._db.write(write)

    # -- the owner's view --------------------------------------------------------------------

    async def retry_postback(self, postback_id: str, now: float) -> str | None:
        async def write(conn: Conn) -> str | None:
            cursor = await conn.execute(
                "SELECT state FROM postbacks WHERE id = %s FOR UPDATE", [postback_id]
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            if row["state"] != "sent":
                await _restart(conn, "id = %s", [postback_id], now)
            return str(row["state"])

        return await self._db.write(write)

    async def retry_failed_postbacks(self, app_key: str, now: float) -> int:
        async def write(conn: Conn) -> int:
            return await _restart(
                conn, "app_key = %s AND state IN ('failed', 'dead')", [app_key], now
            )

        return await self._db.write(write)

    async def get_postback(self, postback_id: str) -> PostbackDetail | None:
        row = await self._db.one("SELECT * FROM postbacks WHERE id = %s", [postback_id])
        if row is None:
            return None
        attempts = await self._db.all(
            "SELECT * FROM postback_attempts WHERE postback_id = %s ORDER BY id", [postback_id]
        )
        return postback_detail(row, attempts)

    async def postbacks_for(self, subject_id: str) -> list[PostbackRecord]:
        rows = await self._db.all(
            "SELECT * FROM postbacks WHERE subject_id = %s ORDER BY created_at, seq", [subject_id]
        )
        return [postback_from_row(r) for r in rows]


async def queue_postbacks(conn: Conn, postbacks: Sequence[NewPostback], now: float) -> None:
    """Insert outbox rows, due now; called inside the install's or event's own transaction."""
    if not postbacks:
        return
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO postbacks (id, app_key, partner, kind, subject_id, event, payload, "
            "state, created_at, next_attempt_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s)",
            queued_rows(postbacks, now),
        )


async def _restart(conn: Conn, where: str, params: list[Any], now: float) -> int:
    cursor = await conn.execute(
        "UPDATE postbacks SET state = 'pending', next_attempt_at = %s, retry_since = %s, "
        "retry_attempts = 0, lease_until = NULL "
        f"WHERE state NOT IN ('sent', 'dropped') AND {where}",
        [now, now, *params],
    )
    return int(cursor.rowcount)
