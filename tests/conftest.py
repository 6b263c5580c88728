"""Fixtures shared by the whole suite.

- `settings`, `client`, `admin`: an in-process app on a fresh SQLite file per test.
- `browser`: one Chromium for the whole session (start-up is the slow part).
- `live_server`: one real uvicorn server per test module, for browser tests (see `tests/live.py`).
- `fake_tiktok`: a real HTTP server standing in for TikTok's Events API (`tests/fakes/`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from app.__main__ import seed_demo
from app.server import create_app
from app.settings import Secret, Settings
from app.store.sqlite import SqliteStore
from tests.aio import run_async
from tests.browser import ARTIFACTS, launch_browser

pytest_plugins = ["tests.fakes.tiktok_api"]


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db": str(tmp / "gangway.db"),
        "secret_key": Secret("test-secret"),
        # Nothing in the suite may reach the real TikTok: an unroutable default.
        "tiktok_api_url": "http://127.0.0.1:9",
        "tiktok_timeout_seconds": 2.0,
        # The hosts the in-process clients use (127.0.0.1 and localhost are always answered).
        "allowed_hosts": frozenset({"gangway.test", "testserver"}),
    }
    values.update(overrides)
    return Settings(**values)


def seed(db: str) -> tuple[str, str]:
    """Seed the demo into `db`; answer (admin token, demo sdk_key)."""

    async def run() -> tuple[str, str]:
        store = await SqliteStore.open(db)
        try:
            await seed_demo(store)
            token = await store.tokens.create_token("tests", 0.0)
            app = await store.configs.get_app("demo")
            assert app is not None
            return token, app.sdk_key
        finally:
            await store.close()

    return run_async(run())


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
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
def seeded(settings: Settings, seeded_template: tuple[Path, str, str]) -> tuple[str, str]:
    template, token, sdk_key = seeded_template
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
    """A failing test that used the live server shows the server's log with its report."""
    report = yield
    server = getattr(item, "funcargs", {}).get("live_server")
    if report.failed and server is not None:
        report.sections.append(("live server log", server.logs()[-20000:]))
    return report
