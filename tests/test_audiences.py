"""Audiences (tiktok-ads.md section 3) against the fake Marketing API: what TikTok ends up
holding, what was sent to get there, and what never may be.

Installs are written through the store in bulk (one group commit for hundreds), and expected
hashes are computed here from the raw IDs by the spec's rule, not by the code under test.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from app.audiences import (
    FAILED,
    SYNCED,
    TOO_SMALL,
    WAITING,
    SyncCounts,
    difference,
    member_hash,
    plan_sync,
    validate_rule,
)
from app.conversions import Install
from app.fields import FieldError
from app.jobs.audiences import SyncOutcome, sync_audiences
from app.server import create_app
from app.store.backends import open_store
from app.store.columns import INSTALL_COLUMNS
from app.store.interfaces import Store
from app.store.postgres import PostgresStore
from app.store.postgres.connections import Conn
from app.store.postgres.rows import insert_sql as pg_insert_sql
from app.store.postgres.rows import to_row as pg_to_row
from app.store.sqlite import SqliteStore
from app.store.sqlite.rows import insert_sql, to_row
from app.tiktok_ads.client import MarketingClient
from tests.aio import run_async
from tests.console_kit import ADMIN, LIMITED, add_users_and_other_app, log_in
from tests.fakes.tiktok_marketing import (  # noqa: F401  (pytest finds fixtures by name)
    FakeTikTokMarketing,
    ReceivedRequest,
    fake_marketing_fixture,
    fake_marketing_server_fixture,
)
from tests.fixtures import make_settings, run_cli
from tests.openapi_check import answers_as_documented
from tests.records import make_install

ADV = "7002238017842757633"
TOKEN = "token-1"
DAY = 86_400.0
NOW = 1_790_000_000.0
SOURCE = "tiktokglobal_int"
RULE: dict[str, Any] = {
    "advertiser_id": ADV,
    "platform": "ios",
    "installed_within_days": 30,
    "media_source": SOURCE,
    "did_event": [],
    "did_not_event": [],
    "event_within_days": 30,
}
ZERO = "00000000-0000-0000-0000-000000000000"


def expected_hash(raw: str) -> str:
    """The spec's normalisation, written out: trim, lower-case, hyphens kept, MD5 hex."""
    return hashlib.md5(raw.strip().lower().encode()).hexdigest()


def ios_install(n: str, *, time: float = NOW - DAY, **fields: Any) -> Install:
    values: dict[str, Any] = {
        "platform": "ios",
        "time": time,
        "received_at": time,
        "idfa": str(uuid.uuid4()),
        "media_source": SOURCE,
        "status": "attributed",
    }
    return make_install(n, **(values | fields))


INSERT_INSTALL = insert_sql("installs", INSTALL_COLUMNS)
PG_INSERT_INSTALL = pg_insert_sql("installs", INSTALL_COLUMNS)


async def record(store: Store, installs: Sequence[Install]) -> None:
    """Installs as the store writes them (its own row mapping), all in one transaction:
    thousands of `record_install` calls would cost seconds of this module's budget."""
    if isinstance(store, PostgresStore):
        pg_rows = [pg_to_row(i, INSTALL_COLUMNS) for i in installs]

        async def write(conn: Conn) -> None:
            async with conn.cursor() as cursor:
                await cursor.executemany(PG_INSERT_INSTALL, pg_rows)

        await store.database.write(write)
        return
    assert isinstance(store, SqliteStore)
    rows = [to_row(i, INSTALL_COLUMNS) for i in installs]
    await store.connections.write(lambda db: db.conn.executemany(INSERT_INSTALL, rows))


async def connect(store: Store) -> None:
    await store.configs.put_app("demo", {"name": "Demo", "destinations": {}}, NOW)
    await store.configs.put_integration(
        "demo", "tiktok_ads", {"advertiser_ids": [ADV], "audiences_enabled": True}, TOKEN, NOW
    )
    await store.audiences.put_audience("demo", "buyers", validate_rule(RULE), NOW, reset=False)


Scenario = Callable[[Store, Callable[..., Awaitable[list[SyncOutcome]]]], Awaitable[None]]


