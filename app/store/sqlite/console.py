"""The console's data in SQLite: accounts, sessions, failed logins, and the console's lists."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlite_utils import Database

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
from app.store.records import ActivityItem, SessionRecord, TouchCounts, UserRecord
from app.store.sqlite.connections import Connections


def _in_apps(app_keys: Collection[str] | None, column: str = "app_key") -> tuple[str, list[str]]:
    """A WHERE clause limiting `column` to `app_keys` (None: no limit), and its parameters."""
    if app_keys is None:
        return "1", []
    keys = sorted(app_keys)
    if not keys:
        return "0", []
    return f"{column} IN ({', '.join('?' for _ in keys)})", keys


class SqliteUsers:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    async def create_user(
        self,
        username: str,
        password_hash: str,
        role: str,
        apps: Sequence[str] | None,
        now: float,
    ) -> UserRecord:
        apps_json = apps_document(apps)

        def write(db: Database) -> None:
            db.execute(
                "INSERT INTO users (username, password_hash, created_at, role, apps) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(username) DO UPDATE SET "
                "password_hash = excluded.password_hash, role = excluded.role, "
                "apps = excluded.apps",
                [username, password_hash, now, role, apps_json],
            )
            # A new password or role ends the sessions made under the old one.
            db.execute(
                "UPDATE sessions SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL",
                [now, username],
            )

        await self._conns.write(write)
        user = await self.get_user(username)
        assert user is not None
        return user

    async def get_user(self, username: str) -> UserRecord | None:
        row = await self._conns.one("SELECT * FROM users WHERE username = ?", [username])
        return user_from(row) if row else None

    async def list_users(self) -> list[UserRecord]:
        rows = await self._conns.all("SELECT * FROM users ORDER BY username")
        return [user_from(r) for r in rows]

    async def set_password_hash(self, username: str, password_hash: str) -> None:
        def write(db: Database) -> None:
            db.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?", [password_hash, username]
            )

        await self._conns.write(write)

    async def create_session(
        self, session_id: str, username: str, csrf_token: str, now: float
    ) -> None:
        def write(db: Database) -> None:
            db.execute("DELETE FROM sessions WHERE last_seen_at < ?", [now - KEEP_SESSIONS_SECONDS])
            db.execute(
                "INSERT INTO sessions (id, username, csrf_token, created_at, last_seen_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [session_id, username, csrf_token, now, now],
            )

        await self._conns.write(write)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        row = await self._conns.one("SELECT * FROM sessions WHERE id = ?", [session_id])
        if row is None:
            return None
        return session_from(row)

    async def touch_session(self, session_id: str, now: float) -> None:
        def write(db: Database) -> None:
            db.execute(
                "UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at <= ?",
                [now, session_id, now - SESSION_USE_RESOLUTION_SECONDS],
            )

        await self._conns.write(write)

    async def revoke_session(self, session_id: str, now: float) -> None:
        def write(db: Database) -> None:
            db.execute(
                "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                [now, session_id],
            )

        await self._conns.write(write)

    async def record_login_failure(self, username: str, ip: str | None, now: float) -> None:
        def write(db: Database) -> None:
            db.execute("DELETE FROM login_failures WHERE time < ?", [now - KEEP_FAILURES_SECONDS])
            db.execute(
                "INSERT INTO login_failures (username, ip, time) VALUES (?, ?, ?)",
                [username, ip, now],
            )

        await self._conns.write(write)

    async def login_failures(self, username: str, ip: str | None, since: float) -> tuple[int, int]:
        by_user = await self._conns.one(
            "SELECT count(*) AS n FROM login_failures WHERE username = ? AND time >= ?",
            [username, since],
        )
        by_ip = (
            await self._conns.one(
                "SELECT count(*) AS n FROM login_failures WHERE ip = ? AND time >= ?", [ip, since]
            )
            if ip
            else None
        )
        return (by_user or {"n": 0})["n"], (by_ip or {"n": 0})["n"]


class SqliteActivity:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    async def latest_activity(
        self, app_keys: Collection[str] | None, limit: int
    ) -> list[ActivityItem]:
        where, keys = _in_apps(app_keys)
        rows = await self._conns.all(
            "SELECT * FROM ("
            "SELECT 'install' AS kind, id, app_key, time, status AS name, media_source, "
            f"campaign, id AS install_id FROM installs WHERE {where} "
            "ORDER BY time DESC LIMIT ?) "
            "UNION ALL SELECT * FROM ("
            "SELECT 'event' AS kind, e.id, e.app_key, e.event_time AS time, e.event_name AS name, "
            "e.media_source, i.campaign, e.install_id FROM events e "
            f"JOIN installs i ON i.id = e.install_id WHERE {where.replace('app_key', 'e.app_key')} "
            "ORDER BY e.event_time DESC LIMIT ?) "
            "ORDER BY time DESC LIMIT ?",
            [*keys, limit, *keys, limit, limit],
        )
        return [ActivityItem(**r) for r in rows]

    async def counts(self, app_keys: Collection[str] | None, since: float) -> TouchCounts:
        where, keys = _in_apps(app_keys)

        def count(table: str, time: str = "time", extra: str = "") -> str:
            return f"(SELECT count(*) FROM {table} WHERE {where} AND {time} >= ?{extra})"

        attributed = count("installs", extra=" AND status = 'attributed'")
        row = await self._conns.one(
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
        where, keys = _in_apps(app_keys)
        params: list[Any] = list(keys)
        if state:
            where += " AND state = ?"
            params.append(state)
        rows = await self._conns.all(
            f"SELECT * FROM postbacks WHERE {where} ORDER BY created_at DESC LIMIT ?",
            [*params, limit],
        )
        return [postback_from_row(r) for r in rows]
