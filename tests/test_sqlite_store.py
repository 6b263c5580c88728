"""The SQLite backend's own promises: migrations, group commit durability, one failing write
fails alone, closing never crashes a reader. (What every backend promises is
`test_store_contract.py`.)"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from app.store.sqlite import SqliteStore as Store
from app.store.sqlite.schema import migrations
from app.touches import Touch, TouchRecord
from tests.aio import run_async

run = run_async


def test_migrations_are_named_and_applied_once(tmp_path: Path) -> None:
    db = str(tmp_path / "g.db")
    Store.open_sync(db).close_sync()
    Store.open_sync(db).close_sync()
    conn = sqlite3.connect(db)
    names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")]
    assert names[0] == "0001_initial"
    assert names == sorted(set(names)), "each migration applied once, in order"
    assert migrations.pending(Database(conn)) == []
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"clicks_match", "impressions_match", "impressions_pvid"} <= indexes


def test_an_acknowledged_write_is_readable_from_a_fresh_connection(tmp_path: Path) -> None:
    db = str(tmp_path / "g.db")

    async def scenario() -> None:
        store = await Store.open(db)
        try:
            # Many concurrent writes so they share group commits.
            touches = [
                Touch(id=f"t{i}", kind="impression", app_key="demo", time=float(i), pvid=f"p{i}")
                for i in range(200)
            ]
            for coro in asyncio.as_completed(
                [store.touches.record_touch(TouchRecord(t)) for t in touches]
            ):
                touch_id = await coro
                # The moment the write answers, another process can see the row.
                fresh = sqlite3.connect(db)
                found = fresh.execute(
                    "SELECT COUNT(*) FROM impressions WHERE id = ?", [touch_id]
                ).fetchone()[0]
                fresh.close()
                assert found == 1, touch_id
            assert store.stats().batches < 200, "writes were not grouped into batches"
        finally:
            await store.close()

    run(scenario())


def test_a_failing_write_fails_alone_and_its_batch_commits(tmp_path: Path) -> None:
    db = str(tmp_path / "g.db")

    async def scenario() -> None:
        store = await Store.open(db)
        try:

            def good(i: int):  # type: ignore[no-untyped-def]
                def fn(d: Database) -> int:
                    d.execute(
                        "INSERT INTO tokens (id, token_hash, created_at) VALUES (?, ?, 0)",
                        [f"id{i}", f"h{i}"],
                    )
                    return i

                return fn

            def bad(d: Database) -> None:
                d.execute("INSERT INTO tokens (id, token_hash, created_at) VALUES ('x', 'hx', 0)")
                raise ValueError("refused")

            results = await asyncio.gather(
                store.connections.write(good(1)),
                store.connections.write(bad),
                store.connections.write(good(2)),
                return_exceptions=True,
            )
            assert results[0] == 1 and results[2] == 2
            assert isinstance(results[1], ValueError)
        finally:
            await store.close()
        conn = sqlite3.connect(db)
        assert sorted(r[0] for r in conn.execute("SELECT id FROM tokens")) == ["id1", "id2"]

    run(scenario())


def test_store_refuses_writes_when_closed(tmp_path: Path) -> None:
    store = Store.open_sync(str(tmp_path / "g.db"))
    store.close_sync()
    with pytest.raises(RuntimeError):
        store.connections.writer.submit(lambda d: None)


def test_a_2xx_answer_means_the_row_is_on_disk(client, settings) -> None:  # type: ignore[no-untyped-def]
    """The group-commit promise, seen from HTTP: right after a 2xx, a fresh connection to the
    file (another process, in effect) reads the row."""
    for n in range(20):
        r = client.post(
            "/i/demo",
            json={"url": f"http://gangway.test/lp/demo?pid=tiktokweb_int&c=n{n}", "pvid": f"pv{n}"},
        )
        assert r.status_code == 202
        fresh = sqlite3.connect(settings.db)
        row = fresh.execute("SELECT c FROM impressions WHERE id = ?", [r.json()["id"]]).fetchone()
        fresh.close()
        assert row == (f"n{n}",)


def test_closing_waits_for_a_read_in_progress(tmp_path: Path) -> None:
    """Closing a connection another thread is reading from crashes SQLite's C code: close()
    must wait for the read, and reads after it must fail cleanly."""
    import threading

    store = Store.open_sync(str(tmp_path / "g.db"))
    reading = threading.Event()
    results: list[object] = []

    def slow_read(conn: sqlite3.Connection) -> int:
        reading.set()
        threading.Event().wait(0.2)  # still inside the read when close() is called
        return int(conn.execute("SELECT COUNT(*) FROM apps").fetchone()[0])

    reader = threading.Thread(target=lambda: results.append(store.connections.read_sync(slow_read)))
    reader.start()
    reading.wait()
    store.close_sync()
    reader.join()
    assert results == [0]
    with pytest.raises(RuntimeError, match="closed"):
        store.connections.read_sync(slow_read)


def test_every_declared_field_has_its_column(tmp_path: Path) -> None:
    """The domain values declare the fields (`app/store/columns.py`); migrations are history and
    cannot follow them by themselves, so a field added without its migration fails here."""
    from app.store import columns

    db = str(tmp_path / "g.db")
    Store.open_sync(db).close_sync()
    conn = sqlite3.connect(db)

    def table(name: str) -> set[str]:
        return {r[1] for r in conn.execute(f"PRAGMA table_info({name})")}

    touch = {*columns.TOUCH_COLUMNS, *columns.TOUCH_RECORD_COLUMNS}
    assert touch <= table("impressions")
    assert {*touch, *columns.CLICK_COLUMNS, *columns.CLICK_RECORD_COLUMNS} <= table("clicks")
    assert set(columns.INSTALL_COLUMNS) <= table("installs")
    assert set(columns.EVENT_COLUMNS) <= table("events")


def test_old_sessions_and_failed_logins_are_pruned_as_new_ones_come(tmp_path: Path) -> None:
    store = Store.open_sync(str(tmp_path / "g.db"))
    day = 86400.0

    async def scenario() -> None:
        await store.users.create_user("ann@example.com", "h", "admin", None, 0.0)
        await store.users.create_session("old", "ann@example.com", "c", 0.0)
        await store.users.record_login_failure("ann@example.com", "203.0.113.1", 0.0)
        await store.users.create_session("new", "ann@example.com", "c", 9 * day)
        await store.users.record_login_failure("ann@example.com", "203.0.113.1", 9 * day)
        assert await store.users.get_session("old") is None
        assert await store.users.get_session("new") is not None
        assert await store.users.login_failures("ann@example.com", "203.0.113.1", 0.0) == (1, 1)

    try:
        run(scenario())
    finally:
        store.close_sync()
