"""Every HTTP endpoint under generated junk (Hypothesis), in process.

The rules each example checks, whatever it sent:

- never a 500 (the `client` fixture re-raises server exceptions, so one fails the test with its
  traceback), and every 4xx is JSON `{"error", "message", "field"}` (the one HTML error is the
  404 page of `/lp/`);
- data already accepted stays: an install or event answered once is answered the same again;
- nothing user-supplied comes back as markup (landing pages) or text of an SVG;
- a redirect goes only to a host the app's owner configured, or to ours.

A rule checked only on some answers (a stored config, an accepted install) must be seen to run:
each such test counts the examples that reached it and fails when too few did (`exercised`).

Bodies are JSON values of every type at every field, nested junk, long strings, lone surrogates
(JSON escapes), invalid UTF-8, JSON no parser should take, and the wrong content types. Queries
are written raw (broken percent-encoding included); only the characters no HTTP client can put in
a request line (controls, space) are percent-encoded, as a browser would.
"""

from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from app.__main__ import DEMO_APP
from app.paths import TEMPLATES_DIR
from tests.fixtures import ANDROID_UA, DESKTOP_UA, IPHONE_UA

OWN_HOST = "gangway.test"
OWN_ORIGIN = f"http://{OWN_HOST}"
DEMO_HOSTS = frozenset(
    {"apps.apple.com", "play.google.com", "cdn.example.com", "store.steampowered.com"}
    | {"example.com"}
)

# Whole-file budget is a few seconds: modest example counts, no deadline (a slow machine is not
# a failure), no example database (a failure is reported with its example, to keep as a
# regression test). The fixtures' client is shared by the examples of one test, which is the
# point: state piles up.
fuzz = settings(
    # FUZZ_EXAMPLES=1000 for a deeper run by hand.
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# How many examples of the running property took each branch that holds checks. A property that
# checks a stored row only when the answer is 200 passes just as well when nothing is ever
# stored; so each such test runs its property through `exercised`, which then asserts that the
# checked branches ran. The shares asked for (mostly 1 in 20) are far below what the strategies
# reach (a third to a half of the examples) because runs vary a lot: Hypothesis builds many
# examples by mutating earlier ones, so a run can stay among refused bodies for a long stretch.
BRANCHES: Counter[str] = Counter()


def exercised(prop: Callable[..., None], shares: dict[str, float], **fixtures: Any) -> None:
    """Run the Hypothesis property `prop` with `fixtures` as its other arguments, then assert
    that each branch of `shares` ran in at least that share of the examples (and at least once).
    """
    BRANCHES.clear()
    prop(**fixtures)
    examples = fuzz.max_examples
    # Shown with `pytest -rP`: how often each branch ran.
    print(f"{prop.__name__}: {dict(BRANCHES)} in {examples} examples")
    for branch, share in shares.items():
        least = max(1, int(share * examples))
        assert BRANCHES[branch] >= least, (
            f"{branch!r} ran {BRANCHES[branch]} times in {examples} examples, fewer than "
            f"{least}: the strategies no longer reach it"
        )


# -- strategies ------------------------------------------------------------------------------

HOSTILE_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\ud83d\ude00",
    "\ufeff",
    "\u202e",
    "<script>alert(1)</script>",
    "'\"><img src=x onerror=alert(1)>",
    "</textarea><svg/onload=alert(1)>",
    "{{7*7}}",
    "${7*7}",
    "\r\nSet-Cookie: x=1",
    "../../etc/passwd",
    "javascript:alert(1)",
    "demo",
    "android",
    "ios",
    "steam",
    "tiktokweb_int",
    "af_purchase",
    "USD",
    "9.99",
    "-0",
    "NaN",
    "Infinity",
    "1e999999999",
    "0x10",
    "2026-11-21T10:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "1970-01-01T00:00:00Z",
    "2026-13-45T99:99:99Z",
    "203.0.113.7",
    "::ffff:1.2.3.4",
    "fe80::1%eth0",
    "00000000-0000-0000-0000-000000000000",
    "gw_click_id%3Dabc%26pid%3Dtiktokweb_int",
    "%%%%%25%25%",
    "https://example.com/",
    "http://[::1",
    "https://example.com:99999/",
    "x" * 129,
    "y" * 3000,
    "\u00e9" * 700,
]

# Every character, surrogates and controls included.
any_char = st.characters(codec=None, exclude_categories=())
# The known-hostile strings twice as often as random text: with few examples, they matter most.
hostile = st.sampled_from(HOSTILE_STRINGS)
text = st.one_of(hostile, hostile, st.text(any_char, max_size=24))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 10**30, 1795255200, 1795255200000]),
    st.floats(),
    text,
)
json_values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(text, kids, max_size=3),
    max_leaves=8,
)

# Bodies no JSON serialiser writes. The big ones are cheap to send and expensive to parse badly.
RAW_BODIES = [
    b"",
    b" ",
    b"null",
    b"[]",
    b'"demo"',
    b"\xff\xfe\x00",
    b"\xef\xbb\xbf{}",
    b'{"app_key": "demo\xff"}',
    b'{"app_key": "demo"',
    b'{"app_key": "demo"}{"x": 1}',
    b'{"app_key": "demo", "x": NaN, "y": -Infinity}',
    b'{"app_key": "demo", "x": ' + b"7" * 5000 + b"}",
    b'{"app_key": "demo", "x": ' + b"[" * 50_000 + b"}",
    b'{"app_key": "demo", "x": ' + b'{"a":' * 20_000 + b"}",
    b"[" * 60_000,
    b'{"app_key": "\\ud800"}',
    b'{"app_key": "' + b"a" * 70_000 + b'"}',
]
raw_bodies = st.one_of(st.sampled_from(RAW_BODIES), st.binary(max_size=64))

CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON ; charset=latin-1",
    "text/plain;charset=UTF-8",
    "text/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
    None,
]
content_types = st.one_of(
    st.just("application/json"), st.just("application/json"), st.sampled_from(CONTENT_TYPES)
)


