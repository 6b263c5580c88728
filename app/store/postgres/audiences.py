"""Audiences in PostgreSQL: the rules, their members by hash, and the installs a rule matches.

The same steps as on SQLite (`app/store/sqlite/audiences.py`): a sync stages every member it
wants now, then reads the difference with TikTok's confirmed set page by page, keyset on the
hash; the installs a rule matches are read keyset on (time, id) over `installs_time`.

Across nodes: a sync's lease (`syncing_until`) is taken by one conditional UPDATE; of two
nodes asking at once the second waits for the first's row lock, then finds the lease held and
updates nothing. Members are staged and confirmed a page at a time in one statement each
(arrays, not a statement per hash).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from psycopg.rows import scalar_row

from app.audiences import PENDING, Audience, AudienceRule, MemberQuery, SyncCounts
from app.ids import new_id
from app.reports.privacy import ERASED_PREFIX
from app.store.common import audiences as common
from app.store.postgres.connections import Conn, Database
from app.store.postgres.rows import clean

_COLUMNS = ", ".join(common.AUDIENCE_COLUMNS)


def member_sql(query: MemberQuery, batch: int, after: tuple[float, str]) -> tuple[str, list[Any]]:
    """One page of the installs `query` matches, (time, id, device ID) in that order, after the
    (time, id) cursor `after`. The cursor's time starts the index range, so each page reads
    from where the last one stopped."""
    column = common.id_column(query)
    where = [
        "i.app_key = %s",
        "i.time >= %s",
        "(i.time, i.id) > (%s, %s)",
        f"i.{column} IS NOT NULL",
        "NOT i.is_limited_data_use",
        "NOT i.is_retained_organic",
        "i.app_instance_id NOT LIKE %s",
        # A device that asked for limited data use on any install of the app is no member.
        # NOT IN over the app's few such IDs (read from the partial index `installs_ldu_*`):
        # one hashed set a page, whatever the planner guesses of the table (a correlated NOT
        # EXISTS was a scan per row on a table not yet analysed).
        f"i.{column} NOT IN (SELECT o.{column} FROM installs o WHERE o.app_key = %s "
        f"AND o.is_limited_data_use AND o.{column} IS NOT NULL)",
    ]
    params: list[Any] = [
        query.app_key,
        after[0],
        after[0],
        after[1],
        ERASED_PREFIX + "%",
        query.app_key,
    ]
    if query.media_source is not None:
        where.append("i.media_source = %s")
        params.append(query.media_source)
    for source, cutoff in sorted(query.retention_cutoffs.items()):
        # COALESCE: an install with no original media source is not past another source's
        # retention (NOT of a NULL would drop it).
        where.append(
            "NOT ((i.media_source = %s OR COALESCE(i.original_media_source, '') = %s) "
            "AND i.time < %s)"
        )
        params += [source, source, cutoff]
    if query.did_event:
        where.append(
            "EXISTS (SELECT 1 FROM events e WHERE e.install_id = i.id "
            "AND e.event_name = ANY(%s) AND e.event_time >= %s)"
        )
        params += [list(query.did_event), query.events_since]
    if query.did_not_event:
        where.append(
            "NOT EXISTS (SELECT 1 FROM events e WHERE e.install_id = i.id "
            "AND e.event_name = ANY(%s) AND e.event_time >= %s)"
        )
        params += [list(query.did_not_event), query.events_since]
    sql = (
        f"SELECT i.time, i.id, i.{column} FROM installs i "
        f"WHERE {' AND '.join(where)} "
        f"ORDER BY i.time, i.id LIMIT {int(batch)}"
    )
    return sql, params


class PostgresAudiences:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- the rules -------------------------------------------------------------------------------

    async def put_audience(
        self, app_key: str, name: str, rule: AudienceRule, now: float, *, reset: bool
    ) -> Audience:
        config = common.config_text(rule)

        async def write(conn: Conn) -> None:
            # One upsert: two nodes creating the same audience at once make one of it.
            cursor = await conn.execute(
                f"INSERT INTO audiences ({_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, NULL, %s, 0, 0, NULL, NULL, %s, %s) "
                "ON CONFLICT (app_key, name) DO UPDATE SET config = excluded.config, "
                "updated_at = excluded.updated_at RETURNING id, (xmax = 0) AS created",
                [new_id(), app_key, name, config, PENDING, now, now],
            )
            row = await cursor.fetchone()
            assert row is not None
            if reset and not row["created"]:
                await conn.execute(
                    "DELETE FROM audience_members WHERE audience_id = %s", [row["id"]]
                )
                await conn.execute(
                    "UPDATE audiences SET tiktok_audience_id = NULL, state = %s, "
                    "member_count = 0, sent_count = 0, last_error = NULL WHERE id = %s",
                    [PENDING, row["id"]],
                )

        await self._db.write(write)
        stored = await self.get_audience(app_key, name)
        assert stored is not None
        return stored

    async def get_audience(self, app_key: str, name: str) -> Audience | None:
        row = await self._db.one(
            f"SELECT {_COLUMNS} FROM audiences WHERE app_key = %s AND name = %s", [app_key, name]
        )
        return common.audience(row) if row else None

    async def list_audiences(self, app_key: str | None) -> list[Audience]:
        if app_key is None:
            rows = await self._db.all(f"SELECT {_COLUMNS} FROM audiences ORDER BY app_key, name")
        else:
            rows = await self._db.all(
                f"SELECT {_COLUMNS} FROM audiences WHERE app_key = %s ORDER BY name", [app_key]
            )
        return [common.audience(r) for r in rows]

    async def delete_audience(self, app_key: str, name: str) -> bool:
        async def write(conn: Conn) -> bool:
            # Its members go with it (ON DELETE CASCADE).
            cursor = await conn.execute(
                "DELETE FROM audiences WHERE app_key = %s AND name = %s RETURNING id",
                [app_key, name],
            )
            return await cursor.fetchone() is not None

        return await self._db.write(write)

    # -- the installs a rule matches ---------------------------------------------------------------

    def member_ids(self, query: MemberQuery, *, batch: int = 1000) -> AsyncIterator[list[str]]:
        async def page_after(after: tuple[float, str]) -> list[dict[str, Any]]:
            return await self._db.all(*member_sql(query, batch, after))

        return common.member_pages(query, batch, page_after)

    # -- syncing -------------------------------------------------------------------------------

    async def start_sync(self, audience_id: str, now: float, lease: float) -> int | None:
        async def write(conn: Conn) -> int | None:
            cursor = await conn.execute(
                "UPDATE audiences SET sync_run = sync_run + 1, syncing_until = %s "
                "WHERE id = %s AND (syncing_until IS NULL OR syncing_until <= %s) "
                "RETURNING sync_run",
                [now + lease, audience_id, now],
            )
            row = await cursor.fetchone()
            return None if row is None else int(row["sync_run"])

        return await self._db.write(write)

    async def stage_members(self, audience_id: str, run: int, hashes: Sequence[str]) -> None:
        if not hashes:
            return

        async def write(conn: Conn) -> None:
            # DISTINCT: one statement may not upsert the same row twice.
            await conn.execute(
                "INSERT INTO audience_members (audience_id, hash, sent, seen_run) "
                "SELECT %s, h, false, %s FROM (SELECT DISTINCT unnest(%s::text[]) AS h) AS s "
                "ORDER BY h ON CONFLICT (audience_id, hash) "
                "DO UPDATE SET seen_run = excluded.seen_run",
                [audience_id, run, list(hashes)],
            )

        await self._db.write(write)

    async def staged(self, audience_id: str, run: int) -> SyncCounts:
        async def write(conn: Conn) -> SyncCounts:
            # Wanted by an earlier sync, never confirmed, not wanted now: nothing to undo.
            await conn.execute(
                "DELETE FROM audience_members WHERE audience_id = %s AND NOT sent "
                "AND seen_run <> %s",
                [audience_id, run],
            )
            cursor = await conn.execute(
                "SELECT COUNT(*) FILTER (WHERE seen_run = %s) AS wanted, "
                "COUNT(*) FILTER (WHERE seen_run = %s AND NOT sent) AS to_append, "
                "COUNT(*) FILTER (WHERE seen_run <> %s AND sent) AS to_remove "
                "FROM audience_members WHERE audience_id = %s",
                [run, run, run, audience_id],
            )
            row = await cursor.fetchone()
            assert row is not None
            return SyncCounts(int(row["wanted"]), int(row["to_append"]), int(row["to_remove"]))

        return await self._db.write(write)

    async def pending_members(
        self, audience_id: str, run: int, action: str, *, after: str, limit: int
    ) -> list[str]:
        condition = common.by_action(
            action, "seen_run = %s AND NOT sent", "seen_run <> %s AND sent"
        )
        sql = (
            f"SELECT hash FROM audience_members WHERE audience_id = %s AND {condition} "
            "AND hash > %s ORDER BY hash LIMIT %s"
        )

        async def read(conn: Conn) -> list[str]:
            # Plain values, not a dict a row: a page is a whole file of hashes.
            async with conn.cursor(row_factory=scalar_row) as cursor:
                await cursor.execute(sql, [audience_id, run, after, limit])
                return await cursor.fetchall()

        return await self._db.read(read)

    async def confirm_sent(
        self,
        audience_id: str,
        action: str,
        hashes: Sequence[str],
        *,
        tiktok_audience_id: str | None = None,
    ) -> None:
        sql = common.by_action(
            action,
            "UPDATE audience_members SET sent = true WHERE audience_id = %s AND hash = ANY(%s)",
            "DELETE FROM audience_members WHERE audience_id = %s AND hash = ANY(%s) AND sent",
        )

        async def write(conn: Conn) -> None:
            if tiktok_audience_id is not None:
                await conn.execute(
                    "UPDATE audiences SET tiktok_audience_id = %s WHERE id = %s",
                    [tiktok_audience_id, audience_id],
                )
            await conn.execute(sql, [audience_id, list(hashes)])

        await self._db.write(write)

    async def finish_sync(
        self,
        audience_id: str,
        *,
        state: str,
        member_count: int,
        error: str | None,
        now: float,
    ) -> None:
        async def write(conn: Conn) -> None:
            await conn.execute(
                "UPDATE audiences SET state = %s, member_count = %s, last_error = %s, "
                "last_sync_at = %s, syncing_until = NULL, sent_count = (SELECT COUNT(*) "
                "FROM audience_members WHERE audience_id = %s AND sent) WHERE id = %s",
                [state, member_count, clean(error), now, audience_id, audience_id],
            )

        await self._db.write(write)