def run(
    tmp_path: Path,
    fake: FakeTikTokMarketing,
    scenario: Scenario,
    *,
    timeout: float = 5.0,
    db: str | None = None,
) -> None:
    """`db`: the backend's database (a URL or a file); a new SQLite file by default."""
    settings = make_settings(tmp_path, **({"db": db} if db else {}))

    async def go() -> None:
        store = await open_store(settings.db)
        try:
            async with httpx.AsyncClient(timeout=timeout) as http:

                async def sync(now: float = NOW, **kwargs: Any) -> list[SyncOutcome]:
                    def api(app_key: str, token: str) -> MarketingClient:
                        # One attempt: a failure ends the sync, as a crash or restart would.
                        return MarketingClient(http, fake.base_url, token, max_attempts=1)

                    return await sync_audiences(store, settings, api, now=now, **kwargs)

                await connect(store)
                await scenario(store, sync)
        finally:
            await store.close()

    run_async(go())


def dmp(fake: FakeTikTokMarketing, endpoint: str) -> list[ReceivedRequest]:
    return [r for r in fake.requests if r.path.endswith(f"/dmp/custom_audience/{endpoint}/")]


def accepted(requests: list[ReceivedRequest]) -> list[ReceivedRequest]:
    return [r for r in requests if r.answer is not None and r.answer.get("code") == 0]


def uploaded(fake: FakeTikTokMarketing, request: ReceivedRequest) -> list[str]:
    """The hashes of the files a create or update named."""
    assert request.body is not None
    files = {
        r.answer["data"]["file_path"]: r.body["hashes"]
        for r in accepted(dmp(fake, "file/upload"))
        if r.answer is not None and r.body is not None
    }
    return [h for path in request.body["file_paths"] for h in files[path]]


# -- the rule and the hashes (pure) ------------------------------------------------------------


def test_ids_are_trimmed_lower_cased_and_md5_hashed_and_zeros_are_no_member() -> None:
    raw = "  6D92078A-8246-4BA4-AE5B-76104861E7DC \n"
    assert member_hash(raw) == expected_hash(raw)
    assert member_hash(raw) == hashlib.md5(b"6d92078a-8246-4ba4-ae5b-76104861e7dc").hexdigest()
    assert member_hash(ZERO) is None
    assert member_hash(" " + ZERO.upper()) is None
    assert member_hash("") is None and member_hash(None) is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"platform": "web"}, "platform"),
        ({"advertiser_id": "adv-1"}, "advertiser_id"),
        ({"installed_within_days": 0}, "installed_within_days"),
        ({"event_within_days": "30"}, "event_within_days"),
        ({"did_event": ["af_purchase", 7]}, "did_event[1]"),
        ({"did_not_event": ["af_purchase"], "did_event": ["af_purchase"]}, "did_not_event"),
        ({"media_source": None}, "media_source"),
    ],
)
def test_a_bad_rule_names_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(FieldError) as caught:
        validate_rule(RULE | change)
    assert caught.value.field == field


def test_the_plan_respects_tiktoks_floor_of_1000() -> None:
    assert difference({"a", "b"}, {"b", "c"}) == ({"a"}, {"c"})
    assert plan_sync(False, SyncCounts(999, 999, 0)).state == WAITING
    assert plan_sync(False, SyncCounts(1000, 1000, 0)).create
    shrinking = plan_sync(True, SyncCounts(999, 5, 300))
    assert (shrinking.append, shrinking.remove, shrinking.state) == (True, False, TOO_SMALL)
    steady = plan_sync(True, SyncCounts(1000, 0, 200))
    assert (steady.append, steady.remove, steady.state) == (False, True, SYNCED)


# -- syncing against the fake -------------------------------------------------------------------


def test_under_1000_members_nothing_is_created_and_the_audience_waits(
    tmp_path: Path, fake_marketing: FakeTikTokMarketing
) -> None:
    fake_marketing.add_advertiser(ADV, token=TOKEN)

    async def scenario(store: Store, sync: Callable[..., Awaitable[list[SyncOutcome]]]) -> None:
        await record(store, [ios_install(f"n{i}") for i in range(999)])
        [outcome] = await sync()
        assert (outcome.state, outcome.wanted, outcome.error) == (WAITING, 999, None)
        audience = await store.audiences.get_audience("demo", "buyers")
        assert audience is not None
        assert (audience.state, audience.member_count, audience.tiktok_audience_id) == (
            WAITING,
            999,
            None,
        )

    run(tmp_path, fake_marketing, scenario)
    assert [r for r in fake_marketing.requests if "/dmp/" in r.path] == []
    assert fake_marketing.audiences == []


