"""Install and event queries: the install with its click claim and postbacks, atomically.

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

from app.store.base import StoreBase
from app.store.outbox import queue_postbacks
from app.store.records import ClickAlreadyClaimed, NewPostback

DEVICE_ID_COLUMNS = ("idfa", "idfv", "gaid", "android_id")
# INDEXED BY: left to itself the planner may prefer `installs_time` for the ORDER BY, which
# walks every install of the app in the re-attribution window; a device has a handful of rows.
PRIOR_INSTALL_SQL = (
    "SELECT id, time, reinstall_of FROM installs INDEXED BY installs_{column} "
    "WHERE app_key = ? AND {column} = ? AND time >= ? ORDER BY time DESC LIMIT 1"
)


class InstallQueries(StoreBase):
    # -- installs ----------------------------------------------------------------------------

    async def install_by_instance(
        self, app_key: str, app_instance_id: str
    ) -> dict[str, Any] | None:
        return await self._one(
            "SELECT * FROM installs WHERE app_key = ? AND app_instance_id = ?",
            [app_key, app_instance_id],
        )

    async def get_install(self, install_id: str) -> dict[str, Any] | None:
        return await self._one("SELECT * FROM installs WHERE id = ?", [install_id])

    async def prior_install(
        self, app_key: str, device_ids: Mapping[str, str], since: float
    ) -> dict[str, Any] | None:
        """The latest install of this app since `since` that shares a device id (reinstalls):
        its `id`, `time` and `first_install_id` (itself, or the install it re-installed)."""

        def run(conn: sqlite3.Connection) -> dict[str, Any] | None:
            best: dict[str, Any] | None = None
            for column, value in device_ids.items():
                if column not in DEVICE_ID_COLUMNS or not value:
                    continue
                row = conn.execute(
                    PRIOR_INSTALL_SQL.format(column=column), [app_key, value, since]
                ).fetchone()
                if row and (best is None or row["time"] > best["time"]):
                    best = {
                        "id": row["id"],
                        "time": row["time"],
                        "first_install_id": row["reinstall_of"] or row["id"],
                    }
            return best

        return await self._read(run)

    async def attributing_install(self, install: Mapping[str, Any]) -> dict[str, Any]:
        """The install whose attribution `install`'s events carry: the first install of the
        device for a reinstall (attribution.md section 4), else `install` itself. A first
        install erased since (privacy) leaves the reinstall its own, organic, attribution."""
        first = install.get("reinstall_of")
        if first:
            found = await self.get_install(first)
            if found is not None:
                return found
        return dict(install)

    async def record_install(
        self,
        row: Mapping[str, Any],
        *,
        claim_click: str | None,
        postbacks: Iterable[NewPostback] = (),
        now: float,
    ) -> tuple[dict[str, Any], bool]:
        """Insert an install, claim its click and queue its postbacks in one transaction.

        Answers (stored row, created). If an install with the same app_instance_id exists, it is
        answered unchanged with created=False. Raises ClickAlreadyClaimed when `claim_click` was
        taken by another install first; nothing is written then.
        """
        values = dict(row)
        pending = list(postbacks)

        def write(db: Database) -> tuple[dict[str, Any], bool]:
            existing = db.execute(
                "SELECT id FROM installs WHERE app_key = ? AND app_instance_id = ?",
                [values["app_key"], values["app_instance_id"]],
            ).fetchone()
            if existing:
                return _select_install(db, existing[0]), False
            if claim_click is not None:
                claimed = db.execute(
                    "UPDATE clicks SET claimed_by = ?, claimed_at = ? WHERE id = ? "
                    "AND (claimed_by IS NULL OR claimed_by = ?)",
                    [values["app_instance_id"], now, claim_click, values["app_instance_id"]],
                ).rowcount
                if not claimed:
                    raise ClickAlreadyClaimed(claim_click)
            columns = ", ".join(values)
            marks = ", ".join(f":{k}" for k in values)
            db.execute(f"INSERT INTO installs ({columns}) VALUES ({marks})", values)
            queue_postbacks(db, pending, now)
            return _select_install(db, values["id"]), True

        return await self.writer.write(write)

    # -- events ------------------------------------------------------------------------------

    async def event_by_id(self, app_key: str, event_id: str) -> dict[str, Any] | None:
        return await self._one(
            "SELECT * FROM events WHERE app_key = ? AND event_id = ?", [app_key, event_id]
        )

    async def record_event(
        self, row: Mapping[str, Any], *, postbacks: Iterable[NewPostback] = (), now: float
    ) -> tuple[dict[str, Any], bool]:
        """Insert an event with its postbacks in one transaction; an `event_id` already stored
        answers the stored row with created=False."""
        values = dict(row)
        pending = list(postbacks)

        def write(db: Database) -> tuple[dict[str, Any], bool]:
            cursor = db.execute(
                "SELECT * FROM events WHERE app_key = ? AND event_id = ?",
                [values["app_key"], values["event_id"]],
            )
            existing = cursor.fetchone()
            if existing:
                names = [d[0] for d in cursor.description]
                return dict(zip(names, existing, strict=True)), False
            columns = ", ".join(values)
            marks = ", ".join(f":{k}" for k in values)
            db.execute(f"INSERT INTO events ({columns}) VALUES ({marks})", values)
            queue_postbacks(db, pending, now)
            return values, True

        return await self.writer.write(write)


def _select_install(db: Database, install_id: str) -> dict[str, Any]:
    cursor = db.execute("SELECT * FROM installs WHERE id = ?", [install_id])
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))