def dump(value: Any) -> bytes:
    """JSON with ASCII escapes (a lone surrogate travels as "\\ud800") and NaN as NaN."""
    return json.dumps(value).encode()


def bodies(objects: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Mostly JSON of `objects`, sometimes any JSON value or raw junk."""
    return st.one_of(objects.map(dump), objects.map(dump), json_values.map(dump), raw_bodies)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`strategy`, or any JSON value instead."""
    return st.one_of(strategy, strategy, json_values)


def objects_with(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with any subset of `fields`, each a plausible value or junk of any type."""
    return st.fixed_dictionaries({}, optional={k: maybe(v) for k, v in fields.items()})


# Junk in any one field gets a body refused, so the bodies above are almost never accepted. Each
# endpoint also gets bodies of `valid` objects (every field of the right type and within its
# bounds, markup and odd characters still in the text), so that the checks of an accepted body
# run on a good share of the examples (`exercised` counts them).


def mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any], share: float) -> Any:
    """`usual` in about `share` of the examples, else `other`. (`st.one_of(usual, other)` would
    not do: it flattens `other`'s own branches beside `usual`, which then gets one share of
    them all.)"""
    tenths = round(share * 10)
    picks = st.sampled_from([True] * tenths + [False] * (10 - tenths))
    return picks.flatmap(lambda pick: usual if pick else other)


def valid(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[bytes]:
    """JSON of objects with every `required` field and any subset of the `optional` ones."""
    return st.fixed_dictionaries(required, optional=optional).map(dump)


def storable(limit: int, *, required: bool = False) -> st.SearchStrategy[str]:
    """Generated text as a config keeps it: a lone surrogate replaced, at most `limit`
    characters, and not blank when `required`."""

    def fix(value: str) -> str:
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        value = value.strip()[:limit]
        return value if value or not required else "T"

    return text.map(fix)


# Identifiers as an SDK sends them: never blank, and no NUL or lone surrogate (refused in an id).
ids = st.one_of(
    st.sampled_from(["i-1", "i-2", "I-1", " i-1 ", "\u00e9\u00e9", "<b>x</b>"]),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40).map(
        lambda s: s if s.strip() else "blank"
    ),
)


# Hosts and URLs that try every way to make a browser see another host than a parser does.
URL_TRICKS = [
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "\\\\evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https:///evil.example",
    "https://example.com@evil.example/",
    "https://example.com:443@evil.example/",
    "https://evil.example\\@example.com/",
    "https://evil.example%5C@example.com/",
    "https://evil.example\\.example.com/",
    "https://evil.example#@example.com/",
    "https://evil.example?@example.com/",
    "https://example.com.evil.example/",
    "https://evil.example/example.com",
    "https://evil.example/?https://example.com",
    "https://exa\tmple.com/",
    "https://example.com\t.evil.example/",
    "https://example.com\n.evil.example/",
    "\thttps://example.com/",
    "https://example.com\r\nLocation: https://evil.example/",
    "https://EXAMPLE.COM/",
    "HTTPS://Example.Com/path",
    "https://example.com:8443/",
    "https://example.com:0/",
    "https://example.com:99999/",
    "https://example.com:-1/",
    "https://example.com:/",
    "https://example.com./",
    "https://xn--exmple-cua.com/",
    "https://ex\u00e1mple.com/",
    "https://example\u3002com/",
    "https://example.com\uff0fevil.example",
    "https://example.com\u2025evil.example",
    "https://\u0435xample.com/",
    "https://exam\u00adple.com/",
    "https://[::1]/",
    "https://[::1/",
    "https://[example.com]/",
    "https://[::ffff:93.184.216.34]/",
    "https://93.184.216.34/",
    "https://0x5db8d822/",
    "http://example.com/",
    "ftp://example.com/",
    "javascript://example.com/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "https://example.com/%0d%0aSet-Cookie:x=1",
    "https://apps.apple.com/app/id1",
    "https://play.google.com@evil.example",
    "https://store.steampowered.com\\@evil.example",
    "https://cdn.example.com.evil.example/",
    "evil.example",
    "",
]
hosts = st.sampled_from(
    ["example.com", "EXAMPLE.com", "evil.example", "example.com.evil.example", "127.0.0.1"]
    + ["xn--e1awd7f.com", "\u0435xample.com", "[::1]", "example.com:443", "gangway.test"]
)
built_urls = st.builds(
    lambda scheme, sep, cred, host, port, path: f"{scheme}{sep}{cred}{host}{port}{path}",
    st.sampled_from(["https", "http", "HTTPS", "javascript", "", "//"]),
    st.sampled_from(["://", ":", ":/", ":\\\\", ":///", "", ":\t//"]),
    st.sampled_from(["", "user@", "user:pw@", "example.com@", "a\\@"]),
    hosts,
    st.sampled_from(["", ":443", ":8080", ":abc", ":99999", ":"]),
    st.sampled_from(["/", "", "/x?y=1#z", "\\evil.example", "/%2F%2Fevil.example", "@evil"]),
)
redirect_urls = st.one_of(st.sampled_from(URL_TRICKS), built_urls, text)


def enc(value: str) -> str:
    """`value` percent-encoded as a query value (UTF-8; a lone surrogate as its escape
    bytes, which is what a broken client would send)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def raw_query_piece(value: str) -> str:
    """`value` left raw for the query, except what cannot go in a request line at all."""
    return "".join(
        enc(ch) if ch <= " " or ch == "\x7f" or ch in "#" or ch > "\x7f" else ch for ch in value
    )


QUERY_KEYS = [
    "pid",
    "c",
    "af_c_id",
    "af_adset",
    "af_ad",
    "af_sub1",
    "ttclid",
    "TTCLID",
    "pvid",
    "platform",
    "af_r",
    "af_web_dp",
    "af_media_source",
    "af_campaign",
    "u",
    "",
    "%",
    "%ZZ",
    "a%00b",
    "__proto__",
]
query_pairs = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(QUERY_KEYS), text),
        st.one_of(text, redirect_urls),
        st.booleans(),
    ),
    max_size=6,
)
BROKEN_QUERIES = [
    "",
    "&&&==&=&?&",
    "%",
    "%%%",
    "%E0%A4%A",
    "%FF%FE=%C0%AF",
    "c=%ED%A0%80",
    "=x",
    "a=1&a=2&a=",
    "&".join(f"k{i}=v" for i in range(200)),
    "c=" + "A" * 20_000,
    "ttclid=" + "%41" * 3000,
    "pvid=" + "p" * 5000,
]


