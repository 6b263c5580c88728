"""The console's TikTok Ads screens: the list of apps with their state, saving a connection
(errors next to their field, the token never shown), Pull now, Connect by OAuth and back,
Disconnect, and the re-authorise warning."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from app.server import create_app
from app.settings import Secret
from app.store.backends import open_store
from app.tiktok_ads.connection import STALE_PULL_SECONDS, PullRecord
from tests.aio import run_async
from tests.console_kit import ADMIN, VIEWER, add_users_and_other_app, csrf_of, log_in
from tests.fakes.tiktok_marketing import (  # noqa: F401  (pytest finds fixtures by name)
    FakeTikTokMarketing,
    fake_marketing_fixture,
    fake_marketing_server_fixture,
)
from tests.fixtures import make_settings, seed

ADV = "7002238017842757633"
SCREEN = "/admin/apps/demo/tiktok-ads"


@pytest.fixture()
def console(tmp_path: Path, fake_marketing: FakeTikTokMarketing) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path,
        tiktok_api_url=fake_marketing.base_url,
        tiktok_app_id=fake_marketing.app_id,
        tiktok_app_secret=Secret(fake_marketing.secret),
    )
    seed(settings.db)
    add_users_and_other_app(settings.db)
    fake_marketing.add_advertiser(ADV, currency="EUR", display_timezone="Europe/Berlin")
    with TestClient(create_app(settings, run_jobs=False), base_url="http://gangway.test") as c:
        log_in(c, ADMIN)
        yield c


def errors_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'class="field-error" role="alert" data-field="([^"]+)">([^<]+)<', html))


def save(console: TestClient, **fields: str) -> str:
    form = {
        "csrf_token": csrf_of(console, SCREEN),
        "advertiser_ids": ADV,
        "cost.enabled": "on",
        "cost.backfill_days": "7",
        "cost.pull_every_hours": "12",
        "cost.by_country": "on",
    } | fields
    answer = console.post(SCREEN, data=form)
    return answer.text


def test_the_list_shows_each_app_and_its_state(console: TestClient) -> None:
    page = console.get("/admin/tiktok-ads")
    assert page.status_code == 200
    assert 'href="/admin/tiktok-ads"' in page.text  # the nav entry
    assert "Demo Game" in page.text and "not connected" in page.text
    save(console, access_token="token-1")
    assert 'data-state="connected"' in console.get("/admin/tiktok-ads").text


def test_saving_a_connection_shows_the_advertisers_and_never_the_token(
    console: TestClient,
) -> None:
    html = save(console, access_token="token-1")

    assert 'data-state="connected"' in html
    assert "Europe/Berlin" in html and "EUR" in html
    assert "token-1" not in html and "token-1" not in console.get(SCREEN).text
    assert "never shown again" in html


def test_a_bad_field_is_shown_next_to_it(console: TestClient) -> None:
    html = save(console, advertiser_ids="12ab", access_token="token-1")
    assert "advertiser_ids[0]" in errors_of(html) or "advertiser_ids" in errors_of(html)
    html = save(console, **{"cost.backfill_days": "0"})
    assert "cost.backfill_days" in errors_of(html)


def test_pull_now_shows_the_pull_under_last_pulls(
    console: TestClient, fake_marketing: FakeTikTokMarketing
) -> None:
    save(console, access_token="token-1")
    answer = console.post(
        SCREEN + "/pull", data={"csrf_token": csrf_of(console, SCREEN), "days": "2"},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        html = console.get(SCREEN).text
        if '<span class="badge ok">ok</span>' in html:
            break
        time.sleep(0.02)
    assert "data-pulls" in html and '<span class="badge ok">ok</span>' in html, html
    assert fake_marketing.report_requests()


def test_a_pull_that_died_with_its_server_shows_as_interrupted(
    console: TestClient, tmp_path: Path
) -> None:
    save(console, access_token="token-1")

    async def crashed() -> None:
        store = await open_store(make_settings(tmp_path).db)
        try:
            started = time.time() - STALE_PULL_SECONDS - 60
            await store.tiktok_ads.record_pull(PullRecord("p-1", "demo", "schedule", started))
        finally:
            await store.close()

    run_async(crashed())
    screen, listing = console.get(SCREEN).text, console.get("/admin/tiktok-ads").text
    for html in (screen, listing):
        assert '<span class="badge warn">interrupted</span>' in html
        assert '<span class="badge">running</span>' not in html
    assert "the next pull covers these days" in screen


def test_a_refused_token_is_shown_and_pull_now_is_off(
    console: TestClient, fake_marketing: FakeTikTokMarketing
) -> None:
    fake_marketing.script(code=40105, path="advertiser/info", message="Access token revoked")
    html = save(console, access_token="token-1")
    assert 'data-state="needs_reauth"' in html
    assert "Access token revoked" in html
    assert re.search(r'<button type="submit" class="button" disabled>Pull now', html)


def test_connect_goes_to_tiktok_and_comes_back_connected(
    console: TestClient, fake_marketing: FakeTikTokMarketing
) -> None:
    off = console.post(
        SCREEN + "/connect", data={"csrf_token": csrf_of(console, SCREEN)}, follow_redirects=False
    )
    assert off.status_code == 303
    target = urlsplit(off.headers["location"])
    assert target.path == "/portal/auth"
    state = parse_qs(target.query)["state"][0]
    code = fake_marketing.issue_auth_code([ADV], token="oauth-token")

    back = console.get(
        f"/api/v1/tiktok_ads/oauth/callback?auth_code={code}&state={state}",
        follow_redirects=True,
    )

    assert back.status_code == 200
    assert "Connected to TikTok Ads." in back.text and 'data-state="connected"' in back.text
    disconnected = console.post(
        SCREEN + "/disconnect", data={"csrf_token": csrf_of(console, SCREEN)}
    )
    assert "Disconnected" in disconnected.text and 'data-state="none"' in disconnected.text
    assert not fake_marketing.token_valid("oauth-token")


def test_declining_on_tiktok_comes_back_saying_so(console: TestClient) -> None:
    off = console.post(
        SCREEN + "/connect", data={"csrf_token": csrf_of(console, SCREEN)}, follow_redirects=False
    )
    state = parse_qs(urlsplit(off.headers["location"]).query)["state"][0]
    back = console.get(f"/api/v1/tiktok_ads/oauth/callback?state={state}", follow_redirects=True)
    assert back.status_code == 200 and back.url.path == SCREEN
    assert "Not connected: TikTok sent no authorisation" in back.text
    assert 'data-state="none"' in back.text


def test_a_viewer_cannot_open_the_screens(console: TestClient) -> None:
    console.cookies.clear()
    log_in(console, VIEWER)
    assert console.get("/admin/tiktok-ads").status_code == 403
    assert console.get(SCREEN).status_code == 403
