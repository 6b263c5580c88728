"""The hosted landing page in real Chromium, as an iPhone, an Android phone and a desktop see it.

Against the module's real server (seeded demo app and page). Each visit records every request
the page makes, its console errors and uncaught exceptions. A CTA tap goes to our real click
endpoint (the click is recorded as usual); its 302 is read and the store page stood in for, so
nothing leaves this machine. (Chromium follows a redirect past Playwright's routing, fails the
name lookup and retries a second later: slow for twelve taps. The journey test follows one
redirect for real.) Screenshots of each viewport go to tests/artifacts/ for a person to look at.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import zxingcpp

from tests.fixtures import ANDROID_UA, DESKTOP_UA, IPHONE_UA

pytestmark = pytest.mark.browser

DEVICES: dict[str, dict[str, Any]] = {
    "iphone": {
        "user_agent": IPHONE_UA,
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
    # 360 px: the narrowest phone the page promises to be readable on.
    "android": {
        "user_agent": ANDROID_UA,
        "viewport": {"width": 360, "height": 780},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
    "desktop": {"user_agent": DESKTOP_UA, "viewport": {"width": 1280, "height": 800}},
}
# The demo page's CTAs are ios, android, apk, steam: each visitor's own store comes first.
OWN_FIRST = {"iphone": "ios", "android": "android", "desktop": "steam"}
STORES = {
    "ios": "https://apps.apple.com/app/id1234567890",
    "android": "https://play.google.com/store/apps/details",
    "apk": "https://cdn.example.com/game.apk",
    "steam": "https://store.steampowered.com/app/440/",
}
TTCLID = "E.C.P.CsQBabc-123_xyz"
LANDING_QUERY = {
    "pid": "tiktokweb_int",
    "c": "summer sale",
    "af_c_id": "1799",
    "af_adset": "broad",
    "af_ad": "video 1",
    "ttclid": TTCLID,
}


@dataclass
class Visit:
    """One browser context and page, with what it did."""

    context: Any
    page: Any
    origin: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    # Where our click endpoint sent each tap (its 302 Location), in order.
    redirects: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def tap(self, platform: str) -> str:
        """Tap a CTA; answer where the click endpoint redirected to."""
        before = len(self.redirects)
        self.page.locator(f'a[data-platform="{platform}"]').click()
        self.page.wait_for_url("**/c/demo?**")
        assert len(self.redirects) == before + 1
        return self.redirects[-1]

    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(self.origin + "/")]

    def pvid(self) -> str:
        found = self.page.locator('meta[name="gw-pvid"]').get_attribute("content")
        assert found
        return str(found)

    def ctas(self) -> list[tuple[str, str]]:
        """(platform, href) of every CTA, in page order."""
        return [
            (a.get_attribute("data-platform"), a.get_attribute("href"))
            for a in self.page.locator("a[data-gw-cta]").all()
        ]


@pytest.fixture()
def visit(browser: Any, live_server: Any) -> Iterator[Any]:
    opened: list[Visit] = []

    def open_(device: str, **options: Any) -> Visit:
        context = browser.new_context(**DEVICES[device], **options)
        page = context.new_page()
        v = Visit(context, page, live_server.url)
        context.on("request", lambda r: v.requests.append(r.url))
        page.on("console", lambda m: v.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: v.console_errors.append(str(e)))

        def on_dialog(dialog: Any) -> None:
            v.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)

        def follow_click(route: Any) -> None:
            answer = route.fetch(max_redirects=0)
            assert answer.status == 302
            v.redirects.append(answer.headers["location"])
            route.fulfill(status=200, content_type="text/html", body="<title>store</title>")

        context.route(f"{live_server.url}/c/**", follow_click)
        opened.append(v)
        return v

    yield open_
    for v in opened:
        v.context.close()


def landing_url(live_server: Any, query: dict[str, str] | None = None) -> str:
    return f"{live_server.url}/lp/demo?" + urlencode(LANDING_QUERY if query is None else query)


def open_landing(v: Visit, url: str) -> dict[str, Any]:
    """Load the page and wait for the snippet's impression beacon; answer the beacon's JSON."""
    with v.page.expect_response(lambda r: "/i/demo" in r.url) as beacon:
        v.page.goto(url)
    response = beacon.value
    assert response.status == 202
    return dict(response.json())


def db_rows(live_server: Any, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Read the live server's database (read-only: the server is its only writer)."""
    conn = sqlite3.connect(f"file:{live_server.db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


@pytest.mark.parametrize("device", ["iphone", "android", "desktop"])
def test_page_renders_own_store_first_and_counts_one_impression(
    visit: Any, live_server: Any, artifacts_dir: Any, device: str
) -> None:
    v = visit(device)
    url = landing_url(live_server)
    beacon = open_landing(v, url)
    pvid = v.pvid()
    v.page.screenshot(path=str(artifacts_dir / f"landing-{device}.png"), full_page=True)

    assert v.page.title() == "Demo Game"
    assert v.page.locator("h1").inner_text() == "Build, battle, and play free"
    ctas = v.ctas()
    assert [p for p, _ in ctas][0] == OWN_FIRST[device]
    assert sorted(p for p, _ in ctas) == ["android", "apk", "ios", "steam"]
    first = v.page.locator("a[data-gw-cta]").first
    assert "cta-primary" in (first.get_attribute("class") or "")
    assert " ".join(first.text_content().split()) in (
        "Download on the App Store",
        "Get it on Google Play",
        "Play on Steam",
    )
    for platform, href in ctas:
        q = query_of(href)
        assert urlsplit(href).path == "/c/demo"
        assert q["pid"] == ["tiktokweb_int"] and q["c"] == ["summer sale"]
        assert q["ttclid"] == [TTCLID] and q["af_sub1"] == [TTCLID]
        assert q["pvid"] == [pvid] and q["platform"] == [platform]

    # The desktop gets a QR code of the click URL; phones do not.
    qr = v.page.locator("[data-gw-qr] img")
    assert qr.count() == (1 if device == "desktop" else 0)

    # Exactly one impression for this page view; a repeated beacon changes nothing.
    rows = db_rows(live_server, "SELECT * FROM impressions WHERE pvid = ?", pvid)
    assert len(rows) == 1
    assert rows[0]["id"] == beacon["id"]
    assert rows[0]["page_slug"] == "demo"
    assert rows[0]["original_url"] == url
    assert rows[0]["ttclid"] == TTCLID and rows[0]["c"] == "summer sale"
    again = v.page.evaluate(
        """async (pvid) => {
            const body = JSON.stringify(
                {url: document.URL, referrer: '', pvid, params: {pid: 'x'}});
            const r = await fetch(
                '/i/demo', {method: 'POST', body, headers: {'Content-Type': 'text/plain'}});
            return [r.status, await r.json(), Gangway.fireImpressionsLink()];
        }""",
        pvid,
    )
    assert again == [202, {"id": beacon["id"]}, False]
    assert len(db_rows(live_server, "SELECT id FROM impressions WHERE pvid = ?", pvid)) == 1

    assert v.console_errors == []
    assert v.foreign_requests() == []


def qr_pixels(page: Any, selector: str) -> tuple[int, int, bytes]:
    """The QR image as the browser shows it, drawn on a white canvas: (width, height, grey
    bytes). Drawn, not re-fetched: this is what a phone camera would see on the screen."""
    found = page.eval_on_selector(
        selector,
        """async (img) => {
            await img.decode();
            const size = 360, pad = 40, side = size + 2 * pad;
            const canvas = document.createElement('canvas');
            canvas.width = canvas.height = side;
            const g = canvas.getContext('2d');
            g.fillStyle = '#fff';
            g.fillRect(0, 0, side, side);
            g.drawImage(img, pad, pad, size, size);
            const rgba = g.getImageData(0, 0, side, side).data;
            let grey = '';
            for (let i = 0; i < rgba.length; i += 4) grey += String.fromCharCode(rgba[i + 1]);
            return {side, grey: btoa(grey)};
        }""",
    )
    return found["side"], found["side"], base64.b64decode(found["grey"])


def decode_qr(width: int, height: int, grey: bytes) -> list[str]:
    image = memoryview(grey).cast("B", shape=[height, width])
    return [b.text for b in zxingcpp.read_barcodes(image)]


def test_desktop_qr_code_decodes_to_the_click_url(visit: Any, live_server: Any) -> None:
    v = visit("desktop")
    open_landing(v, landing_url(live_server))
    v.page.wait_for_function(
        "() => { const i = document.querySelector('[data-gw-qr] img'); return i && i.complete }"
    )
    steam_href = dict(v.ctas())["steam"]
    click_url = steam_href.removesuffix("&platform=steam")
    decoded = decode_qr(*qr_pixels(v.page, "[data-gw-qr] img"))
    assert decoded == [click_url + "&af_ss_qr=true"]
    q = query_of(decoded[0])
    assert q["pid"] == ["tiktokweb_int"] and q["ttclid"] == [TTCLID]
    assert q["pvid"] == [v.pvid()] and "platform" not in q
    assert v.console_errors == []


@pytest.mark.parametrize("device", ["iphone", "android", "desktop"])
def test_each_cta_lands_on_its_store(visit: Any, live_server: Any, device: str) -> None:
    v = visit(device)
    url = landing_url(live_server)
    for platform, store in STORES.items():
        open_landing(v, url)
        pvid = v.pvid()
        landed = v.tap(platform)
        assert landed.startswith(store)
        click = db_rows(live_server, "SELECT * FROM clicks WHERE pvid = ?", pvid)
        assert len(click) == 1
        assert click[0]["platform"] == platform
        assert click[0]["destination"] == landed
        assert click[0]["original_url"] == url
        assert click[0]["ttclid"] == TTCLID and click[0]["af_sub1"] == TTCLID
        if platform == "android":
            referrer = parse_qs(query_of(landed)["referrer"][0])
            assert query_of(landed)["id"] == ["com.example.game"]
            assert referrer["gw_click_id"] == [click[0]["id"]]
            assert referrer["pid"] == ["tiktokweb_int"] and referrer["c"] == ["summer sale"]
    assert v.console_errors == []


def test_with_javascript_off_links_and_pixel_still_work(visit: Any, live_server: Any) -> None:
    v = visit("android", java_script_enabled=False)
    url = landing_url(live_server)
    with v.page.expect_response(lambda r: "/i/demo" in r.url) as pixel:
        v.page.goto(url)
    assert pixel.value.status == 200
    assert pixel.value.header_value("content-type") == "image/gif"
    pvid = v.pvid()
    for _, href in v.ctas():
        q = query_of(href)
        assert q["pid"] == ["tiktokweb_int"]
        assert q["ttclid"] == [TTCLID] and q["af_sub1"] == [TTCLID]
    rows = db_rows(live_server, "SELECT * FROM impressions WHERE pvid = ?", pvid)
    assert len(rows) == 1
    assert rows[0]["original_url"] == url and rows[0]["page_slug"] == "demo"
    assert json.loads(rows[0]["params"])["c"] == "summer sale"
    assert rows[0]["ttclid"] == TTCLID
    assert v.foreign_requests() == []
    # The links work without the snippet too.
    assert v.tap("android").startswith(STORES["android"])


HOSTILE = [
    ("c", "<script>window.__pwned=1;alert(1)</script>"),
    ("af_ad", '"\'><img src=x onerror="window.__pwned=2;alert(2)">'),
    ("af_adset", "javascript:alert(3)"),
    ("af_r", "javascript:alert(4)//example.com"),
    ("af_sub2", "A" * 10_000),
    ("af_c_id", "\x00nul"),
    ("c", "second value"),
]


@pytest.mark.parametrize("device", ["android", "desktop"])
def test_a_hostile_query_never_executes_or_breaks_the_page(
    visit: Any, live_server: Any, device: str
) -> None:
    v = visit(device)
    # Broken percent-encoding and a repeated key, written by hand: urlencode would fix them.
    url = (
        f"{live_server.url}/lp/demo?{urlencode(HOSTILE)}&af_siteid=%E0%A4%A&x=%ZZ%&ttclid={TTCLID}"
    )
    open_landing(v, url)
    assert v.page.title() == "Demo Game"
    assert v.page.locator("h1").inner_text() == "Build, battle, and play free"
    assert v.page.evaluate("() => window.__pwned") is None
    assert v.page.locator("img[src=x]").count() == 0
    assert v.dialogs == []
    ctas = v.ctas()
    assert len(ctas) == 4 and ctas[0][0] == OWN_FIRST[device]
    href = ctas[0][1]
    assert urlsplit(href).path == "/c/demo"
    assert query_of(href)["c"] == [HOSTILE[0][1]]
    # Following a link still reaches the store, never the javascript: URL.
    assert v.tap("steam") == STORES["steam"]
    assert v.dialogs == []
    assert v.console_errors == []