@st.composite
def queries(draw: st.DrawFn) -> str:
    """A raw query string: generated pairs (each value raw or percent-encoded), maybe with a
    broken tail."""
    parts = []
    for key, value, raw in draw(query_pairs):
        writer = raw_query_piece if raw else enc
        parts.append(f"{writer(key)}={writer(value)}")
    tail = draw(st.sampled_from(BROKEN_QUERIES))
    return "&".join(p for p in (*parts, tail) if p)


def path_segment(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


NO_CREDENTIALS = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer  "},
    {"Authorization": "Basic x"},
    {"Authorization": "Bearerx"},
]
WRONG_CREDENTIALS = [{"Authorization": "Bearer wrong"}, {"Authorization": "bearer " + "x" * 5000}]
auth_headers = st.sampled_from(NO_CREDENTIALS + WRONG_CREDENTIALS)

# -- checks ----------------------------------------------------------------------------------


def assert_error_shape(answer: Any) -> None:
    """A 4xx is the contract's JSON error; nothing is ever a 5xx."""
    assert answer.status_code < 500, answer.text
    if answer.status_code < 400:
        return
    assert answer.headers["content-type"].startswith("application/json"), answer.text
    body = answer.json()
    assert isinstance(body, dict) and set(body) >= {"error", "message", "field"}, body
    assert isinstance(body["error"], str) and isinstance(body["message"], str)
    assert body["field"] is None or isinstance(body["field"], str)


def post(
    client: TestClient, path: str, body: bytes, content_type: str | None, headers: dict[str, str]
) -> Any:
    sent = dict(headers)
    if content_type is not None:
        sent["content-type"] = content_type
    return client.post(path, content=body, headers=sent)


def location_is_allowed(location: str, allowed: frozenset[str]) -> None:
    """The redirect goes, as a browser reads it, to an allowed host or stays on ours."""
    assert location, "an empty Location"
    assert all(ch > " " and ch != "\x7f" for ch in location), location
    assert "\\" not in location, location
    if location.startswith("/"):
        assert not location.startswith("//"), location
        return
    parts = urlsplit(location)
    assert parts.scheme in ("http", "https"), location
    assert location.lower().startswith(f"{parts.scheme}://"), location
    assert "@" not in parts.netloc, location
    allowed_hosts = {browser_host(h) for h in allowed | {OWN_HOST}}
    assert browser_host(parts.hostname or "") in allowed_hosts, location


def browser_host(host: str) -> str:
    """A host as a browser's URL parser reads it: percent-decoded, then IDNA-encoded. (The
    Location of a configured "https://ex\u00e1mple.com/" arrives as "ex%C3%A1mple.com".)"""
    decoded = unquote(host).lower()
    try:
        return decoded.encode("idna").decode("ascii")
    except UnicodeError:
        return decoded


