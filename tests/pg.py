"""A throwaway PostgreSQL server made from the machine's own binaries, for tests and benchmarks.

`ThrowawayPostgres().start()` runs `initdb` into a fresh temporary folder and `pg_ctl start` on
a free port of 127.0.0.1 (and a unix socket in the same folder), with trust authentication for
the `postgres` user; `stop()` ends it and deletes the folder. Nothing shared or pre-existing is
ever touched. The binaries are found through `pg_config --bindir`, else under
/usr/lib/postgresql/*/bin; when there are none, `start()` raises (the suite fails, never
skips: `.ci/run` installs Debian's `postgresql`).

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user the Debian
package creates. Tests run it with `fsync=off` (a test does not survive a power cut and needs
no disk flush; `synchronous_commit` stays on, as the store sets it); the benchmark keeps fsync.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from app.store.backends import open_store
from app.store.urls import with_database
from tests.aio import run_async
from tests.fixtures import seed


def bindir() -> Path:
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidates.append(found.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    raise RuntimeError(
        "no PostgreSQL server binaries (initdb, pg_ctl) found: install Debian's `postgresql` "
        "(`apt-get install -y postgresql`; .ci/run does it)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayPostgres:
    def __init__(self, *, fsync: bool = False, max_connections: int = 300) -> None:
        self.fsync = fsync
        self.max_connections = max_connections
        self.port = free_port()
        self.folder: Path | None = None
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        """The URL of the `postgres` database (the maintenance one)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return with_database(self.url, name)

    def _run(self, *args: str) -> None:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> ThrowawayPostgres:
        binaries = bindir()
        # Not under pytest's tmp_path: its parents are private to root, and the server may run
        # as `postgres`.
        self.folder = Path(tempfile.mkdtemp(prefix="gangway-pg-"))
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        data = self.folder / "data"
        self._run(
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.folder}",
            f"-c max_connections={self.max_connections}",
        ]
        if not self.fsync:
            options += ["-c fsync=off", "-c full_page_writes=off"]
        atexit.register(self.stop)
        self._run(
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
            "start",
        )
        self._wait()
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def execute(self, sql: str) -> None:
        """Run one statement on the maintenance database, outside a transaction."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """A new database (copied from `template` when given); answers its URL."""
        clause = f' TEMPLATE "{template}"' if template else ""
        self.execute(f'CREATE DATABASE "{name}"{clause}')
        return self.database_url(name)

    def stop(self) -> None:
        if self.folder is None:
            return
        folder, self.folder = self.folder, None
        data = folder / "data"
        if (data / "postmaster.pid").exists():
            try:
                self._run(str(bindir() / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
            except RuntimeError:
                pass
        shutil.rmtree(folder, ignore_errors=True)

    def log(self) -> str:
        if self.folder is None:
            return ""
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _migrate(url: str) -> None:
    async def run() -> None:
        store = await open_store(url)
        await store.close()

    run_async(run())


class PgDatabases:
    """Databases on the session's server, handed to one test at a time and emptied (or reset to
    the seeded demo) before each: DELETE of a handful of rows takes milliseconds where CREATE
    DATABASE takes half a second on a busy machine. Each is made from the migrated template."""

    TEMPLATE = "gangway_template"

    def __init__(self, server: ThrowawayPostgres) -> None:
        self.server = server
        self.free: list[str] = []
        self.made = 0
        _migrate(server.create_database(self.TEMPLATE))
        with psycopg.connect(server.database_url(self.TEMPLATE)) as conn:
            self.tables = [
                str(row[0])
                for row in conn.execute(
                    "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                    "AND relkind IN ('r', 'p') AND NOT relispartition "
                    "AND relname <> 'gangway_migrations'"
                )
            ]
        # The demo, seeded once; its rows are put back into every seeded database.
        seeded_url = self.take()
        self.credentials = seed(seeded_url)
        self.seed_rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        with psycopg.connect(seeded_url) as conn:
            for table in self.tables:
                cursor = conn.execute(f"SELECT * FROM {table}")  # type: ignore[arg-type]
                rows = cursor.fetchall()
                if rows:
                    columns = [c.name for c in cursor.description or ()]
                    self.seed_rows[table] = (columns, rows)
        self.give_back(seeded_url)

    def take(self, *, seeded: bool = False) -> str:
        if self.free:
            name = self.free.pop()
        else:
            self.made += 1
            name = f"gangway_test_{self.made}"
            self.server.create_database(name, template=self.TEMPLATE)
        url = self.server.database_url(name)
        with psycopg.connect(url) as conn, conn.transaction():
            # Tables a test made beside the schema (the copy's progress) go too.
            extra = conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                "AND relkind IN ('r', 'p') AND NOT relispartition "
                "AND relname <> ALL(%s) AND relname <> 'gangway_migrations'",
                [self.tables],
            ).fetchall()
            for (table,) in extra:
                conn.execute(f'DROP TABLE "{table}"')  # type: ignore[arg-type]
            for table in self.tables:
                conn.execute(f"DELETE FROM {table}")  # type: ignore[arg-type]
            if seeded:
                for table, (columns, rows) in self.seed_rows.items():
                    marks = ", ".join(["%s"] * len(columns))
                    with conn.cursor() as cursor:
                        cursor.executemany(
                            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                            rows,
                        )
        return url

    def give_back(self, url: str) -> None:
        self.free.append(url.rsplit("/", 1)[1])


class TakenDatabases:
    """The databases one test took; given back when it ends."""

    def __init__(self, pool: PgDatabases) -> None:
        self.pool = pool
        self.taken: list[str] = []

    def new(self, *, seeded: bool = False) -> str:
        url = self.pool.take(seeded=seeded)
        self.taken.append(url)
        return url
