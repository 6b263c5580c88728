"""The TikTok Ads connection through the owner API, against the fake Marketing API: the token is
write-only, advertisers' currency and time zone come from TikTok, a pull asked for runs in the
background and shows in the last pulls, a pulled campaign-day supersedes an uploaded one in the
overview, 40105 needs the owner again, and OAuth (consent URL, callback with a good, replayed,
forged or stale state, the exchange, the revoke on disconnect)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from itsdangerous import URLSafeSerializer
from starlette.testclient import TestClient

from app.server import create_app
from app.settings import Secret
from app.store.backends import open_store
from app.tiktok_ads.connection import STALE_PULL_SECONDS, PullRecord
from tests.aio import run_async
from tests.fakes.tiktok_marketing import (  # noqa: F401  (pytest finds fixtures by name)
    FakeTikTokMarketing,
    fake_marketing_fixture,
    fake_marketing_server_fixture,
)
from tests.fixtures import ANDROID_UA, IOS_SDK_UA, FakeClock, make_settings, seed

ADV = "7002238017842757633"
START = datetime(2026, 11, 21, 10, 0, tzinfo=UTC).timestamp()
CONNECTION = "/api/v1/apps/demo/integrations/tiktok_ads"
CALLBACK = "/api/v1/tiktok_ads/oauth/callback"


class Gw:
    def __init__(self, http: TestClient, clock: FakeClock, admin: str, sdk: str, db: str) -> None:
        self.db = db
        self.http = http
        self.clock = clock
        self.admin = {"Authorization": f"Bearer {admin}"}
        self.sdk = {"Authorization": f"Bearer {sdk}"}

    def put(self, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        r = self.http.put(CONNECTION, json=body, headers=self.admin)
        assert r.status_code == status, r.text
        return dict(r.json())

    def get(self) -> dict[str, Any]:
        r = self.http.get(CONNECTION, headers=self.admin)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def pull(self, days: int | None = None) -> dict[str, Any]:
        """Ask for a pull and wait for it to be logged as finished."""
        before = {p["id"] for p in self.get()["pulls"]}
        r = self.http.post(
            "/api/v1/apps/demo/cost/pull",
            json={} if days is None else {"days": days},
            headers=self.admin,
        )
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            new = [p for p in self.get()["pulls"] if p["id"] not in before]
            if new and new[0]["finished_at"]:
                return dict(new[0])
            time.sleep(0.01)
        raise AssertionError(f"the pull did not finish: {self.get()['pulls']}")


@pytest.fixture()
def gw(tmp_path: Path, fake_marketing: FakeTikTokMarketing) -> Iterator[Gw]:
    settings = make_settings(
        tmp_path,
        tiktok_api_url=fake_marketing.base_url,
        tiktok_app_id=fake_marketing.app_id,
        tiktok_app_secret=Secret(fake_marketing.secret),
        trusted_proxies="127.0.0.1",
    )
    admin, sdk = seed(settings.db)
    clock = FakeClock(START)
    fake_marketing.add_advertiser(ADV, currency="USD", display_timezone="America/Los_Angeles")
    with TestClient(
        create_app(settings, clock=clock, run_jobs=False),
        base_url="http://gangway.test",
        client=("127.0.0.1", 50000),
    ) as http:
        yield Gw(http, clock, admin, sdk, settings.db)


def test_connection_token_is_write_only_and_advertisers_come_from_tiktok(
    gw: Gw, fake_marketing: FakeTikTokMarketing
) -> None:
    answer = gw.put(
        {"advertiser_ids": [ADV], "access_token": "token-1", "cost": {"backfill_days": 3}}
    )

    assert answer["access_token_set"] is True
    assert (
        "token-1" not in str(answer)
        and "token-1" not in gw.http.get(CONNECTION, headers=gw.admin).text
    )
    assert answer["state"] == "connected" and "warning" not in answer
    assert answer["advertisers"] == [
        {"advertiser_id": ADV, "name": "Demo advertiser", "currency": "USD",
         "timezone": "America/Los_Angeles"}
    ]  # fmt: skip
    assert answer["cost"] == {
        "enabled": True, "backfill_days": 3, "pull_every_hours": 12, "by_country": True,
        "campaign_ids": None,
    }  # fmt: skip
    # Saving again without a token keeps it.
    assert gw.put({"advertiser_ids": [ADV]})["access_token_set"] is True
    assert all(s.headers.get("access-token") == "token-1" for s in fake_marketing.seen)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "advertiser_ids"),
        ({"advertiser_ids": ["12a"]}, "advertiser_ids[0]"),
        ({"advertiser_ids": [ADV], "cost": {"backfill_days": 0}}, "cost.backfill_days"),
        ({"advertiser_ids": [ADV], "cost": {"campaign_ids": []}}, "cost.campaign_ids"),
        ({"advertiser_ids": [ADV], "cost": {"by_country": "yes"}}, "cost.by_country"),
    ],
)
def test_bad_connections_name_their_field(gw: Gw, body: dict[str, Any], field: str) -> None:
    answer = gw.put(body, status=400)
    assert answer["field"] == field


def test_routes_need_an_owner(gw: Gw) -> None:
    for method, path in (
        ("GET", CONNECTION),
        ("PUT", CONNECTION),
        ("DELETE", CONNECTION),
        ("POST", CONNECTION + "/oauth"),
        ("POST", "/api/v1/apps/demo/cost/pull"),
    ):
        assert gw.http.request(method, path, json={}).status_code == 401, (method, path)
    assert (
        gw.http.get("/api/v1/apps/nope/integrations/tiktok_ads", headers=gw.admin).json()["error"]
        == "not_found"
    )


def make_paid_install(gw: Gw) -> None:
    """One install attributed to campaign 1700 by its click's referrer, and a 10 USD purchase."""
    r = gw.http.get(
        "/c/demo?pid=tiktokweb_int&c=summer&af_c_id=1700&ttclid=E.C.P.one",
        headers={"User-Agent": ANDROID_UA, "X-Forwarded-For": "203.0.113.7"},
        follow_redirects=False,
    )
    referrer = parse_qs(urlsplit(r.headers["location"]).query)["referrer"][0]
    # An install seconds after its click is too fast to be a person's.
    gw.clock.now += 60
    install = gw.http.post(
        "/api/v1/installs",
        json={"app_key": "demo", "platform": "android", "app_instance_id": "phone-1",
              "install_referrer": referrer, "os_version": "14", "device_model": "Pixel 8"},
        headers=gw.sdk | {"X-Forwarded-For": "198.51.100.9", "User-Agent": IOS_SDK_UA},
    )  # fmt: skip
    assert install.json()["status"] == "attributed", install.text
    event = gw.http.post(
        "/api/v1/events",
        json={"app_key": "demo", "app_instance_id": "phone-1", "event_id": "p1",
              "event_name": "af_purchase",
              "event_value": {"af_revenue": "10.00", "af_currency": "USD"}},
        headers=gw.sdk,
    )  # fmt: skip
    assert event.status_code == 202, event.text


