"""The owner's journey through the console in real Chromium, against a real server and the
fake TikTok (console.md, issue #11's acceptance), and a viewer's. Every screen is
photographed at phone and desktop width into tests/artifacts/console-*.png for a person to
look at."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.paths import ROOT

pytestmark = pytest.mark.browser

OWNER = "owner@example.com"
VIEWER = "watcher@example.com"
PASSWORD = "a long enough password"
ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TTCLID = "E.C.P.console-journey"


def user_create(db: str, email: str, *args: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "user",
            "create",
            "--db",
            db,
            "--email",
            email,
            "--password-stdin",
            *args,
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr


class Owner:
    """One console tab: it screenshots every screen it opens at both widths."""

    def __init__(self, browser: Any, base: str, artifacts: Any) -> None:
        self.context = browser.new_context(viewport=DESKTOP)
        self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        self.page = self.context.new_page()
        self.base = base
        self.artifacts = artifacts
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.foreign: list[str] = []
        self.context.on(
            "request",
            lambda r: self.foreign.append(r.url) if not r.url.startswith(base) else None,
        )

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def shoot(self, name: str) -> None:
        for width, size in (("desktop", DESKTOP), ("phone", PHONE)):
            self.page.set_viewport_size(size)
            self.page.screenshot(
                path=str(self.artifacts / f"console-{name}-{width}.png"), full_page=True
            )
            # Nothing overflows the screen sideways (tables scroll inside their card).
            overflow = self.page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} overflows at {width} width by {overflow}px"
        self.page.set_viewport_size(DESKTOP)

    def log_in(self, email: str) -> None:
        self.goto("/admin")
        assert self.page.url.startswith(self.base + "/admin/login")
        self.page.fill('input[name="email"]', email)
        self.page.fill('input[type="password"]', PASSWORD)
        self.page.click('button:has-text("Log in")')
        self.page.wait_for_url(self.base + "/admin")

    def field_error(self, name: str) -> str:
        return str(self.page.locator(f'.field-error[data-field="{name}"]').inner_text())


def test_the_owner_journey(
    browser: Any, live_server: Any, fake_tiktok: Any, artifacts_dir: Any
) -> None:
    base = live_server.url
    user_create(live_server.db, OWNER)
    owner = Owner(browser, base, artifacts_dir)
    page = owner.page

    owner.goto("/admin/login")
    owner.shoot("login")
    owner.log_in(OWNER)
    owner.shoot("dashboard-demo")

    # -- an app, its sdk_key shown once --------------------------------------------------------
    owner.goto("/admin/apps")
    page.click("summary:has-text('Create an app')")
    page.fill('input[name="app_key"]', "journey")
    page.fill('input[name="name"]', "Journey Quest")
    page.fill('input[name="destinations.ios.store_url"]', "https://apps.apple.com/app/id42")
    page.fill('input[name="destinations.android.store_url"]', "ftp://play.google.com/x")
    page.click('button:has-text("Create app")')
    assert "http(s) URL" in owner.field_error("destinations.android.store_url")
    owner.shoot("apps-error")
    page.fill(
        'input[name="destinations.android.store_url"]',
        "https://play.google.com/store/apps/details?id=com.example.journey",
    )
    page.fill('input[name="destinations.android.app_id"]', "com.example.journey")
    page.click('button:has-text("Create app")')
    sdk_key = page.input_value("#sdk-key")
    assert len(sdk_key) >= 32
    owner.shoot("sdk-key")

    # -- the TikTok integration with two mapped events ----------------------------------------
    page.click("text=Set up the TikTok integration")
    options = page.locator("#tiktok-events option")
    labels = [options.nth(i).get_attribute("label") for i in range(options.count())]
    assert "Purchase (standard)" in labels and "Pay → Purchase" in labels
    assert "Spend_credits → SpendCredits" in labels
    page.fill('input[name="pixel_code"]', "JOURNEYPIXEL")
    page.fill('input[name="access_token"]', "journey-access-token")
    page.fill('input[name="inapp_postbacks.events[0].app_event"]', "af_purchase")
    page.fill('input[name="inapp_postbacks.events[0].partner_event"]', "Purchase")
    page.check('input[name="inapp_postbacks.events[0].include_revenue"]')
    page.fill('input[name="inapp_postbacks.events[1].app_event"]', "af_complete_registration")
    page.fill('input[name="inapp_postbacks.events[1].partner_event"]', "CompleteRegistration")
    page.check('input[name="inapp_postbacks.events[1].include_revenue"]')
    page.click('button:has-text("Save integration")')
    assert "Purchase" in owner.field_error("inapp_postbacks.events[1].include_revenue")
    owner.shoot("integration-error")
    page.uncheck('input[name="inapp_postbacks.events[1].include_revenue"]')
    rows = page.locator("#mapping-rows tr").count()
    page.click('button:has-text("Add a row")')  # the one enhancement of this form
    assert page.locator("#mapping-rows tr").count() == rows + 1
    assert page.input_value(f'input[name="inapp_postbacks.events[{rows}].app_event"]') == ""
    page.fill('input[name="access_token"]', "journey-access-token")
    page.click('button:has-text("Save integration")')
    assert "Saved the TikTok integration" in page.inner_text(".flash")
    assert page.locator(".secret-set .badge").inner_text() == "set"
    assert "journey-access-token" not in page.content()
    owner.shoot("integration")

    # -- a page with the TikTok preset, its link builder ---------------------------------------
    owner.goto("/admin/pages")
    page.fill('input[name="slug"]', "journey")
    page.select_option('select[name="app_key"]', "journey")
    page.click('button:has-text("Make page")')
    page.wait_for_url("**/admin/pages/journey?**")
    page.fill('input[name="headline"]', "Quest on, anywhere")
    assert page.inner_text('[data-preview-target="headline"]') == "Quest on, anywhere"
    page.click('button:has-text("Save page")')
    owner.shoot("page")
    page.click("text=Link builder")
    page.click('button:has-text("Copy destination URL")')
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.input_value("#destination-url")
    assert copied == (
        f"{base}/lp/journey?pid=tiktokweb_int&c=__CAMPAIGN_NAME__&af_c_id=__CAMPAIGN_ID__"
        "&af_adset=__AID_NAME__&af_adset_id=__AID__&af_ad=__CID_NAME__&af_ad_id=__CID__"
    )
    owner.shoot("links")

    # -- TikTok fills the macros; a phone opens the link and taps the CTA ----------------------
    landing = (
        copied.replace("__CAMPAIGN_NAME__", "spring")
        .replace("__CAMPAIGN_ID__", "1799")
        .replace("__AID_NAME__", "broad")
        .replace("__AID__", "17")
        .replace("__CID_NAME__", "v1")
        .replace("__CID__", "9")
        + f"&ttclid={TTCLID}"
    )
    phone = browser.new_context(user_agent=ANDROID_UA, viewport={"width": 360, "height": 780})
    stores: list[str] = []

    def to_store(route: Any) -> None:
        stores.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<title>Play</title>")

    phone.route("https://play.google.com/**", to_store)
    tab = phone.new_page()
    tab.goto(landing)
    assert tab.locator("h1").inner_text() == "Quest on, anywhere"
    tab.locator('a[data-platform="android"]').click()
    tab.wait_for_url("https://play.google.com/**")
    phone.close()
    referrer = parse_qs(urlsplit(stores[0]).query)["referrer"][0]
    assert parse_qs(referrer)["c"] == ["spring"]

    # -- the app reports the install ----------------------------------------------------------
    answer = httpx.post(
        f"{base}/api/v1/installs",
        headers={"Authorization": f"Bearer {sdk_key}"},
        json={
            "app_key": "journey",
            "platform": "android",
            "app_instance_id": "journey-1",
            "install_time": int(time.time()) + 60,
            "install_referrer": referrer,
        },
    )
    assert answer.status_code == 200, answer.text
    install_id = answer.json()["install_id"]
    assert answer.json()["status"] == "attributed"
    fake_tiktok.wait_for_events(1)

    # -- the campaign's cost, uploaded on the cost screen (a bad line shown in place) ----------
    owner.goto("/admin/cost?app=journey")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    page.set_input_files(
        'form[action="/admin/cost/upload"] input[type="file"]',
        files=[
            {
                "name": "spring.csv",
                "mimeType": "text/csv",
                "buffer": (
                    "date,media_source,campaign,campaign_id,adset,ad,cost,currency\n"
                    f"{today},tiktokweb_int,spring,1799,broad,v1,12.50,USD\n"
                    f"{today},tiktokweb_int,spring,1799,broad,v1,oops,USD\n"
                ).encode(),
            }
        ],
    )
    page.click('button:has-text("Upload cost")')
    assert page.get_attribute("[data-imported]", "data-imported") == "1"
    assert page.inner_text('tr[data-line="3"]').split("\t")[:2] == ["3", "cost"]
    assert page.locator('tr[data-source="upload"]').count() == 1
    owner.shoot("cost")

    # -- the dashboard shows the click and the install; the receipt; the postback's JSON -------
    owner.goto("/admin?app=journey")
    assert page.inner_text('[data-metric="clicks"]') == "1"
    assert page.inner_text('[data-metric="installs"]') == "1"
    assert page.inner_text('[data-metric="cost"]') == "12.50"
    assert page.inner_text('[data-metric="ecpi"]') == "12.50"
    assert page.locator('[data-series="installs"] rect.bar').count() == 7
    row = page.locator("tbody tr", has_text="install · attributed")
    assert row.count() == 1
    owner.shoot("dashboard")
    page.click('[data-drill="spring"]')  # a plain link: the drill-down needs no script
    assert page.inner_text("table[data-level] tbody td.name") == "broad"
    owner.shoot("dashboard-adsets")
    owner.goto("/admin?app=journey")
    row.locator("text=Receipt").click()
    page.wait_for_url(f"**/admin/installs/{install_id}")
    assert page.inner_text(".page-head .badge") == "attributed"
    assert "referrer" in page.inner_text(".waterfall")
    owner.shoot("receipt")
    page.click("text=JSON sent")
    for _ in range(50):
        if page.locator(".page-head .badge").inner_text() == "sent":
            break
        time.sleep(0.1)
        page.reload()
    sent = page.inner_text("pre.json")
    assert '"event_source": "web"' in sent and '"event_source_id": "JOURNEYPIXEL"' in sent
    assert TTCLID in sent
    owner.shoot("postback")

    # -- an audience, made through the owner API with the console's session ------------------
    owner.goto("/admin/apps/journey")
    csrf = page.get_attribute('input[name="csrf_token"] >> nth=0', "value")
    made = owner.context.request.put(
        base + "/api/v1/apps/journey/audiences/payers",
        data=json.dumps(
            {
                "advertiser_id": "7002238017842757633",
                "platform": "android",
                "media_source": "tiktokglobal_int",
                "did_event": ["af_purchase"],
            }
        ),  # fmt: skip
        headers={"Content-Type": "application/json", "X-CSRF-Token": str(csrf), "Origin": base},
    )
    assert made.status == 200, made.text()
    owner.goto("/admin/audiences")
    row = page.inner_text("table tbody tr")
    assert "payers" in row and "pending" in row and "not synced yet" in row
    owner.shoot("audiences")

    # -- the other screens, photographed ------------------------------------------------------
    owner.goto("/admin/postbacks")
    page.click("th:has-text('Event')")  # the tables sort in place
    assert page.get_attribute("th:has-text('Event')", "aria-sort") == "ascending"
    owner.shoot("postbacks")
    owner.goto("/admin/apps")
    owner.shoot("apps")
    owner.goto("/admin/apps/journey")
    assert sdk_key not in page.content()
    owner.shoot("app")
    owner.goto("/admin/pages")
    owner.shoot("pages")
    owner.goto("/admin/doctor")
    page.fill(
        'textarea[name="url"]',
        copied.replace("__AID__", "_AID_").replace("pid=tiktokweb_int", "pid=tiktok")
        + "&af_r=https://evil.example/",
    )
    page.click('button:has-text("Check")')
    codes = page.locator(".warning").evaluate_all("els => els.map(e => e.dataset.code)")
    assert codes == ["macro_spelling", "wrong_pid", "redirect_not_allowed"]
    assert "gw_click_id" in page.inner_text('[data-device="android"]')
    owner.shoot("doctor")
    owner.goto("/admin/users")
    assert "tests" in page.inner_text("table >> nth=1")
    owner.shoot("users")

    # -- log out ------------------------------------------------------------------------------
    page.click('button:has-text("Log out")')
    page.wait_for_url("**/admin/login")
    owner.goto("/admin")
    assert page.url.startswith(base + "/admin/login")
    # The two forms refused above answered 400, as they should: nothing else went wrong.
    assert [e for e in owner.errors if "status of 400" not in e] == []
    assert owner.foreign == []
    owner.context.close()


def test_a_viewers_journey(browser: Any, live_server: Any, artifacts_dir: Any) -> None:
    user_create(live_server.db, VIEWER, "--role", "viewer")
    viewer = Owner(browser, live_server.url, artifacts_dir)
    viewer.log_in(VIEWER)
    nav = viewer.page.inner_text("nav")
    assert "Dashboard" in nav and "Postbacks" in nav and "Apps" not in nav
    for path in (
        "/admin/apps",
        "/admin/apps/demo/tiktok",
        "/admin/pages",
        "/admin/doctor",
        "/admin/users",
    ):
        answer = viewer.goto(path)
        assert answer.status == 403, path
    assert "Not allowed" in viewer.page.inner_text("h1")
    viewer.shoot("viewer-refused")
    assert viewer.page.request.get(live_server.url + "/api/v1/apps").status == 403
    viewer.goto("/admin")
    assert re.search(r"viewer", viewer.page.inner_text(".who"))
    viewer.shoot("viewer-dashboard")
    viewer.goto("/admin/cost")
    assert viewer.page.locator('input[type="file"]').count() == 0
    viewer.shoot("viewer-cost")
    dark = browser.new_context(viewport=DESKTOP, color_scheme="dark")
    dark.add_cookies(viewer.context.cookies())
    dark_page = dark.new_page()
    dark_page.goto(live_server.url + "/admin/postbacks")
    dark_page.screenshot(path=str(artifacts_dir / "console-postbacks-dark-desktop.png"))
    dark_page.goto(live_server.url + "/admin?app=journey")
    dark_page.screenshot(path=str(artifacts_dir / "console-dashboard-dark-desktop.png"))
    dark.close()
    # The five refusals above answered 403, as they should: nothing else went wrong.
    assert [e for e in viewer.errors if "status of 403" not in e] == []
    assert viewer.foreign == []
    viewer.context.close()