class _Markup(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


PAGE_TAGS = {
    "html", "head", "meta", "title", "link", "script", "body", "main", "section", "header",
    "img", "div", "p", "h1", "nav", "a", "span", "ul", "li", "svg", "rect", "path", "circle",
    "aside", "noscript",
}  # fmt: skip


def page_markup(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = _Markup()
    parser.feed(html)
    parser.close()
    return parser.tags


# What our own markup may contain: a probe found here proves nothing.
OUR_MARKUP = "".join(p.read_text() for p in TEMPLATES_DIR.glob("*.html"))


def query_strings(query: str) -> list[str]:
    """The keys and values of a query as the server decodes them."""
    return [s for pair in parse_qsl(query, keep_blank_values=True) for s in pair]


def assert_inert_page(html: str, values: list[str]) -> None:
    """The page's markup is all ours: known tags, no handlers, links to us only, and no value
    of the request or config that holds a markup character appears with it unescaped."""
    assert html.rstrip().endswith("</html>")
    tags = page_markup(html)
    assert [t for t, _ in tags].count("script") == 1
    for tag, attrs in tags:
        assert tag in PAGE_TAGS, tag
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src") and value is not None:
                ours = value.startswith(OWN_ORIGIN + "/")
                assert ours or (value.startswith("/") and not value.startswith("//")), value
    for value in values:
        for ch in "<>\"'":
            for piece in value.split(ch)[1:]:
                # The markup character and what follows it never appear together raw.
                probe = ch + piece[:8]
                if len(probe) > 3 and probe.strip() == probe and probe not in OUR_MARKUP:
                    assert probe not in html, probe


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture()
def attributed(client: TestClient, sdk: dict[str, str]) -> str:
    """The app_instance_id of an install a TikTok click led to (its events make postbacks)."""
    answer = client.get(
        "/c/demo?pid=tiktokweb_int&c=fuzz&ttclid=E.C.P.fuzz",
        headers={"user-agent": ANDROID_UA},
        follow_redirects=False,
    )
    referrer = parse_qs(urlsplit(answer.headers["location"]).query)["referrer"][0]
    installed = client.post(
        "/api/v1/installs",
        json={
            "app_key": "demo",
            "platform": "android",
            "app_instance_id": "fuzz-attributed",
            "install_referrer": referrer,
            "install_time": time.time() + 120,
            "user_agent": ANDROID_UA,
        },
        headers=sdk,
    )
    assert installed.json()["status"] == "attributed", installed.text
    return "fuzz-attributed"


# -- the app surface -----------------------------------------------------------------------------

INSTALL_DEVICE_IDS = ("gaid", "idfa", "idfv", "android_id")
INSTALL_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "platform": st.sampled_from(["android", "ios", "ANDROID", "steam", "web", ""]),
    "app_instance_id": st.one_of(st.sampled_from(["i-1", "i-2", "I-1", " i-1 "]), text),
    "install_time": st.one_of(st.integers(0, 2 * 10**9), st.floats(), text),
    "device": objects_with({k: text for k in INSTALL_DEVICE_IDS}),
    "ip": st.one_of(st.sampled_from(["203.0.113.7", "::ffff:203.0.113.7", "1.2.3"]), text),
    "user_agent": st.one_of(st.sampled_from([ANDROID_UA, IPHONE_UA, "curl/8"]), text),
    "os_version": text,
    "device_model": text,
    "language": text,
    "install_referrer": text,
    "referrer_click_time": scalars,
    "install_begin_time": scalars,
    "att_status": st.sampled_from(["authorized", "notDetermined", "not_determined", "nope"]),
}
install_objects = st.one_of(
    objects_with(INSTALL_FIELDS).map(lambda o: {"app_key": "demo"} | o),
    objects_with(INSTALL_FIELDS | {"app_key": text}),
)
valid_installs = valid(
    {
        "app_key": st.just("demo"),
        "platform": st.sampled_from(["android", "ios", "ANDROID", "steam"]),
        "app_instance_id": ids,
    },
    {
        "install_time": st.one_of(
            st.integers(0, 1_700_000_000), st.sampled_from(["2026-01-01T10:00:00Z", "1970-01-01"])
        ),
        "device": st.fixed_dictionaries({}, optional={k: ids for k in INSTALL_DEVICE_IDS}),
        "ip": st.sampled_from(["203.0.113.7", "::ffff:203.0.113.7", "2001:db8::1"]),
        "user_agent": st.one_of(st.sampled_from([ANDROID_UA, IPHONE_UA, "curl/8"]), text),
        "os_version": text,
        "device_model": text,
        "language": text,
        "install_referrer": st.one_of(st.just("gw_click_id%3Dabc%26pid%3Dtiktokweb_int"), ids),
        "att_status": st.sampled_from(["authorized", "notDetermined", "not_determined"]),
    },
)


@fuzz
@given(body=mostly(valid_installs, bodies(install_objects), 0.6), content_type=content_types)
def installs_take_any_body(
    client: TestClient, sdk: dict[str, str], body: bytes, content_type: str | None
) -> None:
    answer = post(client, "/api/v1/installs", body, content_type, sdk)
    assert_error_shape(answer)
    if answer.status_code == 200:
        BRANCHES["install accepted"] += 1
        # Accepted once, answered the same for good.
        again = post(client, "/api/v1/installs", body, content_type, sdk)
        assert again.status_code == 200, again.text
        assert again.json()["install_id"] == answer.json()["install_id"]
        assert again.json()["is_first_launch"] is False
        record = client.get(f"/api/v1/installs/{answer.json()['install_id']}", headers=sdk)
        assert record.status_code == 401  # the sdk key is no admin token
    else:
        assert answer.status_code in (400, 401, 413, 415), answer.text


def test_installs_take_any_body(client: TestClient, sdk: dict[str, str]) -> None:
    exercised(installs_take_any_body, {"install accepted": 0.05}, client=client, sdk=sdk)


@fuzz
@given(body=bodies(install_objects), headers=auth_headers)
def test_installs_without_credentials_are_401(
    client: TestClient, body: bytes, headers: dict[str, str]
) -> None:
    answer = post(client, "/api/v1/installs", body, "application/json", headers)
    assert_error_shape(answer)
    if headers in NO_CREDENTIALS:
        assert answer.status_code == 401, answer.text  # before the body is read
    else:  # the body names the app whose key is checked
        assert answer.status_code in (400, 401, 413), answer.text


EVENT_VALUE = objects_with(
    {
        "af_revenue": st.one_of(
            st.sampled_from(["9.99", "-1", "1e3", "1e999999999", "NaN", "9" * 20]), st.floats()
        ),
        "af_currency": st.sampled_from(["USD", "eur", "US", "U$D", " usd "]),
        "af_content_id": text,
        "af_quantity": scalars,
    }
)
EVENT_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "event_name": st.sampled_from(["af_purchase", "af_complete_registration", "x", " "]),
    "event_id": st.one_of(st.sampled_from(["e-1", "e-2"]), text),
    "event_time": st.one_of(st.integers(0, 2 * 10**9), st.floats(), text),
    "event_value": EVENT_VALUE,
    "user": objects_with({k: text for k in ("email", "phone", "external_id")}),
}
VALID_EVENT_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "event_time": st.one_of(st.integers(0, 1_700_000_000), st.just("2026-01-01T10:00:00Z")),
    "event_value": st.fixed_dictionaries(
        {},
        optional={
            "af_revenue": st.one_of(
                st.sampled_from(["9.99", "-1", "1e3", " 0 "]),
                st.integers(-(10**9), 10**9),
                st.floats(-1e9, 1e9).map(lambda f: round(f, 2)),
            ),
            "af_currency": st.sampled_from(["USD", "eur", " usd "]),
            "af_content_id": text,
            "af_quantity": scalars,
        },
    ),
    "user": st.fixed_dictionaries({}, optional={k: ids for k in ("email", "phone", "external_id")}),
}


@fuzz
@given(data=st.data(), content_type=content_types)
def events_take_any_body(
    client: TestClient, sdk: dict[str, str], attributed: str, data: Any, content_type: str | None
) -> None:
    objects = objects_with(EVENT_FIELDS).map(
        lambda o: {"app_key": "demo", "app_instance_id": attributed} | o
    )
    accepted = valid(
        {
            "app_key": st.just("demo"),
            "app_instance_id": st.just(attributed),
            "event_name": st.sampled_from(["af_purchase", "af_complete_registration", "x"]),
            # Mostly with an id, so that the answer to a repeat is checked.
            "event_id": st.one_of(st.sampled_from(["e-1", "e-2"]), ids, st.none()),
        },
        VALID_EVENT_FIELDS,
    )
    junk = st.one_of(
        bodies(objects), bodies(objects_with(EVENT_FIELDS | {"app_instance_id": text}))
    )
    body = data.draw(mostly(accepted, junk, 0.6))
    answer = post(client, "/api/v1/events", body, content_type, sdk)
    assert_error_shape(answer)
    if answer.status_code == 202:
        BRANCHES["event accepted"] += 1
        again = post(client, "/api/v1/events", body, content_type, sdk)
        assert again.status_code == 202, again.text
        sent = json.loads(body)
        if isinstance(sent.get("event_id"), str) and sent["event_id"].strip():
            BRANCHES["event answered the same again"] += 1
            assert again.json() == answer.json()
    else:
        assert answer.status_code in (400, 401, 404, 413, 415), answer.text