def test_a_pulled_campaign_day_supersedes_the_uploaded_one_in_the_overview(
    gw: Gw, fake_marketing: FakeTikTokMarketing
) -> None:
    make_paid_install(gw)
    uploaded = gw.http.post(
        "/api/v1/cost?app_key=demo",
        content=b"date,media_source,campaign,campaign_id,cost,currency\n"
        b"2026-11-21,tiktokweb_int,summer,1700,40.00,USD\n",
        headers=gw.admin | {"Content-Type": "text/csv"},
    )
    assert uploaded.json()["imported"] == 1
    fake_marketing.add_ad(ADV, "170011", campaign_id="1700", campaign_name="summer")
    fake_marketing.set_stats("170011", date(2026, 11, 21), "24.00", country="US")
    fake_marketing.set_stats("170011", date(2026, 11, 21), "6.00", country="DE")
    gw.put({"advertiser_ids": [ADV], "access_token": "token-1"})

    pull = gw.pull(days=2)

    assert pull["error"] is None, pull
    assert (pull["start_date"], pull["end_date"], pull["rows"]) == ("2026-11-20", "2026-11-21", 2)
    assert (pull["spend"], pull["superseded_uploads"], pull["trigger"]) == ("30.00", 1, "api")
    report = gw.http.get(
        "/api/v1/reports/overview",
        params={"app_key": "demo", "from": "2026-11-21", "to": "2026-11-21",
                "group_by": "media_source"},
        headers=gw.admin,
    ).json()  # fmt: skip
    [paid] = [row for row in report["rows"] if row["media_source"] == "tiktokglobal_int"]
    # 30 pulled, not 30 + 40: the uploaded row of that campaign-day is left out.
    assert (paid["cost"], paid["ecpi"], paid["roas"]) == ("30.00", "30.0000", "0.3333")
    assert report["totals"]["cost"] == "30.00"


