"""The TikTok Ads screens in Chromium against a real server and the fake Marketing API: an owner
connects by OAuth (TikTok's consent page and back), sees the advertisers' currency and time
zone, pulls now and sees the pull, and disconnects. Screenshots at both widths go to the
artifacts folder; no screen overflows sideways and no script errs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.paths import ROOT
from tests.fakes.tiktok_marketing import (  # noqa: F401  (pytest finds fixtures by name)
    FakeTikTokMarketing,
    fake_marketing_server_fixture,
)
from tests.fixtures import seed

pytestmark = pytest.mark.browser

ADV = "7002238017842757633"
OWNER = "ads-owner@example.com"
PASSWORD = "a long enough password"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def ads_server(
    tmp_path_factory: pytest.TempPathFactory, fake_marketing_server: FakeTikTokMarketing
) -> Iterator[Any]:
    from tests.live import LiveServer

    db = str(tmp_path_factory.mktemp("ads-live") / "gangway.db")
    seed(db)
    done = subprocess.run(
        [sys.executable, "-m", "app", "user", "create", "--db", db, "--email", OWNER,
         "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    server = LiveServer(
        db,
        {
            "GANGWAY_TIKTOK_API_URL": fake_marketing_server.base_url,
            "GANGWAY_TIKTOK_APP_ID": fake_marketing_server.app_id,
            "GANGWAY_TIKTOK_APP_SECRET": fake_marketing_server.secret,
        },
    ).start()
    yield server
    server.stop()


def test_connect_by_oauth_pull_now_and_disconnect(
    browser: Any, ads_server: Any, fake_marketing_server: FakeTikTokMarketing, artifacts_dir: Any
) -> None:
    fake = fake_marketing_server
    fake.reset()
    fake.add_advertiser(ADV, token="seed", currency="EUR", display_timezone="Europe/Berlin")
    base = ads_server.url
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    def shoot(name: str) -> None:
        for width, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.screenshot(path=str(artifacts_dir / f"tiktok-ads-{name}-{width}.png"),
                            full_page=True)  # fmt: skip
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} overflows at {width} width by {overflow}px"
        page.set_viewport_size(DESKTOP)

    page.goto(base + "/admin")
    page.fill('input[name="email"]', OWNER)
    page.fill('input[type="password"]', PASSWORD)
    page.click('button:has-text("Log in")')
    page.wait_for_url(base + "/admin")

    page.click('nav >> text="TikTok Ads"')
    page.wait_for_url(base + "/admin/tiktok-ads")
    assert "not connected" in page.inner_text("main")
    shoot("list")
    page.click('a:has-text("Connect")')
    page.wait_for_url(base + "/admin/apps/demo/tiktok-ads")
    shoot("empty")

    # Off to TikTok's consent page, which confirms at once and sends the owner back.
    page.click('button:has-text("Connect TikTok Ads")')
    page.wait_for_url(base + "/admin/apps/demo/tiktok-ads?connected=1")
    main = page.inner_text("main")
    assert "Connected to TikTok Ads." in main
    assert "Europe/Berlin" in main and "EUR" in main
    assert page.input_value('input[name="advertiser_ids"]') == ADV
    [consent] = fake.consents
    assert consent["redirect_uri"] == base + "/api/v1/tiktok_ads/oauth/callback"
    assert "oauth-token-1" not in page.content()

    page.fill('input[name="days"]', "3")
    page.click('button:has-text("Pull now")')
    page.wait_for_url("**/admin/apps/demo/tiktok-ads?done=*")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and page.locator("[data-pulls] .badge.ok").count() == 0:
        time.sleep(0.2)
        page.reload()
    assert page.locator("[data-pulls] .badge.ok").count() == 1, page.inner_text("main")
    shoot("connected")

    page.click('button:has-text("Disconnect")')
    page.wait_for_url("**/admin/apps/demo/tiktok-ads?done=*")
    assert "Not connected" in page.inner_text("main")
    assert not fake.token_valid("oauth-token-1")
    assert errors == []
    context.close()
