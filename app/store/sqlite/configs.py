"""Configuration in SQLite: apps, integrations, pages and admin tokens."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from sqlite_utils import Database

from app.ids import new_id, new_secret, token_hash
from app.sealing import TokenSealer
from app.store.common.configs import (
    all_sealed,
    app_from_row,
    integration_from_row,
    open_token,
    page_from_row,
    resealed,
    seal_input,
    token_use_due,
)
from app.store.records import AppRecord, IntegrationRecord, PageRecord, TokenInfo
from app.store.sqlite.connections import Connections


def bump_config_version(db: Database) -> None:
    """Called inside every configuration write's transaction: the write and the new version
    commit together, so no process can see one without the other."""
    db.execute("UPDATE config_version SET version = version + 1 WHERE id = 1")


def _read_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT version FROM config_version WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


class SqliteConfigs:
    """`sealer` seals access tokens at rest; without one (tests, tools) they are kept as given."""

    def __init__(self, conns: Connections, sealer: TokenSealer | None = None) -> None:
        self._conns = conns
        self._sealer = sealer

    async def config_version(self) -> int:
        # Read on the event loop's own read connection, not through a worker thread: a
        # one-row primary-key read costs microseconds, the hop to a thread and back far more,
        # and every request that uses a config asks.
        return self._conns.read_sync(_read_version)

    # -- apps --------------------------------------------------------------------------------

    async def get_app(self, app_key: str) -> AppRecord | None:
        row = await self._conns.one("SELECT * FROM apps WHERE app_key = ?", [app_key])
        return app_from_row(row) if row else None

    async def list_apps(self) -> list[AppRecord]:
        rows = await self._conns.all("SELECT * FROM apps ORDER BY app_key")
        return [app_from_row(r) for r in rows]

    async def put_app(self, app_key: str, config: Mapping[str, Any], now: float) -> AppRecord:
        def write(db: Database) -> dict[str, Any]:
            existing = db.execute(
                "SELECT sdk_key, created_at FROM apps WHERE app_key = ?", [app_key]
            ).fetchone()
            sdk_key, created = existing if existing else (new_secret(), now)
            row = {
                "app_key": app_key,
                "name": config["name"],
                "sdk_key": sdk_key,
                "config": json.dumps(config, ensure_ascii=False),
                "created_at": created,
                "updated_at": now,
            }
            db.execute(
                "INSERT INTO apps (app_key, name, sdk_key, config, created_at, updated_at) "
                "VALUES (:app_key, :name, :sdk_key, :config, :created_at, :updated_at) "
                "ON CONFLICT(app_key) DO UPDATE SET name = excluded.name, "
                "config = excluded.config, updated_at = excluded.updated_at",
                row,
            )
            bump_config_version(db)
            return row

        return app_from_row(await self._conns.write(write))

    async def delete_app(self, app_key: str) -> bool:
        def write(db: Database) -> bool:
            bump_config_version(db)
            return db.execute("DELETE FROM apps WHERE app_key = ?", [app_key]).rowcount > 0

        return await self._conns.write(write)

    async def app_by_sdk_key(self, sdk_key: str) -> AppRecord | None:
        row = await self._conns.one("SELECT * FROM apps WHERE sdk_key = ?", [sdk_key])
        return app_from_row(row) if row else None

    async def rotate_sdk_key(self, app_key: str, now: float) -> AppRecord | None:
        def write(db: Database) -> bool:
            cursor = db.execute(
                "UPDATE apps SET sdk_key = ?, updated_at = ? WHERE app_key = ?",
                [new_secret(), now, app_key],
            )
            bump_config_version(db)
            return cursor.rowcount > 0

        return await self.get_app(app_key) if await self._conns.write(write) else None

    async def app_for_destination(self, platform: str, app_id: str) -> AppRecord | None:
        row = await self._conns.one(
            "SELECT * FROM apps WHERE json_extract(config, '$.destinations.' || ? || '.app_id') = ?"
            " ORDER BY app_key LIMIT 1",
            [platform, app_id],
        )
        return app_from_row(row) if row else None

    # -- integrations -------------------------------------------------------------------------

    async def get_integration(self, app_key: str, partner: str) -> IntegrationRecord | None:
        row = await self._conns.one(
            "SELECT * FROM integrations WHERE app_key = ? AND partner = ?", [app_key, partner]
        )
        return integration_from_row(row, self._sealer) if row else None

    async def put_integration(
        self,
        app_key: str,
        partner: str,
        config: Mapping[str, Any],
        access_token: str | None,
        now: float,
    ) -> IntegrationRecord:
        access_token = seal_input(self._sealer, access_token)

        def write(db: Database) -> str | None:
            db.execute(
                "INSERT INTO integrations (app_key, partner, config, access_token, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(app_key, partner) DO UPDATE SET "
                "config = excluded.config, updated_at = excluded.updated_at, "
                "access_token = COALESCE(excluded.access_token, integrations.access_token)",
                [app_key, partner, json.dumps(config), access_token, now],
            )
            bump_config_version(db)
            row = db.execute(
                "SELECT access_token FROM integrations WHERE app_key = ? AND partner = ?",
                [app_key, partner],
            ).fetchone()
            return row[0] if row else None

        token = await self._conns.write(write)
        return IntegrationRecord(
            app_key, partner, dict(config), open_token(self._sealer, app_key, token), now
        )

    async def delete_integration(self, app_key: str, partner: str) -> bool:
        def write(db: Database) -> bool:
            cursor = db.execute(
                "DELETE FROM integrations WHERE app_key = ? AND partner = ?", [app_key, partner]
            )
            bump_config_version(db)
            return cursor.rowcount > 0

        return await self._conns.write(write)

    async def seal_tokens(self, *, rotate: bool = False) -> int:
        sealer = self._sealer
        if sealer is None:
            return 0
        if not rotate:
            # Every start asks: answered from a read connection, no write when all are sealed.
            kept = await self._conns.all(
                "SELECT access_token FROM integrations WHERE access_token IS NOT NULL"
            )
            if all_sealed(kept):
                return 0

        def write(db: Database) -> int:
            # Overwrite freed space: the clear value must not stay behind in the file's pages.
            db.execute("PRAGMA secure_delete = ON")
            try:
                rows = db.execute(
                    "SELECT app_key, partner, access_token FROM integrations "
                    "WHERE access_token IS NOT NULL"
                ).fetchall()
                changed = 0
                for app_key, partner, stored in rows:
                    sealed = resealed(sealer, app_key, stored, rotate=rotate)
                    if sealed is None:
                        continue
                    db.execute(
                        "UPDATE integrations SET access_token = ? WHERE app_key = ? "
                        "AND partner = ?",
                        [sealed, app_key, partner],
                    )
                    changed += 1
                if changed:
                    bump_config_version(db)
                return changed
            finally:
                db.execute("PRAGMA secure_delete = OFF")

        return await self._conns.write(write)

    # -- pages -------------------------------------------------------------------------------

    async def get_page(self, slug: str) -> PageRecord | None:
        row = await self._conns.one("SELECT * FROM pages WHERE slug = ?", [slug])
        return page_from_row(row) if row else None

    async def list_pages(self) -> list[PageRecord]:
        rows = await self._conns.all("SELECT * FROM pages ORDER BY slug")
        return [page_from_row(r) for r in rows]

    async def put_page(self, slug: str, config: Mapping[str, Any], now: float) -> PageRecord:
        def write(db: Database) -> dict[str, Any]:
            existing = db.execute("SELECT created_at FROM pages WHERE slug = ?", [slug]).fetchone()
            row = {
                "slug": slug,
                "app_key": config["app_key"],
                "config": json.dumps(config, ensure_ascii=False),
                "created_at": existing[0] if existing else now,
                "updated_at": now,
            }
            db.execute(
                "INSERT INTO pages (slug, app_key, config, created_at, updated_at) "
                "VALUES (:slug, :app_key, :config, :created_at, :updated_at) "
                "ON CONFLICT(slug) DO UPDATE SET app_key = excluded.app_key, "
                "config = excluded.config, updated_at = excluded.updated_at",
                row,
            )
            bump_config_version(db)
            return row

        return page_from_row(await self._conns.write(write))

    async def delete_page(self, slug: str) -> bool:
        def write(db: Database) -> bool:
            bump_config_version(db)
            return db.execute("DELETE FROM pages WHERE slug = ?", [slug]).rowcount > 0

        return await self._conns.write(write)


class SqliteTokens:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    async def create_token(self, label: str, now: float) -> str:
        token = new_secret()

        def write(db: Database) -> None:
            db.execute(
                "INSERT INTO tokens (id, token_hash, label, created_at) VALUES (?, ?, ?, ?)",
                [new_id(), token_hash(token), label, now],
            )

        await self._conns.write(write)
        return token

    async def token_valid(self, token: str, now: float) -> bool:
        digest = token_hash(token)
        row = await self._conns.one(
            "SELECT last_used_at FROM tokens WHERE token_hash = ?", [digest]
        )
        if row is None:
            return False
        if token_use_due(row["last_used_at"], now):

            def write(db: Database) -> None:
                db.execute("UPDATE tokens SET last_used_at = ? WHERE token_hash = ?", [now, digest])

            await self._conns.write(write)
        return True

    async def list_tokens(self) -> list[TokenInfo]:
        rows = await self._conns.all(
            "SELECT id, label, created_at, last_used_at FROM tokens ORDER BY created_at, id"
        )
        return [TokenInfo(**r) for r in rows]

    async def revoke_token(self, token_id: str) -> bool:
        def write(db: Database) -> bool:
            return db.execute("DELETE FROM tokens WHERE id = ?", [token_id]).rowcount > 0

        return await self._conns.write(write)