def test_a_refused_token_needs_the_owner_and_a_new_token_clears_it(
    gw: Gw, fake_marketing: FakeTikTokMarketing
) -> None:
    gw.put({"advertiser_ids": [ADV], "access_token": "token-1"})
    fake_marketing.script(code=40105, path="report/")
    failed = gw.pull(days=1)
    assert "TikTok refused the token" in failed["error"]
    assert gw.get()["state"] == "needs_reauth"
    refused = gw.http.post("/api/v1/apps/demo/cost/pull", json={}, headers=gw.admin)
    assert (refused.status_code, refused.json()["error"]) == (409, "needs_reauth")

    fake_marketing.grant("token-2", ADV)
    assert gw.put({"advertiser_ids": [ADV], "access_token": "token-2"})["state"] == "connected"
    assert gw.pull(days=1)["error"] is None


def test_get_shows_the_pulls_newest_first(gw: Gw) -> None:
    # The cap of ten is the store's (test_store_contract); here, what the owner sees.
    gw.put({"advertiser_ids": [ADV], "access_token": "token-1"})
    first = gw.pull(days=1)
    gw.clock.now += 60
    second = gw.pull(days=3)
    assert [p["id"] for p in gw.get()["pulls"]] == [second["id"], first["id"]]
    assert (second["start_date"], second["end_date"]) == ("2026-11-19", "2026-11-21")


def test_a_pull_that_never_ended_is_running_then_interrupted(gw: Gw) -> None:
    """A pull whose process died (a restart, a crash) is logged as started and never as ended:
    the owner sees it running for an hour, then interrupted, not running forever."""
    gw.put({"advertiser_ids": [ADV], "access_token": "token-1"})
    finished = gw.pull(days=1)
    assert finished["outcome"] == "ok"

    async def crashed() -> None:
        store = await open_store(gw.db)
        try:
            started = gw.clock.now + 60
            pull = PullRecord("p-crashed", "demo", trigger="schedule", started_at=started)
            await store.tiktok_ads.record_pull(pull)
        finally:
            await store.close()

    run_async(crashed())
    gw.clock.now += 120
    outcomes = [(p["id"], p["outcome"]) for p in gw.get()["pulls"]]
    assert outcomes == [("p-crashed", "running"), (finished["id"], "ok")]
    gw.clock.now += STALE_PULL_SECONDS
    outcomes = [(p["id"], p["outcome"]) for p in gw.get()["pulls"]]
    assert outcomes == [("p-crashed", "interrupted"), (finished["id"], "ok")]


def test_pull_days_are_checked(gw: Gw) -> None:
    gw.put({"advertiser_ids": [ADV], "access_token": "token-1"})
    for days in (0, 366, "7", True):
        r = gw.http.post("/api/v1/apps/demo/cost/pull", json={"days": days}, headers=gw.admin)
        assert (r.status_code, r.json()["field"]) == (400, "days"), days


# -- OAuth ---------------------------------------------------------------------------------------


def consent(gw: Gw) -> dict[str, str]:
    r = gw.http.post(CONNECTION + "/oauth", headers=gw.admin)
    assert r.status_code == 200, r.text
    url = urlsplit(r.json()["consent_url"])
    assert url.path == "/portal/auth"
    return {k: v[0] for k, v in parse_qs(url.query).items()}


