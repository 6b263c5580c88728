"""Retention and privacy erase in SQLite: each one transaction of the writer.

What a row loses is decided by `app.reports.privacy.erase_row`; this module finds the rows,
decodes their JSON documents for it and writes back only the columns that changed, so an erase
that finds nothing left to erase reports zero.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlite_utils import Database

from app.conversions import Event, Install
from app.reports.privacy import ERASE_TABLES, INSTALL_USER_COLUMNS, EraseKey, RetainItem, erase_row
from app.store.columns import EVENT_COLUMNS, INSTALL_COLUMNS
from app.store.common.installs import credited_table
from app.store.common.privacy import (
    RETAIN_TABLES,
    UNDELIVERED,
    claim_of,
    cutoff_params,
    decoded,
    erase_apps,
    erase_secrets,
    erase_ttclids,
    erased_claim,
    erased_id,
    erasure_from_row,
    erasure_row,
    payload_pattern,
    retained,
    touch_changes,
    update_values,
)
from app.store.common.rows import from_row
from app.store.sqlite.connections import Connections
from app.store.sqlite.rollups import add_rollups

# One media source's installs due: by its own or original source, before its cutoff.
_DUE_SOURCE = "((media_source = ? OR original_media_source = ?) AND time < ?)"


def _rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [decoded(dict(zip(names, raw, strict=True))) for raw in cur.fetchall()]


def _update(conn: sqlite3.Connection, table: str, row_id: Any, changes: Mapping[str, Any]) -> int:
    if not changes:
        return 0
    sets = ", ".join(f"{c} = ?" for c in changes)
    conn.execute(f"UPDATE {table} SET {sets} WHERE id = ?", [*update_values(changes), row_id])
    return 1


def _erase_touch(
    conn: sqlite3.Connection,
    table: str,
    row: dict[str, Any],
    secrets: set[str],
    replace: Mapping[str, Any] | None = None,
) -> int:
    return _update(conn, table, row["id"], touch_changes(row, secrets, replace))


# The installs whose events carry an install's attribution: the install itself, unless it is a
# reinstall whose first install is still stored (its events are the first's then), and the
# reinstalls of it (`app.conversions.attributing_install`).
ATTRIBUTING_SQL = (
    "SELECT x.id FROM installs x WHERE x.id = :id AND NOT EXISTS "
    "(SELECT 1 FROM installs f WHERE f.id = x.reinstall_of) "
    "UNION ALL SELECT r.id FROM installs r WHERE r.reinstall_of = :id"
)


class SqlitePrivacy:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    # -- retention -----------------------------------------------------------------------------

    @staticmethod
    def _due_where(cutoffs: Mapping[str, float]) -> tuple[str, list[Any]]:
        where = " OR ".join([_DUE_SOURCE] * len(cutoffs)) or "0"
        return f"is_retained_organic = 0 AND ({where})", cutoff_params(cutoffs)

    async def retention_due(self, cutoffs: Mapping[str, float], *, limit: int) -> list[Install]:
        where, params = self._due_where(cutoffs)
        rows = await self._conns.all(
            f"SELECT {', '.join(INSTALL_COLUMNS)} FROM installs WHERE {where} "
            "ORDER BY time, id LIMIT ?",
            [*params, limit],
        )
        return [from_row(Install, r, INSTALL_COLUMNS) for r in rows]

    async def count_retention_due(self, cutoffs: Mapping[str, float]) -> int:
        where, params = self._due_where(cutoffs)
        row = await self._conns.one(f"SELECT COUNT(*) AS n FROM installs WHERE {where}", params)
        return int(row["n"]) if row else 0

    async def events_attributed_to(self, install_id: str) -> list[Event]:
        rows = await self._conns.all(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events "
            f"WHERE install_id IN ({ATTRIBUTING_SQL}) "
            "ORDER BY event_time, id",
            {"id": install_id},
        )
        return [from_row(Event, r, EVENT_COLUMNS) for r in rows]

    async def retain(self, items: Sequence[RetainItem], now: float) -> dict[str, int]:
        work = list(items)

        def write(db: Database) -> dict[str, int]:
            conn = db.conn
            counts = dict.fromkeys(RETAIN_TABLES, 0)
            for item in work:
                found = _rows(
                    conn,
                    "SELECT * FROM installs WHERE id = ? AND is_retained_organic = 0",
                    [item.install_id],
                )
                if not found:
                    continue
                install = found[0]
                secrets, changes = retained(install, 1)
                counts["installs"] += _update(conn, "installs", install["id"], changes)
                counts |= self._erase_related(conn, install, secrets, counts, erase_id=False)
                add_rollups(db, item.rollups)
            return counts

        return await self._conns.write(write)

    def _erase_related(
        self,
        conn: sqlite3.Connection,
        install: Mapping[str, Any],
        secrets: set[str],
        counts: dict[str, int],
        *,
        erase_id: bool,
    ) -> dict[str, int]:
        """Erase the install's attributed touch and events; answers `counts` updated."""
        replace_id = erased_id(install) if erase_id else None
        if table := credited_table(install["touch_type"], install["touch_id"]):
            for row in _rows(conn, f"SELECT * FROM {table} WHERE id = ?", [install["touch_id"]]):
                claimed = claim_of(install, row) if erase_id else None
                counts[table] += _erase_touch(conn, table, row, secrets, claimed)
        for row in _rows(conn, "SELECT * FROM events WHERE install_id = ?", [install["id"]]):
            changes = erase_row(row, (), extra_secrets=secrets, replace=replace_id)
            counts["events"] += _update(conn, "events", row["id"], changes)
        return counts

    # -- privacy erase -------------------------------------------------------------------------

    async def erase(self, key: EraseKey, *, actor: str, now: float) -> dict[str, int]:
        def write(db: Database) -> dict[str, int]:
            conn = db.conn
            counts = dict.fromkeys(ERASE_TABLES, 0)
            subjects: list[str] = []
            if key.ttclid:
                installs = _rows(conn, "SELECT * FROM installs WHERE ttclid = ?", [key.ttclid])
            else:
                installs = _rows(
                    conn,
                    "SELECT * FROM installs WHERE app_key = ? AND app_instance_id = ?",
                    [key.app_key, key.app_instance_id],
                )
            secrets = erase_secrets(key, installs)
            for install in installs:
                changes = erase_row(
                    install, INSTALL_USER_COLUMNS, extra_secrets=secrets, replace=erased_id(install)
                )
                counts["installs"] += _update(conn, "installs", install["id"], changes)
                subjects.append(install["id"])
                subjects += [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM events WHERE install_id = ?", [install["id"]]
                    )
                ]
                self._erase_related(conn, install, secrets, counts, erase_id=True)
                # Clicks this user claimed (the attributed one is done above).
                for row in _rows(
                    conn,
                    "SELECT * FROM clicks WHERE app_key = ? AND claimed_by = ?",
                    [install["app_key"], install["app_instance_id"]],
                ):
                    counts["clicks"] += _erase_touch(
                        conn, "clicks", row, secrets, erased_claim(install)
                    )
            ttclids = erase_ttclids(key, installs)
            for ttclid in ttclids:
                for table in ("clicks", "impressions"):
                    for row in _rows(conn, f"SELECT * FROM {table} WHERE ttclid = ?", [ttclid]):
                        counts[table] += _erase_touch(conn, table, row, secrets)
            # Postbacks of other rows that describe this user's touch (a reinstall's events carry
            # the first install's ttclid), found by the ttclid in the JSON.
            apps = erase_apps(key, installs)
            for ttclid in ttclids:
                where = "payload LIKE ? ESCAPE '\\'"
                params: list[Any] = [payload_pattern(ttclid)]
                if apps:
                    where += f" AND app_key IN ({', '.join('?' * len(apps))})"
                    params += sorted(apps)
                subjects += [
                    r[0]
                    for r in conn.execute(
                        f"SELECT DISTINCT subject_id FROM postbacks WHERE {where}", params
                    )
                ]
            counts["postbacks"] += self._erase_postbacks(conn, dict.fromkeys(subjects), secrets)
            conn.execute(
                "INSERT INTO privacy_erasures (id, time, actor, key_kind, app_key, counts) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                erasure_row(key, actor, now, counts),
            )
            return counts

        return await self._conns.write(write)

    @staticmethod
    def _erase_postbacks(
        conn: sqlite3.Connection, subjects: Iterable[str], secrets: set[str]
    ) -> int:
        changed = 0
        for subject in subjects:
            for row in _rows(conn, "SELECT * FROM postbacks WHERE subject_id = ?", [subject]):
                if row["state"] in UNDELIVERED:
                    # Never sent: dropped, with nothing of the user left in it.
                    conn.execute(
                        "UPDATE postbacks SET state = 'dropped', payload = '{}' WHERE id = ?",
                        [row["id"]],
                    )
                    changed += 1
                else:
                    changes = erase_row(row, (), extra_secrets=secrets)
                    changed += _update(conn, "postbacks", row["id"], changes)
        return changed

    async def erasures(self) -> list[dict[str, Any]]:
        rows = await self._conns.all(
            "SELECT time, actor, key_kind, app_key, counts FROM privacy_erasures "
            "ORDER BY time DESC, rowid DESC"
        )
        return [erasure_from_row(r) for r in rows]
