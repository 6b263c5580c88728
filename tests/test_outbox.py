"""The outbox worker against the fake TikTok: grouping, answer handling, retries, in-flight rows.

The worker runs in-process on a real store and a real HTTP client, with a clock the test moves:
`deliver_due()` sends what is due now and waits for the answers, so a retry schedule is checked
by moving the clock, never by sleeping through a backoff.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from app.__main__ import DEMO_INTEGRATION
from app.configs import validate_integration
from app.conversions import Install
from app.jobs import outbox as outbox_module
from app.postbacks import tiktok
from app.postbacks.postback import NewPostback
from app.store.records import ClickAlreadyClaimed
from app.store.sqlite import SqliteStore
from app.touches import Touch, TouchRecord
from app.vocabulary import PARTNER
from tests.aio import run_async
from tests.fakes.tiktok_api import FakeTikTok
from tests.outbox_rig import (
    DEMO_PIXEL,
    HOUR,
    OTHER_PIXEL,
    START,
    event_ids,
    install_event,
    rig,
)
from tests.records import make_install


@pytest.mark.both_backends
def test_due_events_of_one_pixel_share_one_request(
    tmp_path: Path, fake_tiktok: FakeTikTok, backend_db: str
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, fake_tiktok, db=backend_db) as r:
            demo = await r.queue(3, "demo", "d")
            other = await r.queue(2, "other", "o")
            assert await r.worker.deliver_due() == 5
            by_pixel = {q.body["event_source_id"]: q for q in fake_tiktok.requests}
            assert sorted(by_pixel) == sorted([DEMO_PIXEL, OTHER_PIXEL])
            assert event_ids(by_pixel[DEMO_PIXEL].body["data"]) == ["d-0", "d-1", "d-2"]
            assert event_ids(by_pixel[OTHER_PIXEL].body["data"]) == ["o-0", "o-1"]
            assert by_pixel[DEMO_PIXEL].headers["access-token"] == "token-demo"
            assert by_pixel[OTHER_PIXEL].headers["access-token"] == "token-other"
            for postback_id in demo + other:
                found = await r.postback(postback_id)
                assert found["state"] == "sent"
                assert found["sent_at"] == START
            # Nothing is due any more: a second round sends nothing.
            assert await r.worker.deliver_due() == 0
            assert len(fake_tiktok.requests) == 2
            assert fake_tiktok.violations == []

    run_async(scenario())


@pytest.mark.both_backends
def test_1500_due_postbacks_go_in_two_requests(
    tmp_path: Path, fake_tiktok: FakeTikTok, backend_db: str
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, fake_tiktok, db=backend_db) as r:
            ids = await r.queue(1500)
            assert await r.worker.deliver_due() == 1500
            sizes = [len(q.body["data"]) for q in fake_tiktok.requests]
            assert sizes == [1000, 500]
            assert fake_tiktok.violations == []
            assert sorted(event_ids(fake_tiktok.events())) == sorted(
                f"inst-{i}" for i in range(1500)
            )
            assert (await r.postback(ids[-1]))["attempt_log"][0]["batch_size"] == 500
            assert await r.store.outbox.postback_states() == {"sent": 1500}

    run_async(scenario())


# --- answers ----------------------------------------------------------------------------------


@pytest.mark.both_backends
def test_rate_limited_three_times_then_delivered_once(
    tmp_path: Path, fake_tiktok: FakeTikTok, backend_db: str
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, fake_tiktok, db=backend_db) as r:
            fake_tiktok.script(code=40100, message="Too many requests", times=3)
            [postback_id] = await r.queue()
            waits = []
            for _ in range(3):
                assert await r.worker.deliver_due() == 1
                assert (await r.postback(postback_id))["state"] == "retrying"
                # Not due yet: a round before the backoff ends sends nothing.
                r.clock.advance(0.25)
                assert await r.worker.deliver_due() == 0
                waits.append(await r.until_due(postback_id) + 0.25)
            assert await r.worker.deliver_due() == 1

            found = await r.postback(postback_id)
            assert found["state"] == "sent"
            assert found["attempts"] == 4
            log = found["attempt_log"]
            assert [a["code"] for a in log] == [40100, 40100, 40100, 0]
            assert [a["message"] for a in log[:3]] == ["Too many requests"] * 3
            assert [a["state"] for a in log] == ["retrying", "retrying", "retrying", "sent"]
            assert all(a["http_status"] == 200 and a["request_id"] for a in log)
            # Exponential backoff with equal jitter: 1 s doubling, each wait in its upper half.
            for wait, nominal in zip(waits, (1.0, 2.0, 4.0), strict=True):
                assert nominal / 2 <= wait <= nominal
            assert event_ids(fake_tiktok.events()) == ["inst-0"]
            assert len(fake_tiktok.requests) == 4

    run_async(scenario())


@pytest.mark.both_backends
def test_an_outage_loses_nothing(tmp_path: Path, fake_tiktok: FakeTikTok, backend_db: str) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, fake_tiktok, db=backend_db) as r:
            fake_tiktok.script(http_status=503, times=None)
            first = await r.queue(20, prefix="early")
            for _ in range(6):
                await r.worker.deliver_due()
                await r.until_due(first[0])
            # More installs arrive while TikTok is still down.
            later = await r.queue(5, prefix="late")
            await r.worker.deliver_due()
            states = await r.store.outbox.postback_states()
            assert states == {"retrying": 25}
            assert fake_tiktok.events() == []
            last = (await r.postback(first[0]))["attempt_log"][-1]
            assert last["http_status"] == 503
            assert "503" in last["message"]

            fake_tiktok.clear_script()
            r.clock.advance(HOUR)
            assert await r.worker.deliver_due() == 25
            delivered = event_ids(fake_tiktok.events())
            assert sorted(delivered) == sorted(
                [f"early-{i}" for i in range(20)] + [f"late-{i}" for i in range(5)]
            )
            # Once each, and together: rows that failed together were retried together.
            assert len(fake_tiktok.requests[-1].body["data"]) == 25
            assert await r.store.outbox.postback_states() == {"sent": 25}
            assert len(later) == 5

    run_async(scenario())


def test_a_parameter_error_fails_with_tiktoks_message_and_is_not_retried(
    tmp_path: Path, fake_tiktok: FakeTikTok
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, fake_tiktok) as r:
            fake_tiktok.script(code=40002, message="Invalid value for event_source_id", times=1)
            [postback_id] = await r.queue()
            assert await r.worker.deliver_due() == 1
            found = await r.postback(postback_id)
            assert found["state"] == "failed"
            assert found["last_code"] == 40002
            assert found["last_message"] == "Invalid value for event_source_id"
            r.clock.advance(48 * HOUR)
            assert await r.worker.deliver_due() == 0
            assert len(fake_tiktok.requests) == 1

    run_async(scenario())


def test_a_request_hanging_past_the_timeout_is_retried(
    tmp_path: Path, fake_tiktok: FakeTikTok
) -> None:
    async def scenario() -> None:
        # The client gives up after 0.3 s; the fake answers the first request only after 3 s.
        async with rig(tmp_path, fake_tiktok, timeout=0.3) as r:
            fake_tiktok.script(hang_seconds=3, times=1)
            [postback_id] = await r.queue()
            await r.worker.deliver_due()
            found = await r.postback(postback_id)
            assert found["state"] == "retrying"
            assert found["last_message"].startswith("timeout")
            assert found["last_http_status"] is None
            await r.until_due(postback_id)
            await r.worker.deliver_due()
            assert (await r.postback(postback_id))["state"] == "sent"
            # The hung request may still land later: same event_id, same content, so TikTok
            # drops it. Every delivered copy is identical.
            copies = [e for e in fake_tiktok.events() if e["event_id"] == "inst-0"]
            assert copies and all(c == copies[0] for c in copies)

    run_async(scenario())


@pytest.mark.both_backends
def test_retries_end_dead_after_24_hours_and_the_owner_can_revive(
    tmp_path: Path, fake_tiktok: FakeTikTok, backend_db: str
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, fake_tiktok, db=backend_db) as r:
            fake_tiktok.script(code=50000, message="Internal error", times=None)
            [postback_id] = await r.queue()
            while (await r.postback(postback_id))["state"] != "dead":
                assert await r.worker.deliver_due() == 1
                await r.until_due(postback_id)
            log = (await r.postback(postback_id))["attempt_log"]
            assert log[-1]["state"] == "dead"
            # The last attempt is at the end of the 24 hours, never beyond.
            assert log[-1]["time"] == START + 24 * HOUR
            gaps = [b["time"] - a["time"] for a, b in zip(log, log[1:], strict=False)]
            assert max(gaps) <= HOUR
            r.clock.advance(HOUR)
            assert await r.worker.deliver_due() == 0

            # The owner retries it: a fresh run, starting again at about a second.
            assert await r.store.outbox.retry_postback(postback_id, r.clock()) == "dead"
            assert await r.worker.deliver_due() == 1
            assert (await r.postback(postback_id))["state"] == "retrying"
            assert await r.until_due(postback_id) <= 1.0
            fake_tiktok.clear_script()
            assert await r.worker.deliver_due() == 1
            assert (await r.postback(postback_id))["state"] == "sent"
            assert await r.store.outbox.retry_postback(postback_id, r.clock()) == "sent"
            assert await r.worker.deliver_due() == 0

    run_async(scenario())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"access_token": None}, "access_token is not set", id="no token"),
        pytest.param({"enabled": False}, "integration is disabled", id="disabled"),
        pytest.param({"pixel_code": None}, "pixel_code is not set", id="no pixel"),
    ],
)
def test_a_broken_integration_fails_its_postbacks_until_the_owner_fixes_it(
    tmp_path: Path, fake_tiktok: FakeTikTok, change: dict[str, Any], message: str
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, fake_tiktok) as r:
            good, _ = validate_integration(DEMO_INTEGRATION)
            broken = good | {k: v for k, v in change.items() if k != "access_token"}
            if "access_token" in change:
                # The config API keeps a stored token when none is sent: only an integration
                # made again has none.
                await r.store.configs.delete_integration("demo", PARTNER)
            await r.store.configs.put_integration("demo", PARTNER, broken, None, START)
            ids = await r.queue(2)
            assert await r.worker.deliver_due() == 2
            for postback_id in ids:
                found = await r.postback(postback_id)
                assert found["state"] == "failed"
                assert message in found["last_message"]
            assert fake_tiktok.requests == []

            await r.store.configs.put_integration("demo", PARTNER, good, "token-demo", r.clock())
            assert await r.store.outbox.retry_failed_postbacks("demo", r.clock()) == 2
            assert await r.worker.deliver_due() == 2
            assert sorted(event_ids(fake_tiktok.events())) == ["inst-0", "inst-1"]

    run_async(scenario())


# --- in flight --------------------------------------------------------------------------------


@pytest.mark.both_backends
def test_rows_in_flight_are_not_sent_again_and_what_queues_meanwhile_goes_next(
    tmp_path: Path, fake_tiktok: FakeTikTok, backend_db: str
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, fake_tiktok, db=backend_db) as r:
            fake_tiktok.script(hang_seconds=0.5, times=1)
            await r.queue(1, prefix="first")
            slow = asyncio.create_task(r.worker.deliver_due())
            await asyncio.to_thread(_wait_for_script_taken, fake_tiktok)
            await r.queue(2, prefix="second")
            # The demo pixel has a request in flight: nothing of it goes now, not even again.
            assert await r.worker.deliver_due() == 0
            # The slow round, once answered, sends what queued meanwhile in one more request.
            assert await slow == 3
            assert [event_ids(q.body["data"]) for q in fake_tiktok.requests] == [
                ["first-0"],
                ["second-0", "second-1"],
            ]

    run_async(scenario())


def _wait_for_script_taken(fake: FakeTikTok) -> None:
    """Until the fake has taken its scripted answer, i.e. the request is hanging there."""
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not fake._state.script:  # the script entry is consumed when the request arrives
            return
        time.sleep(0.01)
    raise AssertionError("the request never reached the fake")


def test_the_running_worker_sends_when_nudged_not_at_its_next_poll(
    tmp_path: Path, fake_tiktok: FakeTikTok, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An hour between polls: anything delivered below came from a nudge.
    monkeypatch.setattr(outbox_module, "IDLE_POLL_SECONDS", HOUR)

    async def scenario() -> None:
        async with rig(tmp_path, fake_tiktok) as r:
            fake_tiktok.script(hang_seconds=0.3, times=1)
            r.worker.start()
            await r.queue(1, prefix="a")
            r.worker.nudge()
            await asyncio.to_thread(_wait_for_script_taken, fake_tiktok)
            # Queued while the first request is on its way: the end of that request sends it.
            await r.queue(1, prefix="b")
            r.worker.nudge()
            events = await asyncio.to_thread(fake_tiktok.wait_for_events, 2, 10.0)
            assert event_ids(events) == ["a-0", "b-0"]

    run_async(scenario())


# --- the outbox row and its install -----------------------------------------------------------


def test_an_install_that_is_not_stored_leaves_no_postback(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await SqliteStore.open(str(tmp_path / "g.db"))
        try:
            click = Touch(id="c1", kind="click", app_key="demo", time=START, pid=PARTNER)
            await store.touches.record_touch(TouchRecord(click))

            def install(instance: str) -> Install:
                return make_install(
                    instance,
                    time=START + 60,
                    received_at=START + 60,
                    status="attributed",
                    media_source="tiktokglobal_int",
                )

            def postback(instance: str) -> NewPostback:
                return NewPostback(
                    "demo", PARTNER, "install", f"i-{instance}", "Download", install_event("x")
                )

            _, created = await store.installs.record_install(
                install("a"), claim_click="c1", postbacks=[postback("a")], now=START + 60
            )
            assert created
            with pytest.raises(ClickAlreadyClaimed):
                await store.installs.record_install(
                    install("b"), claim_click="c1", postbacks=[postback("b")], now=START + 61
                )
            assert [p.state for p in await store.outbox.postbacks_for("i-a")] == ["pending"]
            assert await store.outbox.postbacks_for("i-b") == []
        finally:
            await store.close()

    run_async(scenario())


# --- the retry schedule (pure) ----------------------------------------------------------------


def test_after_attempt_schedule() -> None:
    def half(attempt: int, since: float, now: float) -> tuple[str, float]:
        return tiktok.after_attempt(
            "retry", attempt=attempt, since=since, now=now, rand=lambda: 0.5
        )

    assert tiktok.after_attempt("sent", attempt=3, since=0, now=50, rand=random.random) == (
        "sent",
        50,
    )
    assert tiktok.after_attempt("failed", attempt=1, since=0, now=5, rand=random.random) == (
        "failed",
        5,
    )
    assert half(1, START, START) == ("retrying", START + 0.75)
    assert half(3, START, START + 10) == ("retrying", START + 13)
    # Near the end of the 24 hours the last retry is pulled in to the end, not past it.
    end = START + 24 * HOUR
    assert half(30, START, end - 60) == ("retrying", end)
    assert half(31, START, end) == ("dead", end)