def test_oauth_connects_with_a_good_state_once(gw: Gw, fake_marketing: FakeTikTokMarketing) -> None:
    fake_marketing.advertiser_ids_as_numbers = True
    params = consent(gw)
    assert params["app_id"] == fake_marketing.app_id
    assert params["redirect_uri"] == "http://gangway.test" + CALLBACK
    code = fake_marketing.issue_auth_code([ADV], token="oauth-token")

    back = gw.http.get(
        CALLBACK, params={"auth_code": code, "state": params["state"]}, follow_redirects=False
    )

    assert back.status_code == 303
    assert back.headers["location"] == "/admin/apps/demo/tiktok-ads?connected=1"
    [exchange] = [r for r in fake_marketing.requests if r.endpoint == "oauth2/access_token"]
    assert exchange.body == {
        "app_id": fake_marketing.app_id, "secret": fake_marketing.secret, "auth_code": code
    }  # fmt: skip
    connection = gw.get()
    assert connection["access_token_set"] and connection["advertiser_ids"] == [ADV]
    assert connection["advertisers"][0]["currency"] == "USD"
    # The same state again: refused before TikTok is asked.
    again = gw.http.get(
        CALLBACK, params={"code": code, "state": params["state"]}, follow_redirects=False
    )
    assert (again.status_code, again.json()["field"]) == (400, "state")
    assert len([r for r in fake_marketing.requests if r.endpoint == "oauth2/access_token"]) == 1
    assert fake_marketing.violations == []


def test_a_declined_consent_goes_back_to_the_screen_and_changes_nothing(
    gw: Gw, fake_marketing: FakeTikTokMarketing
) -> None:
    params = consent(gw)
    # TikTok sends the owner back with the state and no code when they decline.
    back = gw.http.get(CALLBACK, params={"state": params["state"]}, follow_redirects=False)
    assert back.status_code == 303
    assert back.headers["location"] == "/admin/apps/demo/tiktok-ads?declined=1"
    assert gw.http.get(CONNECTION, headers=gw.admin).status_code == 404  # nothing stored
    assert [r for r in fake_marketing.requests if r.endpoint == "oauth2/access_token"] == []
    # A forged state is still refused, not sent back to a screen.
    forged = gw.http.get(CALLBACK, params={"state": "x" + params["state"]})
    assert (forged.status_code, forged.json()["field"]) == (400, "state")


def test_oauth_refuses_forged_and_stale_states(gw: Gw, fake_marketing: FakeTikTokMarketing) -> None:
    code = fake_marketing.issue_auth_code([ADV])
    forged = URLSafeSerializer("not-our-key", salt="gangway.tiktok_ads.oauth-state").dumps(
        {"app": "demo", "n": "x", "t": int(START)}
    )
    stale = consent(gw)["state"]
    gw.clock.now += 3601
    for state in (forged, stale, "garbage"):
        r = gw.http.get(CALLBACK, params={"auth_code": code, "state": state})
        assert (r.status_code, r.json()["field"]) == (400, "state"), state
    assert gw.http.get(CALLBACK, params={"auth_code": code}).status_code == 400
    assert [r for r in fake_marketing.requests if r.endpoint == "oauth2/access_token"] == []


def test_disconnect_revokes_and_forgets_the_token(
    gw: Gw, fake_marketing: FakeTikTokMarketing
) -> None:
    gw.put({"advertiser_ids": [ADV], "access_token": "token-1"})
    assert gw.http.delete(CONNECTION, headers=gw.admin).status_code == 204
    assert not fake_marketing.token_valid("token-1")
    assert gw.http.get(CONNECTION, headers=gw.admin).status_code == 404


def test_oauth_needs_the_app_credentials(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    admin, _ = seed(settings.db)
    with TestClient(create_app(settings, run_jobs=False), base_url="http://gangway.test") as c:
        r = c.post(CONNECTION + "/oauth", headers={"Authorization": f"Bearer {admin}"})
        assert (r.status_code, r.json()["error"]) == (409, "oauth_not_configured")
