"""Issue #16 in the outbox: one invalid event no longer fails its whole batch, and a dry-run
integration builds its postbacks without sending them.

TikTok refuses a whole request with a 4xxxx code when one of its events is invalid. The worker
halves a refused batch until the valid events are delivered and each invalid one was refused
alone, within a bound on requests.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from app.jobs import outbox as outbox_module
from app.postbacks.postback import NewPostback
from app.vocabulary import PARTNER
from tests.aio import run_async
from tests.fakes.tiktok_api import FakeTikTok
from tests.outbox_rig import event_ids, install_event, rig

# The year 5138: a time the event endpoint now refuses, written below it (an old row, a bug).
BAD_TIME = 99_999_999_999


def batch_with_bad(n: int, bad: set[int]) -> list[NewPostback]:
    rows = []
    for i in range(n):
        payload = install_event(f"ev-{i}")
        if i in bad:
            payload["event_time"] = BAD_TIME
        rows.append(NewPostback("demo", PARTNER, "install", f"ev-{i}", "Download", payload))
    return rows


def test_one_bad_event_of_six_fails_alone_and_five_are_delivered(
    tmp_path: Path, fake_tiktok: FakeTikTok, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, fake_tiktok) as r:
            rows = batch_with_bad(6, {3})
            await r.store.outbox.queue_postbacks(rows, r.clock())
            assert await r.worker.deliver_due() == 6

            assert sorted(event_ids(fake_tiktok.events())) == [f"ev-{i}" for i in (0, 1, 2, 4, 5)]
            states = {row.subject_id: (await r.postback(row.id))["state"] for row in rows}
            assert states == {f"ev-{i}": "failed" if i == 3 else "sent" for i in range(6)}
            bad = await r.postback(rows[3].id)
            # TikTok's own code and message, from the request it was refused in alone.
            assert bad["last_code"] == 40002
            assert "event_time" in bad["last_message"]
            assert bad["attempt_log"][-1]["batch_size"] == 1
            # A failed postback needs its owner: a warning, not an info line.
            refusals = [r for r in caplog.records if "outcome=failed" in r.getMessage()]
            assert refusals and {r.levelno for r in refusals} == {logging.WARNING}
            # Halving: the refused request, then each level's two halves.
            sent = len(fake_tiktok.requests) + len(fake_tiktok.violations)
            assert sent <= 2 * math.log2(6) + 1
            # "Retry all failed" sends the bad one alone: it fails again, nothing else is sent.
            assert await r.store.outbox.retry_failed_postbacks("demo", r.clock()) == 1
            assert await r.worker.deliver_due() == 1
            assert len(fake_tiktok.events()) == 5
            assert await r.store.outbox.postback_states() == {"sent": 5, "failed": 1}

    run_async(scenario())


def test_narrowing_a_refused_batch_down_is_bounded(tmp_path: Path, fake_tiktok: FakeTikTok) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, fake_tiktok) as r:
            outbox_module.MAX_REQUESTS_PER_DELIVERY = 8
            try:
                # Every event bad: a refusal that halving cannot resolve within the cap.
                rows = batch_with_bad(64, set(range(64)))
                await r.store.outbox.queue_postbacks(rows, r.clock())
                assert await r.worker.deliver_due() == 64
            finally:
                outbox_module.MAX_REQUESTS_PER_DELIVERY = 64
            assert len(fake_tiktok.violations) == 8
            assert fake_tiktok.events() == []
            assert await r.store.outbox.postback_states() == {"failed": 64}
            last = await r.postback(rows[-1].id)
            assert "not narrowed down" in last["last_message"]

    run_async(scenario())


def test_a_batch_refused_without_an_event_code_is_not_split(
    tmp_path: Path, fake_tiktok: FakeTikTok
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, fake_tiktok) as r:
            # A proxy's 404 is about the request, not its events: halving would repeat it.
            fake_tiktok.script(http_status=404, times=None)
            await r.queue(6)
            assert await r.worker.deliver_due() == 6
            assert len(fake_tiktok.requests) == 1
            assert await r.store.outbox.postback_states() == {"failed": 6}

    run_async(scenario())


def test_a_dry_run_integration_keeps_its_postbacks_and_sends_nothing(
    tmp_path: Path, fake_tiktok: FakeTikTok
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, fake_tiktok) as r:
            integration = await r.store.configs.get_integration("demo", PARTNER)
            assert integration is not None
            await r.store.configs.put_integration(
                "demo", PARTNER, integration.config | {"dry_run": True}, None, r.clock()
            )
            ids = await r.queue(3)
            assert await r.worker.deliver_due() == 3
            assert fake_tiktok.requests == [] and fake_tiktok.violations == []
            assert await r.store.outbox.postback_states() == {"dry_run": 3}
            found = await r.postback(ids[0])
            assert found["sent_at"] is None
            [attempt] = found["attempt_log"]
            assert attempt["state"] == "dry_run"
            assert attempt["pixel_code"] == integration.config["pixel_code"]
            # Final: nothing is due, a later round sends nothing.
            r.clock.advance(86_400)
            assert await r.worker.deliver_due() == 0

    run_async(scenario())
