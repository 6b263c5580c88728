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

from collections.abc import Iterable, Mapping
from typing import Any

from app.addresses import truncate_ip
from app.conversions import Event, Install, PriorInstall
from app.postbacks.postback import NewPostback
from app.reports.rollups import Increment
from app.store.columns import EVENT_COLUMNS, INSTALL_COLUMNS
from app.store.common.installs import (
    NewRow,
    credited_table,
    device_lookups,
    event_from_row,
    first_install_to_read,
    install_from_row,
    later_prior,
    masked_ip,
    masked_payload,
    new_row,
)
from app.store.postgres.candidates import find_candidates
from app.store.postgres.connections import Conn, Database, Rollback
from app.store.postgres.outbox import queue_postbacks
from app.store.postgres.rollups import add_rollups
from app.store.postgres.rows import insert_sql, to_row
from app.store.records import CandidateQuery, ClickAlreadyClaimed, InstallInputs

PRIOR_INSTALL_SQL = (
    "SELECT id, time, reinstall_of FROM installs "
    "WHERE app_key = %s AND {column} = %s AND time >= %s ORDER BY time DESC LIMIT 1"
)
_SELECT_INSTALL = f"SELECT {', '.join(INSTALL_COLUMNS)} FROM installs"
_INSTALL_BY_INSTANCE = f"{_SELECT_INSTALL} WHERE app_key = %s AND app_instance_id = %s"
_SELECT_EVENT = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
_EVENT_BY_ID = f"{_SELECT_EVENT} WHERE app_key = %s AND event_id = %s"
# ON CONFLICT with no target: a repeat may meet the winner on either unique key first (its id,
# when a client resends the same values, or its app_instance_id / event_id), and either way it
# must write nothing and answer the stored row rather than fail.
_INSERT_INSTALL = insert_sql("installs", INSTALL_COLUMNS, " ON CONFLICT DO NOTHING RETURNING id")
_INSERT_EVENT = insert_sql("events", EVENT_COLUMNS, " ON CONFLICT DO NOTHING RETURNING id")


async def _prior_install(
    conn: Conn, app_key: str, device_ids: Mapping[str, str], since: float
) -> PriorInstall | None:
    best: PriorInstall | None = None
    for column, value in device_lookups(device_ids):
        sql = PRIOR_INSTALL_SQL.format(column=column)
        cursor = await conn.execute(sql, [app_key, value, since])
        best = later_prior(best, await cursor.fetchone())
    return best


async def _mask_install(conn: Conn, install_id: str, touch_type: Any, touch_id: Any) -> None:
    """Cut the IP of the install's credited touch and of its finished postbacks' JSON."""
    table = credited_table(touch_type, touch_id)
    if table:
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
        masked = masked_payload(row["payload"])
        if masked is not None:
            await conn.execute(
                "UPDATE postbacks SET payload = %s WHERE id = %s", [masked, row["id"]]
            )


async def _inserted(conn: Conn, insert: str, new: NewRow) -> bool:
    """Insert a new install's or event's row; False when a stored row holds one of its unique
    keys, and nothing was written."""
    cursor = await conn.execute(insert, new.row)
    return await cursor.fetchone() is not None


async def _repeat(
    conn: Conn, select: str, key: list[Any], kind: str, row_id: str
) -> dict[str, Any]:
    """The stored row a refused insert repeats, found by its `kind`'s own key. When there is
    none, only the id was taken, by another row: no repeat, and nothing to answer."""
    cursor = await conn.execute(select, key)
    stored = await cursor.fetchone()
    if stored is None:
        raise RuntimeError(f"{kind} id {row_id} is taken by another {kind}")
    return stored


async def _effects(conn: Conn, new: NewRow) -> None:
    """What a new install or event causes, in its own transaction: its postbacks queued and its
    rollups added (so all of it is committed together, or none of it)."""
    await queue_postbacks(conn, new.postbacks, new.now)
    await add_rollups(conn, new.rollups)


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
                    [masked_ip(row["ip"]), now, row["id"]],
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
                cursor = await conn.execute(_INSTALL_BY_INSTANCE, [app_key, app_instance_id])
                row = await cursor.fetchone()
                if row is not None:
                    return InstallInputs(stored=install_from_row(row))
                prior = await _prior_install(conn, app_key, device_ids, 0.0)
                first = None
                if (first_id := first_install_to_read(prior)) is not None:
                    cursor = await conn.execute(f"{_SELECT_INSTALL} WHERE id = %s", [first_id])
                    found = await cursor.fetchone()
                    first = install_from_row(found) if found is not None else None
                return InstallInputs(
                    stored=None,
                    prior=prior,
                    first=first,
                    candidates=await find_candidates(conn, candidates),
                )

        return await self._db.read(run)

    async def install_by_instance(self, app_key: str, app_instance_id: str) -> Install | None:
        row = await self._db.one(_INSTALL_BY_INSTANCE, [app_key, app_instance_id])
        return install_from_row(row) if row else None

    async def get_install(self, install_id: str) -> Install | None:
        row = await self._db.one(f"{_SELECT_INSTALL} WHERE id = %s", [install_id])
        return install_from_row(row) if row else None

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
        new = new_row(to_row(install, INSTALL_COLUMNS), postbacks, rollups, now)

        async def write(conn: Conn) -> tuple[Install, bool]:
            if not await _inserted(conn, _INSERT_INSTALL, new):
                key = [install.app_key, install.app_instance_id]
                existing = await _repeat(conn, _INSTALL_BY_INSTANCE, key, "install", install.id)
                raise Rollback((install_from_row(existing), False))
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
            await _effects(conn, new)
            return install, True

        return await self._db.write(write)


class PostgresEvents:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def event_by_id(self, app_key: str, event_id: str) -> Event | None:
        row = await self._db.one(_EVENT_BY_ID, [app_key, event_id])
        return event_from_row(row) if row else None

    async def record_event(
        self,
        event: Event,
        *,
        postbacks: Iterable[NewPostback] = (),
        now: float,
        rollups: Iterable[Increment] = (),
    ) -> tuple[Event, bool]:
        new = new_row(to_row(event, EVENT_COLUMNS), postbacks, rollups, now)

        async def write(conn: Conn) -> tuple[Event, bool]:
            if not await _inserted(conn, _INSERT_EVENT, new):
                key = [event.app_key, event.event_id]
                existing = await _repeat(conn, _EVENT_BY_ID, key, "event", event.id)
                return event_from_row(existing), False
            await _effects(conn, new)
            return event, True

        return await self._db.write(write)
