"""Installs and events in SQLite: the install with its click claim and postbacks, atomically.

`record_install` is where two installs racing for one click meet: the claim is an UPDATE of the
click guarded by `claimed_by IS NULL` inside the install's own transaction (one writer thread, so
one of them runs first), and the loser writes nothing and hears `ClickAlreadyClaimed`. Lookups by
device id ride the partial indexes `installs_{idfa,idfv,gaid,android_id}`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from sqlite_utils import Database

from app.addresses import truncate_ip
from app.conversions import Event, Install, PriorInstall
from app.postbacks.postback import NewPostback
from app.reports.rollups import Increment
from app.store.columns import EVENT_COLUMNS, INSTALL_COLUMNS
from app.store.common.installs import (
    DEVICE_ID_COLUMNS,
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
from app.store.records import CandidateQuery, ClickAlreadyClaimed, InstallInputs
from app.store.sqlite.candidates import find_candidates
from app.store.sqlite.connections import Connections
from app.store.sqlite.outbox import queue_postbacks
from app.store.sqlite.rollups import add_rollups
from app.store.sqlite.rows import insert_sql, to_row

__all__ = ["DEVICE_ID_COLUMNS", "PRIOR_INSTALL_SQL", "SqliteEvents", "SqliteInstalls"]

# INDEXED BY: left to itself the planner may prefer `installs_time` for the ORDER BY, which
# walks every install of the app in the re-attribution window; a device has a handful of rows.
PRIOR_INSTALL_SQL = (
    "SELECT id, time, reinstall_of FROM installs INDEXED BY installs_{column} "
    "WHERE app_key = ? AND {column} = ? AND time >= ? ORDER BY time DESC LIMIT 1"
)
_SELECT_INSTALL = f"SELECT {', '.join(INSTALL_COLUMNS)} FROM installs"
_INSTALL_BY_INSTANCE = f"{_SELECT_INSTALL} WHERE app_key = ? AND app_instance_id = ?"
_SELECT_EVENT = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
_EVENT_BY_ID = f"{_SELECT_EVENT} WHERE app_key = ? AND event_id = ?"
_INSERT_INSTALL = insert_sql("installs", INSTALL_COLUMNS)
_INSERT_EVENT = insert_sql("events", EVENT_COLUMNS)


def _named(cursor: sqlite3.Cursor) -> dict[str, object] | None:
    """The cursor's next row by column name (the writer's connection has no row factory)."""
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip((d[0] for d in cursor.description), row, strict=True))


def _prior_install(
    conn: sqlite3.Connection, app_key: str, device_ids: Mapping[str, str], since: float
) -> PriorInstall | None:
    best: PriorInstall | None = None
    for column, value in device_lookups(device_ids):
        sql = PRIOR_INSTALL_SQL.format(column=column)
        best = later_prior(best, conn.execute(sql, [app_key, value, since]).fetchone())
    return best


def _mask_install(db: Database, install_id: str, touch: tuple[Any, Any]) -> None:
    touch_type, touch_id = touch
    table = credited_table(touch_type, touch_id)
    if table:
        found = db.execute(f"SELECT ip FROM {table} WHERE id = ?", [touch_id]).fetchone()
        if found and found[0]:
            db.execute(f"UPDATE {table} SET ip = ? WHERE id = ?", [truncate_ip(found[0]), touch_id])
    subjects = [install_id] + [
        row[0] for row in db.execute("SELECT id FROM events WHERE install_id = ?", [install_id])
    ]
    marks = ", ".join("?" * len(subjects))
    done = db.execute(
        f"SELECT id, payload FROM postbacks WHERE subject_id IN ({marks}) "
        "AND state NOT IN ('pending', 'retrying')",
        subjects,
    ).fetchall()
    for postback_id, payload in done:
        masked = masked_payload(payload)
        if masked is not None:
            db.execute("UPDATE postbacks SET payload = ? WHERE id = ?", [masked, postback_id])


def _insert_with_effects(db: Database, insert: str, new: NewRow) -> None:
    """A new install or event, with what it causes: its postbacks queued and its rollups added,
    in the caller's transaction (so all of it is on disk together, or none of it)."""
    db.execute(insert, new.row)
    queue_postbacks(db, new.postbacks, new.now)
    add_rollups(db, new.rollups)


