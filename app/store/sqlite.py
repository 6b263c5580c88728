"""The SQLite store: the narrow interface handlers and workers use, named for what they need.

Nothing outside `app/store/` writes SQL. Writes go through the single `Writer` (group commit);
reads use read-only connections, one per worker thread, so a slow report never blocks a write.
A second backend (PostgreSQL for configuration, installs and the outbox; ClickHouse for touches
and rollups) would implement the same public methods.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlite_utils import Database

from app.ids import new_id, new_secret, token_hash
from app.store.schema import migrate
from app.store.writer import Writer, connect
from app.touches import CAMPAIGN_PARAMS, Touch

T = TypeVar("T")


class ClickAlreadyClaimed(Exception):
    """The click an install matched was claimed by another install first (a lost race)."""


@dataclass(frozen=True)
class AppRecord:
    app_key: str
    name: str
    sdk_key: str
    config: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class PageRecord:
    slug: str
    app_key: str
    config: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class IntegrationRecord:
    app_key: str
    partner: str
    config: dict[str, Any]
    access_token: str | None
    updated_at: float


@dataclass(frozen=True)
class TouchRecord:
    """A touch as the tracking handlers record it: the domain value plus what only storage and
    raw data need."""

    touch: Touch
    page_slug: str | None = None
    language: str | None = None
    in_app: str | None = None
    all_params: Mapping[str, str] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    destination: str | None = None


@dataclass(frozen=True)
class NewPostback:
    """An outbox row, written in the same transaction as its install or event."""

    app_key: str
    partner: str
    kind: str  # "install" | "event"
    subject_id: str
    event: str
    payload: dict[str, Any]
    id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class PostbackRecord:
    id: str
    app_key: str
    partner: str
    kind: str
    subject_id: str
    event: str
    payload: dict[str, Any]
    state: str
    attempts: int
    created_at: float
    next_attempt_at: float
    last_code: int | None
    last_message: str | None


_TOUCH_FIELDS = (
    "id app_key page_slug pvid time ip user_agent os_family os_version device_model browser "
    "in_app language country region gpc pid ttclid params original_url referrer verdict "
    "verdict_reasons flags"
).split() + list(CAMPAIGN_PARAMS)


def _touch_from_row(kind: str, row: Mapping[str, Any]) -> Touch:
    return Touch(
        id=row["id"],
        kind="click" if kind == "click" else "impression",
        app_key=row["app_key"],
        time=row["time"],
        ip=row["ip"],
        user_agent=row["user_agent"],
        os_family=row["os_family"],
        os_version=row["os_version"],
        device_model=row["device_model"],
        browser=row["browser"],
        pid=row["pid"],
        params={k: row[k] for k in CAMPAIGN_PARAMS if row[k] is not None},
        ttclid=row["ttclid"],
        original_url=row["original_url"],
        referrer=row["referrer"],
        pvid=row["pvid"],
        platform=row.get("platform"),
        verdict=row["verdict"],
        verdict_reasons=tuple(r for r in row["verdict_reasons"].split(",") if r),
        country=row["country"],
        region=row["region"],
        gpc=bool(row["gpc"]),
        claimed_by=row.get("claimed_by"),
    )


def _touch_row(rec: TouchRecord) -> dict[str, Any]:
    t = rec.touch
    row: dict[str, Any] = {
        "id": t.id,
        "app_key": t.app_key,
        "page_slug": rec.page_slug,
        "pvid": t.pvid,
        "time": t.time,
        "ip": t.ip,
        "user_agent": t.user_agent,
        "os_family": t.os_family,
        "os_version": t.os_version,
        "device_model": t.device_model,
        "browser": t.browser,
        "in_app": rec.in_app,
        "language": rec.language,
        "country": t.country,
        "region": t.region,
        "gpc": int(t.gpc),
        "pid": t.pid,
        "ttclid": t.ttclid,
        "params": json.dumps(dict(rec.all_params), ensure_ascii=False),
        "original_url": t.original_url,
        "referrer": t.referrer,
        "verdict": t.verdict,
        "verdict_reasons": ",".join(t.verdict_reasons),
        "flags": ",".join(rec.flags),
    }
    for key in CAMPAIGN_PARAMS:
        row[key] = t.params.get(key)
    if t.kind == "click":
        row["platform"] = t.platform
        row["destination"] = rec.destination
    return row


class Store:
    """Open with `await Store.open(path)`; close with `await store.close()`."""

    def __init__(self, path: str, *, batch_max: int = 256) -> None:
        self.path = path
        self.writer = Writer(path, batch_max=batch_max)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def open_sync(cls, path: str, *, batch_max: int = 256) -> Store:
        """Create the file and its folder if needed, apply migrations, start the writer."""
        Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        store = cls(path, batch_max=batch_max)
        store.writer.start()
        store.writer.write_sync(migrate)
        return store

    @classmethod
    async def open(cls, path: str, *, batch_max: int = 256) -> Store:
        return await anyio.to_thread.run_sync(lambda: cls.open_sync(path, batch_max=batch_max))

    def close_sync(self) -> None:
        self.writer.stop()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.close_sync)

    # -- plumbing ----------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return fn(self._reader())

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self.read_sync, fn)

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        def run(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(sql, params).fetchone()
            return dict(row) if row is not None else None

        return await self._read(run)

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return [dict(r) for r in conn.execute(sql, params).fetchall()]

        return await self._read(run)

    # -- apps --------------------------------------------------------------------------------

    @staticmethod
    def _app(row: Mapping[str, Any]) -> AppRecord:
        return AppRecord(
            app_key=row["app_key"],
            name=row["name"],
            sdk_key=row["sdk_key"],
            config=json.loads(row["config"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    async def get_app(self, app_key: str) -> AppRecord | None:
        row = await self._one("SELECT * FROM apps WHERE app_key = ?", [app_key])
        return self._app(row) if row else None

    async def list_apps(self) -> list[AppRecord]:
        return [self._app(r) for r in await self._all("SELECT * FROM apps ORDER BY app_key")]

    async def put_app(self, app_key: str, config: Mapping[str, Any], now: float) -> AppRecord:
        """Full replace of an app's config; its `sdk_key` is made on create and then kept."""

        def write(db: Database) -> dict[str, Any]:
            existing = db.execute(
                "SELECT sdk_key, created_at FROM apps WHERE app_key = ?", [app_key]
            ).fetchone()
            sdk_key, created = existing if existing else (new_secret(), now)
            row = {
                "app_key": app_key,
                "name": config["name"],
                "sdk_key": sdk_key,
                "config": json.dumps(config, ensure_ascii=False),
                "created_at": created,
                "updated_at": now,
            }
            db.execute(
                "INSERT INTO apps (app_key, name, sdk_key, config, created_at, updated_at) "
                "VALUES (:app_key, :name, :sdk_key, :config, :created_at, :updated_at) "
                "ON CONFLICT(app_key) DO UPDATE SET name = excluded.name, "
                "config = excluded.config, updated_at = excluded.updated_at",
                row,
            )
            return row

        return self._app(await self.writer.write(write))

    async def delete_app(self, app_key: str) -> bool:
        def write(db: Database) -> bool:
            return db.execute("DELETE FROM apps WHERE app_key = ?", [app_key]).rowcount > 0

        return await self.writer.write(write)

    async def app_for_destination(self, platform: str, app_id: str) -> AppRecord | None:
        """The app whose destination `platform` has `app_id` (direct click URLs)."""
        row = await self._one(
            "SELECT * FROM apps WHERE json_extract(config, '$.destinations.' || ? || '.app_id') = ?"
            " ORDER BY app_key LIMIT 1",
            [platform, app_id],
        )
        return self._app(row) if row else None

    # -- integrations -------------------------------------------------------------------------

    async def get_integration(self, app_key: str, partner: str) -> IntegrationRecord | None:
        row = await self._one(
            "SELECT * FROM integrations WHERE app_key = ? AND partner = ?", [app_key, partner]
        )
        if row is None:
            return None
        return IntegrationRecord(
            app_key=row["app_key"],
            partner=row["partner"],
            config=json.loads(row["config"]),
            access_token=row["access_token"],
            updated_at=row["updated_at"],
        )

    async def put_integration(
        self,
        app_key: str,
        partner: str,
        config: Mapping[str, Any],
        access_token: str | None,
        now: float,
    ) -> IntegrationRecord:
        """Full replace of the config. `access_token=None` keeps the stored token, so an owner
        can edit settings without pasting the secret again."""

        def write(db: Database) -> str | None:
            db.execute(
                "INSERT INTO integrations (app_key, partner, config, access_token, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(app_key, partner) DO UPDATE SET "
                "config = excluded.config, updated_at = excluded.updated_at, "
                "access_token = COALESCE(excluded.access_token, integrations.access_token)",
                [app_key, partner, json.dumps(config), access_token, now],
            )
            row = db.execute(
                "SELECT access_token FROM integrations WHERE app_key = ? AND partner = ?",
                [app_key, partner],
            ).fetchone()
            return row[0] if row else None

        token = await self.writer.write(write)
        return IntegrationRecord(app_key, partner, dict(config), token, now)

    async def delete_integration(self, app_key: str, partner: str) -> bool:
        def write(db: Database) -> bool:
            cursor = db.execute(
                "DELETE FROM integrations WHERE app_key = ? AND partner = ?", [app_key, partner]
            )
            return cursor.rowcount > 0

        return await self.writer.write(write)

    # -- pages -------------------------------------------------------------------------------

    @staticmethod
    def _page(row: Mapping[str, Any]) -> PageRecord:
        return PageRecord(
            slug=row["slug"],
            app_key=row["app_key"],
            config=json.loads(row["config"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    async def get_page(self, slug: str) -> PageRecord | None:
        row = await self._one("SELECT * FROM pages WHERE slug = ?", [slug])
        return self._page(row) if row else None

    async def list_pages(self) -> list[PageRecord]:
        return [self._page(r) for r in await self._all("SELECT * FROM pages ORDER BY slug")]

    async def put_page(self, slug: str, config: Mapping[str, Any], now: float) -> PageRecord:
        def write(db: Database) -> dict[str, Any]:
            existing = db.execute("SELECT created_at FROM pages WHERE slug = ?", [slug]).fetchone()
            row = {
                "slug": slug,
                "app_key": config["app_key"],
                "config": json.dumps(config, ensure_ascii=False),
                "created_at": existing[0] if existing else now,
                "updated_at": now,
            }
            db.execute(
                "INSERT INTO pages (slug, app_key, config, created_at, updated_at) "
                "VALUES (:slug, :app_key, :config, :created_at, :updated_at) "
                "ON CONFLICT(slug) DO UPDATE SET app_key = excluded.app_key, "
                "config = excluded.config, updated_at = excluded.updated_at",
                row,
            )
            return row

        return self._page(await self.writer.write(write))

    async def delete_page(self, slug: str) -> bool:
        def write(db: Database) -> bool:
            return db.execute("DELETE FROM pages WHERE slug = ?", [slug]).rowcount > 0

        return await self.writer.write(write)

    # -- admin tokens -------------------------------------------------------------------------

    async def create_token(self, label: str, now: float) -> str:
        """Make an admin token; only its hash is kept, so this is the one time it is seen."""
        token = new_secret()

        def write(db: Database) -> None:
            db.execute(
                "INSERT INTO tokens (id, token_hash, label, created_at) VALUES (?, ?, ?, ?)",
                [new_id(), token_hash(token), label, now],
            )

        await self.writer.write(write)
        return token

    async def token_valid(self, token: str) -> bool:
        row = await self._one("SELECT 1 FROM tokens WHERE token_hash = ?", [token_hash(token)])
        return row is not None

    # -- touches -----------------------------------------------------------------------------

    async def record_touch(self, rec: TouchRecord) -> str:
        """Store a touch; answers its id. An impression whose `pvid` was seen before is not
        stored again: the first one's id is answered (a page view is one impression)."""
        table = "clicks" if rec.touch.kind == "click" else "impressions"
        row = _touch_row(rec)
        columns = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)

        def write(db: Database) -> str:
            if table == "impressions" and rec.touch.pvid is not None:
                existing = db.execute(
                    "SELECT id FROM impressions WHERE app_key = ? AND pvid = ?",
                    [rec.touch.app_key, rec.touch.pvid],
                ).fetchone()
                if existing:
                    return str(existing[0])
            db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", row)
            return rec.touch.id

        return await self.writer.write(write)

    async def impression_by_pvid(self, app_key: str, pvid: str) -> Touch | None:
        row = await self._one(
            "SELECT * FROM impressions WHERE app_key = ? AND pvid = ?", [app_key, pvid]
        )
        return _touch_from_row("impression", row) if row else None

    async def click_by_id(self, click_id: str) -> Touch | None:
        row = await self._one("SELECT * FROM clicks WHERE id = ?", [click_id])
        return _touch_from_row("click", row) if row else None

    async def touch_by_id(self, kind: str, touch_id: str) -> Touch | None:
        table = "clicks" if kind == "click" else "impressions"
        row = await self._one(f"SELECT * FROM {table} WHERE id = ?", [touch_id])
        return _touch_from_row(kind, row) if row else None

    async def candidate_touches(
        self, app_key: str, ip: str, since: float, until: float
    ) -> tuple[list[Touch], list[Touch]]:
        """Clicks and impressions of one app from one IP in [since, until]: the probabilistic
        candidates. Both queries ride the (app_key, ip, time) indexes."""

        def run(conn: sqlite3.Connection) -> tuple[list[Touch], list[Touch]]:
            found = []
            for table, kind in (("clicks", "click"), ("impressions", "impression")):
                rows = conn.execute(
                    f"SELECT * FROM {table} WHERE app_key = ? AND ip = ? AND time BETWEEN ? AND ?",
                    [app_key, ip, since, until],
                ).fetchall()
                found.append([_touch_from_row(kind, dict(r)) for r in rows])
            return found[0], found[1]

        return await self._read(run)

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
        """The latest install of this app since `since` that shares a device id (reinstalls)."""
        best: dict[str, Any] | None = None
        for column, value in device_ids.items():
            if column not in ("idfa", "idfv", "gaid", "android_id") or not value:
                continue
            row = await self._one(
                f"SELECT id, time FROM installs WHERE app_key = ? AND {column} = ? "
                "AND time >= ? ORDER BY time DESC LIMIT 1",
                [app_key, value, since],
            )
            if row and (best is None or row["time"] > best["time"]):
                best = row
        return best

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
            _queue_postbacks(db, pending, now)
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
            _queue_postbacks(db, pending, now)
            return values, True

        return await self.writer.write(write)

    # -- outbox ------------------------------------------------------------------------------

    async def due_postbacks(self, now: float, limit: int) -> list[PostbackRecord]:
        rows = await self._all(
            "SELECT * FROM postbacks WHERE state IN ('pending', 'retrying') "
            "AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            [now, limit],
        )
        return [_postback(r) for r in rows]

    async def next_postback_due(self) -> float | None:
        row = await self._one(
            "SELECT MIN(next_attempt_at) AS t FROM postbacks WHERE state IN ('pending', 'retrying')"
        )
        return row["t"] if row else None

    async def outbox_pending(self) -> int:
        row = await self._one(
            "SELECT COUNT(*) AS n FROM postbacks WHERE state IN ('pending', 'retrying')"
        )
        return int(row["n"]) if row else 0

    async def postback_states(self) -> dict[str, int]:
        rows = await self._all("SELECT state, COUNT(*) AS n FROM postbacks GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    async def record_attempts(self, attempts: Sequence[PostbackAttempt]) -> None:
        """Log one delivery attempt per postback and move each to its next state."""

        def write(db: Database) -> None:
            for a in attempts:
                db.execute(
                    "INSERT INTO postback_attempts "
                    "(postback_id, time, http_status, code, message, request_id) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [a.postback_id, a.time, a.http_status, a.code, a.message, a.request_id],
                )
                db.execute(
                    "UPDATE postbacks SET state = ?, attempts = attempts + 1, "
                    "last_attempt_at = ?, last_http_status = ?, last_code = ?, "
                    "last_message = ?, next_attempt_at = ?, "
                    "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
                    [
                        a.state,
                        a.time,
                        a.http_status,
                        a.code,
                        a.message,
                        a.next_attempt_at,
                        a.state,
                        a.time,
                        a.postback_id,
                    ],
                )

        await self.writer.write(write)

    async def postback_attempts(self, postback_id: str) -> list[dict[str, Any]]:
        return await self._all(
            "SELECT * FROM postback_attempts WHERE postback_id = ? ORDER BY id", [postback_id]
        )

    async def postbacks_for(self, subject_id: str) -> list[PostbackRecord]:
        rows = await self._all(
            "SELECT * FROM postbacks WHERE subject_id = ? ORDER BY created_at", [subject_id]
        )
        return [_postback(r) for r in rows]


@dataclass(frozen=True)
class PostbackAttempt:
    postback_id: str
    time: float
    state: str  # the postback's state after this attempt
    next_attempt_at: float
    http_status: int | None = None
    code: int | None = None
    message: str | None = None
    request_id: str | None = None


def _select_install(db: Database, install_id: str) -> dict[str, Any]:
    cursor = db.execute("SELECT * FROM installs WHERE id = ?", [install_id])
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def _queue_postbacks(db: Database, postbacks: Sequence[NewPostback], now: float) -> None:
    for p in postbacks:
        db.execute(
            "INSERT INTO postbacks (id, app_key, partner, kind, subject_id, event, payload, "
            "state, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            [
                p.id,
                p.app_key,
                p.partner,
                p.kind,
                p.subject_id,
                p.event,
                json.dumps(p.payload, ensure_ascii=False),
                now,
                now,
            ],
        )


def _postback(row: Mapping[str, Any]) -> PostbackRecord:
    return PostbackRecord(
        id=row["id"],
        app_key=row["app_key"],
        partner=row["partner"],
        kind=row["kind"],
        subject_id=row["subject_id"],
        event=row["event"],
        payload=json.loads(row["payload"]),
        state=row["state"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        last_code=row["last_code"],
        last_message=row["last_message"],
    )
