"""Installs and events in SQLite: the install with its click claim and postbacks, atomically.

`record_install` is where two installs racing for one click meet: the claim is an UPDATE of the
click guarded by `claimed_by IS NULL` inside the install's own transaction (one writer thread, so
one of them runs first), and the loser writes nothing and hears `ClickAlreadyClaimed`. Lookups by
device id ride the partial indexes `installs_{idfa,idfv,gaid,android_id}`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlite_utils import Database

from app.addresses import truncate_ip
from app.conversions import Event, Install, PriorInstall
from app.postbacks.postback import NewPostback
from app.reports.rollups import Increment
from app.store.columns import EVENT_COLUMNS, INSTALL_COLUMNS
from app.store.records import CandidateQuery, ClickAlreadyClaimed, InstallInputs
from app.store.sqlite.candidates import find_candidates
from app.store.sqlite.connections import Connections
from app.store.sqlite.outbox import queue_postbacks
from app.store.sqlite.rollups import add_rollups
from app.store.sqlite.rows import from_row, insert_sql, to_row

DEVICE_ID_COLUMNS = ("idfa", "idfv", "gaid", "android_id")
# INDEXED BY: left to itself the planner may prefer `installs_time` for the ORDER BY, which
# walks every install of the app in the re-attribution window; a device has a handful of rows.
PRIOR_INSTALL_SQL = (
    "SELECT id, time, reinstall_of FROM installs INDEXED BY installs_{column} "
    "WHERE app_key = ? AND {column} = ? AND time >= ? ORDER BY time DESC LIMIT 1"
)
_SELECT_INSTALL = f"SELECT {', '.join(INSTALL_COLUMNS)} FROM installs"
_SELECT_EVENT = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
_INSERT_INSTALL = insert_sql("installs", INSTALL_COLUMNS)
_INSERT_EVENT = insert_sql("events", EVENT_COLUMNS)


def _install(row: Mapping[str, object]) -> Install:
    return from_row(Install, row, INSTALL_COLUMNS)


def _event(row: Mapping[str, object]) -> Event:
    return from_row(Event, row, EVENT_COLUMNS)


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
    for column, value in device_ids.items():
        if column not in DEVICE_ID_COLUMNS or not value:
            continue
        row = conn.execute(
            PRIOR_INSTALL_SQL.format(column=column), [app_key, value, since]
        ).fetchone()
        if row and (best is None or row["time"] > best.time):
            best = PriorInstall(row["id"], row["time"], row["reinstall_of"] or row["id"])
    return best


# The tables of the touches an install can be credited to, by its `touch_type`.
_TOUCH_TABLES = {"click": "clicks", "impression": "impressions"}


def _mask_install(db: Database, install_id: str, touch: tuple[Any, Any]) -> None:
    touch_type, touch_id = touch
    table = _TOUCH_TABLES.get(touch_type or "")
    if table and touch_id:
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
        document = json.loads(payload)
        user = document.get("user")
        if isinstance(user, dict) and isinstance(user.get("ip"), str):
            user["ip"] = truncate_ip(user["ip"])
            db.execute(
                "UPDATE postbacks SET payload = ? WHERE id = ?",
                [json.dumps(document, ensure_ascii=False), postback_id],
            )


def _insert_with_effects(
    db: Database,
    insert: str,
    row: dict[str, Any],
    postbacks: Sequence[NewPostback],
    rollups: Sequence[Increment],
    now: float,
) -> None:
    """A new install or event, with what it causes: its postbacks queued and its rollups added,
    in the caller's transaction (so all of it is on disk together, or none of it)."""
    db.execute(insert, row)
    queue_postbacks(db, postbacks, now)
    add_rollups(db, rollups)


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
                    [truncate_ip(ip) if ip else None, now, install_id],
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
                row = conn.execute(
                    f"{_SELECT_INSTALL} WHERE app_key = ? AND app_instance_id = ?",
                    [app_key, app_instance_id],
                ).fetchone()
                if row is not None:
                    return InstallInputs(stored=_install(row))
                prior = _prior_install(conn, app_key, device_ids, 0.0)
                first = None
                if prior is not None and prior.first_install_id != prior.id:
                    found = conn.execute(
                        f"{_SELECT_INSTALL} WHERE id = ?", [prior.first_install_id]
                    ).fetchone()
                    first = _install(found) if found is not None else None
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
        row = await self._conns.one(
            f"{_SELECT_INSTALL} WHERE app_key = ? AND app_instance_id = ?",
            [app_key, app_instance_id],
        )
        return _install(row) if row else None

    async def get_install(self, install_id: str) -> Install | None:
        row = await self._conns.one(f"{_SELECT_INSTALL} WHERE id = ?", [install_id])
        return _install(row) if row else None

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
        row = to_row(install, INSTALL_COLUMNS)
        pending = list(postbacks)
        counted = list(rollups)

        def write(db: Database) -> tuple[Install, bool]:
            existing = _named(
                db.execute(
                    f"{_SELECT_INSTALL} WHERE app_key = ? AND app_instance_id = ?",
                    [install.app_key, install.app_instance_id],
                )
            )
            if existing:
                return _install(existing), False
            if claim_click is not None:
                claimed = db.execute(
                    "UPDATE clicks SET claimed_by = ?, claimed_at = ? WHERE id = ? "
                    "AND (claimed_by IS NULL OR claimed_by = ?)",
                    [install.app_instance_id, now, claim_click, install.app_instance_id],
                ).rowcount
                if not claimed:
                    raise ClickAlreadyClaimed(claim_click)
            _insert_with_effects(db, _INSERT_INSTALL, row, pending, counted, now)
            return install, True

        return await self._conns.write(write)


class SqliteEvents:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    async def event_by_id(self, app_key: str, event_id: str) -> Event | None:
        row = await self._conns.one(
            f"{_SELECT_EVENT} WHERE app_key = ? AND event_id = ?", [app_key, event_id]
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

        def write(db: Database) -> tuple[Event, bool]:
            existing = _named(
                db.execute(
                    f"{_SELECT_EVENT} WHERE app_key = ? AND event_id = ?",
                    [event.app_key, event.event_id],
                )
            )
            if existing:
                return _event(existing), False
            _insert_with_effects(db, _INSERT_EVENT, row, pending, counted, now)
            return event, True

        return await self._conns.write(write)