class SqliteInstalls:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    async def mask_limited_installs(self, before: float, now: float, *, limit: int = 500) -> int:
        def write(db: Database) -> int:
            rows = db.execute(
                "SELECT id, ip, touch_type, touch_id FROM installs "
                "INDEXED BY installs_ldu_unmasked "
                "WHERE is_limited_data_use = 1 AND masked_at IS NULL AND time < ? "
                "ORDER BY time LIMIT ?",
                [before, limit],
            ).fetchall()
            for install_id, ip, touch_type, touch_id in rows:
                db.execute(
                    "UPDATE installs SET ip = ?, gaid = NULL, android_id = NULL, idfa = NULL, "
                    "masked_at = ? WHERE id = ?",
                    [masked_ip(ip), now, install_id],
                )
                _mask_install(db, install_id, (touch_type, touch_id))
            return len(rows)

        return await self._conns.write(write)

    async def install_inputs(
        self,
        app_key: str,
        app_instance_id: str,
        device_ids: Mapping[str, str],
        candidates: CandidateQuery,
    ) -> InstallInputs:
        def run(conn: sqlite3.Connection) -> InstallInputs:
            # One snapshot: what the install is planned over is what one moment of the file held.
            conn.execute("BEGIN")
            try:
                row = conn.execute(_INSTALL_BY_INSTANCE, [app_key, app_instance_id]).fetchone()
                if row is not None:
                    return InstallInputs(stored=install_from_row(row))
                prior = _prior_install(conn, app_key, device_ids, 0.0)
                first = None
                if (first_id := first_install_to_read(prior)) is not None:
                    found = conn.execute(f"{_SELECT_INSTALL} WHERE id = ?", [first_id]).fetchone()
                    first = install_from_row(found) if found is not None else None
                return InstallInputs(
                    stored=None,
                    prior=prior,
                    first=first,
                    candidates=find_candidates(conn, candidates),
                )
            finally:
                conn.execute("COMMIT")

        return await self._conns.read(run)

    async def install_by_instance(self, app_key: str, app_instance_id: str) -> Install | None:
        row = await self._conns.one(_INSTALL_BY_INSTANCE, [app_key, app_instance_id])
        return install_from_row(row) if row else None

    async def get_install(self, install_id: str) -> Install | None:
        row = await self._conns.one(f"{_SELECT_INSTALL} WHERE id = ?", [install_id])
        return install_from_row(row) if row else None

    async def prior_install(
        self, app_key: str, device_ids: Mapping[str, str], since: float
    ) -> PriorInstall | None:
        return await self._conns.read(lambda conn: _prior_install(conn, app_key, device_ids, since))

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

        def write(db: Database) -> tuple[Install, bool]:
            key = [install.app_key, install.app_instance_id]
            if existing := _named(db.execute(_INSTALL_BY_INSTANCE, key)):
                return install_from_row(existing), False
            if claim_click is not None:
                claimed = db.execute(
                    "UPDATE clicks SET claimed_by = ?, claimed_at = ? WHERE id = ? "
                    "AND (claimed_by IS NULL OR claimed_by = ?)",
                    [install.app_instance_id, now, claim_click, install.app_instance_id],
                ).rowcount
                if not claimed:
                    raise ClickAlreadyClaimed(claim_click)
            _insert_with_effects(db, _INSERT_INSTALL, new)
            return install, True

        return await self._conns.write(write)


class SqliteEvents:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    async def event_by_id(self, app_key: str, event_id: str) -> Event | None:
        row = await self._conns.one(_EVENT_BY_ID, [app_key, event_id])
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

        def write(db: Database) -> tuple[Event, bool]:
            if existing := _named(db.execute(_EVENT_BY_ID, [event.app_key, event.event_id])):
                return event_from_row(existing), False
            _insert_with_effects(db, _INSERT_EVENT, new)
            return event, True

        return await self._conns.write(write)