@pytest.mark.both_backends
def test_a_create_then_only_the_difference_and_never_the_excluded(
    tmp_path: Path, fake_marketing: FakeTikTokMarketing, backend_db: str
) -> None:
    fake_marketing.add_advertiser(ADV, token=TOKEN)
    # IDs as an SDK might send them: upper case, padded; the hash is of the normalised ID.
    stay = [ios_install(f"s{i}", idfa=f" {uuid.uuid4()} ".upper()) for i in range(1170)]
    # Still in the 30-day window at the first sync, out of it a day later.
    leaving = [ios_install(f"l{i}", time=NOW - 29.5 * DAY) for i in range(30)]
    never = [
        ios_install("ldu", is_limited_data_use=True),
        ios_install("zero", idfa=ZERO),
        ios_install("zero-upper", idfa=ZERO.upper()),
    ]
    joining = [ios_install(f"j{i}", time=NOW + DAY / 2) for i in range(50)]

    def hashes(installs: list[Install]) -> set[str]:
        return {expected_hash(i.idfa or "") for i in installs}

    async def scenario(store: Store, sync: Callable[..., Awaitable[list[SyncOutcome]]]) -> None:
        await record(store, [*stay, *leaving, *never])
        seen: list[tuple[Any, ...]] = []
        [first] = await sync(progress=lambda *call: seen.append(call))
        assert (first.state, first.wanted, first.created) == (SYNCED, 1200, True)
        # The command line's bar: the installs read, then the members sent out of how many.
        assert seen[0] == ("buyers", "installs read", 1202, None)  # the zero IDs, read
        assert seen[-1] == ("buyers", "sent", 1200, 1200)
        await record(store, joining)
        [second] = await sync(now=NOW + DAY)
        assert (second.state, second.appended, second.removed) == (SYNCED, 50, 30)
        [third] = await sync(now=NOW + DAY)
        assert (third.appended, third.removed) == (0, 0)
        audience = await store.audiences.get_audience("demo", "buyers")
        assert audience is not None
        assert (audience.member_count, audience.sent_count) == (1220, 1220)

    run(tmp_path, fake_marketing, scenario, db=backend_db)
    [create] = accepted(dmp(fake_marketing, "create"))
    assert create.body is not None and create.body["calculate_type"] == "IDFA_MD5"
    assert set(uploaded(fake_marketing, create)) == hashes(stay + leaving)
    append, remove = accepted(dmp(fake_marketing, "update"))
    assert append.body is not None and remove.body is not None
    assert (append.body["action"], sorted(uploaded(fake_marketing, append))) == (
        "APPEND",
        sorted(hashes(joining)),
    )
    assert (remove.body["action"], sorted(uploaded(fake_marketing, remove))) == (
        "REMOVE",
        sorted(hashes(leaving)),
    )
    [audience] = fake_marketing.audiences
    assert audience.members == hashes(stay + joining)
    assert audience.actions == ["CREATE", "APPEND", "REMOVE"]
    sent = {
        h for r in accepted(dmp(fake_marketing, "file/upload")) for h in (r.body or {})["hashes"]
    }
    assert not sent & {expected_hash(ZERO), expected_hash(never[0].idfa or "")}
    assert fake_marketing.violations == []


def test_an_update_that_would_leave_under_1000_is_not_sent(
    tmp_path: Path, fake_marketing: FakeTikTokMarketing
) -> None:
    fake_marketing.add_advertiser(ADV, token=TOKEN)
    stay = [ios_install(f"s{i}") for i in range(900)]
    leaving = [ios_install(f"l{i}", time=NOW - 29.5 * DAY) for i in range(150)]

    async def scenario(store: Store, sync: Callable[..., Awaitable[list[SyncOutcome]]]) -> None:
        await record(store, [*stay, *leaving])
        await sync()
        [later] = await sync(now=NOW + DAY)
        assert (later.state, later.wanted, later.removed) == (TOO_SMALL, 900, 0)

    run(tmp_path, fake_marketing, scenario)
    assert [r.body["action"] for r in dmp(fake_marketing, "update") if r.body] == []
    assert len(fake_marketing.audiences[0].members) == 1050
    assert fake_marketing.violations == []


