"""The console's data in PostgreSQL: accounts, sessions, failed logins, and the console's lists."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from app.postbacks.postback import PostbackRecord
from app.store.common.console import (
    KEEP_FAILURES_SECONDS,
    KEEP_SESSIONS_SECONDS,
    SESSION_USE_RESOLUTION_SECONDS,
    apps_document,
    session_from,
    touch_counts,
    user_from,
)
from app.store.common.outbox import postback_from_row
from app.store.postgres.connections import Conn, Database
from app.store.records import ActivityItem, SessionRecord, TouchCounts, UserRecord


def _in_apps(app_keys: Collection[str] | None, column: str = "app_key") -> tuple[str, list[Any]]:
    """A WHERE clause limiting `column` to `app_keys` (None: no limit), and its parameters."""
    if app_keys is None:
        return "true", []
    return f"{column} = ANY(%s)", [sorted(app_keys)]


class PostgresUsers:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_user(
        self,
        username: str,
        password_hash: str,
        role: str,
        apps: Sequence[str] | None,
        now: float,
    ) -> UserRecord:
        apps_json = apps_document(apps)

        async def write(conn: Conn) -> dict[str, Any] | None:
            cursor = await conn.execute(
                "INSERT INTO users (username, password_hash, created_at, role, apps) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (username) DO UPDATE SET "
                "password_hash = excluded.password_hash, role = excluded.role, "
                "apps = excluded.apps RETURNING *",
                [username, password_hash, now, role, apps_json],
            )
            row = await cursor.fetchone()
            # A new password or role ends the sessions made under the old one.
            await conn.execute(
                "UPDATE sessions SET revoked_at = %s WHERE username = %s AND revoked_at IS NULL",
                [now, username],
            )
            return row

        row = await self._db.write(write)
        assert row is not None
        return user_from(row)

    async def get_user(self, username: str) -> UserRecord | None:
        row = await self._db.one("SELECT * FROM users WHERE username = %s", [username])
        return user_from(row) if row else None

    async def list_users(self) -> list[UserRecord]:
        rows = await self._db.all('SELECT * FROM users ORDER BY username COLLATE "C"')
        return [user_from(r) for r in rows]

    async def set_password_hash(self, username: str, password_hash: str) -> None:
        async def write(conn: Conn) -> None:
            await conn.execute(
                "UPDATE users SET password_hash = %s WHERE username = %s",
                [password_hash, username],
            )

        await self._db.write(write)

    async def create_session(
        self, session_id: str, username: str, csrf_token: str, now: float
    ) -> None:
        async def write(conn: Conn) -> None:
            await conn.execute(
                "DELETE FROM sessions WHERE last_seen_at < %s", [now - KEEP_SESSIONS_SECONDS]
            )
            await conn.execute(
                "INSERT INTO sessions (id, username, csrf_token, created_at, last_seen_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                [session_id, username, csrf_token, now, now],
            )

        await self._db.write(write)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        row = await self._db.one("SELECT * FROM sessions WHERE id = %s", [session_id])
        if row is None:
            return None
        return session_from(row)

    async def touch_session(self, session_id: str, now: float) -> None:
        async def write(conn: Conn) -> None:
            await conn.execute(
                "UPDATE sessions SET last_seen_at = %s WHERE id = %s AND last_seen_at <= %s",
                [now, session_id, now - SESSION_USE_RESOLUTION_SECONDS],
            )

        await self._db.write(write)

    async def revoke_session(self, session_id: str, now: float) -> None:
        async def write(conn: Conn) -> None:
            await conn.execute(
                "UPDATE sessions SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
                [now, session_id],
            )

        await self._db.write(write)

    async def record_login_failure(self, username: str, ip: str | None, now: float) -> None:
        async def write(conn: Conn) -> None:
            await conn.execute(
                "DELETE FROM login_failures WHERE time < %s", [now - KEEP_FAILURES_SECONDS]
            )
            await conn.execute(
                "INSERT INTO login_failures (username, ip, time) VALUES (%s, %s, %s)",
                [username, ip, now],
            )

        await self._db.write(write)

    async def login_failures(self, username: str, ip: str | None, since: float) -> tuple[int, int]:
        row = await self._db.one(
            "SELECT (SELECT count(*) FROM login_failures WHERE username = %s AND time >= %s) "
            "AS by_user, (SELECT count(*) FROM login_failures WHERE ip = %s AND time >= %s) "
            "AS by_ip",
            [username, since, ip, since],
        )
        assert row is not None
        return int(row["by_user"]), int(row["by_ip"]) if ip else 0


class PostgresActivity:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def latest_activity(
        self, app_keys: Collection[str] | None, limit: int
    ) -> list[ActivityItem]:
        where, keys = _in_apps(app_keys)
        event_where, _ = _in_apps(app_keys, "e.app_key")
        rows = await self._db.all(
            "(SELECT 'install' AS kind, id, app_key, time, status AS name, media_source, "
            f"campaign, id AS install_id FROM installs WHERE {where} "
            "ORDER BY time DESC LIMIT %s) "
            "UNION ALL ("
            "SELECT 'event' AS kind, e.id, e.app_key, e.event_time AS time, e.event_name AS name, "
            "e.media_source, i.campaign, e.install_id FROM events e "
            f"JOIN installs i ON i.id = e.install_id WHERE {event_where} "
            "ORDER BY e.event_time DESC LIMIT %s) "
            "ORDER BY time DESC LIMIT %s",
            [*keys, limit, *keys, limit, limit],
        )
        return [ActivityItem(**r) for r in rows]

    async def counts(self, app_keys: Collection[str] | None, since: float) -> TouchCounts:
        where, keys = _in_apps(app_keys)

        def count(table: str, time: str = "time", extra: str = "") -> str:
            return f"(SELECT count(*) FROM {table} WHERE {where} AND {time} >= %s{extra})"

        attributed = count("installs", extra=" AND status = 'attributed'")
        row = await self._db.one(
            f"SELECT {count('impressions')} AS impressions, {count('clicks')} AS clicks, "
            f"{count('installs')} AS installs, "
            f"{attributed} AS attributed_installs, "
            f"{count('events', 'event_time')} AS events",
            [*keys, since] * 5,
        )
        assert row is not None
        return touch_counts(row)

    async def list_postbacks(
        self, app_keys: Collection[str] | None, state: str | None, limit: int
    ) -> list[PostbackRecord]:
        where, params = _in_apps(app_keys)
        if state:
            where += " AND state = %s"
            params.append(state)
        rows = await self._db.all(
            f"SELECT * FROM postbacks WHERE {where} ORDER BY created_at DESC, seq DESC LIMIT %s",
            [*params, limit],
        )
        return [postback_from_row(r) for r in rows]
