"""The smart banner (`smartscript/banner.js`) on a phone in real Chromium: where it goes, what
it links to, how it goes away and stays away, and that it can be used from the keyboard."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app import mapping
from tests.mapping_vectors import LANDING_ORIGIN, PVID, SNIPPET_ORIGIN
from tests.snippet_site import Site, open_site

pytestmark = pytest.mark.browser

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
}
BANNER_TAG = f'<script src="{SNIPPET_ORIGIN}/banner.js"></script>'
LANDING = "/lp/a?pid=tiktokweb_int&c=summer_web&af_c_id=1799&ttclid=E.C.P.abc"
ARTICLE = (
    '<header><h1 id="headline">Demo Game</h1></header>'
    '<p id="intro">Build a kingdom, raid your friends, and play free on your phone.</p>'
    '<img id="hero" alt="" width="340" height="200" style="background:#4a7;display:block">'
    + "".join(f"<p>Paragraph {n} of the story.</p>" for n in range(1, 30))
    + '<p id="last">The end of the page.</p>'
)
SHOW = (
    "(o) => Gangway.showBanner(Object.assign({appKey: 'demo', title: 'Demo Game',"
    " subtitle: 'Free on the App Store', cta: 'Get'}, o || {}))"
)
BANNER = '[role="region"][aria-label="Get the app"]'
# Date.now moved by localStorage.test_days days, so a test can jump past a dismissal.
CLOCK = """
const realNow = Date.now;
Date.now = () => realNow() + (Number(localStorage.getItem('test_days')) || 0) * 864e5;
"""


@pytest.fixture()
def phone(browser: Any) -> Iterator[Callable[..., Site]]:
    opened: list[Site] = []

    def open_(**options: Any) -> Site:
        opened.append(
            open_site(browser, head=BANNER_TAG, body=ARTICLE, init_script=CLOCK, **PHONE, **options)
        )
        return opened[-1]

    yield open_
    for s in opened:
        s.context.close()
    assert [e for s in opened for e in s.page_errors] == []


def box(s: Site, selector: str) -> dict[str, float]:
    found = s.page.locator(selector).bounding_box()
    assert found is not None, selector
    return dict(found)


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def luminance(css_color: str) -> float:
    r, g, b = (int(c) / 255 for c in re.findall(r"\d+", css_color)[:3])
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(fg: str, bg: str) -> float:
    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_banner_on_a_phone(phone: Callable[..., Site], artifacts_dir: Path) -> None:
    s = phone()
    s.visit(LANDING)
    with s.page.expect_request(f"{SNIPPET_ORIGIN}/i/demo"):
        assert s.page.evaluate(SHOW) is True
    banner = box(s, BANNER)
    assert banner["y"] == 0 and banner["width"] == 390  # top of the page, edge to edge
    for content in ("#headline", "#intro", "#hero"):
        assert not overlaps(banner, box(s, content)), content

    click = mapping.generate_one_link_url(
        {"oneLinkURL": f"{SNIPPET_ORIGIN}/c/demo"}, LANDING_ORIGIN + LANDING, pvid=PVID
    )
    assert click is not None
    link = s.page.locator(f"{BANNER} a")
    assert link.get_attribute("href") == mapping.cta_url(click, "ios")
    assert link.inner_text() == "Get"
    assert len(s.beacons) == 1 and s.beacons[0].json()["pvid"] == PVID

    # Readable: every text passes WCAG AA (4.5:1) against what is behind it.
    colors = s.page.evaluate(
        """(sel) => {
            const b = document.querySelector(sel), bg = getComputedStyle(b).backgroundColor;
            const text = [...b.querySelectorAll('div > div')].map(e => getComputedStyle(e).color);
            const a = getComputedStyle(b.querySelector('a'));
            const x = getComputedStyle(b.querySelector('button'));
            return {bg, text, link: [a.color, a.backgroundColor], close: x.color};
        }""",
        BANNER,
    )
    assert all(contrast(c, colors["bg"]) >= 4.5 for c in colors["text"] + [colors["close"]])
    assert contrast(*colors["link"]) >= 4.5
    s.page.screenshot(path=str(artifacts_dir / "banner-phone.png"))


def test_close_button_dismisses_for_the_given_days(phone: Callable[..., Site]) -> None:
    s = phone()
    s.visit(LANDING)
    s.page.evaluate(SHOW, {"days": 3})
    close = s.page.get_by_role("button", name="Close")
    close.click()
    assert s.page.locator(BANNER).count() == 0
    s.page.reload()
    assert s.page.evaluate(SHOW, {"days": 3}) is False
    assert s.page.locator(BANNER).count() == 0
    s.page.evaluate("localStorage.setItem('test_days', '2.9')")
    s.page.reload()
    assert s.page.evaluate(SHOW) is False
    s.page.evaluate("localStorage.setItem('test_days', '3.1')")
    s.page.reload()
    assert s.page.evaluate(SHOW) is True


def test_keyboard_tab_to_close_and_enter(phone: Callable[..., Site]) -> None:
    s = phone()
    s.visit(LANDING)
    s.page.evaluate(SHOW)
    # The banner is the first thing on the page, so the first Tab reaches its close button.
    s.page.keyboard.press("Tab")
    assert s.page.evaluate("document.activeElement.getAttribute('aria-label')") == "Close"
    s.page.keyboard.press("Enter")
    assert s.page.locator(BANNER).count() == 0
    s.page.reload()
    assert s.page.evaluate(SHOW) is False  # remembered (default 7 days)


def test_escape_closes_it(phone: Callable[..., Site]) -> None:
    s = phone()
    s.visit(LANDING)
    s.page.evaluate(SHOW)
    s.page.locator(f"{BANNER} a").focus()
    s.page.keyboard.press("Escape")
    assert s.page.locator(BANNER).count() == 0
    s.page.reload()
    assert s.page.evaluate(SHOW) is False


def test_hide_banner_is_not_a_dismissal(phone: Callable[..., Site]) -> None:
    s = phone()
    s.visit(LANDING)
    s.page.evaluate(SHOW)
    before = box(s, "#headline")["y"]
    assert s.page.evaluate("Gangway.hideBanner()") is True
    assert s.page.locator(BANNER).count() == 0
    assert box(s, "#headline")["y"] < before  # the page takes its space back
    assert s.page.evaluate(SHOW) is True


def test_bottom_banner_never_hides_the_end_of_the_page(phone: Callable[..., Site]) -> None:
    s = phone()
    s.visit(LANDING)
    headline = box(s, "#headline")
    assert s.page.evaluate(SHOW, {"position": "bottom"}) is True
    assert box(s, "#headline") == headline  # nothing above moved
    s.page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    banner, last = box(s, BANNER), box(s, "#last")
    assert banner["y"] + banner["height"] == pytest.approx(844, abs=1)
    assert last["y"] + last["height"] <= banner["y"]
    s.page.evaluate("Gangway.hideBanner()")
    assert s.page.evaluate("document.body.style.paddingBottom") == ""


def test_banner_in_a_container_sits_in_the_flow(phone: Callable[..., Site]) -> None:
    s = phone()
    s.visit(LANDING)
    s.page.evaluate(
        "() => { const d = document.createElement('div'); d.id = 'slot';"
        " document.getElementById('intro').after(d); }"
    )
    assert s.page.evaluate(SHOW, {"containerQuery": "#slot"}) is True
    banner, intro, hero = box(s, BANNER), box(s, "#intro"), box(s, "#hero")
    assert intro["y"] + intro["height"] <= banner["y"]
    assert banner["y"] + banner["height"] <= hero["y"]


def test_bad_options_log_and_answer_null(phone: Callable[..., Site]) -> None:
    s = phone()
    s.visit(LANDING)
    for bad in [
        "{appKey: 'Bad Key'}",
        "{appKey: 'demo', days: -1}",
        "{appKey: 'demo', position: 'left'}",
        "{appKey: 'demo', containerQuery: '#nowhere'}",
        "null",
    ]:
        assert s.page.evaluate(f"Gangway.showBanner({bad})") is None, bad
    assert len(s.console_errors) == 5
    assert s.page.locator(BANNER).count() == 0


def test_blocked_storage_still_dismisses_for_the_page_view(phone: Callable[..., Site]) -> None:
    s = phone()
    s.page.add_init_script(
        "Storage.prototype.setItem = () => { throw new DOMException('no', 'QuotaExceededError') }"
    )
    s.visit(LANDING)
    s.page.evaluate(SHOW)
    s.page.get_by_role("button", name="Close").click()
    assert s.page.evaluate(SHOW) is False
