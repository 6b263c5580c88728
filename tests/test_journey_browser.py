"""The walking skeleton, end to end in real Chromium against a real server and a fake TikTok:
landing page -> CTA -> click -> Google Play with our referrer -> install -> TikTok postback."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fixtures import ANDROID_UA

pytestmark = pytest.mark.browser

TTCLID = "E.C.P.test"


def test_landing_page_to_install_postback(
    browser: Any, live_server: Any, fake_tiktok: Any, artifacts_dir: Any
) -> None:
    context = browser.new_context(user_agent=ANDROID_UA, viewport={"width": 412, "height": 915})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    # The store is not ours to visit: stop the navigation there and note where it went.
    store_hits: list[str] = []

    def to_store(route: Any) -> None:
        store_hits.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<title>Play</title>")

    context.route("https://play.google.com/**", to_store)

    page.goto(f"{live_server.url}/lp/demo?pid=tiktokweb_int&c=summer&ttclid={TTCLID}")
    assert page.title() == "Demo Game"
    page.screenshot(path=str(artifacts_dir / "journey-android.png"), full_page=True)

    cta = page.locator('a[data-platform="android"]')
    href = cta.get_attribute("href")
    assert href is not None
    parts = urlsplit(href)
    assert parts.path == "/c/demo"
    query = parse_qs(parts.query)
    assert query["pid"] == ["tiktokweb_int"]
    assert query["c"] == ["summer"]
    assert query["ttclid"] == [TTCLID]
    assert query["af_sub1"] == [TTCLID]
    # The visitor is on Android: its store comes first.
    assert page.locator("a[data-gw-cta]").first.get_attribute("data-platform") == "android"

    cta.click()
    page.wait_for_url("https://play.google.com/**")
    assert len(store_hits) == 1
    store = urlsplit(store_hits[0])
    assert store.path == "/store/apps/details"
    store_query = parse_qs(store.query)
    assert store_query["id"] == ["com.example.game"]
    referrer = store_query["referrer"][0]
    click_id = parse_qs(referrer)["gw_click_id"][0]
    assert parse_qs(referrer)["pid"] == ["tiktokweb_int"]
    assert errors == []
    context.close()

    # The app opens for the first time and reports its Play install referrer.
    answer = httpx.post(
        f"{live_server.url}/api/v1/installs",
        headers={"Authorization": f"Bearer {live_server.sdk_key}"},
        json={
            "app_key": "demo",
            "platform": "android",
            "app_instance_id": "journey-device-1",
            "ip": "198.51.100.7",
            # A minute after the click: an install seconds after its click is click injection.
            "install_time": int(time.time()) + 60,
            "install_referrer": referrer,
        },
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["status"] == "attributed"
    assert data["match_type"] == "referrer"
    assert data["media_source"] == "tiktokglobal_int"
    assert data["original_media_source"] == "tiktokweb_int"
    assert data["touch"]["id"] == click_id
    assert data["ttclid"] == TTCLID
    assert data["campaign"] == "summer"

    events = fake_tiktok.wait_for_events(1)
    assert fake_tiktok.violations == []
    assert len(events) == 1
    event = events[0]
    assert event["event"] == "Download"
    assert event["event_id"] == data["install_id"]
    assert event["user"]["ttclid"] == TTCLID
    assert event["user"]["user_agent"] == ANDROID_UA
    assert event["page"]["url"].startswith(f"{live_server.url}/lp/demo?")
    request = fake_tiktok.requests[0]
    assert request.body["event_source"] == "web"
    assert request.body["event_source_id"] == "DEMOPIXEL0000000000"
