"""Installs and events in PostgreSQL: the install with its click claim and postbacks, atomically.

Races between nodes are settled by constraints, not by reading first:
- an install is inserted with ON CONFLICT (app_key, app_instance_id) DO NOTHING; a second node
  sending the same `app_instance_id` waits for the first transaction, finds the conflict and
  answers the stored install, created=False (the same for events and `event_id`);
- the click is claimed by inserting its id into `click_claims` (primary key), in the install's
  own transaction: of two nodes claiming one click, the second waits, finds the conflict, and
  its whole transaction (the install, its postbacks) rolls back with `ClickAlreadyClaimed`; if
  the first rolls back instead, the second wins. The click row's `claimed_by` is written in the
  same transaction, for the candidate lookups and raw data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.addresses import truncate_ip
from app.conversions import Event, Install, PriorInstall
from app.postbacks.postback import NewPostback
from app.reports.rollups import Increment
from app.store.columns import EVENT_COLUMNS, INSTALL_COLUMNS
from app.store.postgres.candidates import find_candidates
from app.store.postgres.connections import Conn, Database, Rollback
from app.store.postgres.outbox import queue_postbacks
from app.store.postgres.rollups import add_rollups
from app.store.postgres.rows import from_row, insert_sql, to_row
from app.store.records import CandidateQuery, ClickAlreadyClaimed, InstallInputs

DEVICE_ID_COLUMNS = ("idfa", "idfv", "gaid", "android_id")
PRIOR_INSTALL_SQL = (
    "SELECT id, time, reinstall_of FROM installs "
    "WHERE app_key = %s AND {column} = %s AND time >= %s ORDER BY time DESC LIMIT 1"
)
_SELECT_INSTALL = f"SELECT {', '.join(INSTALL_COLUMNS)} FROM installs"
_SELECT_EVENT = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
# ON CONFLICT with no target: a repeat may meet the winner on either unique key first (its id,
# when a client resends the same values, or its app_instance_id / event_id), and either way it
# must write nothing and answer the stored row rather than fail.
_INSERT_INSTALL = insert_sql("installs", INSTALL_COLUMNS, " ON CONFLICT DO NOTHING RETURNING id")
_INSERT_EVENT = insert_sql("events", EVENT_COLUMNS, " ON CONFLICT DO NOTHING RETURNING id")


def _install(row: Mapping[str, object]) -> Install:
    return from_row(Install, row, INSTALL_COLUMNS)


def _event(row: Mapping[str, object]) -> Event:
    return from_row(Event, row, EVENT_COLUMNS)


# The tables of the touches an install can be credited to, by its `touch_type`.
_TOUCH_TABLES = {"click": "clicks", "impression": "impressions"}


async def _prior_install(
    conn: Conn, app_key: str, device_ids: Mapping[str, str], since: float
) -> PriorInstall | None:
    best: PriorInstall | None = None
    for column, value in device_ids.items():
        if column not in DEVICE_ID_COLUMNS or not value:
            continue
        cursor = await conn.execute(
            PRIOR_INSTALL_SQL.format(column=column), [app_key, value, since]
        )
        row = await cursor.fetchone()
        if row and (best is None or row["time"] > best.time):
            best = PriorInstall(row["id"], row["time"], row["reinstall_of"] or row["id"])
    return best


async def _mask_install(conn: Conn, install_id: str, touch_type: Any, touch_id: Any) -> None:
    """Cut the IP of the install's credited touch and of its finished postbacks' JSON."""
    table = _TOUCH_TABLES.get(touch_type or "")
    if table and touch_id:
        cursor = await conn.execute(f"SELECT ip FROM {table} WHERE id = %s", [touch_id])
        found = await cursor.fetchone()
        if found and found["ip"]:
            await conn.execute(
                f"UPDATE {table} SET ip = %s WHERE id = %s", [truncate_ip(found["ip"]), touch_id]
            )
    cursor = await conn.execute(
        "SELECT id, payload FROM postbacks WHERE (subject_id = %s OR subject_id IN "
        "(SELECT id FROM events WHERE install_id = %s)) AND state NOT IN ('pending', 'retrying')",
        [install_id, install_id],
    )
    for row in await cursor.fetchall():
        document = json.loads(row["payload"])
        user = document.get("user")
        if isinstance(user, dict) and isinstance(user.get("ip"), str):
            user["ip"] = truncate_ip(user["ip"])
            await conn.execute(
                "UPDATE postbacks SET payload = %s WHERE id = %s",
                [json.dumps(document, ensure_ascii=False), row["id"]],
            )


async def _effects(
    conn: Conn, postbacks: Sequence[NewPostback], rollups: Sequence[Increment], now: float
) -> None:
    """What a new install or event causes, in its own transaction: its postbacks queued and its
    rollups added (so all of it is committed together, or none of it)."""
    await queue_postbacks(conn, postbacks, now)
    await add_rollups(conn, rollups)


class PostgresInstalls:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def mask_limited_installs(self, before: float, now: float, *, limit: int = 500) -> int:
        async def write(conn: Conn) -> int:
            # SKIP LOCKED: two nodes masking at once take different installs.
            cursor = await conn.execute(
                "SELECT id, ip, touch_type, touch_id FROM installs "
                "WHERE is_limited_data_use AND masked_at IS NULL AND time < %s "
                "ORDER BY time LIMIT %s FOR UPDATE SKIP LOCKED",
                [before, limit],
            )
            rows = await cursor.fetchall()
            for row in rows:
                await conn.execute(
                    "UPDATE installs SET ip = %s, gaid = NULL, android_id = NULL, idfa = NULL, "
                    "masked_at = %s WHERE id = %s",
                    [truncate_ip(row["ip"]) if row["ip"] else None, now, row["id"]],
                )
                await _mask_install(conn, row["id"], row["touch_type"], row["touch_id"])
            return len(rows)

        return await self._db.write(write)

    async def install_inputs(
        self,
        app_key: str,
        app_instance_id: str,
        device_ids: Mapping[str, str],
        candidates: CandidateQuery,
    ) -> InstallInputs:
        async def run(conn: Conn) -> InstallInputs:
            # One snapshot, as on SQLite: the install is planned over one moment of the data.
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                cursor = await conn.execute(
                    f"{_SELECT_INSTALL} WHERE app_key = %s AND app_instance_id = %s",
                    [app_key, app_instance_id],
                )
                row = await cursor.fetchone()
                if row is not None:
                    return InstallInputs(stored=_install(row))
                prior = await _prior_install(conn, app_key, device_ids, 0.0)
                first = None
                if prior is not None and prior.first_install_id != prior.id:
                    cursor = await conn.execute(
                        f"{_SELECT_INSTALL} WHERE id = %s", [prior.first_install_id]
                    )
                    found = await cursor.fetchone()
                    first = _install(found) if found is not None else None
                return InstallInputs(
                    stored=None,
                    prior=prior,
                    first=first,
                    candidates=await find_candidates(conn, candidates),
                )

        return await self._db.read(run)

    async def install_by_instance(self, app_key: str, app_instance_id: str) -> Install | None:
        row = await self._db.one(
            f"{_SELECT_INSTALL} WHERE app_key = %s AND app_instance_id = %s",
            [app_key, app_instance_id],
        )
        return _install(row) if row else None

    async def get_install(self, install_id: str) -> Install | None:
        row = await self._db.one(f"{_SELECT_INSTALL} WHERE id = %s", [install_id])
        return _install(row) if row else None

    async def prior_install(
        self, app_key: str, device_ids: Mapping[str, str], since: float
    ) -> PriorInstall | None:
        return await self._db.read(lambda conn: _prior_install(conn, app_key, device_ids, since))

    async def record_install(
        self,
        install: Install,
        *,
        claim_click: str | None,
        postbacks: Iterable[NewPostback] = (),
        now: float,
        rollups: Iterable[Increment] = (),
    ) -> tuple[Install, bool]:
        row = to_row(install, INSTALL_COLUMNS)
        pending = list(postbacks)
        counted = list(rollups)

        async def write(conn: Conn) -> tuple[Install, bool]:
            cursor = await conn.execute(_INSERT_INSTALL, row)
            if await cursor.fetchone() is None:
                cursor = await conn.execute(
                    f"{_SELECT_INSTALL} WHERE app_key = %s AND app_instance_id = %s",
                    [install.app_key, install.app_instance_id],
                )
                existing = await cursor.fetchone()
                if existing is None:  # only the id was taken: not a repeat of this install
                    raise RuntimeError(f"install id {install.id} is taken by another install")
                raise Rollback((_install(existing), False))
            if claim_click is not None:
                cursor = await conn.execute(
                    "INSERT INTO click_claims (click_id, app_key, claimed_by, claimed_at) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (click_id) DO NOTHING RETURNING click_id",
                    [claim_click, install.app_key, install.app_instance_id, now],
                )
                if await cursor.fetchone() is None:
                    raise ClickAlreadyClaimed(claim_click)
                await conn.execute(
                    "UPDATE clicks SET claimed_by = %s, claimed_at = %s WHERE id = %s",
                    [install.app_instance_id, now, claim_click],
                )
            await _effects(conn, pending, counted, now)
            return install, True

        return await self._db.write(write)


class PostgresEvents:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def event_by_id(self, app_key: str, event_id: str) -> Event | None:
        row = await self._db.one(
            f"{_SELECT_EVENT} WHERE app_key = %s AND event_id = %s", [app_key, event_id]
        )
        return _event(row) if row else None

    async def record_event(
        self,
        event: Event,
        *,
        postbacks: Iterable[NewPostback] = (),
        now: float,
        rollups: Iterable[Increment] = (),
    ) -> tuple[Event, bool]:
        row = to_row(event, EVENT_COLUMNS)
        pending = list(postbacks)
        counted = list(rollups)

        async def write(conn: Conn) -> tuple[Event, bool]:
            cursor = await conn.execute(_INSERT_EVENT, row)
            if await cursor.fetchone() is None:
                cursor = await conn.execute(
                    f"{_SELECT_EVENT} WHERE app_key = %s AND event_id = %s",
                    [event.app_key, event.event_id],
                )
                existing = await cursor.fetchone()
                if existing is None:  # only the id was taken: not a repeat of this event
                    raise RuntimeError(f"event id {event.id} is taken by another event")
                return _event(existing), False
            await _effects(conn, pending, counted, now)
            return event, True

        return await self._db.write(write)
