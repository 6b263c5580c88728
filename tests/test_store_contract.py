"""What every store backend promises, through `app.store.interfaces` only.

Each test takes the backend as a fixture (`store_opener`, one parameter per backend): a second
backend is "implement the Protocols and pass this file". Nothing here names a table, a column
or a connection; backend-specific promises (SQLite's group commit, its query plans) live in the
backend's own tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from app.attribution import TimeRange
from app.audiences import APPEND, REMOVE, SyncCounts, member_query, validate_rule
from app.conversions import Install
from app.postbacks.postback import NewPostback, PostbackAttempt
from app.reports.cost import PULLED, UPLOAD, CostEntry, Rate, effective_cost
from app.reports.privacy import EraseKey, RetainItem
from app.reports.rollups import Increment, RollupFold, RollupKey
from app.sealing import TokenSealer
from app.store.interfaces import Store
from app.store.postgres import PostgresStore
from app.store.records import CandidateQuery, ClickAlreadyClaimed
from app.store.sqlite import SqliteStore
from app.touches import Touch, TouchRecord
from app.vocabulary import DEFAULT_UNIFIED_PIDS
from tests.aio import run_async
from tests.records import make_event, make_install

T0 = 1_790_000_000.0
IP = "203.0.113.7"
DEMO_APP = {"name": "Demo", "destinations": {"steam": {"app_id": "440", "store_url": "x"}}}

StoreOpener = Callable[..., Awaitable[Store]]
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def store_opener(request: pytest.FixtureRequest, tmp_path: Path) -> StoreOpener:
    """Opens a fresh, empty store of the backend under test (the same one each call), with the
    `TokenSealer` given, if any: a new SQLite file, or a new database (from a migrated
    template) on the session's throwaway PostgreSQL server."""
    if request.param == "postgresql":
        url = str(request.getfixturevalue("pg_database"))

        async def open_postgres(sealer: TokenSealer | None = None) -> Store:
            return await PostgresStore.open(url, sealer=sealer)

        return open_postgres
    path = str(tmp_path / "contract.db")

    async def open_sqlite(sealer: TokenSealer | None = None) -> Store:
        return await SqliteStore.open(path, sealer=sealer)

    return open_sqlite


def with_store(opener: StoreOpener, scenario: Callable[[Store], Awaitable[None]]) -> None:
    async def run() -> None:
        store = await opener()
        try:
            await scenario(store)
        finally:
            await store.close()

    run_async(run())


def touch(touch_id: str, kind: str = "click", **fields: object) -> Touch:
    values: dict[str, object] = {"app_key": "demo", "time": T0, "ip": IP, "pid": "tiktokweb_int"}
    values |= fields
    return Touch(id=touch_id, kind=kind, **values)  # type: ignore[arg-type]


def postback(subject: str, app_key: str = "demo", **fields: object) -> NewPostback:
    return NewPostback(
        app_key, "tiktokweb_int", "install", subject, "Download", {"event_id": subject}, **fields
    )  # type: ignore[arg-type]


# -- configuration -----------------------------------------------------------------------------


def test_an_app_keeps_its_sdk_key_and_creation_time_across_updates(
    store_opener: StoreOpener,
) -> None:
    async def scenario(store: Store) -> None:
        first = await store.configs.put_app("demo", DEMO_APP, T0)
        again = await store.configs.put_app("demo", DEMO_APP | {"name": "Renamed"}, T0 + 5)
        assert again.sdk_key == first.sdk_key and len(first.sdk_key) >= 32
        assert (again.name, again.created_at, again.updated_at) == ("Renamed", T0, T0 + 5)
        assert await store.configs.get_app("demo") == again
        await store.configs.put_app("beta", DEMO_APP, T0)
        assert [a.app_key for a in await store.configs.list_apps()] == ["beta", "demo"]
        found = await store.configs.app_for_destination("steam", "440")
        assert found is not None and found.app_key == "beta"  # the first by app_key
        assert await store.configs.app_for_destination("steam", "441") is None
        assert await store.configs.delete_app("beta")
        assert not await store.configs.delete_app("beta")
        assert await store.configs.get_app("beta") is None

    with_store(store_opener, scenario)


