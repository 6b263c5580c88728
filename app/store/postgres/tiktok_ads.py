"""The TikTok Ads connection's own rows in PostgreSQL: its state, its pulls, used OAuth states.

An OAuth state is single use across every node: its nonce is the primary key of
`oauth_states`, so of two nodes inserting it at once the constraint lets one in (the other
waits for that commit and inserts nothing).
"""

from __future__ import annotations

from app.store.common import tiktok_ads as common
from app.store.postgres.connections import Conn, Database
from app.store.postgres.rows import clean
from app.tiktok_ads.connection import ConnectionState, PullRecord

_PULL_COLUMNS = ", ".join(common.PULL_NAMES)
UPSERT_PULL = (
    f"INSERT INTO tiktok_ads_pulls ({_PULL_COLUMNS}) "
    f"VALUES ({', '.join(f'%({n})s' for n in common.PULL_NAMES)}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{n} = excluded.{n}" for n in common.PULL_NAMES if n != "id")
)


class PostgresTikTokAds:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def connection_state(self, app_key: str) -> ConnectionState | None:
        row = await self._db.one("SELECT * FROM tiktok_ads_state WHERE app_key = %s", [app_key])
        return None if row is None else common.connection_state(row)

    async def set_connection_state(self, state: ConnectionState) -> None:
        advertisers = common.advertisers_json(state)

        async def write(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO tiktok_ads_state (app_key, state, message, advertisers, updated_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (app_key) DO UPDATE SET "
                "state = excluded.state, message = excluded.message, "
                "advertisers = excluded.advertisers, updated_at = excluded.updated_at",
                [
                    state.app_key,
                    state.state,
                    clean(state.message),
                    advertisers,
                    state.updated_at,
                ],
            )

        await self._db.write(write)

    async def record_pull(self, pull: PullRecord) -> None:
        values = {name: clean(value) for name, value in common.pull_values(pull).items()}

        async def write(conn: Conn) -> None:
            await conn.execute(UPSERT_PULL, values)

        await self._db.write(write)

    async def recent_pulls(self, app_key: str, limit: int = 10) -> list[PullRecord]:
        rows = await self._db.all(
            f"SELECT {_PULL_COLUMNS} FROM tiktok_ads_pulls WHERE app_key = %s "
            "ORDER BY started_at DESC, id DESC LIMIT %s",
            [app_key, limit],
        )
        return [common.pull_record(r) for r in rows]

    async def use_oauth_state(self, nonce: str, now: float, keep_seconds: float) -> bool:
        async def write(conn: Conn) -> bool:
            # Nonces older than a state can live are of no more use: the signature's age
            # refuses those states already. Rows another node is deleting are skipped, so two
            # callbacks at once never wait on (or deadlock over) the same old rows.
            await conn.execute(
                "DELETE FROM oauth_states WHERE nonce IN (SELECT nonce FROM oauth_states "
                "WHERE used_at < %s FOR UPDATE SKIP LOCKED)",
                [now - keep_seconds],
            )
            cursor = await conn.execute(
                "INSERT INTO oauth_states (nonce, used_at) VALUES (%s, %s) "
                "ON CONFLICT (nonce) DO NOTHING",
                [clean(nonce), now],
            )
            return cursor.rowcount == 1

        return await self._db.write(write)
