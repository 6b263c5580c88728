"""Probabilistic attribution end to end: an iPhone in Chromium, a real server, the app's install.

The visitor opens the landing page with an iPhone user agent and taps the App Store button (the
App Store is intercepted: the test never leaves 127.0.0.1). The app then reports its install
from the same address with its own SDK user agent and no referrer, as an iOS app does: only
the probabilistic tiers can find the touch. Everything here comes from 127.0.0.1, so each test
uses its own ttclid and app_instance_ids to tell its touches and installs apart.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.__main__ import DEMO_INTEGRATION
from tests.fixtures import IOS_SDK_UA, IPHONE_UA

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class Visit:
    impression_id: str
    store_hits: list[str]


def visit(browser: Any, server: Any, ttclid: str, *, tap: bool, screenshot: Any = None) -> Visit:
    """Open the demo page as an iPhone from a TikTok ad; tap the App Store button if `tap`."""
    context = browser.new_context(
        user_agent=IPHONE_UA, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    store_hits: list[str] = []

    def app_store(route: Any) -> None:
        store_hits.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<title>App Store</title>")

    context.route("https://apps.apple.com/**", app_store)
    page = context.new_page()
    try:
        with page.expect_response(
            lambda r: r.url.startswith(f"{server.url}/i/demo") and r.request.method == "POST"
        ) as beacon:
            page.goto(f"{server.url}/lp/demo?pid=tiktokweb_int&c=ios-summer&ttclid={ttclid}")
        assert beacon.value.status == 202
        impression_id = str(beacon.value.json()["id"])
        # The visitor is on an iPhone: the App Store button comes first.
        first = page.locator("a[data-gw-cta]").first
        assert first.get_attribute("data-platform") == "ios"
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        if tap:
            first.click()
            page.wait_for_url("https://apps.apple.com/**")
    finally:
        context.close()
    return Visit(impression_id, store_hits)


def install(server: Any, instance: str, **fields: Any) -> dict[str, Any]:
    """The iOS app's first launch: from this machine, with its CFNetwork user agent, no
    referrer. The OS version comes from that user agent (Darwin 23.5 is iOS 17.5)."""
    answer = httpx.post(
        f"{server.url}/api/v1/installs",
        headers={"Authorization": f"Bearer {server.sdk_key}", "User-Agent": IOS_SDK_UA},
        json={
            "app_key": "demo",
            "platform": "ios",
            "app_instance_id": instance,
            "device_model": "iPhone15,2",
            "att_status": "authorized",
            # A minute on: an install within seconds of its click is click injection.
            "install_time": int(time.time()) + 60,
            **fields,
        },
        timeout=5.0,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def receipt(server: Any, install_id: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{server.url}/api/v1/installs/{install_id}",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=5.0,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["receipt"])


def click_ids(server: Any, ttclid: str) -> list[str]:
    conn = sqlite3.connect(f"file:{server.db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id FROM clicks WHERE ttclid = ?", [ttclid]).fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows]


@pytest.fixture()
def view_through(live_server: Any) -> Iterator[Any]:
    """Switch the demo integration's view-through; restored afterwards."""

    def switch(on: bool) -> None:
        answer = httpx.put(
            f"{live_server.url}/api/v1/apps/demo/integrations/tiktokweb_int",
            headers={"Authorization": f"Bearer {live_server.admin_token}"},
            json=DEMO_INTEGRATION | {"view_through": on},
            timeout=5.0,
        )
        assert answer.status_code == 200, answer.text

    yield switch
    switch(True)


def test_an_iphone_cta_tap_attributes_the_app_install_to_that_click(
    browser: Any, live_server: Any, artifacts_dir: Any
) -> None:
    ttclid = "E.C.P.iphone-tap"
    seen = visit(
        browser, live_server, ttclid, tap=True, screenshot=artifacts_dir / "attribution-iphone.png"
    )
    assert seen.store_hits == ["https://apps.apple.com/app/id1234567890"]
    [click_id] = click_ids(live_server, ttclid)

    answer = install(live_server, "iphone-tapped")
    assert answer["status"] == "attributed"
    assert answer["match_type"] == "probabilistic_click"
    assert answer["touch"]["type"] == "click"
    assert answer["touch"]["id"] == click_id
    assert (answer["media_source"], answer["ttclid"]) == ("tiktokglobal_int", ttclid)
    assert answer["campaign"] == "ios-summer"
    signals = receipt(live_server, answer["install_id"])["signals"]
    assert signals == {
        "ip": "equal",
        "os": "equal",
        "os_version": "equal",
        "device_model": "equal",
    }

    # Another phone, elsewhere, opening the app at the same time: nothing of ours led to it.
    elsewhere = install(live_server, "iphone-elsewhere", ip="198.51.100.23")
    assert elsewhere["status"] == "organic"
    assert elsewhere["media_source"] == "organic"


def test_a_page_view_alone_attributes_only_with_view_through_on(
    browser: Any, live_server: Any, view_through: Any
) -> None:
    seen = visit(browser, live_server, "E.C.P.iphone-view", tap=False)
    assert seen.store_hits == []

    view_through(True)
    on = install(live_server, "iphone-viewed")
    assert on["status"] == "attributed"
    assert on["match_type"] == "probabilistic_impression"
    assert on["touch"] == {**on["touch"], "type": "impression", "id": seen.impression_id}
    assert on["ttclid"] == "E.C.P.iphone-view"

    view_through(False)
    off = install(live_server, "iphone-viewed-off")
    assert off["status"] == "organic"
    impressions = next(
        t
        for t in receipt(live_server, off["install_id"])["tiers"]
        if t["tier"] == "probabilistic_impression"
    )
    reasons = {loser["id"]: loser["reason"] for loser in impressions["losers"]}
    assert reasons[seen.impression_id] == "not_view_through"