@pytest.mark.parametrize("failure", ["error", "hang"])
def test_a_sync_cut_off_half_way_resumes_sending_each_member_once(
    tmp_path: Path, fake_marketing: FakeTikTokMarketing, failure: str
) -> None:
    """The create takes the first file (1,000 members); the update appending the other 200
    fails or hangs. The next sync sends exactly those 200."""
    fake_marketing.add_advertiser(ADV, token=TOKEN)
    installs = [ios_install(f"n{i}") for i in range(1200)]
    if failure == "hang":
        # Never answered while the test runs (reset at the next test ends the hang).
        fake_marketing.script(hang_seconds=60, path="custom_audience/update")
    else:
        fake_marketing.script(code=50000, path="custom_audience/update")

    async def scenario(store: Store, sync: Callable[..., Awaitable[list[SyncOutcome]]]) -> None:
        await record(store, installs)
        [cut] = await sync(file_lines=1000)
        assert (cut.state, cut.created, cut.appended) == (FAILED, True, 1000)
        assert cut.error
        audience = await store.audiences.get_audience("demo", "buyers")
        assert audience is not None and (audience.state, audience.sent_count) == (FAILED, 1000)
        [resumed] = await sync(file_lines=1000)
        assert (resumed.state, resumed.created, resumed.appended) == (SYNCED, False, 200)

    run(tmp_path, fake_marketing, scenario, timeout=0.5)
    sent = [
        h
        for r in accepted(dmp(fake_marketing, "create") + dmp(fake_marketing, "update"))
        for h in uploaded(fake_marketing, r)
    ]
    assert sorted(sent) == sorted({expected_hash(i.idfa or "") for i in installs})
    [audience] = fake_marketing.audiences
    assert len(audience.members) == 1200
    assert fake_marketing.violations == []


def test_a_refused_token_stops_audiences_until_the_owner_connects_again(
    tmp_path: Path, fake_marketing: FakeTikTokMarketing
) -> None:
    fake_marketing.add_advertiser(ADV, token=TOKEN)
    fake_marketing.script(code=40105, path="file/upload")

    async def scenario(store: Store, sync: Callable[..., Awaitable[list[SyncOutcome]]]) -> None:
        await record(store, [ios_install(f"n{i}") for i in range(1000)])
        [refused] = await sync()
        assert refused.state == FAILED and "TikTok refused the token" in (refused.error or "")
        state = await store.tiktok_ads.connection_state("demo")
        assert state is not None and state.state == "needs_reauth"
        [later] = await sync()
        assert later.error == "the TikTok Ads connection needs authorising again"

    run(tmp_path, fake_marketing, scenario)
    assert len(fake_marketing.requests) == 1
    assert fake_marketing.audiences == []


def test_without_a_connection_the_sync_fails_with_the_reason(
    tmp_path: Path, fake_marketing: FakeTikTokMarketing
) -> None:
    async def scenario(store: Store, sync: Callable[..., Awaitable[list[SyncOutcome]]]) -> None:
        await store.configs.delete_integration("demo", "tiktok_ads")
        [outcome] = await sync()
        assert (outcome.state, outcome.error) == (FAILED, "TikTok Ads is not connected")

    run(tmp_path, fake_marketing, scenario)
    assert fake_marketing.requests == []


# -- the owner API and the command line -------------------------------------------------------


async def connect_only(db: str, config: dict[str, Any]) -> None:
    store = await SqliteStore.open(db)
    try:
        await store.configs.put_integration("demo", "tiktok_ads", config, TOKEN, NOW)
    finally:
        await store.close()


