"""Configuration in PostgreSQL: apps, integrations, pages and admin tokens."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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
from app.store.postgres.connections import Conn, Database
from app.store.records import AppRecord, IntegrationRecord, PageRecord, TokenInfo


async def bump_config_version(conn: Conn) -> None:
    """First in every configuration write's transaction: the write and the new version commit
    together, so no node sees one without the other (and config writes across nodes queue on
    this one row, in one order)."""
    # An upsert: the row is made at migration, but a database emptied table by table (the
    # tests' isolation, a hand clean-up) must still count.
    await conn.execute(
        "INSERT INTO config_version (id, version) VALUES (1, 1) "
        "ON CONFLICT (id) DO UPDATE SET version = config_version.version + 1"
    )


class PostgresConfigs:
    """`sealer` seals access tokens at rest; without one (tests, tools) they are kept as given."""

    def __init__(self, db: Database, sealer: TokenSealer | None = None) -> None:
        self._db = db
        self._sealer = sealer

    async def config_version(self) -> int:
        # One primary-key read per loop turn of a node (the config cache asks): a round trip to
        # the server, the price of seeing another node's write at once.
        row = await self._db.one("SELECT version FROM config_version WHERE id = 1")
        return int(row["version"]) if row else 0

    # -- apps --------------------------------------------------------------------------------

    async def get_app(self, app_key: str) -> AppRecord | None:
        row = await self._db.one("SELECT * FROM apps WHERE app_key = %s", [app_key])
        return app_from_row(row) if row else None

    async def list_apps(self) -> list[AppRecord]:
        # COLLATE "C": the same order as SQLite's byte-wise text comparison.
        rows = await self._db.all('SELECT * FROM apps ORDER BY app_key COLLATE "C"')
        return [app_from_row(r) for r in rows]

    async def put_app(self, app_key: str, config: Mapping[str, Any], now: float) -> AppRecord:
        async def write(conn: Conn) -> dict[str, Any]:
            await bump_config_version(conn)
            # The sdk_key is made only if the row is new: ON CONFLICT keeps the stored one, and
            # RETURNING answers whichever is kept (two nodes creating one app agree on it).
            cursor = await conn.execute(
                "INSERT INTO apps (app_key, name, sdk_key, config, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (app_key) DO UPDATE SET name = excluded.name, "
                "config = excluded.config, updated_at = excluded.updated_at RETURNING *",
                [
                    app_key,
                    config["name"],
                    new_secret(),
                    json.dumps(config, ensure_ascii=False),
                    now,
                    now,
                ],
            )
            row = await cursor.fetchone()
            assert row is not None
            return row

        return app_from_row(await self._db.write(write))

    async def delete_app(self, app_key: str) -> bool:
        async def write(conn: Conn) -> bool:
            await bump_config_version(conn)
            cursor = await conn.execute("DELETE FROM apps WHERE app_key = %s", [app_key])
            return cursor.rowcount > 0

        return await self._db.write(write)

    async def app_by_sdk_key(self, sdk_key: str) -> AppRecord | None:
        row = await self._db.one("SELECT * FROM apps WHERE sdk_key = %s", [sdk_key])
        return app_from_row(row) if row else None

    async def rotate_sdk_key(self, app_key: str, now: float) -> AppRecord | None:
        async def write(conn: Conn) -> dict[str, Any] | None:
            await bump_config_version(conn)
            cursor = await conn.execute(
                "UPDATE apps SET sdk_key = %s, updated_at = %s WHERE app_key = %s RETURNING *",
                [new_secret(), now, app_key],
            )
            return await cursor.fetchone()

        row = await self._db.write(write)
        return app_from_row(row) if row else None

    async def app_for_destination(self, platform: str, app_id: str) -> AppRecord | None:
        row = await self._db.one(
            "SELECT * FROM apps WHERE (config::jsonb -> 'destinations' -> %s ->> 'app_id') = %s"
            ' ORDER BY app_key COLLATE "C" LIMIT 1',
            [platform, app_id],
        )
        return app_from_row(row) if row else None

    # -- integrations -------------------------------------------------------------------------

    async def get_integration(self, app_key: str, partner: str) -> IntegrationRecord | None:
        row = await self._db.one(
            "SELECT * FROM integrations WHERE app_key = %s AND partner = %s", [app_key, partner]
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

        async def write(conn: Conn) -> str | None:
            await bump_config_version(conn)
            cursor = await conn.execute(
                "INSERT INTO integrations (app_key, partner, config, access_token, updated_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (app_key, partner) DO UPDATE SET "
                "config = excluded.config, updated_at = excluded.updated_at, "
                "access_token = COALESCE(excluded.access_token, integrations.access_token) "
                "RETURNING access_token",
                [app_key, partner, json.dumps(config), access_token, now],
            )
            row = await cursor.fetchone()
            return row["access_token"] if row else None

        token = await self._db.write(write)
        return IntegrationRecord(
            app_key, partner, dict(config), open_token(self._sealer, app_key, token), now
        )

    async def delete_integration(self, app_key: str, partner: str) -> bool:
        async def write(conn: Conn) -> bool:
            await bump_config_version(conn)
            cursor = await conn.execute(
                "DELETE FROM integrations WHERE app_key = %s AND partner = %s", [app_key, partner]
            )
            return cursor.rowcount > 0

        return await self._db.write(write)

    async def seal_tokens(self, *, rotate: bool = False) -> int:
        sealer = self._sealer
        if sealer is None:
            return 0
        if not rotate:
            # Every start asks: one read, no write when all are sealed.
            kept = await self._db.all(
                "SELECT access_token FROM integrations WHERE access_token IS NOT NULL"
            )
            if all_sealed(kept):
                return 0

        async def write(conn: Conn) -> int:
            await bump_config_version(conn)
            # FOR UPDATE: nodes starting together seal each token once, not over each other.
            cursor = await conn.execute(
                "SELECT app_key, partner, access_token FROM integrations "
                "WHERE access_token IS NOT NULL ORDER BY app_key, partner FOR UPDATE"
            )
            changed = 0
            for row in await cursor.fetchall():
                sealed = resealed(sealer, row["app_key"], row["access_token"], rotate=rotate)
                if sealed is None:
                    continue
                await conn.execute(
                    "UPDATE integrations SET access_token = %s WHERE app_key = %s AND partner = %s",
                    [sealed, row["app_key"], row["partner"]],
                )
                changed += 1
            return changed

        return await self._db.write(write)

    # -- pages -------------------------------------------------------------------------------

    async def get_page(self, slug: str) -> PageRecord | None:
        row = await self._db.one("SELECT * FROM pages WHERE slug = %s", [slug])
        return page_from_row(row) if row else None

    async def list_pages(self) -> list[PageRecord]:
        rows = await self._db.all('SELECT * FROM pages ORDER BY slug COLLATE "C"')
        return [page_from_row(r) for r in rows]

    async def put_page(self, slug: str, config: Mapping[str, Any], now: float) -> PageRecord:
        async def write(conn: Conn) -> dict[str, Any]:
            await bump_config_version(conn)
            cursor = await conn.execute(
                "INSERT INTO pages (slug, app_key, config, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (slug) DO UPDATE SET app_key = excluded.app_key, "
                "config = excluded.config, updated_at = excluded.updated_at RETURNING *",
                [slug, config["app_key"], json.dumps(config, ensure_ascii=False), now, now],
            )
            row = await cursor.fetchone()
            assert row is not None
            return row

        return page_from_row(await self._db.write(write))

    async def delete_page(self, slug: str) -> bool:
        async def write(conn: Conn) -> bool:
            await bump_config_version(conn)
            cursor = await conn.execute("DELETE FROM pages WHERE slug = %s", [slug])
            return cursor.rowcount > 0

        return await self._db.write(write)


class PostgresTokens:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_token(self, label: str, now: float) -> str:
        token = new_secret()

        async def write(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO tokens (id, token_hash, label, created_at) VALUES (%s, %s, %s, %s)",
                [new_id(), token_hash(token), label, now],
            )

        await self._db.write(write)
        return token

    async def token_valid(self, token: str, now: float) -> bool:
        digest = token_hash(token)
        row = await self._db.one("SELECT last_used_at FROM tokens WHERE token_hash = %s", [digest])
        if row is None:
            return False
        if token_use_due(row["last_used_at"], now):

            async def write(conn: Conn) -> None:
                await conn.execute(
                    "UPDATE tokens SET last_used_at = %s WHERE token_hash = %s", [now, digest]
                )

            await self._db.write(write)
        return True

    async def list_tokens(self) -> list[TokenInfo]:
        rows = await self._db.all(
            "SELECT id, label, created_at, last_used_at FROM tokens "
            'ORDER BY created_at, id COLLATE "C"'
        )
        return [TokenInfo(**r) for r in rows]

    async def revoke_token(self, token_id: str) -> bool:
        async def write(conn: Conn) -> bool:
            cursor = await conn.execute("DELETE FROM tokens WHERE id = %s", [token_id])
            return cursor.rowcount > 0

        return await self._db.write(write)
