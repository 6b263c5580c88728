"""The outbox worker's test rig: a real store, a real HTTP client, the fake TikTok and a clock
the test moves (`deliver_due()` sends what is due now and waits for the answers)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from app.__main__ import DEMO_APP, DEMO_INTEGRATION
from app.configs import validate_app, validate_integration
from app.jobs.outbox import OutboxWorker
from app.postbacks import tiktok
from app.postbacks.postback import NewPostback
from app.store.backends import open_store
from app.store.interfaces import Store
from app.touches import Touch
from app.vocabulary import PARTNER
from tests.fakes.tiktok_api import FakeTikTok
from tests.fixtures import make_settings

START = 1_763_719_300.0
HOUR = 3600.0
DEMO_PIXEL = DEMO_INTEGRATION["pixel_code"]
OTHER_PIXEL = "OTHERPIXEL000000000"


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def install_event(subject: str) -> dict[str, object]:
    touch = Touch(
        id=f"click-{subject}",
        kind="click",
        app_key="demo",
        time=START - 60,
        ip="203.0.113.7",
        user_agent="Mozilla/5.0 (Linux; Android 14)",
        pid=PARTNER,
        ttclid=f"E.C.P.{subject}",
        original_url=f"https://example.com/lp/demo?ttclid=E.C.P.{subject}",
    )
    return tiktok.build_event(
        event="Download",
        event_time=START,
        event_id=subject,
        touch=touch,
        limited_data_use=False,
    )


@dataclass
class Rig:
    store: Store
    worker: OutboxWorker
    clock: FakeClock
    fake: FakeTikTok

    async def queue(self, n: int = 1, app_key: str = "demo", prefix: str = "inst") -> list[str]:
        """Queue `n` install postbacks as the install endpoint does; answers their ids."""
        rows = [
            NewPostback(app_key, PARTNER, "install", f"{prefix}-{i}", "Download", event)
            for i in range(n)
            for event in [install_event(f"{prefix}-{i}")]
        ]
        await self.store.outbox.queue_postbacks(rows, self.clock())
        return [row.id for row in rows]

    async def postback(self, postback_id: str) -> dict[str, Any]:
        """The postback's fields with its `attempt_log`, as plain values."""
        found = await self.store.outbox.get_postback(postback_id)
        assert found is not None
        return asdict(found.postback) | {"attempt_log": [asdict(a) for a in found.attempts]}

    async def until_due(self, postback_id: str) -> float:
        """Move the clock to when the postback is next due; answers the wait."""
        wait = float((await self.postback(postback_id))["next_attempt_at"]) - self.clock()
        self.clock.advance(wait)
        return wait


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path, fake: FakeTikTok, *, timeout: float = 2.0, db: str | None = None
) -> AsyncIterator[Rig]:
    """A worker on a fresh store: `db` (the backend under test's), else a SQLite file."""
    clock = FakeClock()
    settings = make_settings(tmp_path, tiktok_api_url=fake.base_url)
    store = await open_store(db or settings.db)
    integration, _ = validate_integration(DEMO_INTEGRATION)
    for app_key, pixel in (("demo", DEMO_PIXEL), ("other", OTHER_PIXEL)):
        await store.configs.put_app(app_key, validate_app(DEMO_APP), START)
        config = integration | {"pixel_code": pixel}
        await store.configs.put_integration(app_key, PARTNER, config, f"token-{app_key}", START)
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            worker = OutboxWorker(store, http, clock, settings, rand=random.Random(6))
            try:
                yield Rig(store, worker, clock, fake)
            finally:
                await worker.stop()
    finally:
        await store.close()


def event_ids(events: list[dict[str, Any]]) -> list[str]:
    return [str(e["event_id"]) for e in events]


# --- grouping ---------------------------------------------------------------------------------
