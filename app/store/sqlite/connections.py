"""The connections of one SQLite file: the single writer, and read connections per thread.

Every query class of the backend holds one `Connections` (composition, not inheritance): it
writes with `await conns.write(fn)` and reads with `await conns.read(fn)`, `one` or `all`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlite_utils import Database

from app.store.sqlite.schema import migrate
from app.store.sqlite.writer import Writer, connect

T = TypeVar("T")


def private_file(path: Path) -> None:
    """Make sure the database file exists readable by its owner only (0600), in a folder made
    0700 when we create it; SQLite gives its -wal and -shm files the database file's mode. A
    file left readable by others by an older version is tightened."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    else:
        os.close(fd)


class Connections:
    """Open with `Connections.open_sync(path)`; close with `close_sync()`."""

    def __init__(self, path: str, *, batch_max: int = 256) -> None:
        self.path = path
        self.writer = Writer(path, batch_max=batch_max)
        self._local = threading.local()
        # Every read connection with the lock held while it is in use: close() takes each lock
        # before closing, because closing a connection another thread is reading from crashes
        # the process (SQLite's C code does not forgive it).
        self._readers: list[tuple[sqlite3.Connection, threading.Lock]] = []
        self._readers_lock = threading.Lock()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def open_sync(cls, path: str, *, batch_max: int = 256) -> Connections:
        """Create the file and its folder if needed, apply migrations, start the writer."""
        private_file(Path(path).expanduser().resolve())
        conns = cls(path, batch_max=batch_max)
        conns.writer.start()
        conns.writer.write_sync(migrate)
        return conns

    def close_sync(self) -> None:
        with self._readers_lock:
            self._closed = True
            for conn, in_use in self._readers:
                with in_use:
                    conn.close()
            self._readers.clear()
        # The writer's connection closes last: only a connection that may write checkpoints the
        # WAL into the database file, so a clean shutdown leaves one self-contained file.
        self.writer.stop()

    # -- writing -----------------------------------------------------------------------------

    async def write(self, fn: Callable[[Database], T]) -> T:
        """Run `fn` in the writer's next batch; return its result once committed."""
        return await self.writer.write(fn)

    # -- reading -----------------------------------------------------------------------------

    def _reader(self) -> tuple[sqlite3.Connection, threading.Lock]:
        reader: tuple[sqlite3.Connection, threading.Lock] | None = getattr(
            self._local, "reader", None
        )
        if reader is None:
            conn = connect(self.path, readonly=True)
            conn.row_factory = sqlite3.Row
            reader = (conn, threading.Lock())
            with self._readers_lock:
                if self._closed:
                    conn.close()
                    raise RuntimeError("the store is closed")
                self._readers.append(reader)
            self._local.reader = reader
        return reader

    def read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn, in_use = self._reader()
        with in_use:
            if self._closed:
                raise RuntimeError("the store is closed")
            return fn(conn)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self.read_sync, fn)

    async def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        def run(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(sql, params).fetchone()
            return dict(row) if row is not None else None

        return await self.read(run)

    async def all(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[dict[str, Any]]:
        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return [dict(r) for r in conn.execute(sql, params).fetchall()]

        return await self.read(run)
