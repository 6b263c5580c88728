"""Outbox queries: due postbacks, attempts and their states."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlite_utils import Database

from app.store.base import StoreBase
from app.store.records import NewPostback, PostbackAttempt, PostbackRecord


class OutboxQueries(StoreBase):
    # -- outbox ------------------------------------------------------------------------------

    async def due_postbacks(self, now: float, limit: int) -> list[PostbackRecord]:
        rows = await self._all(
            "SELECT * FROM postbacks WHERE state IN ('pending', 'retrying') "
            "AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            [now, limit],
        )
        return [_postback(r) for r in rows]

    async def next_postback_due(self) -> float | None:
        row = await self._one(
            "SELECT MIN(next_attempt_at) AS t FROM postbacks WHERE state IN ('pending', 'retrying')"
        )
        return row["t"] if row else None

    async def outbox_pending(self) -> int:
        row = await self._one(
            "SELECT COUNT(*) AS n FROM postbacks WHERE state IN ('pending', 'retrying')"
        )
        return int(row["n"]) if row else 0

    async def postback_states(self) -> dict[str, int]:
        rows = await self._all("SELECT state, COUNT(*) AS n FROM postbacks GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    async def record_attempts(self, attempts: Sequence[PostbackAttempt]) -> None:
        """Log one delivery attempt per postback and move each to its next state."""

        def write(db: Database) -> None:
            for a in attempts:
                db.execute(
                    "INSERT INTO postback_attempts "
                    "(postback_id, time, http_status, code, message, request_id) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [a.postback_id, a.time, a.http_status, a.code, a.message, a.request_id],
                )
                db.execute(
                    "UPDATE postbacks SET state = ?, attempts = attempts + 1, "
                    "last_attempt_at = ?, last_http_status = ?, last_code = ?, "
                    "last_message = ?, next_attempt_at = ?, "
                    "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
                    [
                        a.state,
                        a.time,
                        a.http_status,
                        a.code,
                        a.message,
                        a.next_attempt_at,
                        a.state,
                        a.time,
                        a.postback_id,
                    ],
                )

        await self.writer.write(write)

    async def retry_postback(self, postback_id: str, now: float) -> str | None:
        """Make a failed, dead or waiting postback due now. Answers its state before, or None
        when there is no such postback; a `sent` one is left alone."""

        def write(db: Database) -> str | None:
            row = db.execute("SELECT state FROM postbacks WHERE id = ?", [postback_id]).fetchone()
            if row is None:
                return None
            if row[0] != "sent":
                db.execute(
                    "UPDATE postbacks SET state = 'pending', next_attempt_at = ? WHERE id = ?",
                    [now, postback_id],
                )
            return str(row[0])

        return await self.writer.write(write)

    async def postback_attempts(self, postback_id: str) -> list[dict[str, Any]]:
        return await self._all(
            "SELECT * FROM postback_attempts WHERE postback_id = ? ORDER BY id", [postback_id]
        )

    async def postbacks_for(self, subject_id: str) -> list[PostbackRecord]:
        rows = await self._all(
            "SELECT * FROM postbacks WHERE subject_id = ? ORDER BY created_at", [subject_id]
        )
        return [_postback(r) for r in rows]


def queue_postbacks(db: Database, postbacks: Sequence[NewPostback], now: float) -> None:
    for p in postbacks:
        db.execute(
            "INSERT INTO postbacks (id, app_key, partner, kind, subject_id, event, payload, "
            "state, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            [
                p.id,
                p.app_key,
                p.partner,
                p.kind,
                p.subject_id,
                p.event,
                json.dumps(p.payload, ensure_ascii=False),
                now,
                now,
            ],
        )


def _postback(row: Mapping[str, Any]) -> PostbackRecord:
    return PostbackRecord(
        id=row["id"],
        app_key=row["app_key"],
        partner=row["partner"],
        kind=row["kind"],
        subject_id=row["subject_id"],
        event=row["event"],
        payload=json.loads(row["payload"]),
        state=row["state"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        last_code=row["last_code"],
        last_message=row["last_message"],
    )
