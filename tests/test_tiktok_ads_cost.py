"""The TikTok Ads cost pull against the fake Marketing API and a real SQLite file (issue #12):
windows of at most 30 days, every page, cost to the cent per campaign-day, idempotent re-pulls,
40067 halving, 40100 retries, 40105 stopping the pulls, the Access-Token on every request."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from app.configs import validate_app
from app.jobs.cost_pull import CostPuller, PullRefused
from app.reports.cost import TIKTOK_API, UPLOAD, CostEntry, effective_cost
from app.sealing import token_sealer
from app.store.backends import open_store
from app.store.sqlite import SqliteStore
from app.tiktok_ads import cost as plan
from app.tiktok_ads.client import RateLimiter
from app.tiktok_ads.connection import NEEDS_REAUTH, PARTNER, PullRecord, validate_connection
from tests.aio import run_async
from tests.fakes.tiktok_marketing import (  # noqa: F401  (pytest finds fixtures by name)
    FakeTikTokMarketing,
    fake_marketing_fixture,
    fake_marketing_server_fixture,
)
from tests.fixtures import FakeClock, make_settings

ADV = "7002238017842757633"
# 20:00 UTC on 30 November is noon in Los Angeles: the advertiser's today is the 30th.
NOW = dt.datetime(2026, 11, 30, 20, 0, tzinfo=dt.UTC).timestamp()
TODAY = dt.date(2026, 11, 30)
T = TypeVar("T")


class Sleeps:
    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


class Rig:
    """A store with the demo app connected to the fake, and a puller over it."""

    def __init__(self, tmp_path: Path, fake: FakeTikTokMarketing) -> None:
        self.fake = fake
        self.settings = make_settings(tmp_path, tiktok_api_url=fake.base_url)
        self.clock = FakeClock(NOW)
        self.sleeps = Sleeps()
        # Sealed as the server and the command line keep tokens.
        self.store = SqliteStore.open_sync(self.settings.db, sealer=token_sealer(self.settings))

    def connect(self, **cost: Any) -> None:
        config, token = validate_connection(
            {"advertiser_ids": [ADV], "access_token": "token-1", "cost": cost}
        )

        async def put() -> None:
            await self.store.configs.put_app("demo", validate_app({"name": "Demo"}), NOW)
            await self.store.configs.put_integration("demo", PARTNER, config, token, NOW)

        run_async(put())

    def run(self, use: Callable[[CostPuller], Awaitable[T]]) -> T:
        async def go() -> T:
            async with httpx.AsyncClient(timeout=2.0) as http:
                puller = CostPuller(
                    self.store, http, self.clock, self.settings, scheduled=False,
                    sleep=self.sleeps, rand=random.Random(7),
                    # The limit itself is tested with a clock of its own (client tests).
                    limiters=lambda _app: RateLimiter(10_000),
                )  # fmt: skip
                return await use(puller)

        return run_async(go())

    def pull(self, days: int | None = None) -> PullRecord:
        return self.run(lambda p: p.pull("demo", days=days, trigger="cli"))

    def stored(self, start: dt.date, end: dt.date) -> list[CostEntry]:
        return run_async(self.store.cost.cost_between("demo", start, end))


def by_campaign_day(entries: list[CostEntry]) -> dict[tuple[str, dt.date], Decimal]:
    out: dict[tuple[str, dt.date], Decimal] = {}
    for e in entries:
        out[(e.campaign_id, e.date)] = out.get((e.campaign_id, e.date), Decimal(0)) + Decimal(
            e.cost
        )
    return out


@pytest.fixture()
def rig(tmp_path: Path, fake_marketing: FakeTikTokMarketing) -> Iterator[Rig]:
    fake_marketing.add_advertiser(ADV, display_timezone="America/Los_Angeles")
    # 40 ads in 2 countries: 2,400 rows a 30-day window, three pages of 1,000. Every 7th ad is
    # deleted (its spend still counts), every 13th cell shows "-".
    fake_marketing.seed(
        ADV, ads=40, start=dt.date(2026, 9, 20), days=80, campaigns=3, countries=("US", "DE"),
        deleted_every=7,
    )  # fmt: skip
    made = Rig(tmp_path, fake_marketing)
    made.connect()
    yield made
    made.store.close_sync()


def window_of(request: Any) -> tuple[dt.date, dt.date]:
    return (
        dt.date.fromisoformat(request.query["start_date"]),
        dt.date.fromisoformat(request.query["end_date"]),
    )


def test_sixty_day_backfill_stores_tiktoks_spend_to_the_cent_and_repulls_change_nothing(
    rig: Rig,
) -> None:
    record = rig.pull(days=60)

    start = TODAY - dt.timedelta(days=59)
    assert record.error is None
    assert (record.start_date, record.end_date) == (start, TODAY)
    reports = rig.fake.report_requests()
    windows = sorted({window_of(r) for r in reports})
    assert windows == [(start, dt.date(2026, 10, 31)), (dt.date(2026, 11, 1), TODAY)]
    assert all((end - begin).days + 1 <= 30 for begin, end in windows)
    # Every page of every window was read, once.
    assert sorted((window_of(r), r.query["page"]) for r in reports) == sorted(
        (w, str(p)) for w in windows for p in (1, 2, 3)
    )
    expected = {
        key: spend
        for key, spend in rig.fake.spend_by_campaign_day(ADV).items()
        if start <= key[1] <= TODAY
    }
    stored = rig.stored(start - dt.timedelta(days=5), TODAY)
    assert by_campaign_day(stored) == expected
    assert sum(expected.values()) == Decimal(record.spend)
    assert {(e.source, e.media_source) for e in stored} == {(TIKTOK_API, "tiktokglobal_int")}
    assert {e.country for e in stored} == {"US", "DE"}
    assert record.rows == len(stored) == 40 * 60 * 2

    again = rig.pull(days=60)

    assert again.error is None and again.changed == 0 and again.rows == record.rows
    assert sorted(map(repr, rig.stored(start, TODAY))) == sorted(map(repr, stored))
    # The contract held on every request: none lacked the token, none broke a rule.
    assert rig.fake.violations == []
    assert all(s.headers.get("access-token") == "token-1" for s in rig.fake.seen)


def test_a_revised_day_replaces_its_rows_and_a_vanished_row_goes(rig: Rig) -> None:
    rig.fake.add_ad(ADV, "555", campaign_id="1800000000000555")
    rig.fake.set_stats("555", TODAY, "12.34", country="US")
    rig.pull(days=3)
    assert by_campaign_day(rig.stored(TODAY, TODAY))[("1800000000000555", TODAY)] == Decimal(
        "12.34"
    )

    rig.fake.set_stats("555", TODAY, "20.00", country="US")
    rig.fake.set_stats("555", TODAY - dt.timedelta(days=1), None, country="US")
    revised = rig.pull(days=3)

    assert revised.changed >= 2
    stored = by_campaign_day(rig.stored(TODAY - dt.timedelta(days=2), TODAY))
    assert stored[("1800000000000555", TODAY)] == Decimal("20.00")
    # "-" is zero spend, kept as a row so an upload of that campaign-day stays superseded.
    assert stored[("1800000000000555", TODAY - dt.timedelta(days=1))] == Decimal(0)


def test_query_too_large_halves_the_window_and_still_completes(rig: Rig) -> None:
    rig.fake.script(code=40067, above_days=10, times=None)

    record = rig.pull(days=30)

    assert record.error is None
    answered = [r for r in rig.fake.report_requests() if r.code == 0]
    days = {(end - start).days + 1 for start, end in map(window_of, answered)}
    assert max(days) <= 10
    covered = sorted({window_of(r) for r in answered})
    assert covered[0][0] == TODAY - dt.timedelta(days=29) and covered[-1][1] == TODAY
    start = TODAY - dt.timedelta(days=29)
    expected = {
        k: v for k, v in rig.fake.spend_by_campaign_day(ADV).items() if start <= k[1] <= TODAY
    }
    assert by_campaign_day(rig.stored(start, TODAY)) == expected


def test_a_single_day_too_large_fails_the_pull_with_tiktoks_message(rig: Rig) -> None:
    rig.fake.script(code=40067, message="Too much data", times=None)
    record = rig.pull(days=2)
    assert record.error is not None and "Too much data" in record.error
    assert record.finished_at is not None


def test_rate_limits_are_retried_after_a_backoff(rig: Rig) -> None:
    rig.fake.script(code=40100, times=2, path="report/")
    record = rig.pull(days=3)
    assert record.error is None
    assert [r.code for r in rig.fake.report_requests()][:3] == [40100, 40100, 0]
    assert len(rig.sleeps.asked) == 2


def test_a_refused_token_marks_the_connection_and_stops_the_pulls(rig: Rig) -> None:
    rig.fake.script(code=40105, path="report/", message="Access token is revoked")

    record = rig.pull(days=3)

    assert record.error is not None and "revoked" in record.error
    state = run_async(rig.store.tiktok_ads.connection_state("demo"))
    assert state is not None and state.state == NEEDS_REAUTH
    sent = len(rig.fake.seen)
    with pytest.raises(PullRefused, match="re-authorising"):
        rig.pull(days=3)
    # The schedule skips it too: no request reached TikTok.
    rig.clock.now += 100 * 3600
    assert rig.run(lambda p: p.pull_due()) == 0
    assert len(rig.fake.seen) == sent
    # The log shows the failed pull.
    [logged] = run_async(rig.store.tiktok_ads.recent_pulls("demo"))
    assert logged.error == record.error


def test_the_schedule_pulls_when_due_only(rig: Rig) -> None:
    rig.connect(backfill_days=2, pull_every_hours=12)
    assert rig.run(lambda p: p.pull_due()) == 1
    rig.clock.now += 11 * 3600
    assert rig.run(lambda p: p.pull_due()) == 0
    rig.clock.now += 2 * 3600
    assert rig.run(lambda p: p.pull_due()) == 1
    pulls = run_async(rig.store.tiktok_ads.recent_pulls("demo"))
    assert [p.trigger for p in pulls] == ["schedule", "schedule"]


def test_campaign_filter_keeps_only_those_campaigns(rig: Rig) -> None:
    campaign = rig.fake.seed(ADV, ads=1, start=TODAY, days=1, id_base=1_950_000_000_000_000)[
        0
    ].campaign_id
    rig.connect(campaign_ids=[campaign])
    rig.pull(days=1)
    assert {e.campaign_id for e in rig.stored(TODAY, TODAY)} == {campaign}


def upload_by_hand(rig: Rig, campaign_id: str) -> None:
    """Today's cost of one campaign, uploaded (the rows a pull of that campaign-day supersedes)."""
    upload = CostEntry(
        app_key="demo", date=TODAY, source=UPLOAD, media_source="tiktokglobal_int",
        campaign="by hand", campaign_id=campaign_id, adset="", adset_id="", ad="", ad_id="",
        country="", cost="999", currency="USD", amount=999_000_000, report_currency="USD",
    )  # fmt: skip
    run_async(rig.store.cost.put_cost([upload], NOW))