def test_events_take_any_body(client: TestClient, sdk: dict[str, str], attributed: str) -> None:
    exercised(
        events_take_any_body,
        {"event accepted": 0.05, "event answered the same again": 0.05},
        client=client,
        sdk=sdk,
        attributed=attributed,
    )


@fuzz
@given(install_id=text, postback_id=text, headers=st.one_of(st.just(None), auth_headers))
def test_install_receipts_and_postback_retries_take_any_id(
    client: TestClient,
    admin: dict[str, str],
    install_id: str,
    postback_id: str,
    headers: dict[str, str] | None,
) -> None:
    sent = admin if headers is None else headers
    receipt = client.get(f"/api/v1/installs/{path_segment(install_id)}", headers=sent)
    assert_error_shape(receipt)
    retried = client.post(f"/api/v1/postbacks/{path_segment(postback_id)}/retry", headers=sent)
    assert_error_shape(retried)
    # 404 for no such row or route; an id of "" or "." leaves another route's path (405, 415).
    assert 400 <= receipt.status_code < 500 and 400 <= retried.status_code < 500


def test_real_receipts_and_retries_answer(
    client: TestClient, admin: dict[str, str], attributed: str, sdk: dict[str, str]
) -> None:
    """The ids of real rows: an install's receipt, and a retry of its postback."""
    answer = client.post(
        "/api/v1/installs",
        json={"app_key": "demo", "platform": "android", "app_instance_id": attributed},
        headers=sdk,
    )
    install_id = answer.json()["install_id"]
    record = client.get(f"/api/v1/installs/{install_id}", headers=admin)
    assert record.status_code == 200, record.text
    for postback in record.json()["postbacks"]:
        retried = client.post(f"/api/v1/postbacks/{postback['id']}/retry", headers=admin)
        assert_error_shape(retried)
        assert retried.status_code in (202, 409), retried.text


# -- the owner surface ---------------------------------------------------------------------------

urls = st.one_of(st.sampled_from(URL_TRICKS), built_urls, text)
DESTINATION_NAMES = ["ios", "android", "apk", "steam", "web", "xbox", "nope", "", "__proto__"]
destination_objects = st.dictionaries(
    st.one_of(st.sampled_from(DESTINATION_NAMES), text),
    maybe(objects_with({"app_id": text, "store_url": urls, "url": urls})),
    max_size=4,
)
APP_FIELDS_ATTRIBUTION = (
    "click_lookback_days",
    "viewthrough_lookback_hours",
    "probabilistic_window_hours",
    "reattribution_window_days",
    "min_click_to_install_seconds",
)
APP_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": text,
    "destinations": destination_objects,
    "allowed_redirect_hosts": st.lists(st.one_of(hosts, text), max_size=3),
    "allowed_origins": st.lists(urls, max_size=3),
    "attribution": objects_with(
        {
            key: st.one_of(st.integers(-5, 1000), st.sampled_from([0, 1, 24, 30, 730, 3601]))
            for key in APP_FIELDS_ATTRIBUTION
        }
        | {"probabilistic_ios": st.booleans()}
    ),
}
# Path segments as sent (already percent-encoded); generated text is encoded on the way.
APP_KEYS = ["fz", "fz-1", "FZ", "fz_1", "a" * 41, "fz%0A", "fz%0D%0A", "fz.", "%20fz", "%00"]
# URLs a config accepts (http(s) with a host) that still read oddly: where a click may then go.
STORABLE_URLS = [
    "https://apps.apple.com/app/id1",
    "https://EXAMPLE.COM/",
    "HTTPS://Example.Com/path",
    "https://example.com:8443/",
    "https://example.com./",
    "https://evil.example#@example.com/",
    "https://evil.example?@example.com/",
    "https://example.com.evil.example/",
    "https://xn--exmple-cua.com/",
    "https://ex\u00e1mple.com/",
    "https://example\u3002com/",
    "https://[::1]/",
    "https://93.184.216.34/",
    "http://example.com/",
    "https://example.com/%0d%0aSet-Cookie:x=1",
]
store_destinations = st.fixed_dictionaries(
    {"store_url": st.sampled_from(STORABLE_URLS)},
    optional={"app_id": st.sampled_from(["440", "id1", "com.example.game", ""])},
)
url_destinations = st.fixed_dictionaries({"url": st.sampled_from(STORABLE_URLS)})
valid_apps = valid(
    {"name": storable(200, required=True)},
    {
        "destinations": st.fixed_dictionaries(
            {},
            optional={name: store_destinations for name in ("ios", "android", "steam", "xbox")}
            | {name: url_destinations for name in ("apk", "web")},
        ),
        "allowed_redirect_hosts": st.lists(
            st.sampled_from(["example.com", "EXAMPLE.com", "evil.example", "127.0.0.1"]),
            max_size=3,
        ),
        "allowed_origins": st.lists(
            st.sampled_from(["https://www.example.com", "http://localhost:8080", "HTTPS://A.b/"]),
            max_size=2,
        ),
        # 1 and 24 are within every attribution range.
        "attribution": st.fixed_dictionaries(
            {},
            optional={key: st.sampled_from([1, 24]) for key in APP_FIELDS_ATTRIBUTION}
            | {"probabilistic_ios": st.booleans()},
        ),
    },
)


