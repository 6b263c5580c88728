"""Retention and privacy erase in PostgreSQL: each one transaction.

What a row loses is decided by `app.reports.privacy.erase_row`; this module finds the rows,
decodes their JSON documents for it and writes back only the columns that changed, so an erase
that finds nothing left to erase reports zero. Beside SQLite's tables, PostgreSQL keeps two
copies of touch values (`schema.py`): an impression's page view holds its landing URL, and a
claimed click's claim holds the `app_instance_id`; both are erased with their touch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
from app.store.postgres.connections import Conn, Database
from app.store.postgres.rollups import add_rollups

# One media source's installs due: by its own or original source, before its cutoff.
_DUE_SOURCE = "((media_source = %s OR original_media_source = %s) AND time < %s)"


async def _rows(conn: Conn, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    cursor = await conn.execute(sql, params)
    return [decoded(row) for row in await cursor.fetchall()]


async def _update(conn: Conn, table: str, row_id: Any, changes: Mapping[str, Any]) -> int:
    if not changes:
        return 0
    sets = ", ".join(f"{c} = %s" for c in changes)
    await conn.execute(
        f"UPDATE {table} SET {sets} WHERE id = %s", [*update_values(changes), row_id]
    )
    return 1


async def _erase_touch(
    conn: Conn,
    table: str,
    row: dict[str, Any],
    secrets: set[str],
    replace: Mapping[str, Any] | None = None,
) -> int:
    changes = touch_changes(row, secrets, replace)
    if "original_url" in changes and table == "impressions":
        await conn.execute(
            "UPDATE page_views SET original_url = %s WHERE impression_id = %s",
            [changes["original_url"], row["id"]],
        )
    if "claimed_by" in changes and table == "clicks":
        await conn.execute(
            "UPDATE click_claims SET claimed_by = %s WHERE click_id = %s",
            [changes["claimed_by"], row["id"]],
        )
    return await _update(conn, table, row["id"], changes)


# The installs whose events carry an install's attribution: the install itself, unless it is a
# reinstall whose first install is still stored (its events are the first's then), and the
# reinstalls of it (`app.conversions.attributing_install`).
ATTRIBUTING_SQL = (
    "SELECT x.id FROM installs x WHERE x.id = %(id)s AND NOT EXISTS "
    "(SELECT 1 FROM installs f WHERE f.id = x.reinstall_of) "
    "UNION ALL SELECT r.id FROM installs r WHERE r.reinstall_of = %(id)s"
)


class PostgresPrivacy:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- retention -----------------------------------------------------------------------------

    @staticmethod
    def _due_where(cutoffs: Mapping[str, float]) -> tuple[str, list[Any]]:
        where = " OR ".join([_DUE_SOURCE] * len(cutoffs)) or "false"
        return f"NOT is_retained_organic AND ({where})", cutoff_params(cutoffs)

    async def retention_due(self, cutoffs: Mapping[str, float], *, limit: int) -> list[Install]:
        where, params = self._due_where(cutoffs)
        rows = await self._db.all(
            f"SELECT {', '.join(INSTALL_COLUMNS)} FROM installs WHERE {where} "
            'ORDER BY time, id COLLATE "C" LIMIT %s',
            [*params, limit],
        )
        return [from_row(Install, r, INSTALL_COLUMNS) for r in rows]

    async def count_retention_due(self, cutoffs: Mapping[str, float]) -> int:
        where, params = self._due_where(cutoffs)
        row = await self._db.one(f"SELECT COUNT(*) AS n FROM installs WHERE {where}", params)
        return int(row["n"]) if row else 0

    async def events_attributed_to(self, install_id: str) -> list[Event]:
        rows = await self._db.all(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events "
            f"WHERE install_id IN ({ATTRIBUTING_SQL}) "
            'ORDER BY event_time, id COLLATE "C"',
            {"id": install_id},
        )
        return [from_row(Event, r, EVENT_COLUMNS) for r in rows]

    async def retain(self, items: Sequence[RetainItem], now: float) -> dict[str, int]:
        work = list(items)

        async def write(conn: Conn) -> dict[str, int]:
            counts = dict.fromkeys(RETAIN_TABLES, 0)
            for item in work:
                # FOR UPDATE: a retention run on another node waits, then finds it retained.
                found = await _rows(
                    conn,
                    "SELECT * FROM installs WHERE id = %s AND NOT is_retained_organic FOR UPDATE",
                    [item.install_id],
                )
                if not found:
                    continue
                install = found[0]
                secrets, changes = retained(install, True)
                counts["installs"] += await _update(conn, "installs", install["id"], changes)
                counts |= await self._erase_related(conn, install, secrets, counts, erase_id=False)
                await add_rollups(conn, item.rollups)
            return counts

        return await self._db.write(write)

    async def _erase_related(
        self,
        conn: Conn,
        install: Mapping[str, Any],
        secrets: set[str],
        counts: dict[str, int],
        *,
        erase_id: bool,
    ) -> dict[str, int]:
        """Erase the install's attributed touch and events; answers `counts` updated."""
        replace_id = erased_id(install) if erase_id else None
        if table := credited_table(install["touch_type"], install["touch_id"]):
            for row in await _rows(
                conn, f"SELECT * FROM {table} WHERE id = %s", [install["touch_id"]]
            ):
                claimed = claim_of(install, row) if erase_id else None
                counts[table] += await _erase_touch(conn, table, row, secrets, claimed)
        for row in await _rows(conn, "SELECT * FROM events WHERE install_id = %s", [install["id"]]):
            changes = erase_row(row, (), extra_secrets=secrets, replace=replace_id)
            counts["events"] += await _update(conn, "events", row["id"], changes)
        return counts

    # -- privacy erase -------------------------------------------------------------------------

    async def erase(self, key: EraseKey, *, actor: str, now: float) -> dict[str, int]:
        async def write(conn: Conn) -> dict[str, int]:
            counts = dict.fromkeys(ERASE_TABLES, 0)
            subjects: list[str] = []
            if key.ttclid:
                installs = await _rows(
                    conn, "SELECT * FROM installs WHERE ttclid = %s FOR UPDATE", [key.ttclid]
                )
            else:
                installs = await _rows(
                    conn,
                    "SELECT * FROM installs WHERE app_key = %s AND app_instance_id = %s FOR UPDATE",
                    [key.app_key, key.app_instance_id],
                )
            secrets = erase_secrets(key, installs)
            for install in installs:
                changes = erase_row(
                    install, INSTALL_USER_COLUMNS, extra_secrets=secrets, replace=erased_id(install)
                )
                counts["installs"] += await _update(conn, "installs", install["id"], changes)
                subjects.append(install["id"])
                cursor = await conn.execute(
                    "SELECT id FROM events WHERE install_id = %s", [install["id"]]
                )
                subjects += [r["id"] for r in await cursor.fetchall()]
                await self._erase_related(conn, install, secrets, counts, erase_id=True)
                # Clicks this user claimed (the attributed one is done above).
                for row in await _rows(
                    conn,
                    "SELECT * FROM clicks WHERE app_key = %s AND claimed_by = %s",
                    [install["app_key"], install["app_instance_id"]],
                ):
                    counts["clicks"] += await _erase_touch(
                        conn, "clicks", row, secrets, erased_claim(install)
                    )
            ttclids = erase_ttclids(key, installs)
            for ttclid in ttclids:
                for table in ("clicks", "impressions"):
                    for row in await _rows(
                        conn, f"SELECT * FROM {table} WHERE ttclid = %s", [ttclid]
                    ):
                        counts[table] += await _erase_touch(conn, table, row, secrets)
            # Postbacks of other rows that describe this user's touch (a reinstall's events carry
            # the first install's ttclid), found by the ttclid in the JSON.
            apps = erase_apps(key, installs)
            for ttclid in ttclids:
                where = "payload LIKE %s ESCAPE '\\'"
                params: list[Any] = [payload_pattern(ttclid)]
                if apps:
                    where += " AND app_key = ANY(%s)"
                    params.append(sorted(apps))
                cursor = await conn.execute(
                    f"SELECT DISTINCT subject_id FROM postbacks WHERE {where}", params
                )
                subjects += [r["subject_id"] for r in await cursor.fetchall()]
            counts["postbacks"] += await self._erase_postbacks(
                conn, dict.fromkeys(subjects), secrets
            )
            await conn.execute(
                "INSERT INTO privacy_erasures (id, time, actor, key_kind, app_key, counts) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                erasure_row(key, actor, now, counts),
            )
            return counts

        return await self._db.write(write)

    @staticmethod
    async def _erase_postbacks(conn: Conn, subjects: Iterable[str], secrets: set[str]) -> int:
        changed = 0
        for subject in subjects:
            for row in await _rows(
                conn, "SELECT * FROM postbacks WHERE subject_id = %s FOR UPDATE", [subject]
            ):
                if row["state"] in UNDELIVERED:
                    # Never sent: dropped, with nothing of the user left in it (nor a lease,
                    # so no node sends it).
                    await conn.execute(
                        "UPDATE postbacks SET state = 'dropped', payload = '{}', "
                        "lease_until = NULL WHERE id = %s",
                        [row["id"]],
                    )
                    changed += 1
                else:
                    changes = erase_row(row, (), extra_secrets=secrets)
                    changed += await _update(conn, "postbacks", row["id"], changes)
        return changed

    async def erasures(self) -> list[dict[str, Any]]:
        rows = await self._db.all(
            "SELECT time, actor, key_kind, app_key, counts FROM privacy_erasures "
            "ORDER BY time DESC, seq DESC"
        )
        return [erasure_from_row(r) for r in rows]