def test_uploaded_rows_of_a_pulled_campaign_day_are_superseded(rig: Rig) -> None:
    campaign = rig.fake.spend_by_campaign_day(ADV)
    some_campaign = next(iter(campaign))[0]
    upload_by_hand(rig, some_campaign)

    record = rig.pull(days=1)

    assert record.superseded == 1
    counted = effective_cost(rig.stored(TODAY, TODAY))
    assert all(e.source == TIKTOK_API for e in counted)


def test_an_upload_superseded_under_two_advertisers_is_counted_once(rig: Rig) -> None:
    other = "7002238017842757999"
    rig.fake.add_advertiser(other, display_timezone="America/Los_Angeles")
    rig.fake.seed(other, ads=4, start=dt.date(2026, 9, 20), days=80, campaigns=1)
    config, token = validate_connection({"advertiser_ids": [ADV, other], "access_token": "token-1"})
    run_async(rig.store.configs.put_integration("demo", PARTNER, config, token, NOW))
    some_campaign = next(iter(rig.fake.spend_by_campaign_day(ADV)))[0]
    upload_by_hand(rig, some_campaign)

    record = rig.pull(days=1)

    assert record.error is None
    assert record.superseded == 1


def test_the_command_line_pulls_and_says_what_it_did(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from app.__main__ import main

    # One process writes the file at a time: the command line is its own process in life.
    rig.store.close_sync()
    monkeypatch.setenv("GANGWAY_DB", rig.settings.db)
    monkeypatch.setenv("GANGWAY_SECRET_KEY", rig.settings.secret_key.reveal())
    monkeypatch.setenv("GANGWAY_TIKTOK_API_URL", rig.fake.base_url)
    with ThreadPoolExecutor(1) as pool:
        code = pool.submit(main, ["cost", "pull", "--app", "demo", "--days", "2"]).result()
        refused = pool.submit(main, ["cost", "pull", "--app", "nope"]).result()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "demo: pulled " in out and " rows (" in out and "spend " in out
    assert refused == 1 and "nope: not pulled" in out
    rig.store = SqliteStore.open_sync(rig.settings.db, sealer=token_sealer(rig.settings))
    [record] = run_async(rig.store.tiktok_ads.recent_pulls("demo"))
    assert record.trigger == "cli" and record.error is None
    assert record.start_date is not None and record.end_date is not None
    assert (record.end_date - record.start_date).days == 1
    assert f"{record.start_date}..{record.end_date}: {record.rows} rows" in out


@pytest.mark.both_backends
def test_a_pull_stores_the_spend_supersedes_the_upload_and_a_repull_changes_nothing(
    tmp_path: Path, fake_marketing: FakeTikTokMarketing, backend_db: str
) -> None:
    """On each backend: one event loop, so the store is opened inside it (the rig's store
    outlives a loop, which only SQLite allows)."""
    fake_marketing.add_advertiser(ADV, display_timezone="America/Los_Angeles")
    fake_marketing.seed(ADV, ads=6, start=TODAY - dt.timedelta(days=4), days=5, campaigns=2)
    settings = make_settings(tmp_path, tiktok_api_url=fake_marketing.base_url, db=backend_db)
    campaign = next(iter(fake_marketing.spend_by_campaign_day(ADV)))[0]
    upload = CostEntry(
        app_key="demo", date=TODAY, source=UPLOAD, media_source="tiktokglobal_int",
        campaign="by hand", campaign_id=campaign, adset="", adset_id="", ad="", ad_id="",
        country="", cost="999", currency="USD", amount=999_000_000, report_currency="USD",
    )  # fmt: skip
    config, token = validate_connection({"advertiser_ids": [ADV], "access_token": "token-1"})

    async def go() -> tuple[PullRecord, PullRecord, list[CostEntry], list[PullRecord]]:
        store = await open_store(settings.db, sealer=token_sealer(settings))
        try:
            await store.configs.put_app("demo", validate_app({"name": "Demo"}), NOW)
            await store.configs.put_integration("demo", PARTNER, config, token, NOW)
            await store.cost.put_cost([upload], NOW)
            clock = FakeClock(NOW)
            async with httpx.AsyncClient(timeout=2.0) as http:
                puller = CostPuller(
                    store, http, clock, settings, scheduled=False, sleep=Sleeps(),
                    rand=random.Random(7), limiters=lambda _app: RateLimiter(10_000),
                )  # fmt: skip
                first = await puller.pull("demo", days=3)
                clock.now += 60
                again = await puller.pull("demo", days=3)
            stored = await store.cost.cost_between("demo", TODAY - dt.timedelta(days=4), TODAY)
            return first, again, stored, await store.tiktok_ads.recent_pulls("demo")
        finally:
            await store.close()

    first, again, stored, pulls = run_async(go())
    start = TODAY - dt.timedelta(days=2)
    expected = {k: v for k, v in fake_marketing.spend_by_campaign_day(ADV).items() if start <= k[1]}
    pulled = [e for e in stored if e.source == TIKTOK_API]
    assert first.error is None and first.superseded == 1 and first.rows == len(pulled)
    assert by_campaign_day(pulled) == expected
    assert sum(expected.values()) == Decimal(first.spend)
    assert all(e.source == TIKTOK_API for e in effective_cost(stored))
    assert (again.error, again.changed, again.rows) == (None, 0, first.rows)
    assert [p.id for p in pulls] == [again.id, first.id]
    assert fake_marketing.violations == []


# -- pure planning -------------------------------------------------------------------------------


def test_windows_cover_every_day_once_and_halve_down_to_one_day() -> None:
    windows = plan.plan_windows(TODAY, 61)
    assert [w.days for w in windows] == [30, 30, 1]
    days = [w.start + dt.timedelta(days=i) for w in windows for i in range(w.days)]
    assert days == [TODAY - dt.timedelta(days=60 - i) for i in range(61)]
    first, second = windows[0].halves()
    assert (first.days, second.days, first.start, second.end) == (
        15,
        15,
        windows[0].start,
        windows[0].end,
    )
    odd = plan.Window(TODAY, TODAY + dt.timedelta(days=2))
    assert [h.days for h in odd.halves()] == [2, 1]
    with pytest.raises(ValueError):
        plan.Window(TODAY, TODAY).halves()
