"""The TikTok Ads connection's own rows in SQLite: its state, its pulls, used OAuth states."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import Any

from sqlite_utils import Database

from app.store.sqlite.connections import Connections
from app.tiktok_ads.connection import AdvertiserInfo, ConnectionState, PullRecord

_PULL_COLUMNS = (
    "id, app_key, trigger, started_at, finished_at, start_date, end_date, rows, changed, "
    "spend, currency, superseded, requests, error"
)


def _pull(row: dict[str, Any]) -> PullRecord:
    return PullRecord(
        **(
            row
            | {
                "start_date": dt.date.fromisoformat(row["start_date"])
                if row["start_date"]
                else None,
                "end_date": dt.date.fromisoformat(row["end_date"]) if row["end_date"] else None,
            }
        )
    )


class SqliteTikTokAds:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    async def connection_state(self, app_key: str) -> ConnectionState | None:
        row = await self._conns.one("SELECT * FROM tiktok_ads_state WHERE app_key = ?", [app_key])
        if row is None:
            return None
        return ConnectionState(
            app_key=row["app_key"],
            state=row["state"],
            message=row["message"],
            advertisers=tuple(AdvertiserInfo(**a) for a in json.loads(row["advertisers"])),
            updated_at=row["updated_at"],
        )

    async def set_connection_state(self, state: ConnectionState) -> None:
        advertisers = json.dumps([asdict(a) for a in state.advertisers])

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
        values = asdict(pull)
        values["start_date"] = pull.start_date.isoformat() if pull.start_date else None
        values["end_date"] = pull.end_date.isoformat() if pull.end_date else None
        names = _PULL_COLUMNS.split(", ")

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
        return [_pull(r) for r in rows]

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
