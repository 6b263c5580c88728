"""The TikTok Ads connection's own rows in SQLite: its state, its pulls, used OAuth states."""

from __future__ import annotations

from sqlite_utils import Database

from app.store.common import tiktok_ads as common
from app.store.sqlite.connections import Connections
from app.tiktok_ads.connection import ConnectionState, PullRecord

_PULL_COLUMNS = ", ".join(common.PULL_NAMES)


class SqliteTikTokAds:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    async def connection_state(self, app_key: str) -> ConnectionState | None:
        row = await self._conns.one("SELECT * FROM tiktok_ads_state WHERE app_key = ?", [app_key])
        return None if row is None else common.connection_state(row)

    async def set_connection_state(self, state: ConnectionState) -> None:
        advertisers = common.advertisers_json(state)

        def write(db: Database) -> None:
            db.execute(
                "INSERT INTO tiktok_ads_state (app_key, state, message, advertisers, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_key) DO UPDATE SET "
                "state = excluded.state, message = excluded.message, "
                "advertisers = excluded.advertisers, updated_at = excluded.updated_at",
                [state.app_key, state.state, state.message, advertisers, state.updated_at],
            )

        await self._conns.write(write)

    async def record_pull(self, pull: PullRecord) -> None:
        values = common.pull_values(pull)
        names = common.PULL_NAMES

        def write(db: Database) -> None:
            db.execute(
                f"INSERT INTO tiktok_ads_pulls ({_PULL_COLUMNS}) "
                f"VALUES ({', '.join('?' * len(names))}) ON CONFLICT (id) DO UPDATE SET "
                + ", ".join(f"{n} = excluded.{n}" for n in names if n != "id"),
                [values[n] for n in names],
            )

        await self._conns.write(write)

    async def recent_pulls(self, app_key: str, limit: int = 10) -> list[PullRecord]:
        rows = await self._conns.all(
            f"SELECT {_PULL_COLUMNS} FROM tiktok_ads_pulls WHERE app_key = ? "
            "ORDER BY started_at DESC, id DESC LIMIT ?",
            [app_key, limit],
        )
        return [common.pull_record(r) for r in rows]

    async def use_oauth_state(self, nonce: str, now: float, keep_seconds: float) -> bool:
        def write(db: Database) -> bool:
            # Nonces older than a state can live are of no more use: the signature's age
            # refuses those states already.
            db.execute("DELETE FROM oauth_states WHERE used_at < ?", [now - keep_seconds])
            cursor = db.execute(
                "INSERT INTO oauth_states (nonce, used_at) VALUES (?, ?) "
                "ON CONFLICT (nonce) DO NOTHING",
                [nonce, now],
            )
            return cursor.rowcount == 1

        return await self._conns.write(write)
