"""Audiences in SQLite: the rules, their members by hash, and the installs a rule matches.

A sync stages every member it wants now (`stage_members`, marking `seen_run`), then reads the
difference with TikTok's confirmed set page by page (`pending_members`, keyset on the hash), so
no step holds an app's members in memory. The installs a rule matches are read the same way,
keyset on (time, id) over `installs_time`; one device's several installs may repeat its ID,
which staging folds into one member.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlite_utils import Database

from app.audiences import PENDING, Audience, AudienceRule, MemberQuery, SyncCounts
from app.ids import new_id
from app.reports.privacy import ERASED_PREFIX
from app.store.common import audiences as common
from app.store.sqlite.connections import Connections

_COLUMNS = ", ".join(common.AUDIENCE_COLUMNS)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def member_sql(query: MemberQuery, batch: int, after: tuple[float, str]) -> tuple[str, list[Any]]:
    """One page of the installs `query` matches, (time, id, device ID) in that order, after the
    (time, id) cursor `after`. The cursor's time starts the index range, so each page reads
    from where the last one stopped."""
    column = common.id_column(query)
    where = [
        "i.app_key = ?",
        "i.time >= ?",
        "(i.time > ? OR i.id > ?)",
        f"i.{column} IS NOT NULL",
        "i.is_limited_data_use = 0",
        "i.is_retained_organic = 0",
        "i.app_instance_id NOT LIKE ?",
        # A device that asked for limited data use on any install of the app is no member.
        f"NOT EXISTS (SELECT 1 FROM installs o WHERE o.app_key = i.app_key "
        f"AND o.{column} = i.{column} AND o.is_limited_data_use = 1)",
    ]
    params: list[Any] = [query.app_key, after[0], after[0], after[1], ERASED_PREFIX + "%"]
    if query.media_source is not None:
        where.append("i.media_source = ?")
        params.append(query.media_source)
    for source, cutoff in sorted(query.retention_cutoffs.items()):
        # COALESCE: an install with no original media source is not past another source's
        # retention (NOT of a NULL would drop it).
        where.append(
            "NOT ((i.media_source = ? OR COALESCE(i.original_media_source, '') = ?) AND i.time < ?)"
        )
        params += [source, source, cutoff]
    if query.did_event:
        where.append(
            "EXISTS (SELECT 1 FROM events e WHERE e.install_id = i.id "
            f"AND e.event_name IN ({_marks(query.did_event)}) AND e.event_time >= ?)"
        )
        params += [*query.did_event, query.events_since]
    if query.did_not_event:
        where.append(
            "NOT EXISTS (SELECT 1 FROM events e WHERE e.install_id = i.id "
            f"AND e.event_name IN ({_marks(query.did_not_event)}) AND e.event_time >= ?)"
        )
        params += [*query.did_not_event, query.events_since]
    # INDEXED BY: the planner may prefer `installs_retention` (media source, time), which
    # walks every app's installs of that source.
    sql = (
        f"SELECT i.time, i.id, i.{column} FROM installs i INDEXED BY installs_time "
        f"WHERE {' AND '.join(where)} "
        f"ORDER BY i.time, i.id LIMIT {int(batch)}"
    )
    return sql, params


class SqliteAudiences:
    def __init__(self, conns: Connections) -> None:
        self._conns = conns

    # -- the rules -------------------------------------------------------------------------------

    async def put_audience(
        self, app_key: str, name: str, rule: AudienceRule, now: float, *, reset: bool
    ) -> Audience:
        config = common.config_text(rule)

        def write(db: Database) -> None:
            conn = db.conn
            found = conn.execute(
                "SELECT id FROM audiences WHERE app_key = ? AND name = ?", [app_key, name]
            ).fetchone()
            if found is None:
                conn.execute(
                    f"INSERT INTO audiences ({_COLUMNS}) "
                    f"VALUES ({_marks(common.AUDIENCE_COLUMNS)})",
                    [new_id(), app_key, name, config, None, PENDING, 0, 0, None, None, now, now],
                )
                return
            conn.execute(
                "UPDATE audiences SET config = ?, updated_at = ? WHERE id = ?",
                [config, now, found[0]],
            )
            if reset:
                conn.execute("DELETE FROM audience_members WHERE audience_id = ?", [found[0]])
                conn.execute(
                    "UPDATE audiences SET tiktok_audience_id = NULL, state = ?, member_count = 0, "
                    "sent_count = 0, last_error = NULL WHERE id = ?",
                    [PENDING, found[0]],
                )

        await self._conns.write(write)
        stored = await self.get_audience(app_key, name)
        assert stored is not None
        return stored

    async def get_audience(self, app_key: str, name: str) -> Audience | None:
        row = await self._conns.one(
            f"SELECT {_COLUMNS} FROM audiences WHERE app_key = ? AND name = ?", [app_key, name]
        )
        return common.audience(row) if row else None

    async def list_audiences(self, app_key: str | None) -> list[Audience]:
        if app_key is None:
            rows = await self._conns.all(f"SELECT {_COLUMNS} FROM audiences ORDER BY app_key, name")
        else:
            rows = await self._conns.all(
                f"SELECT {_COLUMNS} FROM audiences WHERE app_key = ? ORDER BY name", [app_key]
            )
        return [common.audience(r) for r in rows]

    async def delete_audience(self, app_key: str, name: str) -> bool:
        def write(db: Database) -> bool:
            conn = db.conn
            found = conn.execute(
                "SELECT id FROM audiences WHERE app_key = ? AND name = ?", [app_key, name]
            ).fetchone()
            if found is None:
                return False
            conn.execute("DELETE FROM audience_members WHERE audience_id = ?", [found[0]])
            conn.execute("DELETE FROM audiences WHERE id = ?", [found[0]])
            return True

        return await self._conns.write(write)

    # -- the installs a rule matches ---------------------------------------------------------------

    def member_ids(self, query: MemberQuery, *, batch: int = 1000) -> AsyncIterator[list[str]]:
        async def page_after(after: tuple[float, str]) -> list[dict[str, Any]]:
            return await self._conns.all(*member_sql(query, batch, after))

        return common.member_pages(query, batch, page_after)

    # -- syncing -------------------------------------------------------------------------------

    async def start_sync(self, audience_id: str, now: float, lease: float) -> int | None:
        def write(db: Database) -> int | None:
            conn = db.conn
            taken = conn.execute(
                "UPDATE audiences SET sync_run = sync_run + 1, syncing_until = ? "
                "WHERE id = ? AND (syncing_until IS NULL OR syncing_until <= ?)",
                [now + lease, audience_id, now],
            ).rowcount
            if not taken:
                return None
            row = conn.execute("SELECT sync_run FROM audiences WHERE id = ?", [audience_id])
            return int(row.fetchone()[0])

        return await self._conns.write(write)

    async def stage_members(self, audience_id: str, run: int, hashes: Sequence[str]) -> None:
        rows = [(audience_id, h, run) for h in hashes]

        def write(db: Database) -> None:
            db.conn.executemany(
                "INSERT INTO audience_members (audience_id, hash, sent, seen_run) "
                "VALUES (?, ?, 0, ?) ON CONFLICT (audience_id, hash) "
                "DO UPDATE SET seen_run = excluded.seen_run",
                rows,
            )

        await self._conns.write(write)

    async def staged(self, audience_id: str, run: int) -> SyncCounts:
        def write(db: Database) -> SyncCounts:
            conn = db.conn
            # Wanted by an earlier sync, never confirmed, not wanted now: nothing to undo.
            conn.execute(
                "DELETE FROM audience_members WHERE audience_id = ? AND sent = 0 AND seen_run <> ?",
                [audience_id, run],
            )
            wanted, to_append, to_remove = conn.execute(
                "SELECT COALESCE(SUM(CASE WHEN seen_run = ? THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN seen_run = ? AND sent = 0 THEN 1 ELSE 0 END), 0), "
                "COALESCE(SUM(CASE WHEN seen_run <> ? AND sent = 1 THEN 1 ELSE 0 END), 0) "
                "FROM audience_members WHERE audience_id = ?",
                [run, run, run, audience_id],
            ).fetchone()
            return SyncCounts(int(wanted), int(to_append), int(to_remove))

        return await self._conns.write(write)

    async def pending_members(
        self, audience_id: str, run: int, action: str, *, after: str, limit: int
    ) -> list[str]:
        condition = common.by_action(
            action, "seen_run = ? AND sent = 0", "seen_run <> ? AND sent = 1"
        )
        sql = (
            f"SELECT hash FROM audience_members WHERE audience_id = ? AND {condition} "
            "AND hash > ? ORDER BY hash LIMIT ?"
        )

        def read(conn: sqlite3.Connection) -> list[str]:
            # Plain values, not a dict a row: a page is a whole file of hashes.
            return [row[0] for row in conn.execute(sql, [audience_id, run, after, limit])]

        return await self._conns.read(read)

    async def confirm_sent(
        self,
        audience_id: str,
        action: str,
        hashes: Sequence[str],
        *,
        tiktok_audience_id: str | None = None,
    ) -> None:
        rows = [(audience_id, h) for h in hashes]

        def write(db: Database) -> None:
            conn = db.conn
            if tiktok_audience_id is not None:
                conn.execute(
                    "UPDATE audiences SET tiktok_audience_id = ? WHERE id = ?",
                    [tiktok_audience_id, audience_id],
                )
            # Chosen here, after the audience's ID: an unknown action fails this write as a
            # whole, so that ID is not kept either.
            sql = common.by_action(
                action,
                "UPDATE audience_members SET sent = 1 WHERE audience_id = ? AND hash = ?",
                "DELETE FROM audience_members WHERE audience_id = ? AND hash = ? AND sent = 1",
            )
            conn.executemany(sql, rows)

        await self._conns.write(write)

    async def finish_sync(
        self,
        audience_id: str,
        *,
        state: str,
        member_count: int,
        error: str | None,
        now: float,
    ) -> None:
        def write(db: Database) -> None:
            db.conn.execute(
                "UPDATE audiences SET state = ?, member_count = ?, last_error = ?, "
                "last_sync_at = ?, syncing_until = NULL, sent_count = (SELECT COUNT(*) "
                "FROM audience_members WHERE audience_id = ? AND sent = 1) WHERE id = ?",
                [state, member_count, error, now, audience_id, audience_id],
            )

        await self._conns.write(write)