def test_an_app_is_found_by_its_sdk_key(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        demo = await store.configs.put_app("demo", DEMO_APP, T0)
        beta = await store.configs.put_app("beta", DEMO_APP, T0)
        assert await store.configs.app_by_sdk_key(demo.sdk_key) == demo
        found = await store.configs.app_by_sdk_key(beta.sdk_key)
        assert found is not None and found.app_key == "beta"
        assert await store.configs.app_by_sdk_key("not-a-key") is None
        assert await store.configs.app_by_sdk_key("") is None
        await store.configs.delete_app("demo")
        assert await store.configs.app_by_sdk_key(demo.sdk_key) is None

    with_store(store_opener, scenario)


def test_an_integration_keeps_its_token_unless_a_new_one_is_sent(
    store_opener: StoreOpener,
) -> None:
    async def scenario(store: Store) -> None:
        await store.configs.put_app("demo", DEMO_APP, T0)
        saved = await store.configs.put_integration(
            "demo", "tiktokweb_int", {"enabled": True}, "tok-1", T0
        )
        assert saved.access_token == "tok-1"
        kept = await store.configs.put_integration(
            "demo", "tiktokweb_int", {"enabled": False}, None, T0 + 1
        )
        assert kept.access_token == "tok-1" and kept.config == {"enabled": False}
        assert await store.configs.get_integration("demo", "tiktokweb_int") == kept
        await store.configs.put_integration("demo", "tiktokweb_int", {}, "tok-2", T0 + 2)
        found = await store.configs.get_integration("demo", "tiktokweb_int")
        assert found is not None and found.access_token == "tok-2"
        assert await store.configs.delete_integration("demo", "tiktokweb_int")
        assert await store.configs.get_integration("demo", "tiktokweb_int") is None
        assert not await store.configs.delete_integration("demo", "tiktokweb_int")

    with_store(store_opener, scenario)


def test_access_tokens_are_sealed_at_rest_and_answered_clear(store_opener: StoreOpener) -> None:
    async def token(sealer: TokenSealer | None) -> str | None:
        store = await store_opener(sealer)
        try:
            found = await store.configs.get_integration("demo", "tiktokweb_int")
            assert found is not None
            return found.access_token
        finally:
            await store.close()

    async def run() -> None:
        # Written without a key (as by a version before sealing): kept in clear.
        store = await store_opener()
        await store.configs.put_app("demo", DEMO_APP, T0)
        await store.configs.put_integration("demo", "tiktokweb_int", {}, "tok-clear", T0)
        await store.close()

        key1 = TokenSealer("key-1")
        store = await store_opener(key1)
        try:
            found = await store.configs.get_integration("demo", "tiktokweb_int")
            assert found is not None and found.access_token == "tok-clear"
            assert await store.configs.seal_tokens() == 1
            assert await store.configs.seal_tokens() == 0
            saved = await store.configs.put_integration(
                "demo", "tiktokweb_int", {"enabled": True}, "tok-2", T0 + 1
            )
            assert saved.access_token == "tok-2"
            kept = await store.configs.put_integration(
                "demo", "tiktokweb_int", {"enabled": False}, None, T0 + 2
            )
            assert kept.access_token == "tok-2"
        finally:
            await store.close()

        assert await token(key1) == "tok-2"
        # Sealed: no key, or another key, opens nothing.
        assert await token(None) is None
        assert await token(TokenSealer("key-2")) is None
        # Rotation: the new key with the old one beside it re-seals under the new key.
        store = await store_opener(TokenSealer("key-2", ["key-1"]))
        try:
            assert await store.configs.seal_tokens(rotate=True) == 1
        finally:
            await store.close()
        assert await token(TokenSealer("key-2")) == "tok-2"
        assert await token(key1) is None

    run_async(run())


def test_pages_are_kept_and_go_with_their_app(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        await store.configs.put_app("demo", DEMO_APP, T0)
        page = await store.configs.put_page("lp", {"app_key": "demo", "title": "Hi"}, T0)
        edited = await store.configs.put_page("lp", {"app_key": "demo", "title": "Ho"}, T0 + 9)
        assert (edited.created_at, edited.updated_at, edited.config["title"]) == (T0, T0 + 9, "Ho")
        assert page.slug == "lp" and await store.configs.get_page("lp") == edited
        assert [p.slug for p in await store.configs.list_pages()] == ["lp"]
        await store.configs.put_integration("demo", "tiktokweb_int", {}, "tok", T0)
        await store.configs.delete_app("demo")
        assert await store.configs.get_page("lp") is None
        assert await store.configs.get_integration("demo", "tiktokweb_int") is None

    with_store(store_opener, scenario)


def test_admin_tokens_are_known_only_by_their_value(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        token = await store.tokens.create_token("ci", T0)
        other = await store.tokens.create_token("ci", T0)
        assert token != other and len(token) >= 32
        assert await store.tokens.token_valid(token, T0 + 1)
        assert await store.tokens.token_valid(token, T0 + 2)  # a recent use writes nothing
        assert not await store.tokens.token_valid(token + "x", T0 + 1)

    with_store(store_opener, scenario)


# -- touches and candidates --------------------------------------------------------------------


def test_a_touch_reads_back_as_it_was_recorded(store_opener: StoreOpener) -> None:
    full = touch(
        "c-full",
        user_agent="Mozilla/5.0 (iPhone)",
        os_family="ios",
        os_version="17.4",
        device_model="iPhone",
        browser="Mobile Safari",
        params={"c": "summer", "af_ad_id": "42", "af_sub1": "E.C.P.x"},
        ttclid="E.C.P.x",
        original_url="https://example.com/lp?ttclid=E.C.P.x",
        referrer="https://www.tiktok.com/",
        pvid="pv-1",
        platform="ios",
        verdict="suspect",
        verdict_reasons=("burst_ip", "datacenter"),
        country="US",
        region="CA",
        gpc=True,
    )

    async def scenario(store: Store) -> None:
        assert await store.touches.record_touch(TouchRecord(full, page_slug="lp")) == "c-full"
        assert await store.candidates.attributed_touch("click", "c-full") == full
        view = touch("i-full", "impression", params={"c": "x"}, pvid="pv-9", original_url="u")
        await store.touches.record_touch(TouchRecord(view, page_slug="lp"))
        assert await store.candidates.attributed_touch("impression", "i-full") == view
        assert await store.candidates.attributed_touch("click", "nope") is None

    with_store(store_opener, scenario)


def test_a_page_view_is_one_impression_and_its_clicks_find_it(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        first = touch("i1", "impression", pvid="pv", original_url="https://lp/?c=a")
        again = touch("i2", "impression", pvid="pv", original_url="https://lp/?c=b")
        assert await store.touches.record_touch(TouchRecord(first, page_slug="demo")) == "i1"
        assert await store.touches.record_touch(TouchRecord(again, page_slug="demo")) == "i1"
        view = await store.touches.page_view("demo", "pv")
        assert view is not None
        assert (view.original_url, view.page_slug) == ("https://lp/?c=a", "demo")
        assert await store.touches.page_view("demo", "pv-unknown") is None
        assert await store.touches.page_view("other", "pv") is None

    with_store(store_opener, scenario)


def test_candidates_are_this_apps_touches_from_the_ip_latest_first(
    store_opener: StoreOpener,
) -> None:
    async def scenario(store: Store) -> None:
        for rec in (
            touch("c-old", time=T0 - 100),
            touch("c-mid", time=T0 - 50),
            touch("c-new", time=T0 - 10),
            touch("c-late", time=T0 + 10),  # after the range
            touch("c-ip", time=T0 - 20, ip="198.51.100.1"),
            touch("c-app", time=T0 - 20, app_key="other"),
            touch("i-1", "impression", time=T0 - 30, pvid="p1"),
            touch("i-far", "impression", time=T0 - 5000, pvid="p2"),
        ):
            await store.touches.record_touch(TouchRecord(rec))
        query = CandidateQuery("demo", IP, "c-old", TimeRange(T0 - 60, T0), TimeRange(T0 - 60, T0))
        found = await store.candidates.find_candidates(query)
        assert [c.id for c in found.clicks] == ["c-new", "c-mid"]
        assert [c.id for c in found.impressions] == ["i-1"]
        assert found.referrer_click is not None and found.referrer_click.id == "c-old"
        assert not found.clicks_capped and not found.impressions_capped

        capped = await store.candidates.find_candidates(
            replace(query, clicks=TimeRange(T0 - 200, T0), limit=2)
        )
        assert [c.id for c in capped.clicks] == ["c-new", "c-mid"] and capped.clicks_capped

        other_apps = await store.candidates.find_candidates(
            replace(query, referrer_click_id="c-app")
        )
        assert other_apps.referrer_click is None and other_apps.referrer_click_id == "c-app"
        no_ip = await store.candidates.find_candidates(replace(query, ip=None))
        assert no_ip.clicks == [] and no_ip.impressions == []

    with_store(store_opener, scenario)


# -- installs and events -----------------------------------------------------------------------


def test_an_install_is_stored_once_per_app_instance(store_opener: StoreOpener) -> None:
    install = make_install(
        "a1",
        status="attributed",
        media_source="tiktokglobal_int",
        idfa="6d92078a-8246-4ba4-ae5b-76104861e7dc",
        is_limited_data_use=True,
        receipt={"decision": "probabilistic_click", "checked": [1, 2]},
        answer={"media_source": "tiktokglobal_int", "campaign": "été"},
    )

    async def scenario(store: Store) -> None:
        saved, created = await store.installs.record_install(
            install, claim_click=None, postbacks=[postback("i-a1")], now=T0
        )
        assert created and saved == install
        assert await store.installs.get_install("i-a1") == install
        assert await store.installs.install_by_instance("demo", "a1") == install
        assert await store.installs.install_by_instance("other", "a1") is None
        twin = replace(install, id="i-twin", status="organic")
        saved, created = await store.installs.record_install(
            twin, claim_click=None, postbacks=[postback("i-twin")], now=T0
        )
        assert not created and saved == install
        assert await store.outbox.postbacks_for("i-twin") == []
        assert [p.subject_id for p in await store.outbox.postbacks_for("i-a1")] == ["i-a1"]

    with_store(store_opener, scenario)


def test_a_prior_install_is_the_devices_latest_and_names_the_first(
    store_opener: StoreOpener,
) -> None:
    async def scenario(store: Store) -> None:
        first = make_install("a1", time=T0, gaid="g-1")
        second = make_install("a2", time=T0 + 100, gaid="g-1", reinstall_of="i-a1")
        other = make_install("a3", time=T0 + 200, gaid="g-2", android_id="and-9")
        for install in (first, second, other):
            await store.installs.record_install(install, claim_click=None, now=T0)
        prior = await store.installs.prior_install("demo", {"gaid": "g-1"}, T0 - 1)
        assert prior is not None
        assert (prior.id, prior.time, prior.first_install_id) == ("i-a2", T0 + 100, "i-a1")
        by_any = await store.installs.prior_install(
            "demo", {"gaid": "g-1", "android_id": "and-9"}, T0 - 1
        )
        assert by_any is not None and by_any.id == "i-a3"
        itself = await store.installs.prior_install("demo", {"gaid": "g-1"}, T0 + 150)
        assert itself is None
        alone = await store.installs.prior_install("demo", {"gaid": "g-2"}, T0)
        assert alone is not None and alone.first_install_id == "i-a3"
        assert await store.installs.prior_install("other", {"gaid": "g-1"}, 0) is None

    with_store(store_opener, scenario)


def test_install_inputs_are_the_separate_reads_in_one(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        first = make_install("a1", time=T0, gaid="g-1")
        second = make_install("a2", time=T0 + 100, gaid="g-1", reinstall_of="i-a1")
        for install in (first, second):
            await store.installs.record_install(install, claim_click=None, now=T0)
        await store.touches.record_touch(TouchRecord(touch("c-1", time=T0 + 150)))
        span = TimeRange(T0, T0 + 200)
        query = CandidateQuery("demo", IP, None, span, span)

        known = await store.installs.install_inputs("demo", "a2", {"gaid": "g-1"}, query)
        assert known.stored == second and known.candidates is None

        fresh = await store.installs.install_inputs("demo", "a9", {"gaid": "g-1"}, query)
        assert fresh.stored is None
        assert fresh.prior == await store.installs.prior_install("demo", {"gaid": "g-1"}, 0.0)
        assert fresh.first == first
        assert fresh.candidates == await store.candidates.find_candidates(query)
        assert [c.id for c in fresh.candidates.clicks] == ["c-1"]

        new_device = await store.installs.install_inputs("demo", "a9", {"gaid": "g-7"}, query)
        assert new_device.prior is None and new_device.first is None

    with_store(store_opener, scenario)


def test_every_config_write_changes_the_config_version(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        seen = [await store.configs.config_version()]

        async def changed() -> None:
            seen.append(await store.configs.config_version())
            assert seen[-1] != seen[-2]

        await store.configs.put_app("demo", DEMO_APP, T0)
        await changed()
        await store.configs.rotate_sdk_key("demo", T0)
        await changed()
        await store.configs.put_integration("demo", "tiktokweb_int", {"enabled": True}, "t", T0)
        await changed()
        await store.configs.delete_integration("demo", "tiktokweb_int")
        await changed()
        await store.configs.put_page("p", {"app_key": "demo"}, T0)
        await changed()
        await store.configs.delete_page("p")
        await changed()
        await store.configs.delete_app("demo")
        await changed()
        # Reads and other writes leave it alone.
        await store.configs.list_apps()
        await store.tokens.create_token("t", T0)
        assert await store.configs.config_version() == seen[-1]

    with_store(store_opener, scenario)


def test_a_click_is_claimed_by_one_install_and_the_losers_write_nothing(
    store_opener: StoreOpener,
) -> None:
    async def scenario(store: Store) -> None:
        await store.touches.record_touch(TouchRecord(touch("c1")))
        installs = [make_install(f"a{i}", status="attributed") for i in range(5)]
        results = await asyncio.gather(
            *(
                store.installs.record_install(
                    i, claim_click="c1", postbacks=[postback(i.id)], now=T0
                )
                for i in installs
            ),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, tuple)]
        lost = [r for r in results if isinstance(r, ClickAlreadyClaimed)]
        assert len(won) == 1 and len(lost) == 4
        winner = won[0][0]
        claimed = await store.candidates.attributed_touch("click", "c1")
        assert claimed is not None and claimed.claimed_by == winner.app_instance_id
        for install in installs:
            stored = await store.installs.get_install(install.id)
            queued = await store.outbox.postbacks_for(install.id)
            assert (stored is not None) == (install.id == winner.id) == bool(queued)
        # The winner asking again (its retry) keeps its claim.
        _, created = await store.installs.record_install(winner, claim_click="c1", now=T0)
        assert not created

    with_store(store_opener, scenario)


def test_limited_installs_are_masked_once_their_time_is_over(store_opener: StoreOpener) -> None:
    ids = {"gaid": "38400000-8cf0-11bd-b23e-10b96e40000d", "android_id": "9774d56d682e549c"}
    limited = make_install(
        "ldu", ip=IP, is_limited_data_use=True, touch_type="click", touch_id="c1", **ids
    )
    later = make_install("ldu-later", ip=IP, is_limited_data_use=True, time=T0 + 10 * 86_400)
    full = make_install("full", ip=IP, **ids)

    def with_ip(subject: str) -> NewPostback:
        payload = {"event_id": subject, "limited_data_use": True, "user": {"ip": IP}}
        return NewPostback("demo", "tiktokweb_int", "install", subject, "Download", payload)

    async def scenario(store: Store) -> None:
        await store.touches.record_touch(TouchRecord(touch("c1")))
        sent, waiting = with_ip(limited.id), with_ip(limited.id)
        await store.installs.record_install(
            limited, claim_click="c1", postbacks=[sent, waiting], now=T0
        )
        await store.outbox.record_attempts([PostbackAttempt(sent.id, T0, "sent", T0)])
        for install in (later, full):
            await store.installs.record_install(install, claim_click=None, now=T0)

        before = T0 + 86_400
        assert await store.installs.mask_limited_installs(before, before) == 1
        masked = await store.installs.get_install(limited.id)
        assert masked is not None
        assert (masked.ip, masked.gaid, masked.android_id) == ("203.0.113.0", None, None)
        credited = await store.candidates.attributed_touch("click", "c1")
        assert credited is not None and credited.ip == "203.0.113.0"
        payloads = {p.id: p.payload for p in await store.outbox.postbacks_for(limited.id)}
        assert payloads[sent.id]["user"] == {"ip": "203.0.113.0"}
        assert payloads[waiting.id]["user"] == {"ip": IP}  # still to be sent: untouched
        # Once: nothing more to mask. A later one and an unlimited one keep everything.
        assert await store.installs.mask_limited_installs(before, before) == 0
        assert await store.installs.get_install(later.id) == later
        assert await store.installs.get_install(full.id) == full
        assert await store.installs.mask_limited_installs(T0 + 11 * 86_400, T0) == 1

    with_store(store_opener, scenario)


def test_an_event_is_stored_once_per_event_id(store_opener: StoreOpener) -> None:
    install = make_install("a1")
    # A lone surrogate is valid JSON a client may send; it must read back as sent.
    event = make_event(
        install, "ev-1", revenue="9.990", currency="EUR", event_value={"k": "\ud800"}
    )

    async def scenario(store: Store) -> None:
        await store.installs.record_install(install, claim_click=None, now=T0)
        saved, created = await store.events.record_event(
            event, postbacks=[postback("e-ev-1")], now=T0
        )
        assert created and saved == event
        assert await store.events.event_by_id("demo", "ev-1") == event
        assert await store.events.event_by_id("other", "ev-1") is None
        again, created = await store.events.record_event(
            replace(event, id="e-other", revenue="1"), postbacks=[postback("e-other")], now=T0
        )
        assert not created and again == event
        assert await store.outbox.postbacks_for("e-other") == []

    with_store(store_opener, scenario)


# -- the outbox --------------------------------------------------------------------------------


def test_a_payload_with_a_lone_surrogate_is_kept_and_read_back(store_opener: StoreOpener) -> None:
    """A client may send "\\ud800" in a value the payload carries; no UTF-8 column holds it, so
    the payload is kept as escaped JSON rather than failing the write."""

    async def scenario(store: Store) -> None:
        odd = NewPostback(
            "demo", "tiktokweb_int", "event", "s1", "Purchase", {"description": "a\ud800b"}
        )
        await store.outbox.queue_postbacks([odd], T0)
        [due] = await store.outbox.due_postbacks(T0, per_integration=10, limit=10)
        assert due.payload == {"description": "a\ud800b"}

    with_store(store_opener, scenario)


def test_due_postbacks_are_shared_fairly_and_skip_what_is_in_flight(
    store_opener: StoreOpener,
) -> None:
    async def scenario(store: Store) -> None:
        assert await store.outbox.next_postback_due() is None
        await store.outbox.queue_postbacks([postback(f"d{i}") for i in range(5)], T0)
        await store.outbox.queue_postbacks([postback(f"o{i}", "other") for i in range(2)], T0 + 1)
        assert await store.outbox.outbox_pending() == 7
        assert await store.outbox.next_postback_due() == T0
        assert await store.outbox.due_postbacks(T0 - 1, per_integration=10, limit=10) == []
        due = await store.outbox.due_postbacks(T0 + 1, per_integration=3, limit=10)
        assert [p.subject_id for p in due] == ["d0", "d1", "d2", "o0", "o1"]
        capped = await store.outbox.due_postbacks(T0 + 1, per_integration=3, limit=4)
        assert len(capped) == 4
        others = await store.outbox.due_postbacks(
            T0 + 1, per_integration=10, limit=10, exclude=[("demo", "tiktokweb_int")]
        )
        assert [p.subject_id for p in others] == ["o0", "o1"]
        assert await store.outbox.postback_states() == {"pending": 7}

    with_store(store_opener, scenario)


def test_attempts_move_postbacks_and_the_owner_can_retry(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        sent, failed = postback("s"), postback("f")
        await store.outbox.queue_postbacks([sent, failed], T0)
        await store.outbox.record_attempts(
            [
                PostbackAttempt(
                    sent.id, T0 + 1, "sent", T0 + 1, 200, 0, "OK", "req-1", "PX", None, 2
                ),
                PostbackAttempt(
                    failed.id, T0 + 1, "failed", T0 + 1, 200, 40002, "bad", "req-1", "PX", None, 2
                ),
            ]
        )
        detail = await store.outbox.get_postback(sent.id)
        assert detail is not None
        assert (detail.postback.state, detail.postback.attempts, detail.postback.sent_at) == (
            "sent",
            1,
            T0 + 1,
        )
        assert detail.postback.payload == {"event_id": "s"}
        assert [
            (a.state, a.code, a.request_id, a.pixel_code, a.batch_size) for a in detail.attempts
        ] == [("sent", 0, "req-1", "PX", 2)]
        assert await store.outbox.postback_states() == {"sent": 1, "failed": 1}
        assert await store.outbox.outbox_pending() == 0

        assert await store.outbox.retry_postback(sent.id, T0 + 5) == "sent"
        assert await store.outbox.retry_postback(failed.id, T0 + 5) == "failed"
        assert await store.outbox.retry_postback("nope", T0 + 5) is None
        revived = await store.outbox.get_postback(failed.id)
        assert revived is not None
        assert (revived.postback.state, revived.postback.retry_since) == ("pending", T0 + 5)
        assert revived.postback.retry_attempts == 0 and revived.postback.last_code == 40002
        assert await store.outbox.postback_states() == {"sent": 1, "pending": 1}

        await store.outbox.record_attempts(
            [PostbackAttempt(failed.id, T0 + 6, "dead", T0 + 6, None, None, "gave up")]
        )
        assert await store.outbox.retry_failed_postbacks("demo", T0 + 7) == 1
        assert await store.outbox.retry_failed_postbacks("other", T0 + 7) == 0
        assert await store.outbox.get_postback("nope") is None

    with_store(store_opener, scenario)


def test_the_store_reports_its_writes(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        before = store.stats()
        await store.touches.record_touch(TouchRecord(touch("c1")))
        after = store.stats()
        assert after.writes == before.writes + 1 and after.batches >= before.batches + 1
        assert after.queue_depth >= 0 and after.failed_writes == before.failed_writes
        assert sum(after.commit_buckets.values()) >= 1

    with_store(store_opener, scenario)


def test_records_never_show_their_credentials() -> None:
    from app.store.records import AppRecord, IntegrationRecord

    app = AppRecord("demo", "Demo", "sdk-secret-value", {}, 0.0, 0.0)
    integration = IntegrationRecord("demo", "tiktokweb_int", {}, "token-secret-value", 0.0)
    assert "sdk-secret-value" not in repr(app)
    assert "token-secret-value" not in repr(integration)


# -- the console: accounts, sessions, tokens, lists ----------------------------------------------


def test_users_sessions_and_login_failures(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        ann = await store.users.create_user("ann@example.com", "h1", "viewer", ["b", "a"], T0)
        assert (ann.role, ann.apps, ann.created_at) == ("viewer", ("a", "b"), T0)
        assert await store.users.get_user("nobody@example.com") is None
        await store.users.create_session("s1", "ann@example.com", "csrf1", T0)
        session = await store.users.get_session("s1")
        assert session is not None and session.csrf_token == "csrf1"
        assert (session.created_at, session.last_seen_at, session.revoked_at) == (T0, T0, None)
        await store.users.touch_session("s1", T0 + 3600)
        touched = await store.users.get_session("s1")
        assert touched is not None and touched.last_seen_at == T0 + 3600
        # A new password or role ends the sessions of the old one.
        again = await store.users.create_user("ann@example.com", "h2", "admin", None, T0 + 9)
        assert (again.password_hash, again.role, again.apps) == ("h2", "admin", None)
        revoked = await store.users.get_session("s1")
        assert revoked is not None and revoked.revoked_at == T0 + 9
        await store.users.create_session("s2", "ann@example.com", "csrf2", T0 + 10)
        await store.users.revoke_session("s2", T0 + 11)
        s2 = await store.users.get_session("s2")
        assert s2 is not None and s2.revoked_at == T0 + 11
        await store.users.set_password_hash("ann@example.com", "h3")
        user = await store.users.get_user("ann@example.com")
        assert user is not None and user.password_hash == "h3"
        assert [u.username for u in await store.users.list_users()] == ["ann@example.com"]
        for i in range(3):
            await store.users.record_login_failure("ann@example.com", IP, T0 + i)
        await store.users.record_login_failure("bob@example.com", IP, T0 + 5)
        assert await store.users.login_failures("ann@example.com", IP, T0) == (3, 4)
        assert await store.users.login_failures("ann@example.com", IP, T0 + 2) == (1, 2)
        assert await store.users.login_failures("ann@example.com", None, T0) == (3, 0)

    with_store(store_opener, scenario)


def test_tokens_are_listed_without_their_secret_and_revoked(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        token = await store.tokens.create_token("ci", T0)
        await store.tokens.create_token("", T0 + 1)
        assert await store.tokens.token_valid(token, T0 + 100)
        listed = await store.tokens.list_tokens()
        assert [(t.label, t.created_at, t.last_used_at) for t in listed] == [
            ("ci", T0, T0 + 100),
            ("", T0 + 1, None),
        ]
        assert token not in repr(listed)
        assert await store.tokens.revoke_token(listed[0].id)
        assert not await store.tokens.revoke_token(listed[0].id)
        assert not await store.tokens.token_valid(token, T0 + 200)


# -- reports, cost, retention, privacy erase ---------------------------------------------------


def _increments(app: str, hour: int, metric: str, value: int = 1) -> tuple[Increment, ...]:
    dims = ("tiktokglobal_int", "summer", "", "", "", "", "", "US", "ios")
    key = RollupKey(app, hour, *dims, metric)
    return (Increment(key, value),)


def test_rollups_are_added_only_with_a_new_row(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        hour = int(T0 // 3600)
        rec = TouchRecord(touch("imp-1", "impression", pvid="pv-1"))
        await store.touches.record_touch(rec, rollups=_increments("demo", hour, "impressions"))
        # The same page view again: not stored, not counted.
        again = TouchRecord(touch("imp-2", "impression", pvid="pv-1"))
        await store.touches.record_touch(again, rollups=_increments("demo", hour, "impressions"))
        install = make_install("dev-1")
        metric = "installs|organic|"
        await store.installs.record_install(
            install, claim_click=None, now=T0, rollups=_increments("demo", hour, metric)
        )
        await store.installs.record_install(
            install, claim_click=None, now=T0, rollups=_increments("demo", hour, metric)
        )
        event = make_event(install, "ev-1")
        for _ in range(2):
            await store.events.record_event(
                event, now=T0, rollups=_increments("demo", hour, "events|af_purchase")
            )
        values = await store.reports.rollup_values("demo")
        assert sorted((k.metric, v) for k, v in values.items()) == [
            ("events|af_purchase", 1),
            ("impressions", 1),
            ("installs|organic|", 1),
        ]
        # Summed by local day: 9 hours ahead, the same hour is on the day it falls in there.
        sums = await store.reports.sum_rollups(
            "demo", hour, hour + 1, ["campaign"], {"country": "US"}, [(0, 9 * 3600)]
        )
        assert {(s.day, s.dims, s.metric, s.value) for s in sums} == {
            ((hour * 3600 + 9 * 3600) // 86400, ("summer",), m, 1)
            for m in ("events|af_purchase", "impressions", "installs|organic|")
        }
        assert await store.reports.sum_rollups("demo", hour, hour + 1, [], {"country": "FR"},
                                               [(0, 0)]) == []  # fmt: skip

    with_store(store_opener, scenario)


def test_rotating_an_sdk_key(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        first = await store.configs.put_app("demo", DEMO_APP, T0)
        rotated = await store.configs.rotate_sdk_key("demo", T0 + 1)
        assert rotated is not None and rotated.sdk_key != first.sdk_key
        assert len(rotated.sdk_key) >= 32 and rotated.updated_at == T0 + 1
        kept = await store.configs.put_app("demo", DEMO_APP, T0 + 2)
        assert kept.sdk_key == rotated.sdk_key
        assert await store.configs.rotate_sdk_key("nope", T0) is None


def test_a_rebuild_recomputes_rollups_from_raw_rows(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        install = make_install("dev-1", status="attributed", media_source="tiktokglobal_int")
        await store.installs.record_install(install, claim_click=None, now=T0)  # not counted
        await store.touches.record_touch(TouchRecord(touch("c-1")))
        written = await store.reports.rebuild_rollups("demo", RollupFold(DEFAULT_UNIFIED_PIDS))
        values = await store.reports.rollup_values("demo")
        assert written == len(values) == 3  # the install, the click (human and all)
        assert {(k.media_source, k.metric): v for k, v in values.items()} == {
            ("tiktokglobal_int", "installs|attributed|"): 1,
            ("tiktokglobal_int", "clicks"): 1,
            ("tiktokglobal_int", "clicks_all"): 1,
        }

    with_store(store_opener, scenario)


def test_activity_counts_and_postback_lists_by_app(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        for app_key in ("demo", "other"):
            await store.configs.put_app(app_key, DEMO_APP, T0)
            await store.touches.record_touch(
                TouchRecord(touch(f"c-{app_key}", app_key=app_key, time=T0 + 1))
            )
            await store.touches.record_touch(
                TouchRecord(touch(f"m-{app_key}", "impression", app_key=app_key, time=T0 + 1))
            )
            install = make_install(
                f"{app_key}-1", app_key=app_key, time=T0 + 2, status="attributed"
            )
            await store.installs.record_install(
                install, claim_click=None, postbacks=[postback(install.id, app_key)], now=T0 + 2
            )
            event = make_event(install, f"{app_key}-e", event_time=T0 + 3)
            await store.events.record_event(event, now=T0 + 3)
        counts = await store.activity.counts(["demo"], T0)
        assert (counts.impressions, counts.clicks, counts.installs) == (1, 1, 1)
        assert (counts.attributed_installs, counts.events) == (1, 1)
        assert (await store.activity.counts(None, T0)).installs == 2
        assert (await store.activity.counts(["demo"], T0 + 10)).installs == 0
        assert (await store.activity.counts([], T0)).installs == 0
        feed = await store.activity.latest_activity(["demo"], 10)
        assert [(i.kind, i.app_key, i.install_id) for i in feed] == [
            ("event", "demo", "i-demo-1"),
            ("install", "demo", "i-demo-1"),
        ]
        assert len(await store.activity.latest_activity(None, 3)) == 3
        listed = await store.activity.list_postbacks(["other"], None, 10)
        assert [(p.app_key, p.state) for p in listed] == [("other", "pending")]
        assert await store.activity.list_postbacks(["other"], "sent", 10) == []


def test_raw_rows_stream_in_batches(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        for n in range(5):
            install = make_install(f"dev-{n}", time=T0 + n, receipt={"tier": "x"})
            await store.installs.record_install(install, claim_click=None, now=T0)
            await store.events.record_event(make_event(install, f"ev-{n}"), now=T0)
        await store.touches.record_touch(TouchRecord(touch("c-1"), page_slug="lp"))
        batches = [b async for b in store.reports.stream_installs("demo", T0 + 1, T0 + 5, batch=2)]
        assert [[i.app_instance_id for i in b] for b in batches] == [
            ["dev-1", "dev-2"],
            ["dev-3", "dev-4"],
        ]
        event_batches = [b async for b in store.reports.stream_events("demo", 0, 2e9)]
        events = [pair for b in event_batches for pair in b]
        assert [(e.event_id, i.app_instance_id) for e, i in events][:2] == [
            ("ev-0", "dev-0"),
            ("ev-1", "dev-1"),
        ]
        clicks = [b async for b in store.reports.stream_touches("click", "demo", 0, 2e9)]
        assert [(r.touch.id, r.page_slug) for b in clicks for r in b] == [("c-1", "lp")]
        assert [b async for b in store.reports.stream_touches("impression", "demo", 0, 2e9)] == []
        # A stream left half-read is closed by its consumer and holds nothing.
        stream = store.reports.stream_postbacks("demo", 0, 2e9)
        assert [b async for b in stream] == []

    with_store(store_opener, scenario)


def _cost(source: str, amount: int, **fields: object) -> CostEntry:
    values: dict[str, object] = {
        "app_key": "demo", "date": date(2026, 11, 21), "source": source,
        "media_source": "tiktokglobal_int", "campaign": "summer", "campaign_id": "1700",
        "adset": "", "adset_id": "", "ad": "", "ad_id": "", "country": "",
        "cost": str(amount), "currency": "USD", "amount": amount * 1_000_000,
        "report_currency": "USD",
    }  # fmt: skip
    return CostEntry(**(values | fields))  # type: ignore[arg-type]


def test_cost_rows_replace_by_key_and_a_pulled_campaign_day_wins(
    store_opener: StoreOpener,
) -> None:
    async def scenario(store: Store) -> None:
        assert await store.cost.put_cost([_cost(UPLOAD, 40)], T0) == 1
        assert await store.cost.put_cost([_cost(UPLOAD, 40)], T0 + 1) == 0  # unchanged
        assert await store.cost.put_cost([_cost(UPLOAD, 45)], T0 + 2) == 1  # replaced
        other_day = _cost(UPLOAD, 7, date=date(2026, 11, 22))
        await store.cost.put_cost([other_day], T0)
        # The TikTok Ads pull writes its own row for the 21st: reports count it, not the upload.
        await store.cost.put_cost([_cost(PULLED, 44)], T0)
        rows = await store.cost.cost_between("demo", date(2026, 11, 21), date(2026, 11, 22))
        assert sorted((r.source, r.amount) for r in rows) == [
            (PULLED, 44_000_000), ("upload", 7_000_000), ("upload", 45_000_000),
        ]  # fmt: skip
        counted = effective_cost(rows)
        assert sorted((r.date.day, r.source, r.cost) for r in counted) == [
            (21, PULLED, "44"),
            (22, "upload", "7"),
        ]
        assert await store.cost.put_rates("demo", [Rate(date(2026, 11, 21), "EUR", Decimal("1.1"))],
                                          T0) == 1  # fmt: skip
        assert await store.cost.rates("demo") == {(date(2026, 11, 21), "EUR"): Decimal("1.1")}
        assert await store.cost.rates("other") == {}

    with_store(store_opener, scenario)


def test_retention_erases_once_and_marks_the_install(store_opener: StoreOpener) -> None:
    async def scenario(store: Store) -> None:
        click = touch("c-1", ttclid="E.C.P.retained", user_agent="Mozilla/5.0 (phone)")
        await store.touches.record_touch(TouchRecord(click))
        install = make_install(
            "dev-1", status="attributed", media_source="tiktokglobal_int",
            original_media_source="tiktokweb_int", touch_type="click", touch_id="c-1",
            ip=IP, ttclid="E.C.P.retained", gaid="38400000-8cf0-11bd-b23e-10b96e40000d",
            original_url="https://example.com/lp?pid=tiktokweb_int&ttclid=E.C.P.retained",
        )  # fmt: skip
        await store.installs.record_install(install, claim_click=None, now=T0)
        await store.events.record_event(make_event(install, "ev-1"), now=T0)
        cutoffs = {"tiktokglobal_int": T0 + 1}
        assert await store.privacy.count_retention_due(cutoffs) == 1
        assert await store.privacy.count_retention_due({"tiktokglobal_int": T0}) == 0
        due = await store.privacy.retention_due(cutoffs, limit=10)
        assert [i.id for i in due] == [install.id]
        assert [e.event_id for e in await store.privacy.events_attributed_to(install.id)] == [
            "ev-1"
        ]
        counts = await store.privacy.retain([RetainItem(install.id, ())], T0)
        assert counts["installs"] == 1 and counts["clicks"] == 1
        kept = await store.installs.get_install(install.id)
        assert kept is not None and kept.is_retained_organic
        assert (kept.ip, kept.ttclid, kept.gaid) == (None, None, None)
        assert kept.original_url == "https://example.com/lp"
        assert kept.app_instance_id == "dev-1"  # later events still find it
        assert await store.privacy.count_retention_due(cutoffs) == 0
        assert (await store.privacy.retain([RetainItem(install.id, ())], T0))["installs"] == 0

    with_store(store_opener, scenario)


def test_a_reinstalls_events_carry_the_first_installs_attribution(
    store_opener: StoreOpener,
) -> None:
    """Retention moves the events an install's attribution counts: a reinstall's go with the
    first install, never with the reinstall itself (unless the first is no longer stored)."""

    async def scenario(store: Store) -> None:
        first = make_install("a1", time=T0, gaid="g-1")
        again = make_install("a2", time=T0 + 100, gaid="g-1", reinstall_of="i-a1")
        orphan = make_install("a3", time=T0 + 200, gaid="g-3", reinstall_of="i-gone")
        for install in (first, again, orphan):
            await store.installs.record_install(install, claim_click=None, now=T0)
        await store.events.record_event(make_event(first, "ev-1"), now=T0)
        await store.events.record_event(make_event(again, "ev-2"), now=T0)
        await store.events.record_event(make_event(orphan, "ev-3"), now=T0)

        async def attributed(install_id: str) -> list[str]:
            return [e.event_id for e in await store.privacy.events_attributed_to(install_id)]

        assert await attributed("i-a1") == ["ev-1", "ev-2"]
        assert await attributed("i-a2") == []
        assert await attributed("i-a3") == ["ev-3"]  # its first install is not stored

    with_store(store_opener, scenario)


def test_an_erase_drops_undelivered_postbacks_and_answers_zero_twice(
    store_opener: StoreOpener,
) -> None:
    async def scenario(store: Store) -> None:
        install = make_install("dev-1", ttclid="E.C.P.erase", ip=IP)
        await store.installs.record_install(
            install, claim_click=None, postbacks=[postback(install.id)], now=T0
        )
        key = EraseKey("demo", "dev-1", None)
        counts = await store.privacy.erase(key, actor="token:abc", now=T0)
        assert (counts["installs"], counts["postbacks"]) == (1, 1)
        assert await store.outbox.due_postbacks(T0 + 10, per_integration=10, limit=10) == []
        assert await store.outbox.postback_states() == {"dropped": 1}
        assert await store.installs.install_by_instance("demo", "dev-1") is None
        assert set((await store.privacy.erase(key, actor="token:abc", now=T0 + 1)).values()) == {0}
        log = await store.privacy.erasures()
        assert [(e["key_kind"], e["app_key"], e["actor"]) for e in log] == [
            ("app_instance_id", "demo", "token:abc")
        ] * 2
        assert "dev-1" not in repr(log)

    with_store(store_opener, scenario)


# -- TikTok Ads: pulled cost and the connection's records ------------------------------------------


def test_a_pull_replaces_exactly_its_scope_at_once(store_opener: StoreOpener) -> None:
    from app.reports.cost import TIKTOK_API, CostScope

    day1, day2, day3 = date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)

    def pulled(day: date, ad: str, amount: int, campaign: str = "1700") -> CostEntry:
        return _cost(TIKTOK_API, amount, date=day, ad_id=ad, campaign_id=campaign)

    scope = CostScope("demo", TIKTOK_API, "adv-1", day1, day2)

    async def scenario(store: Store) -> None:
        await store.cost.put_cost([_cost(UPLOAD, 40, date=day2)], T0)
        first = await store.cost.replace_cost(
            scope, [pulled(day1, "a", 1), pulled(day2, "a", 2), pulled(day2, "b", 3)], T0
        )
        assert (first.rows, first.changed, first.removed) == (3, 3, 0)
        # The upload of that campaign-day is now left out of reports, and said so.
        assert first.superseded == 1
        # The same rows again change nothing; a revised and a vanished row do.
        same = await store.cost.replace_cost(
            scope, [pulled(day1, "a", 1), pulled(day2, "a", 2), pulled(day2, "b", 3)], T0 + 1
        )
        assert (same.changed, same.removed) == (0, 0)
        revised = await store.cost.replace_cost(
            scope, [pulled(day1, "a", 1), pulled(day2, "a", 5)], T0 + 2
        )
        assert (revised.rows, revised.changed, revised.removed) == (2, 2, 1)
        # Another advertiser's rows, another day and the upload are outside the scope.
        other = CostScope("demo", TIKTOK_API, "adv-2", day1, day3)
        await store.cost.replace_cost(other, [pulled(day3, "z", 9, campaign="1800")], T0)
        await store.cost.replace_cost(scope, [pulled(day1, "a", 1), pulled(day2, "a", 5)], T0)
        rows = await store.cost.cost_between("demo", day1, day3)
        assert sorted((r.date.day, r.source, r.ad_id, r.cost) for r in rows) == [
            (20, TIKTOK_API, "a", "1"), (21, TIKTOK_API, "a", "5"), (21, UPLOAD, "", "40"),
            (22, TIKTOK_API, "z", "9"),
        ]  # fmt: skip
        # A campaign filter replaces only those campaigns' rows.
        only = CostScope("demo", TIKTOK_API, "adv-2", day3, day3, ("1900",))
        await store.cost.replace_cost(only, [], T0)
        assert len(await store.cost.cost_between("demo", day3, day3)) == 1
        with pytest.raises(ValueError):
            await store.cost.replace_cost(scope, [pulled(day3, "a", 1)], T0)

    with_store(store_opener, scenario)


def test_superseded_uploads_are_counted_once_whatever_the_accounts(
    store_opener: StoreOpener,
) -> None:
    from app.reports.cost import TIKTOK_API, CostScope

    day1, day2 = date(2026, 11, 20), date(2026, 11, 21)

    async def scenario(store: Store) -> None:
        await store.cost.put_cost(
            [_cost(UPLOAD, 40, date=day2), _cost(UPLOAD, 7, date=day2, campaign_id="1800")], T0
        )
        # Two advertisers pull the same campaign-day: the upload is superseded once.
        for account in ("adv-1", "adv-2"):
            scope = CostScope("demo", TIKTOK_API, account, day1, day2)
            pulled = _cost(TIKTOK_API, 1, date=day2, ad_id=account, campaign_id="1700")
            await store.cost.replace_cost(scope, [pulled], T0)
        assert await store.cost.count_superseded("demo", day1, day2) == 1
        assert await store.cost.count_superseded("demo", day1, day1) == 0
        assert await store.cost.count_superseded("other", day1, day2) == 0

    with_store(store_opener, scenario)


def test_tiktok_ads_state_pull_log_and_single_use_oauth_states(store_opener: StoreOpener) -> None:
    from app.tiktok_ads.connection import AdvertiserInfo, ConnectionState, PullRecord

    async def scenario(store: Store) -> None:
        ads = store.tiktok_ads
        assert await ads.connection_state("demo") is None
        adv = AdvertiserInfo("7002238017842757633", "Acme", "EUR", "Europe/Berlin")
        await ads.set_connection_state(ConnectionState("demo", "connected", None, (adv,), T0))
        await ads.set_connection_state(
            ConnectionState("demo", "needs_reauth", "revoked", (adv,), T0 + 1)
        )
        assert await ads.connection_state("demo") == ConnectionState(
            "demo", "needs_reauth", "revoked", (adv,), T0 + 1
        )
        for i in range(12):
            await ads.record_pull(PullRecord(f"p{i}", "demo", "schedule", T0 + i))
        # Recorded again when it ends: the same pull, now finished.
        done = PullRecord(
            "p11", "demo", "schedule", T0 + 11, finished_at=T0 + 12,
            start_date=date(2026, 11, 1), end_date=date(2026, 11, 30), rows=7, changed=2,
            spend="12.34", currency="USD", superseded=1, requests=3, error="boom",
        )  # fmt: skip
        await ads.record_pull(done)
        recent = await ads.recent_pulls("demo", 10)
        assert [p.id for p in recent] == [f"p{i}" for i in range(11, 1, -1)]
        assert recent[0] == done
        assert await ads.recent_pulls("other") == []
        assert await ads.use_oauth_state("n-1", T0, 7200) is True
        assert await ads.use_oauth_state("n-1", T0 + 10, 7200) is False
        assert await ads.use_oauth_state("n-2", T0 + 10, 7200) is True


# -- audiences ---------------------------------------------------------------------------------

AUDIENCE_RULE = {
    "advertiser_id": "7002238017842757633",
    "platform": "ios",
    "installed_within_days": 30,
    "media_source": "tiktokglobal_int",
}
DAY = 86_400.0


def test_audience_members_follow_the_rule_and_never_include_the_excluded(
    store_opener: StoreOpener,
) -> None:
    def ios(name: str, **fields: object) -> Install:
        values: dict[str, object] = {
            "platform": "ios",
            "time": T0 - DAY,
            "idfa": f"{name}-0000-4000-8000-000000000001",
            "media_source": "tiktokglobal_int",
            "status": "attributed",
        }
        return make_install(name, **(values | fields))

    async def scenario(store: Store) -> None:
        buyer, old_buyer, refunded, quiet = (ios(n) for n in ("b", "ob", "rf", "q"))
        ldu = ios("ldu", is_limited_data_use=True)
        # The same device as `ldu`, installed again without the flag: still no member.
        ldu_again = ios("ldu2", idfa=ldu.idfa)
        retained = ios("ret", is_retained_organic=True)
        erased = ios("era")
        past = ios("past", time=T0 - 20 * DAY)
        other = ios("other", media_source="organic")
        # Older than tiktokglobal_int's retention, but of no source with one: still a member.
        old_other = ios("old-other", media_source="organic", time=T0 - 20 * DAY)
        android = make_install("droid", time=T0 - DAY, gaid="droid-gaid-0001")
        everyone = [buyer, old_buyer, refunded, quiet, ldu, ldu_again, retained, erased, past]
        for install in [*everyone, other, old_other, android]:
            await store.installs.record_install(install, claim_click=None, now=T0)
        events = [(i, "af_purchase", T0 - 60) for i in everyone if i not in (old_buyer, quiet)]
        events += [(old_buyer, "af_purchase", T0 - 10 * DAY), (refunded, "refund", T0 - 30)]
        for n, (install, name, when) in enumerate(events):
            await store.events.record_event(
                make_event(install, f"ev-{n}", event_name=name, event_time=when), now=T0
            )
        await store.privacy.erase(EraseKey("demo", erased.app_instance_id, None), actor="t", now=T0)
        cutoffs = {"tiktokglobal_int": T0 - 10 * DAY}

        async def members(rule: dict[str, object]) -> list[str]:
            query = member_query("demo", validate_rule(AUDIENCE_RULE | rule), T0, cutoffs)
            found: list[str] = []
            async for batch in store.audiences.member_ids(query, batch=2):
                found += batch
            return sorted(found)

        assert await members(
            {"did_event": ["af_purchase"], "did_not_event": ["refund"], "event_within_days": 7}
        ) == [buyer.idfa]
        # In pages of two, each eligible device once.
        assert await members({}) == sorted(str(i.idfa) for i in (buyer, old_buyer, refunded, quiet))
        assert await members({"platform": "android", "media_source": "any"}) == [android.gaid]
        assert await members({"media_source": "any"}) == sorted(
            str(i.idfa) for i in (buyer, old_buyer, refunded, quiet, other, old_other)
        )

    with_store(store_opener, scenario)


def test_an_audiences_difference_counts_only_what_tiktok_confirmed(
    store_opener: StoreOpener,
) -> None:
    async def scenario(store: Store) -> None:
        await store.configs.put_app("demo", DEMO_APP, T0)
        rule = validate_rule(AUDIENCE_RULE)
        audience = await store.audiences.put_audience("demo", "buyers", rule, T0, reset=False)
        assert (audience.state, audience.tiktok_audience_id) == ("pending", None)
        run = await store.audiences.start_sync(audience.id, T0, 60)
        assert run is not None
        # One sync at a time: a second one waits for the first to finish or its lease to end.
        assert await store.audiences.start_sync(audience.id, T0 + 59, 60) is None
        await store.audiences.stage_members(audience.id, run, ["a", "b", "c"])
        await store.audiences.stage_members(audience.id, run, ["c", "d"])
        assert await store.audiences.staged(audience.id, run) == SyncCounts(4, 4, 0)
        page = await store.audiences.pending_members(audience.id, run, APPEND, after="", limit=3)
        assert page == ["a", "b", "c"]
        await store.audiences.confirm_sent(audience.id, APPEND, page, tiktok_audience_id="77")
        # "d" was never confirmed: the next sync still has it to send, and "e" is new.
        run = await store.audiences.start_sync(audience.id, T0 + 61, 60)
        assert run is not None
        await store.audiences.stage_members(audience.id, run, ["b", "d", "e"])
        assert await store.audiences.staged(audience.id, run) == SyncCounts(3, 2, 2)
        assert await store.audiences.pending_members(
            audience.id, run, APPEND, after="", limit=10
        ) == ["d", "e"]
        assert await store.audiences.pending_members(
            audience.id, run, REMOVE, after="a", limit=10
        ) == ["c"]
        await store.audiences.confirm_sent(audience.id, REMOVE, ["a", "c"])
        await store.audiences.finish_sync(
            audience.id, state="synced", member_count=3, error=None, now=T0 + 1
        )
        assert await store.audiences.start_sync(audience.id, T0 + 62, 60) is not None
        kept = await store.audiences.get_audience("demo", "buyers")
        assert kept is not None
        assert (kept.tiktok_audience_id, kept.member_count, kept.sent_count) == ("77", 3, 1)
        assert kept.last_sync_at == T0 + 1
        # A new platform forgets the TikTok audience and what was sent to it.
        android = validate_rule(AUDIENCE_RULE | {"platform": "android"})
        reset = await store.audiences.put_audience("demo", "buyers", android, T0 + 2, reset=True)
        assert (reset.tiktok_audience_id, reset.sent_count, reset.state) == (None, 0, "pending")
        assert reset.rule.calculate_type == "GAID_MD5"
        assert [a.name for a in await store.audiences.list_audiences("demo")] == ["buyers"]
        assert await store.audiences.list_audiences("other") == []
        assert await store.audiences.delete_audience("demo", "buyers")
        assert not await store.audiences.delete_audience("demo", "buyers")
        assert await store.audiences.get_audience("demo", "buyers") is None

    with_store(store_opener, scenario)