def configured_hosts(config: dict[str, Any]) -> frozenset[str]:
    found = {h.lower() for h in config["allowed_redirect_hosts"]}
    for dest in config["destinations"].values():
        for key in ("store_url", "url"):
            host = urlsplit(dest.get(key) or "").hostname
            if host:
                found.add(host.lower())
    return frozenset(found)


@fuzz
@given(
    # Mostly a valid key: a body is only read under one.
    key=mostly(st.sampled_from(APP_KEYS[:2]), st.one_of(st.sampled_from(APP_KEYS), text), 0.7),
    body=mostly(
        valid_apps, bodies(objects_with(APP_FIELDS).map(lambda o: {"name": "Fuzz"} | o)), 0.6
    ),
    content_type=content_types,
    af_r=redirect_urls,
)
def app_configs_take_any_body_and_redirect_only_where_they_say(
    client: TestClient,
    admin: dict[str, str],
    key: str,
    body: bytes,
    content_type: str | None,
    af_r: str,
) -> None:
    path = f"/api/v1/apps/{path_segment(key) if key not in APP_KEYS else key}"
    answer = client.put(path, content=body, headers=admin | {"content-type": content_type or ""})
    assert_error_shape(answer)
    if answer.status_code != 200:
        return
    BRANCHES["app stored"] += 1
    stored = answer.json()
    assert "access_token" not in stored
    read = client.get(f"/api/v1/apps/{stored['app_key']}", headers=admin)
    assert read.status_code == 200 and read.json() == stored
    allowed = configured_hosts(stored)
    for ua in (DESKTOP_UA, ANDROID_UA, IPHONE_UA):
        for query in (f"af_r={enc(af_r)}", f"af_web_dp={enc(af_r)}", f"platform={enc(af_r)}"):
            click = client.get(
                f"/c/{stored['app_key']}?{query}",
                headers={"user-agent": ua, "referer": af_r.encode("utf-8", "replace").decode()}
                if af_r.isascii() and af_r.isprintable()
                else {"user-agent": ua},
                follow_redirects=False,
            )
            assert click.status_code == 302, click.text
            location_is_allowed(click.headers["location"], allowed)


def test_app_configs_take_any_body_and_redirect_only_where_they_say(
    client: TestClient, admin: dict[str, str]
) -> None:
    exercised(
        app_configs_take_any_body_and_redirect_only_where_they_say,
        {"app stored": 0.05},
        client=client,
        admin=admin,
    )


INTEGRATION_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "enabled": st.booleans(),
    "pixel_code": st.one_of(st.just("CXXXXXXXXXXXXXXXXXXX"), text),
    "access_token": text,
    "test_event_code": text,
    "view_through": st.booleans(),
    "ccpa_limit": st.booleans(),
    "install_event": text,
    "inapp_postbacks": objects_with(
        {
            "enabled": st.booleans(),
            "window_days": st.integers(-1, 4000),
            "for_users": st.sampled_from(["this_partner", "all", "nobody"]),
            "events": st.lists(
                maybe(
                    objects_with(
                        {
                            "app_event": st.one_of(st.just("af_purchase"), text),
                            "partner_event": st.one_of(st.just("Purchase"), text),
                            "include_revenue": st.booleans(),
                        }
                    )
                ),
                max_size=3,
            ),
        }
    ),
}


partner_events = st.one_of(
    st.fixed_dictionaries(
        {"partner_event": st.just("Purchase")}, optional={"include_revenue": st.booleans()}
    ),
    st.fixed_dictionaries(
        {"partner_event": st.one_of(st.just("CompleteRegistration"), storable(100, required=True))},
        optional={"include_revenue": st.just(False)},
    ),
)
valid_integrations = valid(
    {"pixel_code": st.sampled_from(["CXXXXXXXXXXXXXXXXXXX", "DEMO_PIXEL_1"])},
    {
        "enabled": st.booleans(),
        "access_token": storable(512),
        "test_event_code": storable(64),
        "view_through": st.booleans(),
        "ccpa_limit": st.booleans(),
        "install_event": storable(64),
        "inapp_postbacks": st.fixed_dictionaries(
            {},
            optional={
                "enabled": st.booleans(),
                "window_days": st.integers(0, 3650),
                "for_users": st.sampled_from(["this_partner", "all"]),
                "events": st.lists(
                    st.builds(
                        lambda name, partner: {"app_event": name} | partner,
                        st.sampled_from(["af_purchase", "af_login", "<b>x</b>", "\u00e9"]),
                        partner_events,
                    ),
                    max_size=3,
                    unique_by=lambda e: e["app_event"],
                ),
            },
        ),
    },
)


@fuzz
@given(
    body=mostly(valid_integrations, bodies(objects_with(INTEGRATION_FIELDS)), 0.6),
    content_type=content_types,
)
def integrations_take_any_body(
    client: TestClient, admin: dict[str, str], body: bytes, content_type: str | None
) -> None:
    path = "/api/v1/apps/demo/integrations/tiktokweb_int"
    answer = client.put(path, content=body, headers=admin | {"content-type": content_type or ""})
    assert_error_shape(answer)
    if answer.status_code == 200:
        BRANCHES["integration stored"] += 1
        assert "access_token" not in answer.json()
        read = client.get(path, headers=admin)
        assert read.status_code == 200, read.text
        assert "access_token" not in read.json()


def test_integrations_take_any_body(client: TestClient, admin: dict[str, str]) -> None:
    exercised(integrations_take_any_body, {"integration stored": 0.05}, client=client, admin=admin)


