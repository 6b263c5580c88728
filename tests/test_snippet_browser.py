"""The snippet in real Chromium: every mapping vector, the impression beacon, storage that
throws or lies, data-auto pages, and no exception ever reaching the page."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from app import mapping
from app.paths import SMARTSCRIPT_DIR
from app.snippet_asset import load_script
from tests.mapping_vectors import (
    LANDING_ORIGIN,
    PVID,
    SNIPPET_ORIGIN,
    Case,
    all_cases,
    assert_matches,
)
from tests.snippet_site import Site, open_site

pytestmark = pytest.mark.browser

CASES = all_cases()
CASE_BY_NAME = {c.name: c for c in CASES}
LINK = f"{SNIPPET_ORIGIN}/c/demo"
TIKTOK_LANDING = (
    "/lp/a?pid=tiktokweb_int&c=summer_web&af_c_id=1799&af_adset=broad&af_adset_id=1800"
    "&af_ad=vid1&af_ad_id=1801&ttclid=E.C.P.CsQBabc"
)
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
}


@pytest.fixture()
def site(browser: Any) -> Iterator[Callable[..., Site]]:
    """Opens sites (browser contexts) and, after the test, checks none of them saw a page
    error: no call may ever throw into the page."""
    opened: list[Site] = []

    def open_(**options: Any) -> Site:
        opened.append(open_site(browser, **options))
        return opened[-1]

    yield open_
    for s in opened:
        s.context.close()
    assert [e for s in opened for e in s.page_errors] == []


@pytest.fixture(scope="module")
def vector_site(browser: Any) -> Iterator[Site]:
    # One profile for all vector cases (a context costs more than the case itself);
    # run_case empties its storage after each case, which makes the next one start fresh.
    s = open_site(browser)
    yield s
    s.context.close()


@pytest.fixture(scope="module")
def minified_site(browser: Any) -> Iterator[Site]:
    # What the server sends: minification must not change behaviour.
    s = open_site(browser, snippet=load_script(SMARTSCRIPT_DIR / "smartscript.js").body.decode())
    yield s
    s.context.close()


def run_case(s: Site, case: Case) -> Any:
    for i, visit in enumerate(case.visits):
        s.visit(visit["url"], case.referrer(i))
    try:
        return s.call(case.call, case.args)
    finally:
        s.page.evaluate("localStorage.clear()")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_vector(vector_site: Site, case: Case) -> None:
    s = vector_site
    s.console_errors.clear()
    assert_matches(case, run_case(s, case))
    assert s.page_errors == []
    # Bad input logs one error line; a null that is an answer (skip list, empty pid) logs none.
    assert len(s.console_errors) <= (1 if case.expect is None else 0), s.console_errors


@pytest.mark.parametrize(
    "name",
    [
        "TikTok preset on a TikTok landing URL",
        "landing parameters survive to a second page",
        "values are decoded then encoded once",
        "direct click URL for Steam",
        "keys and values named like object internals are plain data",
        "link without a path is null",
    ],
)
def test_minified_snippet_passes_vectors(minified_site: Site, name: str) -> None:
    case = CASE_BY_NAME[name]
    assert_matches(case, run_case(minified_site, case))
    assert minified_site.page_errors == []


def test_members_exist_synchronously_and_add_no_other_globals(site: Callable[..., Site]) -> None:
    # The inline script runs right after the snippet's tag: no waiting, no load event.
    probe = "<script>window.__members = Object.keys(window.Gangway).sort()</script>"
    s = site(head=probe)
    s.visit("/lp/a")
    members = s.page.evaluate("window.__members")
    assert {
        "generateOneLinkURL",
        "generateDirectClickURL",
        "fireImpressionsLink",
        "displayQrCode",
        "version",
    } <= set(members)
    assert s.page.evaluate("window.Gangway.version") == mapping.SNIPPET_VERSION
    assert s.page.evaluate("window.AF_SMART_SCRIPT === window.Gangway")
    added = s.page.evaluate(
        """() => {
            const frame = document.createElement('iframe');
            document.body.appendChild(frame);
            const clean = new Set(Object.getOwnPropertyNames(frame.contentWindow));
            return Object.getOwnPropertyNames(window)
                .filter(n => !clean.has(n) && !/^([0-9]+|__members)$/.test(n));
        }"""
    )
    assert sorted(added) == ["AF_SMART_SCRIPT", "Gangway"]


def test_impression_fires_at_once_and_only_once_per_link(site: Callable[..., Site]) -> None:
    s = site()
    s.visit(TIKTOK_LANDING, "https://www.tiktok.com/")
    with s.page.expect_request(f"{SNIPPET_ORIGIN}/i/demo"):
        sent = s.page.evaluate(
            """(link) => {
                const r = Gangway.generateOneLinkURL({oneLinkURL: link});
                return [Gangway.fireImpressionsLink(), Gangway.fireImpressionsLink(), r.clickURL];
            }""",
            LINK,
        )
    assert sent[:2] == [True, False]
    # Another link is another impression; it also shows the first link sent exactly one.
    with s.page.expect_request(f"{SNIPPET_ORIGIN}/i/other"):
        assert s.page.evaluate(
            """() => Gangway.generateOneLinkURL({oneLinkURL: 'https://track.example.com/c/other'})
                && Gangway.fireImpressionsLink()"""
        )
    assert [b.url for b in s.beacons] == [f"{SNIPPET_ORIGIN}/i/demo", f"{SNIPPET_ORIGIN}/i/other"]
    beacon = s.beacons[0]
    assert beacon.method == "POST"
    assert beacon.content_type is not None and beacon.content_type.startswith("text/plain")
    payload = beacon.json()
    assert payload["url"] == LANDING_ORIGIN + TIKTOK_LANDING
    assert payload["referrer"] == "https://www.tiktok.com/"
    assert payload["pvid"] == PVID
    # params: the click link's own parameters, so an impression and a click agree.
    assert payload["params"]["pid"] == "tiktokweb_int"
    assert payload["params"]["ttclid"] == payload["params"]["af_sub1"] == "E.C.P.CsQBabc"
    assert sent[2].split("?")[1] == "&".join(
        f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in payload["params"].items()
    )


NO_BEACON = "Object.defineProperty(Navigator.prototype, 'sendBeacon', {value: undefined});"


def test_impression_falls_back_to_fetch_keepalive(site: Callable[..., Site]) -> None:
    s = site(init_script=NO_BEACON)
    s.visit(TIKTOK_LANDING)
    with s.page.expect_request(f"{SNIPPET_ORIGIN}/i/demo") as request:
        assert s.page.evaluate(
            "(l) => !!Gangway.generateOneLinkURL({oneLinkURL: l}) && Gangway.fireImpressionsLink()",
            LINK,
        )
    assert request.value.method == "POST"
    assert json.loads(request.value.post_data)["pvid"] == PVID


def test_impression_falls_back_to_an_image(site: Callable[..., Site]) -> None:
    s = site(init_script=NO_BEACON + "delete window.fetch;")
    s.visit(TIKTOK_LANDING)
    with s.page.expect_request(f"{SNIPPET_ORIGIN}/i/demo?**") as request:
        assert s.page.evaluate(
            "(l) => !!Gangway.generateOneLinkURL({oneLinkURL: l}) && Gangway.fireImpressionsLink()",
            LINK,
        )
    assert request.value.method == "GET"
    assert "&pvid=" + PVID in request.value.url
    assert "ttclid=E.C.P.CsQBabc" in request.value.url


BLOCKED_STORAGE = """
for (const name of ['getItem', 'setItem']) {
  Storage.prototype[name] = () => { throw new DOMException('blocked', 'SecurityError'); };
}
"""


def test_blocked_storage_still_serves_the_current_page(site: Callable[..., Site]) -> None:
    s = site(init_script=BLOCKED_STORAGE)
    s.visit(TIKTOK_LANDING)
    on_landing = s.call("generateOneLinkURL", {"oneLinkURL": LINK})
    assert "c=summer_web" in on_landing and "af_sub1=E.C.P.CsQBabc" in on_landing
    # Memory only: the next page view starts from nothing.
    s.visit("/about", LANDING_ORIGIN + TIKTOK_LANDING)
    on_next = s.call("generateOneLinkURL", {"oneLinkURL": LINK})
    assert "pid=tiktokweb_int" in on_next and "c=" not in on_next
    assert s.console_errors == []


def test_tampered_storage_is_ignored(site: Callable[..., Site]) -> None:
    s = site()
    s.visit(TIKTOK_LANDING)
    for garbage in ['{"t":', "[1, null, {}]", '{"t": 1}', '[{"t": 9e15, "q": {"a": 1}}]']:
        s.page.evaluate(
            "(g) => { localStorage.setItem('gw_incoming', g);"
            " localStorage.setItem('gw_referrer', g); }",
            garbage,
        )
        s.visit("/about?x=1")
        url = s.call("generateOneLinkURL", {"oneLinkURL": LINK, "webReferrer": "r"})
        assert url is not None and "pid=tiktokweb_int" in url, garbage
    assert s.console_errors == []


def test_entries_expire_after_two_hours(site: Callable[..., Site]) -> None:
    s = site()
    s.visit(TIKTOK_LANDING)
    s.visit("/about", LANDING_ORIGIN + TIKTOK_LANDING)
    assert "c=summer_web" in s.call("generateOneLinkURL", {"oneLinkURL": LINK})
    # Age the stored entry past its two hours, then open another page.
    s.page.evaluate(
        """() => {
            const entries = JSON.parse(localStorage.getItem('gw_incoming'));
            for (const e of entries) e.t -= 2 * 3600e3 + 1000;
            localStorage.setItem('gw_incoming', JSON.stringify(entries));
        }"""
    )
    s.visit("/pricing", LANDING_ORIGIN + "/about")
    url = s.call("generateOneLinkURL", {"oneLinkURL": LINK})
    assert "pid=tiktokweb_int" in url and "c=" not in url and "ttclid" not in url


AUTO_BODY = """
<h1>Demo Game</h1>
<a data-gw-cta data-platform="ios" href="/fallback-ios">App Store</a>
<a data-gw-cta data-platform="steam" href="/fallback-steam">Steam</a>
<a data-gw-cta href="/fallback">Get it</a>
<div data-gw-qr></div>
"""


def cta_hrefs(s: Site) -> list[str]:
    return s.page.eval_on_selector_all("a[data-gw-cta]", "as => as.map(a => a.href)")


@pytest.mark.parametrize("options", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_data_auto_sets_the_server_s_hrefs_and_fires_once(
    site: Callable[..., Site], options: dict[str, Any]
) -> None:
    s = site(script_attrs=' data-app="demo" data-auto', body=AUTO_BODY, **options)
    s.visit(TIKTOK_LANDING, "https://www.tiktok.com/")
    s.page.wait_for_function("() => document.querySelector('a[data-gw-cta]').href.includes('/c/')")
    # The Python twin renders the very same links on the server.
    click = mapping.generate_one_link_url(
        {"oneLinkURL": LINK, "afParameters": None},
        LANDING_ORIGIN + TIKTOK_LANDING,
        referrer="https://www.tiktok.com/",
        pvid=PVID,
    )
    assert click is not None
    assert cta_hrefs(s) == [
        mapping.cta_url(click, "ios"),
        mapping.cta_url(click, "steam"),
        click,
    ]
    qr = s.page.eval_on_selector_all("[data-gw-qr] img", "imgs => imgs.map(i => i.src)")
    if options is DESKTOP:
        assert qr == [f"{SNIPPET_ORIGIN}/qr.svg?u=" + quote(click + "&af_ss_qr=true", safe="")]
    else:
        assert qr == []  # a phone is where the app goes; no QR code to scan


def test_data_auto_fires_exactly_one_impression(site: Callable[..., Site]) -> None:
    s = site(script_attrs=' data-app="demo" data-auto', body=AUTO_BODY)
    with s.page.expect_request(f"{SNIPPET_ORIGIN}/i/demo"):
        s.visit(TIKTOK_LANDING)
    # A second fire for the same link is refused, so the one above was the only one.
    assert s.page.evaluate("Gangway.fireImpressionsLink()") is False
    assert len(s.beacons) == 1


def test_data_auto_uses_the_page_mapping_and_ttclid_sub(site: Callable[..., Site]) -> None:
    custom = {"mediaSource": {"keys": ["src"], "defaultValue": "d"}, "afSub1": {"keys": ["promo"]}}
    attrs = (
        ' data-app="demo" data-auto data-ttclid-sub="af_sub1"'
        f" data-mapping='{json.dumps(custom)}'"
    )
    s = site(script_attrs=attrs, body=AUTO_BODY)
    s.visit("/lp/a?src=tt&promo=p1&ttclid=T7")
    s.page.wait_for_function("() => document.querySelector('a[data-gw-cta]').href.includes('/c/')")
    click = mapping.generate_one_link_url(
        {"oneLinkURL": LINK, "afParameters": custom, "ttclidSub": "af_sub1"},
        LANDING_ORIGIN + "/lp/a?src=tt&promo=p1&ttclid=T7",
        pvid=PVID,
    )
    assert click is not None and "af_sub2=T7" in click  # af_sub1 was taken by the mapping
    assert cta_hrefs(s)[-1] == click


def test_data_auto_with_a_broken_mapping_keeps_the_server_links(site: Callable[..., Site]) -> None:
    s = site(script_attrs=' data-app="demo" data-auto data-mapping="{not json"', body=AUTO_BODY)
    s.visit(TIKTOK_LANDING)
    assert cta_hrefs(s)[0] == LANDING_ORIGIN + "/fallback-ios"
    assert len(s.console_errors) == 1


SNIPPETS = {
    "source": None,  # open_site's default: the file as it is in the repository
    "minified": load_script(SMARTSCRIPT_DIR / "smartscript.js").body.decode(),
}
# A campaign name long enough that the click link is over what /qr.svg encodes (2,048 bytes).
LONG_CAMPAIGN = ("summer_sale_" * 250)[:3000]
# What a hosted page renders inside [data-gw-qr] on a desktop (templates/_qr.html).
SERVER_QR = (
    f'<img src="{SNIPPET_ORIGIN}/qr.svg?u=server-rendered" width="232" height="232"'
    ' alt="QR code: scan with your phone to get Demo Game">'
)
# A hosted page on a plain-http LAN host, page and snippet on one origin.
LAN_ORIGIN = "http://192.168.1.5:8000"


def snippet_options(name: str) -> dict[str, Any]:
    return {} if SNIPPETS[name] is None else {"snippet": SNIPPETS[name]}


@pytest.mark.parametrize("snippet", list(SNIPPETS))
def test_data_auto_keeps_the_server_qr_when_the_link_is_too_long(
    site: Callable[..., Site], snippet: str
) -> None:
    body = AUTO_BODY.replace("<div data-gw-qr></div>", f"<div data-gw-qr>{SERVER_QR}</div>")
    s = site(
        script_attrs=' data-app="demo" data-auto', body=body, **DESKTOP, **snippet_options(snippet)
    )
    landing = f"/lp/a?pid=tiktokweb_int&c={LONG_CAMPAIGN}&ttclid=E.C.P.long"
    with s.page.expect_request(f"{SNIPPET_ORIGIN}/i/demo"):
        s.visit(landing)
    s.page.wait_for_function("() => document.querySelector('[data-gw-qr] img').complete")
    click = mapping.generate_one_link_url(
        {"oneLinkURL": LINK, "afParameters": None}, LANDING_ORIGIN + landing, pvid=PVID
    )
    assert click is not None and len(click + "&af_ss_qr=true") > 2048
    # The links are still refined; only the QR code is left to the server.
    assert cta_hrefs(s) == [
        mapping.cta_url(click, "ios"),
        mapping.cta_url(click, "steam"),
        click,
    ]
    assert s.page.inner_html("[data-gw-qr]") == SERVER_QR
    assert [u for u in s.requests if "/qr.svg" in u] == [
        f"{SNIPPET_ORIGIN}/qr.svg?u=server-rendered"
    ]
    assert len(s.beacons) == 1
    assert s.console_errors == []


@pytest.mark.parametrize("snippet", list(SNIPPETS))
def test_data_auto_on_a_plain_http_lan_host(site: Callable[..., Site], snippet: str) -> None:
    s = site(
        script_attrs=' data-app="demo" data-auto',
        body=AUTO_BODY,
        landing_origin=LAN_ORIGIN,
        snippet_origin=LAN_ORIGIN,
        **DESKTOP,
        **snippet_options(snippet),
    )
    with s.page.expect_request(f"{LAN_ORIGIN}/i/demo"):
        s.visit(TIKTOK_LANDING)
    # A second fire for the same link is refused, so the one above was the only one.
    assert s.page.evaluate("Gangway.fireImpressionsLink()") is False
    assert [b.url for b in s.beacons] == [f"{LAN_ORIGIN}/i/demo"]
    payload = s.beacons[0].json()
    assert payload["pvid"] == PVID and payload["url"] == LAN_ORIGIN + TIKTOK_LANDING
    # The server's links on this host (app/web/pages.py builds them the same way: the mapping
    # on a stand-in https link, its own origin put back).
    built = mapping.generate_one_link_url(
        {"oneLinkURL": LINK, "afParameters": None}, LAN_ORIGIN + TIKTOK_LANDING, pvid=PVID
    )
    assert built is not None
    click = f"{LAN_ORIGIN}/c/demo" + built.removeprefix(LINK)
    assert cta_hrefs(s) == [
        mapping.cta_url(click, "ios"),
        mapping.cta_url(click, "steam"),
        click,
    ]
    assert payload["params"]["af_sub1"] == payload["params"]["ttclid"] == "E.C.P.CsQBabc"
    qr = s.page.eval_on_selector_all("[data-gw-qr] img", "imgs => imgs.map(i => i.src)")
    assert qr == [f"{LAN_ORIGIN}/qr.svg?u=" + quote(click + "&af_ss_qr=true", safe="")]
    assert s.console_errors == []
    # The https rule stays for a link the page passes in.
    assert s.call("generateOneLinkURL", {"oneLinkURL": f"{LAN_ORIGIN}/c/demo"}) is None
    assert len(s.console_errors) == 1


def test_display_qr_code_only_for_links_qr_svg_takes(site: Callable[..., Site]) -> None:
    # /qr.svg takes links of up to 2,048 bytes of UTF-8. The é of this link is two bytes, so a
    # link of 2,048 characters (2,049 bytes) is refused, the element left as it was.
    s = site(body='<div id="qr"><p>server QR</p></div>')
    args = {
        "oneLinkURL": f"{SNIPPET_ORIGIN}/c/d\u00e9mo",
        "afParameters": {
            "mediaSource": {"keys": [], "defaultValue": "d"},
            "campaign": {"keys": ["c"]},
        },
    }
    s.visit("/lp/a?c=x")
    short = s.call("generateOneLinkURL", args)
    n = 1 + 2048 - len((short + "&af_ss_qr=true").encode())
    s.visit(f"/lp/a?c={'x' * (n + 1)}")
    over = s.call("generateOneLinkURL", args) + "&af_ss_qr=true"
    assert (len(over), len(over.encode())) == (2048, 2049)
    assert s.page.evaluate("Gangway.displayQrCode('qr')") is False
    assert s.page.inner_html("#qr") == "<p>server QR</p>"
    s.visit(f"/lp/a?c={'x' * n}")
    fits = s.call("generateOneLinkURL", args) + "&af_ss_qr=true"
    assert len(fits.encode()) == 2048
    assert s.page.evaluate("Gangway.displayQrCode('qr')") is True
    s.page.wait_for_function("() => document.querySelector('#qr img').complete")
    assert s.page.locator("#qr img").get_attribute("src") == (
        f"{SNIPPET_ORIGIN}/qr.svg?u=" + quote(fits, safe="")
    )
    assert [u for u in s.requests if "/qr.svg" in u] == [
        f"{SNIPPET_ORIGIN}/qr.svg?u=" + quote(fits, safe="")
    ]
    assert s.console_errors == []


def test_display_qr_code(site: Callable[..., Site]) -> None:
    s = site(body='<div id="qr"></div>')
    s.visit(TIKTOK_LANDING)
    assert s.page.evaluate("Gangway.displayQrCode('qr')") is None  # no link generated yet
    click = s.call("generateOneLinkURL", {"oneLinkURL": LINK})
    assert s.page.evaluate("Gangway.displayQrCode('qr', {codeColor: '#000'})") is True
    img = s.page.locator("#qr img")
    assert img.get_attribute("src") == f"{SNIPPET_ORIGIN}/qr.svg?u=" + quote(
        click + "&af_ss_qr=true", safe=""
    )
    assert img.get_attribute("alt")
    assert s.page.evaluate("Gangway.displayQrCode('nowhere')") is None
    assert len(s.console_errors) == 2


HOSTILE_CALLS = """() => {
    const hostile = [undefined, null, 5, 'x', [], {}, {oneLinkURL: 5},
      {oneLinkURL: 'https://track.example.com/c/demo',
       afParameters: {mediaSource: {get keys() { throw new Error('getter'); }}}},
      {oneLinkURL: 'https://track.example.com/c/demo', afParameters: {mediaSource: {keys: [{}]}}},
      {platform: 'steam', app_id: {}, redirectURL: 'x'},
      {platform: {toLowerCase() { throw 1; }}}];
    const out = [];
    for (const name of ['generateOneLinkURL', 'generateDirectClickURL', 'displayQrCode']) {
      for (const arg of hostile) out.push(Gangway[name](arg));
    }
    out.push(Gangway.fireImpressionsLink());
    return out;
}"""


def test_no_call_throws_into_the_page(site: Callable[..., Site]) -> None:
    s = site()
    s.visit("/lp/a?pid=x")
    answers = s.page.evaluate(HOSTILE_CALLS)
    assert answers == [None] * len(answers)
    assert len(s.console_errors) == len(answers)  # one line each


# Hostile queries are built from these: keys the mapping below reads (and look-alikes), and
# value pieces with broken escapes, bad UTF-8 (a surrogate, a BOM, 0xFF), NUL, separators and
# object internals.
HOSTILE_KEYS = (
    "pid c utm_campaign ttclid TTCLID gclid keyword __proto__ constructor af_sub1 x".split()
)
HOSTILE_PIECES = (
    "a Z 0 % + = ? ; / %00 é %C3 %2 %F0%9F %E2%82 %ED%A0%80 %EF%BB%BF %FF İ constructor %26"
).split() + [" "]


def hostile_query(rng: random.Random) -> str:
    def value() -> str:
        return "".join(rng.choice(HOSTILE_PIECES) for _ in range(rng.randint(0, 5)))

    return "&".join(f"{rng.choice(HOSTILE_KEYS)}={value()}" for _ in range(rng.randint(1, 6)))


TWIN_ARGS = {
    "oneLinkURL": LINK,
    "afParameters": {
        "mediaSource": {
            "keys": ["pid", "utm_source"],
            "defaultValue": "d",
            "overrideValues": {"constructor": "X", "é": "E"},
        },
        "campaign": {"keys": ["c", "utm_campaign"]},
        "afSub2": {"keys": ["af_sub1"]},
        "googleClickIdKey": "af_sub4",
        "afCustom": [
            {"paramKey": "ttclid", "keys": ["__proto__"]},
            {"paramKey": "k w", "keys": ["constructor", "ttclid"]},
        ],
    },
}


def test_the_twins_agree_on_hostile_queries(vector_site: Site) -> None:
    # Seeded, so a failure reproduces.
    rng = random.Random(20261121)
    direct = {**TWIN_ARGS, "platform": "steam", "app_id": "440", "redirectURL": "https://s.test/"}
    for _ in range(20):
        query = hostile_query(rng)
        vector_site.visit("/lp/a?" + query)
        # The server sees the URL the browser requested (percent-encoded the browser's way).
        page_url = vector_site.page.evaluate("document.URL")
        assert vector_site.call("generateOneLinkURL", TWIN_ARGS) == mapping.generate_one_link_url(
            TWIN_ARGS, page_url, pvid=PVID
        ), query
        assert vector_site.call("generateDirectClickURL", direct) == (
            mapping.generate_direct_click_url(direct, page_url, origin=SNIPPET_ORIGIN, pvid=PVID)
        ), query
        vector_site.page.evaluate("localStorage.clear()")
    assert vector_site.page_errors == []
