"""Hostile input on the public surface: never a 500, never markup of the attacker's, never a
redirect to a host the owner did not configure, and every stored value bounded.

Each hostile query is sent to every public endpoint that reads a query. The app runs with
`raise_server_exceptions=False`, so a bug shows up as the 500 a visitor would get. (The real
browser check, that nothing executes, is in test_landing_browser.py.)
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from app.server import create_app
from app.settings import Settings
from app.web.errors import ApiError, read_body
from tests.aio import run_async
from tests.fixtures import DESKTOP_UA, IPHONE_UA

ORIGIN = "https://gangway.test"
CONFIGURED_HOSTS = {
    "apps.apple.com",
    "play.google.com",
    "cdn.example.com",
    "store.steampowered.com",
    "example.com",
}
TEN_KB = "A" * 10_240

# Raw query strings, written by hand: a URL library would repair most of them.
HOSTILE_QUERIES = {
    "script tag": "c=<script>alert(1)</script>&pid=tiktokweb_int",
    "encoded script tag": "c=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "attribute breakout": (
        "c=%22'%3E%3Cimg%20src=x%20onerror=alert(1)%3E&af_ad='\"><svg/onload=alert(2)>"
    ),
    "javascript urls": "af_r=javascript:alert(1)&af_web_dp=javascript:alert(2)&c=javascript:x",
    "data url": "af_r=data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "10 KB value": f"c={TEN_KB}&ttclid={TEN_KB}&pvid={TEN_KB}&platform={TEN_KB}",
    "10 KB key": f"{TEN_KB}=1",
    "broken percent-encoding": "c=%E0%A4%A&af_ad=%ZZ&af_adset=%&ttclid=%FF%FE&%=%%",
    "encoded surrogate": "c=%ED%A0%80&ttclid=%F0%9F%98%80",
    "nul bytes": "c=a%00b&%00=x&pvid=%00&platform=ios%00",
    "repeated keys": "c=&c=one&c=two&pid=&pid=a&pid=b&platform=steam&platform=ios",
    "many params": "&".join(f"k{i}=v" for i in range(300)),
    "only separators": "&&&==&=&?&#",
    "prototype keys": "__proto__=x&constructor=y&hasOwnProperty=z",
    "path tricks": "platform=../../etc/passwd&af_r=/%2F%2Fevil.example",
    "crlf": "c=a%0D%0ASet-Cookie:%20x=1&af_r=https://example.com/%0D%0ALocation:%20https://evil.example/",
    "open redirect tricks": "af_r=https://example.com@evil.example/&af_web_dp=//evil.example",
    "unicode host": "af_r=https://example%E3%80%82com/&af_web_dp=https://%D0%B5xample.com/",
}


@pytest.fixture()
def web(settings: Settings, seeded: tuple[str, str]) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(
        app,
        base_url=ORIGIN,
        client=("203.0.113.9", 40000),
        raise_server_exceptions=False,
        follow_redirects=False,
    ) as c:
        yield c


def stored(settings: Settings, table: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(settings.db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        conn.close()


def assert_redirect_is_configured(answer: Any) -> None:
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert "\r" not in location and "\n" not in location
    parts = urlsplit(location)
    assert parts.scheme == "https" and parts.hostname in CONFIGURED_HOSTS, location
    assert "set-cookie" not in answer.headers


def assert_bounded(row: dict[str, Any]) -> None:
    for column, value in row.items():
        if isinstance(value, str):
            assert "\x00" not in value, column
            assert len(value.encode()) <= 64 * 1024, column
    for key, value in json.loads(row["params"]).items():
        assert len(key.encode()) <= 128 and len(value.encode()) <= 1024
    assert len(json.loads(row["params"])) <= 64
    if row["ttclid"]:
        assert len(row["ttclid"].encode()) <= 1024
    if row["pvid"]:
        assert len(row["pvid"]) <= 64


@pytest.mark.parametrize("query", HOSTILE_QUERIES.values(), ids=HOSTILE_QUERIES.keys())
@pytest.mark.parametrize("ua", [IPHONE_UA, DESKTOP_UA], ids=["phone", "desktop"])
def test_the_landing_page_renders_hostile_queries_as_inert_text(
    web: TestClient, query: str, ua: str
) -> None:
    answer = web.get(f"/lp/demo?{query}", headers={"user-agent": ua})
    assert answer.status_code == 200
    html = answer.text
    assert html.rstrip().endswith("</html>")
    assert len(re.findall(r"<a class=\"cta ", html)) == 4
    # The only scripts are ours; no attacker tag or handler survives as markup.
    assert re.findall(r"<script\b", html) == ["<script"]
    assert "<img src=x" not in html and "<svg/onload" not in html
    assert not re.search(r"\son(error|load)=", html)
    for url in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert url.startswith("/") or url.startswith(ORIGIN + "/"), url
    assert "javascript:" not in "".join(re.findall(r'href="([^"]*)"', html))


@pytest.mark.parametrize("query", HOSTILE_QUERIES.values(), ids=HOSTILE_QUERIES.keys())
def test_touch_endpoints_take_hostile_queries_without_breaking(
    web: TestClient, settings: Settings, query: str
) -> None:
    pixel = web.get(f"/i/demo?{query}")
    assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
    for ua in (IPHONE_UA, DESKTOP_UA):
        assert_redirect_is_configured(web.get(f"/c/demo?{query}", headers={"user-agent": ua}))
    assert_redirect_is_configured(web.get(f"/v1.0/c2s/click/app/steam/440?{query}"))
    beacon = json.dumps({"url": f"{ORIGIN}/lp/demo?{query}", "referrer": query[:2000]})
    answer = web.post("/i/demo", content=beacon, headers={"content-type": "text/plain"})
    assert answer.status_code == 202
    touches = stored(settings, "impressions") + stored(settings, "clicks")
    assert len(touches) == 5
    for row in touches:
        assert_bounded(row)


def test_over_long_values_are_truncated_and_flagged(web: TestClient, settings: Settings) -> None:
    web.get(f"/c/demo?{HOSTILE_QUERIES['10 KB value']}")
    (row,) = stored(settings, "clicks")
    assert row["c"] == "A" * 512 and row["ttclid"] == "A" * 1024
    assert set(row["flags"].split(",")) >= {"truncated", "ttclid_truncated"}


def test_repeated_keys_keep_the_first_non_empty_value(web: TestClient, settings: Settings) -> None:
    answer = web.get(f"/c/demo?{HOSTILE_QUERIES['repeated keys']}")
    assert answer.headers["location"] == "https://store.steampowered.com/app/440/"
    (row,) = stored(settings, "clicks")
    assert (row["c"], row["pid"], row["platform"]) == ("one", "a", "steam")


def test_hostile_redirects_are_refused_and_flagged(web: TestClient, settings: Settings) -> None:
    for name in ("javascript urls", "open redirect tricks", "unicode host", "crlf", "data url"):
        web.get(f"/c/demo?{HOSTILE_QUERIES[name]}", headers={"user-agent": DESKTOP_UA})
    for row in stored(settings, "clicks"):
        assert "redirect_rejected" in row["flags"].split(",")
        assert row["destination"] == "https://example.com/"


# Each hostile header, with what the impression it arrives on must store: what the owner sees.
# Every other column is only held to its bounds (`assert_bounded`).
HOSTILE_HEADERS: dict[str, tuple[dict[str, str], dict[str, Any], set[str]]] = {
    "user-agent 10 KB": ({"user-agent": TEN_KB}, {"user_agent": "A" * 1024}, {"truncated"}),
    "user-agent control characters": (
        {"user-agent": "Mozilla/5.0 \x01\x7f (iPhone)"},
        {"os_family": "ios"},
        set(),
    ),
    "referer javascript": ({"referer": "javascript:alert(1)"}, {"page_slug": None}, set()),
    "referer 10 KB": (
        {"referer": f"{ORIGIN}/lp/demo?c={TEN_KB}"},
        {"page_slug": "demo", "original_url": f"{ORIGIN}/lp/demo?c={TEN_KB}"[:4096]},
        {"truncated"},
    ),
    "referer bad ipv6": ({"referer": "http://[::1"}, {"page_slug": None}, set()),
    # No proxy is trusted, so a forged chain is ignored: the peer is the visitor.
    "x-forwarded-for": (
        {"x-forwarded-for": "not-an-ip, <script>, 999.1.1.1"},
        {"ip": "203.0.113.9"},
        set(),
    ),
    "accept-language 10 KB": ({"accept-language": TEN_KB}, {"language": "A" * 256}, set()),
    # A pixel from an origin the app does not list is refused (403): no row, checked below.
    "origin null": ({"origin": "null"}, {}, set()),
    "sec-gpc": ({"sec-gpc": "<1>"}, {"gpc": 0}, set()),
    "cloudfront-viewer-country": (
        {"cloudfront-viewer-country": "<script>"},
        {"country": None},
        set(),
    ),
    "cookie 10 KB": ({"cookie": "a=" + TEN_KB}, {}, set()),
}


def assert_not_reflected(answer: Any, headers: dict[str, str]) -> None:
    """No hostile header value comes back in the body or a header of the answer. (Short plain
    words such as "null" are skipped: they are in any JSON.)"""
    echoed = answer.text + "\n" + "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
    for value in headers.values():
        if len(value) >= 8 or "<" in value:
            assert value not in echoed, (answer.request.url.path, value[:80])


@pytest.mark.parametrize(
    ("headers", "expected", "expected_flags"),
    HOSTILE_HEADERS.values(),
    ids=HOSTILE_HEADERS.keys(),
)
def test_hostile_headers_never_break_a_touch(
    web: TestClient,
    settings: Settings,
    headers: dict[str, str],
    expected: dict[str, Any],
    expected_flags: set[str],
) -> None:
    page = web.get("/lp/demo?pid=x", headers=headers)
    assert page.status_code == 200
    assert re.findall(r"<script\b", page.text) == ["<script"]
    assert_not_reflected(page, headers)
    click = web.get("/c/demo?pid=x", headers=headers)
    assert_redirect_is_configured(click)
    assert_not_reflected(click, headers)

    pixel = web.get("/i/demo?pid=x", headers=headers)
    assert_not_reflected(pixel, headers)
    impressions = stored(settings, "impressions")
    if "origin" in headers:
        assert pixel.status_code == 403, pixel.text
        assert pixel.json()["error"] == "origin_not_allowed"
        assert impressions == []
    else:
        assert pixel.status_code == 200, pixel.text
        assert pixel.headers["content-type"] == "image/gif"
        assert pixel.content.startswith(b"GIF8")
        (row,) = impressions
        assert (row["app_key"], row["pid"], row["ip"]) == ("demo", "x", "203.0.113.9")
        assert {column: row[column] for column in expected} == expected
        assert set(filter(None, row["flags"].split(","))) == expected_flags

    for row in stored(settings, "clicks") + impressions:
        assert_bounded(row)
        assert row["user_agent"] is None or len(row["user_agent"]) <= 1024
        assert row["language"] is None or len(row["language"]) <= 256
        assert row["referrer"] is None or len(row["referrer"]) <= 4096


@pytest.mark.parametrize(
    "body",
    [
        {"url": "\ud800", "referrer": "\udfff", "pvid": "p\ud800v", "params": {"c": "\ud83d"}},
        {"url": f"{ORIGIN}/lp/demo?c=\x00", "params": {"\x00": "\x00", "c": "a\x00b"}},
        {"params": {f"k{i}": "v" * 600 for i in range(80)}, "pvid": "p" * 5000},
        {"params": {"c": {"nested": ["x"]}, "pid": 5, "af_ad": None, "ttclid": True}},
        {"params": {}, "url": "http://[::1/bad", "referrer": "x" * 20_000},
        {},
    ],
    ids=["lone surrogates", "nul", "oversized", "wrong value types", "bad url", "empty"],
)
def test_hostile_beacons_are_stored_bounded(
    web: TestClient, settings: Settings, body: dict[str, Any]
) -> None:
    raw = json.dumps(body)  # ASCII escapes: lone surrogates travel as \\ud800
    answer = web.post("/i/demo", content=raw, headers={"content-type": "text/plain"})
    assert answer.status_code == 202, answer.text
    (row,) = stored(settings, "impressions")
    assert_bounded(row)


def test_lone_surrogates_are_stored_as_replacement_characters(
    web: TestClient, settings: Settings
) -> None:
    body = json.dumps({"url": f"{ORIGIN}/lp/demo", "pvid": "pv", "params": {"c": "a\ud800"}})
    web.post("/i/demo", content=body, headers={"content-type": "text/plain"})
    (row,) = stored(settings, "impressions")
    assert row["c"] == "a\ufffd" and "invalid_unicode" in row["flags"]


@pytest.mark.parametrize(
    "path",
    [
        "/lp/%00",
        "/lp/..%2f..%2fetc%2fpasswd",
        "/lp/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/c/%3Cscript%3E",
        "/c/%00",
        "/i/" + "a" * 5000,
        "/static/%00",
        "/static/..%2f..%2fapp%2fsettings.py",
        "/static/" + "a/" * 300,
        "/v1.0/c2s/click/app/%00/%00",
        "/v1.0/c2s/click/app/steam/%3Cscript%3E",
        "/qr.svg?u=%00",
        "/qr.svg?u=https://gangway.test/%00",
        "/qr.svg?u=%ZZ&u=https://gangway.test/",
    ],
)
def test_hostile_paths_are_4xx_or_served_never_500(web: TestClient, path: str) -> None:
    answer = web.get(path)
    assert answer.status_code < 500, answer.text
    assert "<script>" not in answer.text
    assert "root:" not in answer.text and "GANGWAY_" not in answer.text


def test_an_over_long_user_agent_is_cut_and_flagged(web: TestClient, settings: Settings) -> None:
    web.get("/c/demo", headers={"user-agent": IPHONE_UA + " " + TEN_KB})
    (row,) = stored(settings, "clicks")
    assert row["user_agent"] == (IPHONE_UA + " " + TEN_KB)[:1024]
    assert row["os_family"] == "ios" and "truncated" in row["flags"].split(",")


@pytest.mark.parametrize("declared", [b"\xb2", b"1\xb3", b"-1", b"1e3", b" "])
def test_a_content_length_that_is_not_ascii_digits_is_a_400(declared: bytes) -> None:
    """A "²" passes str.isdigit() and fails int(): a 500 behind any server that lets the header
    through (uvicorn's parsers refuse it first; the handler must not rely on that)."""
    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b""}
    scope["headers"] = [(b"content-length", declared)]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    with pytest.raises(ApiError) as refused:
        run_async(read_body(Request(scope, receive)))
    assert refused.value.status == 400