MAPPING_FIELD = objects_with(
    {
        "keys": st.lists(st.one_of(st.sampled_from(["pid", "c", "utm_source"]), text), max_size=3),
        "defaultValue": text,
        "overrideValues": st.dictionaries(text, text, max_size=2),
    }
)
PAGE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "title": text,
    "headline": text,
    "body": text,
    "image_url": st.one_of(st.sampled_from(["/static/favicon.svg", "/static/../x"]), urls),
    "ctas": st.lists(st.sampled_from(["ios", "android", "apk", "steam", "web", "x"]), max_size=5),
    "mapping": st.one_of(
        st.none(),
        objects_with(
            {
                "mediaSource": MAPPING_FIELD,
                "campaign": MAPPING_FIELD,
                "afSub2": MAPPING_FIELD,
                "googleClickIdKey": text,
                "afCustom": st.lists(
                    MAPPING_FIELD.map(lambda f: f | {"paramKey": "k"}), max_size=2
                ),
            }
        ).map(lambda m: {"mediaSource": {"keys": ["pid"]}} | m),
    ),
    "ttclid_sub": st.sampled_from(["af_sub1", "af_sub5", "af_sub6"]),
}
SLUGS = ["fz-page", "fz-page-2", "-x", "FZ", "a" * 81, "fz-page%0A", "%00"]
valid_mapping_fields = st.fixed_dictionaries(
    {},
    optional={
        "keys": st.lists(st.one_of(st.sampled_from(["pid", "c", "utm_source"]), storable(40))),
        "defaultValue": storable(200),
        "overrideValues": st.dictionaries(storable(40), storable(200), max_size=2),
    },
)
valid_pages = valid(
    {
        "app_key": st.just("demo"),
        "title": storable(200, required=True),
        # Always a mapping: it is the one part of a page that must read back from the markup.
        "mapping": st.fixed_dictionaries(
            {"mediaSource": valid_mapping_fields},
            optional={
                "campaign": valid_mapping_fields,
                "afSub2": valid_mapping_fields,
                "googleClickIdKey": storable(40),
                "afCustom": st.lists(
                    st.builds(
                        lambda key, f: {"paramKey": key} | f,
                        st.one_of(st.just("k"), storable(40, required=True)),
                        valid_mapping_fields,
                    ),
                    max_size=2,
                ),
            },
        ),
    },
    {
        "headline": storable(200),
        "body": storable(2000),
        "image_url": st.sampled_from(["/static/favicon.svg", "/static/../x", *STORABLE_URLS]),
        "ctas": st.lists(st.sampled_from(["ios", "android", "apk", "steam"]), max_size=5),
        "ttclid_sub": st.sampled_from(["af_sub1", "af_sub5"]),
    },
)


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


@fuzz
@given(
    # Mostly a valid slug: a body is only read under one.
    slug=mostly(st.sampled_from(SLUGS[:2]), st.one_of(st.sampled_from(SLUGS), text), 0.7),
    body=mostly(
        valid_pages,
        bodies(objects_with(PAGE_FIELDS).map(lambda o: {"app_key": "demo", "title": "T"} | o)),
        0.6,
    ),
    content_type=content_types,
    query=queries(),
    ua=st.sampled_from([DESKTOP_UA, IPHONE_UA, ANDROID_UA]),
)
def pages_take_any_body_and_render_it_inert(
    client: TestClient,
    admin: dict[str, str],
    slug: str,
    body: bytes,
    content_type: str | None,
    query: str,
    ua: str,
) -> None:
    path = f"/api/v1/pages/{path_segment(slug) if slug not in SLUGS else slug}"
    answer = client.put(path, content=body, headers=admin | {"content-type": content_type or ""})
    assert_error_shape(answer)
    if answer.status_code != 200:
        return
    BRANCHES["page stored"] += 1
    stored = answer.json()
    read = client.get(f"/api/v1/pages/{stored['slug']}", headers=admin)
    assert read.status_code == 200 and read.json() == stored
    page = client.get(f"/lp/{stored['slug']}?{query}", headers={"user-agent": ua})
    assert page.status_code == 200, page.text
    # The mapping is JSON in a single-quoted attribute (a raw " is inert there): it must read
    # back whole, which it cannot if anything broke out of the attribute.
    mapping = stored.pop("mapping")
    assert_inert_page(page.text, strings_in(stored) + query_strings(query))
    if mapping:
        BRANCHES["page mapping read back"] += 1
        tags = page_markup(page.text)
        (attr,) = [v for _, attrs in tags for k, v in attrs if k == "data-mapping"]
        assert json.loads(attr or "") == mapping


def test_pages_take_any_body_and_render_it_inert(client: TestClient, admin: dict[str, str]) -> None:
    exercised(
        pages_take_any_body_and_render_it_inert,
        {"page stored": 0.05, "page mapping read back": 0.05},
        client=client,
        admin=admin,
    )


# -- the public tracking surface ---------------------------------------------------------------

user_agents = st.one_of(
    st.sampled_from([DESKTOP_UA, IPHONE_UA, ANDROID_UA, "", "facebookexternalhit/1.1"]),
    text.map(lambda s: s.encode("latin-1", "replace").decode("latin-1")),
)


def visitor(ua: str) -> dict[str, Any]:
    """A User-Agent header as raw bytes (Latin-1, as HTTP has it), minus line breaks and NUL."""
    cleaned = ua.replace("\r", "").replace("\n", "").replace("\x00", "")
    return {"user-agent": cleaned.encode("latin-1", "replace")}


@fuzz
@given(query=queries(), ua=user_agents)
def test_landing_pages_render_any_query_inert(client: TestClient, query: str, ua: str) -> None:
    page = client.get(f"/lp/demo?{query}", headers=visitor(ua))
    assert page.status_code == 200, page.text
    assert_inert_page(page.text, query_strings(query))


@fuzz
@given(slug=text, query=queries())
def unknown_landing_pages_are_the_404_page(client: TestClient, slug: str, query: str) -> None:
    page = client.get(f"/lp/{path_segment(slug)}x-missing?{query}")
    assert page.status_code == 404
    if page.headers["content-type"].startswith("text/html"):
        BRANCHES["html 404 page"] += 1
        assert "<script" not in page.text and "x-missing" not in page.text
    else:  # a slug with a "/" matches no route at all: the router's JSON 404
        assert_error_shape(page)


def test_unknown_landing_pages_are_the_404_page(client: TestClient) -> None:
    exercised(unknown_landing_pages_are_the_404_page, {"html 404 page": 0.5}, client=client)