def test_the_owner_api_keeps_lists_and_deletes_audiences(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)

    async def seed() -> str:
        store = await SqliteStore.open(settings.db)
        try:
            await store.configs.put_app("demo", {"name": "Demo", "destinations": {}}, NOW)
            return await store.tokens.create_token("tests", NOW)
        finally:
            await store.close()

    admin = {"Authorization": f"Bearer {run_async(seed())}"}
    base = "/api/v1/apps/demo/audiences"
    one = "/api/v1/apps/{app_key}/audiences/{name}"
    with TestClient(create_app(settings, run_jobs=False), base_url="http://gangway.test") as http:
        document = http.get("/openapi.json").json()

        def documented(template: str, method: str, answer: Any) -> Any:
            answers_as_documented(document, template, method, answer)
            return answer

        bad = http.put(f"{base}/buyers", json=RULE | {"platform": "web"}, headers=admin)
        assert (bad.status_code, bad.json()["field"]) == (400, "platform")
        documented(one, "put", bad)
        assert http.put(f"{base}/buyers", json=RULE).status_code == 401
        saved = documented(one, "put", http.put(f"{base}/buyers", json=RULE, headers=admin))
        assert saved.status_code == 200, saved.text
        assert saved.json()["state"] == "pending" and saved.json()["calculate_type"] == "IDFA_MD5"
        listed = documented(base.replace("demo", "{app_key}"), "get", http.get(base, headers=admin))
        assert [
            (a["name"], a["member_count"], a["tiktok_audience_id"])
            for a in listed.json()["audiences"]
        ] == [("buyers", 0, None)]
        got = documented(one, "get", http.get(f"{base}/buyers", headers=admin))
        assert got.json()["media_source"] == SOURCE
        assert http.get("/api/v1/apps/nope/audiences", headers=admin).status_code == 404
        connection = {"advertiser_ids": ["7000000000000000001"], "audiences_enabled": True}
        run_async(connect_only(settings.db, connection))
        stranger = http.put(f"{base}/buyers", json=RULE, headers=admin)
        assert (stranger.status_code, stranger.json()["field"]) == (400, "advertiser_id")
        assert (
            documented(one, "delete", http.delete(f"{base}/buyers", headers=admin)).status_code
            == 204
        )
        assert http.get(f"{base}/buyers", headers=admin).status_code == 404
        assert (
            documented(one, "delete", http.delete(f"{base}/buyers", headers=admin)).status_code
            == 404
        )


def test_the_command_line_syncs_and_says_what_it_did(
    tmp_path: Path,
    fake_marketing: FakeTikTokMarketing,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_marketing.add_advertiser(ADV, token=TOKEN)
    db = str(tmp_path / "cli.db")

    async def seed() -> None:
        store = await SqliteStore.open(db)
        try:
            await connect(store)
            await record(store, [ios_install(f"n{i}", time=1e9) for i in range(3)])
        finally:
            await store.close()

    run_async(seed())
    monkeypatch.setenv("GANGWAY_TIKTOK_API_URL", fake_marketing.base_url)
    monkeypatch.setenv("GANGWAY_SECRET_KEY", "test-secret")
    assert run_cli(["audiences", "sync", "--app", "demo", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "demo/buyers: waiting, 0 member(s)" in out
    assert "1 audience(s) synced, 0 failed" in out


def test_the_console_lists_audiences_with_why_they_wait(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)

    async def seed() -> None:
        store = await SqliteStore.open(settings.db)
        try:
            await store.configs.put_app("demo", {"name": "Demo", "destinations": {}}, NOW)
            rule = validate_rule(RULE)
            for app_key, name in (("demo", "buyers"), ("other", "secret-whales")):
                saved = await store.audiences.put_audience(app_key, name, rule, NOW, reset=False)
                await store.audiences.finish_sync(
                    saved.id, state=WAITING, member_count=999, error=None, now=NOW
                )
        finally:
            await store.close()

    add_users_and_other_app(settings.db)
    run_async(seed())
    with TestClient(create_app(settings, run_jobs=False), base_url="http://gangway.test") as http:
        log_in(http, ADMIN)
        page = http.get("/admin/audiences").text
        assert "buyers" in page and "secret-whales" in page
        assert "999 member(s): TikTok shows an audience only from 1,000" in page
        http.cookies.clear()
        log_in(http, LIMITED)
        page = http.get("/admin/audiences").text
        assert "buyers" in page and "secret-whales" not in page
