"""Fixtures shared by the whole suite.

- `settings`, `client`, `admin`: an in-process app on a fresh SQLite file per test.
- `browser`: one Chromium for the whole session (start-up is the slow part).
- `live_server`: one real uvicorn server per test module, for browser tests (see `tests/live.py`).
- `fake_tiktok`: a real HTTP server standing in for TikTok's Events API (`tests/fakes/`).
- `postgres`: one throwaway PostgreSQL server for the whole session (`tests/pg.py`); each test
  that uses it gets a database of its own, empty (`pg_database`) or holding the seeded demo
  (`settings`, `seeded` on the PostgreSQL backend); see `PgDatabases`.
- `backend`: "sqlite", unless the test is marked `both_backends`: then it runs once per backend,
  and `settings`, `seeded`, `client`, `backend_db` follow it.

Plain helpers and constants shared by test modules are in `tests/fixtures.py`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from starlette.testclient import TestClient

from app.server import create_app
from app.settings import Settings
from tests.browser import ARTIFACTS, launch_browser
from tests.fixtures import make_settings, seed
from tests.pg import PgDatabases, TakenDatabases, ThrowawayPostgres

BACKENDS = ("sqlite", "postgresql")

pytest_plugins = ["tests.fakes.tiktok_api"]

# The suite runs on every core at once, beside Chromium and PostgreSQL: how long one example
# takes to draw or run there says nothing about the code, so timing is not a failure. What a
# property checks, and how many examples it checks it on, stay as each test sets them.
hypothesis_settings.register_profile(
    "suite", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("suite")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_backends") is not None:
        if "backend" not in metafunc.fixturenames:
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: uses no backend fixture")
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture()
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


# The session's PostgreSQL server and its databases, made on a thread of their own as soon as
# the collected tests show one is needed: initdb, start-up, migrating the template and seeding
# take seconds, mostly in subprocesses, so they overlap the SQLite tests that run first.
_PG_FIXTURES = frozenset({"postgres", "pg_pool", "pg_databases", "pg_database"})
_pg_ready: Future[tuple[ThrowawayPostgres, PgDatabases]] | None = None


def _needs_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    return bool(_PG_FIXTURES & set(getattr(item, "fixturenames", ()))) or "postgresql" in params


def _start_postgres() -> tuple[ThrowawayPostgres, PgDatabases]:
    server = ThrowawayPostgres().start()
    try:
        return server, PgDatabases(server)
    except BaseException:
        server.stop()
        raise


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what will not run
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    global _pg_ready
    if _pg_ready is None and any(_needs_postgres(item) for item in items):
        pool = ThreadPoolExecutor(1, thread_name_prefix="gangway-pg")
        _pg_ready = pool.submit(_start_postgres)
        pool.shutdown(wait=False)  # the start goes on; nothing else is submitted


@pytest.fixture(scope="session")
def _postgres_and_pool() -> Iterator[tuple[ThrowawayPostgres, PgDatabases]]:
    server, pool = _pg_ready.result(timeout=120) if _pg_ready is not None else _start_postgres()
    yield server, pool
    server.stop()


@pytest.fixture(scope="session")
def postgres(_postgres_and_pool: tuple[ThrowawayPostgres, PgDatabases]) -> ThrowawayPostgres:
    return _postgres_and_pool[0]


@pytest.fixture(scope="session")
def pg_pool(_postgres_and_pool: tuple[ThrowawayPostgres, PgDatabases]) -> PgDatabases:
    return _postgres_and_pool[1]


@pytest.fixture()
def pg_databases(pg_pool: PgDatabases) -> Iterator[TakenDatabases]:
    taken = TakenDatabases(pg_pool)
    yield taken
    for url in taken.taken:
        pg_pool.give_back(url)


@pytest.fixture()
def pg_database(pg_databases: TakenDatabases) -> str:
    """The URL of a fresh, migrated, empty PostgreSQL database."""
    return pg_databases.new()


@pytest.fixture()
def backend_db(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of the backend under test: a file path or a URL."""
    if backend == "postgresql":
        return str(request.getfixturevalue("pg_database"))
    return str(tmp_path / "gangway.db")


@pytest.fixture()
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    if backend == "postgresql":
        databases: TakenDatabases = request.getfixturevalue("pg_databases")
        return make_settings(tmp_path, db=databases.new(seeded=True))
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """One seeded database for the whole session; each test gets a copy of the file, which is
    far cheaper than migrating and seeding (with their fsyncs) again."""
    db = tmp_path_factory.mktemp("template") / "gangway.db"
    token, sdk_key = seed(str(db))
    # Closing the store closed every connection, so the WAL is checkpointed into the file.
    assert not db.with_name("gangway.db-wal").exists()
    return db, token, sdk_key


@pytest.fixture()
def seeded(settings: Settings, backend: str, request: pytest.FixtureRequest) -> tuple[str, str]:
    if backend == "postgresql":  # `settings` already names a copy of the seeded template
        pool: PgDatabases = request.getfixturevalue("pg_pool")
        return pool.credentials
    template, token, sdk_key = request.getfixturevalue("seeded_template")
    shutil.copyfile(template, settings.db)
    return token, sdk_key


@pytest.fixture()
def client(settings: Settings, seeded: tuple[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://gangway.test") as c:
        yield c


@pytest.fixture()
def admin(seeded: tuple[str, str]) -> dict[str, str]:
    """Headers of an admin request."""
    return {"Authorization": f"Bearer {seeded[0]}"}


@pytest.fixture()
def sdk(seeded: tuple[str, str]) -> dict[str, str]:
    """Headers of the demo app's SDK."""
    return {"Authorization": f"Bearer {seeded[1]}"}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch_browser(pw)
        yield b
        b.close()


@pytest.fixture()
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, fake_tiktok_server: Any) -> Iterator[Any]:
    """One real server per test module, seeded with the demo, posting to the fake TikTok.
    `live_server.admin_token` and `live_server.sdk_key` are the demo's credentials."""
    from tests.live import LiveServer

    db = str(tmp_path_factory.mktemp("live") / "gangway.db")
    token, sdk_key = seed(db)
    server = LiveServer(db, {"GANGWAY_TIKTOK_API_URL": fake_tiktok_server.base_url}).start()
    server.admin_token = token  # type: ignore[attr-defined]
    server.sdk_key = sdk_key  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failing test that used a live server (or the nodes of `test_nodes.py`) shows their
    logs with its report."""
    report = yield
    for name in ("live_server", "nodes"):
        server = getattr(item, "funcargs", {}).get(name)
        if report.failed and server is not None:
            report.sections.append((f"{name} log", server.logs()[-20000:]))
    return report
