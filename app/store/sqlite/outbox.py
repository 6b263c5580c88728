"""Outbox queries: due postbacks, delivery attempts and the states they leave, owner retries.

A postback row is inserted by `queue_postbacks` inside the transaction of its install or event
(`app/store/sqlite/installs.py`), so a stored install always has its postback. The worker reads due
rows with `due_postbacks`, and `record_attempts` logs each attempt and moves its postback to the
next state in one transaction. Nothing marks a row as "being sent": a row whose request was in
flight when the process died is still due after restart, and is sent again (at least once).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from typing import Any

from sqlite_utils import Database

from app.postbacks.postback import NewPostback, PostbackAttempt, PostbackDetail, PostbackRecord
from app.store.common.outbox import (
    attempt_log_rows,
    attempt_state_rows,
    postback_detail,
    postback_from_row,
    queued_rows,
    state_counts,
)
from app.store.sqlite.connections import Connections


class SqliteOutbox:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    # -- delivery ----------------------------------------------------------------------------

    async def queue_postbacks(self, postbacks: Sequence[NewPostback], now: float) -> None:
        rows = list(postbacks)
        await self._conns.write(lambda db: queue_postbacks(db, rows, now))

    async def due_postbacks(
        self,
        now: float,
        *,
        per_integration: int,
        limit: int,
        exclude: Collection[tuple[str, str]] = (),
    ) -> list[PostbackRecord]:
        """Postbacks due at `now`, oldest due first: at most `per_integration` of each
        (app_key, partner), at most `limit` in all, none of the integrations in `exclude`
        (those with a request in flight)."""
        skip = ""
        params: list[Any] = [now]
        for app_key, partner in exclude:
            skip += " AND NOT (app_key = ? AND partner = ?)"
            params += [app_key, partner]
        params += [per_integration, limit]
        # The window function caps each integration's share, so one app's backlog after an
        # outage cannot crowd every other app out of a round. Ties go in queue order (rowid).
        rows = await self._conns.all(
            "SELECT * FROM (SELECT *, rowid AS seq, ROW_NUMBER() OVER ("
            "PARTITION BY app_key, partner ORDER BY next_attempt_at, rowid) AS n "
            f"FROM postbacks WHERE state IN ('pending', 'retrying') AND next_attempt_at <= ?{skip}"
            ") WHERE n <= ? ORDER BY next_attempt_at, seq LIMIT ?",
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
        """`due_postbacks`, with no lease written: one process owns the file, and its worker
        excludes the integrations it has in flight; after a crash the rows are due at once."""
        return await self.due_postbacks(
            now, per_integration=per_integration, limit=limit, exclude=exclude
        )

    async def next_postback_due(self) -> float | None:
        row = await self._conns.one(
            "SELECT MIN(next_attempt_at) AS t FROM postbacks WHERE state IN ('pending', 'retrying')"
        )
        return row["t"] if row else None

    async def outbox_pending(self) -> int:
        row = await self._conns.one(
            "SELECT COUNT(*) AS n FROM postbacks WHERE state IN ('pending', 'retrying')"
        )
        return int(row["n"]) if row else 0

    async def postback_states(self) -> dict[str, int]:
        rows = await self._conns.all("SELECT state, COUNT(*) AS n FROM postbacks GROUP BY state")
        return state_counts(rows)

    async def record_attempts(self, attempts: Sequence[PostbackAttempt]) -> None:
        """Log one delivery attempt per postback and move each to its next state, together."""
        log_rows = attempt_log_rows(attempts)
        updates = attempt_state_rows(attempts)

        def write(db: Database) -> None:
            conn = db.conn
            conn.executemany(
                "INSERT INTO postback_attempts (postback_id, time, http_status, code, message, "
                "request_id, state, pixel_code, test_event_code, batch_size) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                log_rows,
            )
            conn.executemany(
                "UPDATE postbacks SET state = ?, attempts = attempts + 1, "
                "retry_attempts = retry_attempts + 1, last_attempt_at = ?, "
                "last_http_status = ?, last_code = ?, last_message = ?, last_request_id = ?, "
                "next_attempt_at = ?, "
                "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
                updates,
            )

        await self._conns.write(write)

    # -- the owner's view --------------------------------------------------------------------

    async def retry_postback(self, postback_id: str, now: float) -> str | None:
        """Make a failed, dead or waiting postback due now, with a fresh run of retries.
        Answers its state before, or None when there is no such postback; a `sent` one is left
        alone."""

        def write(db: Database) -> str | None:
            row = db.execute("SELECT state FROM postbacks WHERE id = ?", [postback_id]).fetchone()
            if row is None:
                return None
            if row[0] != "sent":
                _restart(db, "id = ?", [postback_id], now)
            return str(row[0])

        return await self._conns.write(write)

    async def retry_failed_postbacks(self, app_key: str, now: float) -> int:
        """Make every failed or dead postback of an app due now; answers how many."""

        def write(db: Database) -> int:
            return _restart(db, "app_key = ? AND state IN ('failed', 'dead')", [app_key], now)

        return await self._conns.write(write)

    async def get_postback(self, postback_id: str) -> PostbackDetail | None:
        def run(conn: sqlite3.Connection) -> PostbackDetail | None:
            row = conn.execute("SELECT * FROM postbacks WHERE id = ?", [postback_id]).fetchone()
            if row is None:
                return None
            attempts = conn.execute(
                "SELECT * FROM postback_attempts WHERE postback_id = ? ORDER BY id",
                [postback_id],
            )
            return postback_detail(row, attempts)

        return await self._conns.read(run)

    async def postbacks_for(self, subject_id: str) -> list[PostbackRecord]:
        rows = await self._conns.all(
            "SELECT * FROM postbacks WHERE subject_id = ? ORDER BY created_at", [subject_id]
        )
        return [postback_from_row(r) for r in rows]


def queue_postbacks(db: Database, postbacks: Sequence[NewPostback], now: float) -> None:
    """Insert outbox rows, due now; called inside the install's or event's own transaction."""
    for row in queued_rows(postbacks, now):
        db.execute(
            "INSERT INTO postbacks (id, app_key, partner, kind, subject_id, event, payload, "
            "state, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            row,
        )


def _restart(db: Database, where: str, params: list[Any], now: float) -> int:
    cursor = db.execute(
        "UPDATE postbacks SET state = 'pending', next_attempt_at = ?, retry_since = ?, "
        f"retry_attempts = 0 WHERE state NOT IN ('sent', 'dropped') AND {where}",
        [now, now, *params],
    )
    return int(cursor.rowcount)
