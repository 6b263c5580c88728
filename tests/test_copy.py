"""`python -m app copy`: a SQLite installation moved into PostgreSQL, every table with its ids,
resumable after an interruption, verified by row counts; served from PostgreSQL, the owner
sees the same install receipts and postbacks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import pytest
from starlette.testclient import TestClient

from app.__main__ import main
from app.audiences import APPEND, SyncCounts, validate_rule
from app.reports.cost import TIKTOK_API, CostEntry, CostScope
from app.server import create_app
from app.store.backends import open_store
from app.store.copy import TABLES, Interrupted, copy_database
from app.store.interfaces import Store
from app.store.records import UserRecord
from app.tiktok_ads.connection import AdvertiserInfo, ConnectionState, PullRecord
from tests.aio import run_async
from tests.fixtures import OTHER_IP, PHONE_IP, START, make_settings, open_gangway

COST_CSV = (
    "date,media_source,campaign,campaign_id,adset,adset_id,ad,ad_id,country,cost,currency\n"
    "2026-11-21,tiktokweb_int,summer,1700,,,,,,20,EUR\n"
)
RATES_CSV = "date,currency,rate_to_report_currency\n2026-11-21,EUR,1.10\n"
Installation = tuple[str, dict[str, str], dict[str, str], list[str], list[str]]


def make_installation(tmp_path: Path) -> Installation:
    """A SQLite installation with traffic: answers (file, admin headers, SDK headers, install
    ids, postback ids)."""
    gen = open_gangway(tmp_path)
    gw = next(gen)
    installs = []
    for n in range(3):
        _, referrer = gw.android_click(ip=f"198.51.100.{n + 20}")
        gw.impression(ip=PHONE_IP)
        gw.later(60)
        installs.append(gw.installed(f"phone-{n}", via=OTHER_IP, install_referrer=referrer))
    gw.impression(ip="192.0.2.1")
    organic = gw.installed("phone-organic", via="192.0.2.99")
    event = gw.http.post(
        "/api/v1/events",
        json={"app_key": "demo", "app_instance_id": "phone-0", "event_name": "af_purchase"}
        | {"event_id": "ev-1", "event_value": {"af_revenue": "4.99", "af_currency": "USD"}},
        headers=gw.sdk,
    )
    assert event.status_code == 202, event.text
    ids = [a["install_id"] for a in installs] + [organic["install_id"]]
    postbacks = [p["id"] for i in ids for p in gw.record(i)["postbacks"]]
    # Cost and rates, and an erased user: the report tables have rows too.
    csv = {"Content-Type": "text/csv"}
    for path, body in (("/api/v1/cost/rates", RATES_CSV), ("/api/v1/cost", COST_CSV)):
        answer = gw.http.post(f"{path}?app_key=demo", content=body, headers=gw.admin | csv)
        assert answer.status_code == 200 and answer.json()["changed"] == 1, answer.text
    erase = {"app_key": "demo", "app_instance_id": "phone-organic"}
    answer = gw.http.post("/api/v1/privacy/erase", json=erase, headers=gw.admin)
    assert answer.status_code == 200, answer.text
    admin, sdk, db = gw.admin, gw.sdk, gw.db
    gen.close()

    async def console_rows() -> None:
        store = await open_store(db)
        try:
            await store.users.create_user("ops@example.com", "hash", "viewer", ["demo"], START)
            await store.users.create_session("session-1", "ops@example.com", "csrf", START)
            await store.users.record_login_failure("ops@example.com", PHONE_IP, START)
            await ads_and_audience_rows(store)
        finally:
            await store.close()

    run_async(console_rows())
    return db, admin, sdk, ids, postbacks


AUDIENCE = {"advertiser_id": "7002", "platform": "android", "media_source": "any"}
PULLED_DAY = date(2026, 11, 21)


async def ads_and_audience_rows(store: Store) -> None:
    """The TikTok Ads connection (state, a pull, a pulled cost row, a used OAuth state) and an
    audience with one member sent and one not."""
    scope = CostScope("demo", TIKTOK_API, "adv-1", PULLED_DAY, PULLED_DAY)
    row = CostEntry("demo", PULLED_DAY, TIKTOK_API, "tiktokglobal_int", "c", "1800", "", "", "",
                    "ad-1", "", "3", "USD", 3_000_000, "USD")  # fmt: skip
    await store.cost.replace_cost(scope, [row], START)
    info = AdvertiserInfo("adv-1", "Shop", "USD", "UTC")
    await store.tiktok_ads.set_connection_state(
        ConnectionState("demo", "connected", None, (info,), START)
    )
    await store.tiktok_ads.record_pull(
        PullRecord("pull-1", "demo", "cli", START, START + 1, PULLED_DAY, PULLED_DAY, rows=1)
    )
    assert await store.tiktok_ads.use_oauth_state("nonce-1", START, 3600)
    audience = await store.audiences.put_audience(
        "demo", "buyers", validate_rule(AUDIENCE), START, reset=False
    )
    run = await store.audiences.start_sync(audience.id, START, 60)
    assert run is not None
    await store.audiences.stage_members(audience.id, run, ["h-sent", "h-unsent"])
    await store.audiences.confirm_sent(audience.id, APPEND, ["h-sent"], tiktok_audience_id="77")
    await store.audiences.finish_sync(
        audience.id, state="synced", member_count=2, error=None, now=START
    )


async def ads_and_audience_views(db: str) -> tuple[object, ...]:
    """What the copied TikTok Ads and audience rows read as, and whether the OAuth state is
    still used and the sent member still sent (a new sync would remove it, not append it)."""
    store = await open_store(db)
    try:
        audience = await store.audiences.get_audience("demo", "buyers")
        assert audience is not None
        run = await store.audiences.start_sync(audience.id, START + 120, 60)
        assert run is not None
        counts = await store.audiences.staged(audience.id, run)
        return (
            audience,
            counts,
            await store.tiktok_ads.connection_state("demo"),
            await store.tiktok_ads.recent_pulls("demo"),
            await store.tiktok_ads.use_oauth_state("nonce-1", START + 1, 3600),
            await store.cost.cost_between("demo", PULLED_DAY, PULLED_DAY),
        )
    finally:
        await store.close()


def owner_views(
    client: TestClient, admin: dict[str, str], installs: list[str], postbacks: list[str]
) -> list[object]:
    views: list[object] = []
    day = {"app_key": "demo", "from": "2026-11-21", "to": "2026-11-21"}
    for path in (
        [f"/api/v1/installs/{i}" for i in installs]
        + [f"/api/v1/postbacks/{p}" for p in postbacks]
        + [f"/api/v1/reports/overview?{urlencode(day | {'group_by': 'media_source'})}"]
    ):
        answer = client.get(path, headers=admin)
        assert answer.status_code == 200, answer.text
        views.append(answer.json())
    return views


async def _user(db: str) -> UserRecord | None:
    store = await open_store(db)
    try:
        return await store.users.get_user("ops@example.com")
    finally:
        await store.close()


def test_copy_resumes_after_an_interruption_and_serves_the_same_receipts(
    tmp_path: Path, pg_database: str
) -> None:
    db, admin, sdk, installs, postbacks = make_installation(tmp_path)
    assert len(postbacks) >= 3
    settings = make_settings(tmp_path)
    with TestClient(create_app(replace(settings, db=db), run_jobs=False)) as c:
        before = owner_views(c, admin, installs, postbacks)

    with pytest.raises(Interrupted):
        run_async(copy_database(db, pg_database, batch=2, stop_after_batches=4))
    seen: list[tuple[str, int, int]] = []
    results = run_async(copy_database(db, pg_database, batch=2, progress=lambda *a: seen.append(a)))
    assert [r.table for r in results] == list(TABLES)
    assert all(r.ok for r in results), results
    assert sum(r.source_rows for r in results) > 15
    # The second run went on from where the first stopped: nothing was copied twice.
    assert sum(r.copied for r in results) == sum(r.source_rows for r in results)
    assert ("clicks", 3, 3) in seen
    copied = {r.table: r.source_rows for r in results}
    for table in ("users", "sessions", "login_failures", "cost", "cost_rates", "rollups",
                  "rollups_by_source", "privacy_erasures", "tiktok_ads_state",
                  "tiktok_ads_pulls", "oauth_states", "audiences", "audience_members"):  # fmt: skip
        assert copied[table] > 0, table
    # The TikTok Ads connection and the audience read the same (the PostgreSQL side first:
    # reading takes a sync lease).
    views = run_async(ads_and_audience_views(pg_database))
    assert views == run_async(ads_and_audience_views(db))
    assert views[1] == SyncCounts(0, 0, 1) and views[4] is False

    with psycopg.connect(pg_database) as conn:
        claims = conn.execute("SELECT COUNT(*) FROM click_claims").fetchone()
        views = conn.execute("SELECT COUNT(*) FROM page_views").fetchone()
    assert claims == (3,) and views is not None

    pg_settings = replace(settings, db=pg_database)
    with TestClient(create_app(pg_settings, run_jobs=False)) as c:
        # Receipts, postbacks and the day's overview (rollups, cost, rates) read the same.
        assert owner_views(c, admin, installs, postbacks) == before
        user = run_async(_user(pg_database))
        assert user is not None and (user.role, user.apps) == ("viewer", ("demo",))
        # The copied installation goes on: a new event of a copied install, with its postback.
        event = {"app_key": "demo", "app_instance_id": "phone-1", "event_name": "af_purchase"}
        fresh = c.post("/api/v1/events", json=event | {"event_id": "ev-2"}, headers=sdk)
        assert fresh.status_code == 202, fresh.text


def test_the_copy_command_says_what_it_did(
    tmp_path: Path, pg_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db, *_ = make_installation(tmp_path)

    def command(*argv: str) -> int:
        # In process, on a thread of its own (the command runs its own event loop): a
        # subprocess would cost a second of start-up per run.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(main, list(argv)).result()

    assert command("copy", "--from", db, "--to", pg_database) == 0
    out = capsys.readouterr().out
    assert "every table has the same row count" in out
    assert "installs" in out and "rollups" in out and "ok" in out and "DIFFERENT" not in out
    # Run again: nothing left to copy, the counts still agree.
    assert command("copy", "--from", db, "--to", pg_database) == 0
    assert "done: 0 rows copied" in capsys.readouterr().out
    assert command("copy", "--from", pg_database, "--to", db) == 2