@fuzz
@given(query=queries(), af_r=redirect_urls, ua=user_agents, head=st.booleans())
def test_clicks_redirect_only_to_configured_hosts(
    client: TestClient, query: str, af_r: str, ua: str, head: bool
) -> None:
    send: Callable[..., Any] = client.head if head else client.get
    for q in (query, f"af_r={enc(af_r)}&{query}", f"af_r={raw_query_piece(af_r)}&{query}"):
        click = send(f"/c/demo?{q}", headers=visitor(ua), follow_redirects=False)
        assert click.status_code == 302, click.text
        assert click.headers["cache-control"] == "no-store"
        location_is_allowed(click.headers["location"], DEMO_HOSTS)


# The demo app's direct click targets: a generated platform and app id almost never name one.
DEMO_DIRECT = [
    (name, dest["app_id"]) for name, dest in DEMO_APP["destinations"].items() if "app_id" in dest
]


@fuzz
@given(
    target=mostly(
        st.sampled_from([*DEMO_DIRECT, ("STEAM", "440")]),
        st.tuples(
            st.one_of(st.sampled_from(["steam", "STEAM", "ios", "xbox", "web", "apk"]), text),
            st.one_of(st.sampled_from(["440", "id1234567890", "com.example.game"]), text),
        ),
        0.5,
    ),
    query=queries(),
    af_r=redirect_urls,
)
def direct_clicks_redirect_only_to_configured_hosts(
    client: TestClient, target: tuple[str, str], query: str, af_r: str
) -> None:
    platform, app_id = target
    path = f"/v1.0/c2s/click/app/{path_segment(platform)}/{path_segment(app_id)}"
    answer = client.get(f"{path}?af_r={enc(af_r)}&{query}", follow_redirects=False)
    assert_error_shape(answer)
    assert answer.status_code in (302, 404), answer.text
    if answer.status_code == 302:
        BRANCHES["direct click redirected"] += 1
        location_is_allowed(answer.headers["location"], DEMO_HOSTS)


def test_direct_clicks_redirect_only_to_configured_hosts(client: TestClient) -> None:
    exercised(
        direct_clicks_redirect_only_to_configured_hosts,
        {"direct click redirected": 0.05},
        client=client,
    )


beacon_objects = objects_with(
    {
        "url": st.one_of(st.just(f"{OWN_ORIGIN}/lp/demo?pid=tiktokweb_int"), urls),
        "referrer": urls,
        "pvid": text,
        "params": st.dictionaries(st.one_of(st.sampled_from(QUERY_KEYS), text), json_values),
    }
)


# What the snippet sends (any text in its strings: a beacon's values are only stored, bounded).
valid_beacons = valid(
    {},
    {
        "url": st.one_of(st.just(f"{OWN_ORIGIN}/lp/demo?pid=tiktokweb_int"), urls),
        "referrer": urls,
        "pvid": text,
        "params": st.dictionaries(st.one_of(st.sampled_from(QUERY_KEYS), text), text),
    },
)


@fuzz
@given(
    body=mostly(valid_beacons, bodies(beacon_objects), 0.6),
    content_type=st.one_of(st.just("text/plain;charset=UTF-8"), content_types),
    # Mostly an origin the app takes: a beacon from another is refused before it is read.
    origin=mostly(
        st.sampled_from([None, OWN_ORIGIN]), st.sampled_from(["https://evil.example", "null"]), 0.7
    ),
    query=queries(),
)
def impressions_take_any_beacon_and_any_pixel_query(
    client: TestClient, body: bytes, content_type: str | None, origin: str | None, query: str
) -> None:
    headers = {} if origin is None else {"origin": origin}
    beacon = post(client, "/i/demo", body, content_type, headers)
    assert_error_shape(beacon)
    assert beacon.status_code in (202, 400, 403, 413, 415), beacon.text
    if origin not in (None, OWN_ORIGIN):
        assert beacon.status_code == 403
    if beacon.status_code == 202:
        BRANCHES["beacon accepted"] += 1
    pixel = client.get(f"/i/demo?{query}")
    assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"


def test_impressions_take_any_beacon_and_any_pixel_query(client: TestClient) -> None:
    exercised(
        impressions_take_any_beacon_and_any_pixel_query, {"beacon accepted": 0.05}, client=client
    )


@fuzz
@given(
    target=st.one_of(
        st.builds(lambda q: f"{OWN_ORIGIN}/c/demo?{q}", queries()),
        st.builds(lambda p: f"{OWN_ORIGIN}/{p}", text),
        redirect_urls,
    ),
    raw=st.booleans(),
)
def qr_codes_encode_our_urls_only_and_never_echo_them(
    client: TestClient, target: str, raw: bool
) -> None:
    value = raw_query_piece(target) if raw else enc(target)
    answer = client.get(f"/qr.svg?u={value}")
    assert_error_shape(answer)
    if answer.status_code == 200:
        BRANCHES["qr drawn"] += 1
        assert answer.headers["content-type"].startswith("image/svg+xml")
        svg = ET.fromstring(answer.content)
        names = {el.tag.rsplit("}", 1)[-1] for el in svg.iter()}
        assert names <= {"svg", "path", "rect"}, names
        assert not any(a.startswith("on") for el in svg.iter() for a in el.attrib)
        assert "gangway.test" not in answer.text and "<script" not in answer.text
        seen = dict(parse_qsl(f"u={value}", keep_blank_values=True))["u"]
        assert urlsplit(seen)[:2] == ("http", OWN_HOST)
    else:
        BRANCHES["qr refused"] += 1
        assert answer.status_code == 400, answer.text


def test_qr_codes_encode_our_urls_only_and_never_echo_them(client: TestClient) -> None:
    exercised(
        qr_codes_encode_our_urls_only_and_never_echo_them,
        {"qr drawn": 0.05, "qr refused": 0.05},
        client=client,
    )


def test_the_demo_app_is_what_the_fuzzed_redirects_assume() -> None:
    assert configured_hosts(DEMO_APP) == DEMO_HOSTS
