"""The public tracking surface in process (http-api.md section 1): the landing page's HTML and
headers, impressions, clicks, direct clicks, device and bot verdicts, limits, CORS.

The app runs on a fresh seeded database per test, reached as https://gangway.test from a
documentation address (203.0.113.7), so touches carry a real IP.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from starlette.testclient import TestClient

from app.__main__ import DEMO_APP, DEMO_PAGE
from app.server import create_app
from app.settings import Settings
from tests import dbq
from tests.fixtures import ANDROID_UA, DESKTOP_UA, IPHONE_UA, make_settings, seed

ORIGIN = "https://gangway.test"
VISITOR_IP = "203.0.113.7"
TIKTOK_UA = (
    "Mozilla/5.0 (Linux; Android 13; SM-S918B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.193 Mobile Safari/537.36 "
    "musical_ly_2023205030 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly "
    "app_version/32.5.3 ByteLocale/en ByteFullLocale/en Region/US BytedanceWebview/d8a21c6"
)
PREVIEW_UA = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
TTCLID = "E.C.P.CsQBabc"
IOS_STORE = "https://apps.apple.com/app/id1234567890"
PLAY_STORE = "https://play.google.com/store/apps/details?id=com.example.game"
STEAM_STORE = "https://store.steampowered.com/app/440/"


def open_client(settings: Settings, ip: str = VISITOR_IP) -> TestClient:
    return TestClient(
        create_app(settings), base_url=ORIGIN, client=(ip, 40000), follow_redirects=False
    )


@pytest.fixture()
def web(settings: Settings, seeded: tuple[str, str]) -> Iterator[TestClient]:
    with open_client(settings) as c:
        yield c


def rows(settings: Settings, table: str, where: str = "1", *args: Any) -> list[dict[str, Any]]:
    return dbq.query_dicts(settings.db, f"SELECT * FROM {table} WHERE {where}", args)


def beacon(pvid: str = "pv-1", **extra: Any) -> str:
    body = {
        "url": f"{ORIGIN}/lp/demo?pid=tiktokweb_int&c=summer&ttclid={TTCLID}",
        "referrer": "https://www.tiktok.com/",
        "pvid": pvid,
        "params": {"pid": "tiktokweb_int", "c": "summer", "ttclid": TTCLID, "af_sub1": TTCLID},
    }
    body.update(extra)
    return json.dumps(body)


def post_beacon(web: TestClient, body: str, **headers: str) -> Any:
    return web.post(
        "/i/demo",
        content=body,
        headers={"content-type": "text/plain;charset=UTF-8", "user-agent": ANDROID_UA, **headers},
    )


def put_app(web: TestClient, admin: dict[str, str], **changes: Any) -> None:
    body = copy.deepcopy(DEMO_APP) | changes
    answer = web.put("/api/v1/apps/demo", json=body, headers=admin)
    assert answer.status_code == 200, answer.text


def put_page(web: TestClient, admin: dict[str, str], slug: str = "demo", **changes: Any) -> None:
    body = copy.deepcopy(DEMO_PAGE) | changes
    answer = web.put(f"/api/v1/pages/{slug}", json=body, headers=admin)
    assert answer.status_code == 200, answer.text


def ctas(html: str) -> list[tuple[str, str]]:
    """(platform, href) of each CTA in page order, hrefs unescaped."""
    found = re.findall(r'data-platform="([^"]+)" href="([^"]+)"', html)
    return [(p, h.replace("&amp;", "&")) for p, h in found]


def q(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# -- the landing page ------------------------------------------------------------------------


def test_landing_page_headers(web: TestClient) -> None:
    page = web.get("/lp/demo?pid=tiktokweb_int", headers={"user-agent": IPHONE_UA})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "style-src 'self'" in csp
    assert "http" not in csp and "unsafe-inline" not in csp and "*" not in csp


def test_every_render_mints_its_own_pvid(web: TestClient) -> None:
    pvids = set()
    for _ in range(3):
        html = web.get("/lp/demo").text
        pvid = re.search(r'<meta name="gw-pvid" content="([A-Za-z0-9_-]+)">', html)
        assert pvid is not None and len(pvid.group(1)) >= 22
        pvids.add(pvid.group(1))
        # The noscript pixel and every CTA carry this render's pvid.
        assert f"pvid={pvid.group(1)}" in html.split("<noscript>")[1]
        assert all(q(h)["pvid"] == [pvid.group(1)] for _, h in ctas(html))
    assert len(pvids) == 3


def test_the_page_has_no_inline_style_or_script_and_loads_only_our_files(web: TestClient) -> None:
    html = web.get(
        f"/lp/demo?pid=tiktokweb_int&ttclid={TTCLID}", headers={"user-agent": DESKTOP_UA}
    ).text
    assert "style=" not in html and "<style" not in html
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/") or url.startswith(ORIGIN + "/"), url
    css = re.search(r'href="(/static/gangway\.css\?v=[0-9a-f]+)"', html)
    script = re.search(r'src="(/smartscript\.js\?v=[0-9a-f]+)"', html)
    assert css and script
    for url in (css.group(1), script.group(1)):
        answer = web.get(url)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.both_backends
def test_cta_hrefs_are_click_urls_built_with_the_tiktok_preset(web: TestClient) -> None:
    query = urlencode(
        {"pid": "tiktokweb_int", "c": "summer", "af_c_id": "17", "af_adset": "a", "ttclid": TTCLID}
    )
    html = web.get(f"/lp/demo?{query}", headers={"user-agent": IPHONE_UA}).text
    found = ctas(html)
    assert [p for p, _ in found] == ["ios", "android", "apk", "steam"]
    for platform, href in found:
        assert href.startswith(f"{ORIGIN}/c/demo?af_js_web=true&af_ss_ver=")
        params = q(href)
        assert params["pid"] == ["tiktokweb_int"] and params["c"] == ["summer"]
        assert params["af_c_id"] == ["17"] and params["af_adset"] == ["a"]
        assert params["ttclid"] == [TTCLID] and params["af_sub1"] == [TTCLID]
        assert params["platform"] == [platform]
    assert 'Download on the</span> <span class="cta-name">App Store' in html


@pytest.mark.parametrize(
    ("ua", "order", "primary"),
    [
        (IPHONE_UA, ["ios", "android", "apk", "steam"], True),
        (ANDROID_UA, ["android", "ios", "apk", "steam"], True),
        (TIKTOK_UA, ["android", "ios", "apk", "steam"], True),
        (DESKTOP_UA, ["steam", "ios", "android", "apk"], True),
        (PREVIEW_UA, ["ios", "android", "apk", "steam"], False),
    ],
)
def test_the_visitor_s_own_store_comes_first(
    web: TestClient, ua: str, order: list[str], primary: bool
) -> None:
    html = web.get("/lp/demo", headers={"user-agent": ua}).text
    assert [p for p, _ in ctas(html)] == order
    assert ("cta-primary" in html) is primary


def test_android_without_play_gets_the_apk_first(web: TestClient, admin: dict[str, str]) -> None:
    destinations = {k: v for k, v in DEMO_APP["destinations"].items() if k != "android"}
    put_app(web, admin, destinations=destinations)
    put_page(web, admin, ctas=["ios", "apk", "steam"])
    html = web.get("/lp/demo", headers={"user-agent": ANDROID_UA}).text
    assert [p for p, _ in ctas(html)] == ["apk", "ios", "steam"]


def test_desktop_gets_a_qr_code_of_the_click_url_and_phones_do_not(web: TestClient) -> None:
    desktop = web.get(f"/lp/demo?ttclid={TTCLID}", headers={"user-agent": DESKTOP_UA}).text
    src = re.search(r'<img src="(/qr\.svg\?u=[^"]+)"', desktop)
    assert src is not None
    target = q(src.group(1).replace("&amp;", "&"))["u"][0]
    click_url = dict(ctas(desktop))["ios"].removesuffix("&platform=ios")
    assert target == click_url + "&af_ss_qr=true"
    assert web.get(src.group(1).replace("&amp;", "&")).status_code == 200
    phone = web.get(f"/lp/demo?ttclid={TTCLID}", headers={"user-agent": IPHONE_UA}).text
    assert "data-gw-qr" not in phone


def test_a_page_s_own_mapping_and_ttclid_sub_are_used(
    web: TestClient, admin: dict[str, str]
) -> None:
    mapping = {
        "mediaSource": {"keys": ["src"], "defaultValue": "tiktokweb_int"},
        "campaign": {"keys": ["promo"]},
        "afSub1": {"keys": ["creative"]},
    }
    put_page(web, admin, mapping=mapping, ttclid_sub="af_sub3")
    html = web.get("/lp/demo?src=tt&promo=p1&creative=cr&ttclid=T7").text
    href = ctas(html)[0][1]
    params = q(href)
    assert params["pid"] == ["tt"] and params["c"] == ["p1"] and params["af_sub1"] == ["cr"]
    assert params["ttclid"] == ["T7"] and params["af_sub3"] == ["T7"]
    # The snippet receives the same mapping, as JSON in a single-quoted attribute.
    attr = re.search(r"data-mapping='([^']+)'", html)
    assert attr is not None
    assert json.loads(attr.group(1))["campaign"]["keys"] == ["promo"]
    assert 'data-ttclid-sub="af_sub3"' in html


def test_a_mapping_that_resolves_no_media_source_still_gives_working_buttons(
    web: TestClient, admin: dict[str, str]
) -> None:
    put_page(web, admin, mapping={"mediaSource": {"keys": ["src"]}})
    html = web.get("/lp/demo?c=x").text
    for platform, href in ctas(html):
        assert href.startswith(f"{ORIGIN}/c/demo?pvid=") and href.endswith(f"platform={platform}")


def test_only_our_own_images_are_shown(web: TestClient, admin: dict[str, str]) -> None:
    put_page(web, admin, image_url="https://images.example.net/hero.png")
    html = web.get("/lp/demo").text
    assert "images.example.net" not in html and 'class="brand-icon"' in html
    put_page(web, admin, image_url="/static/favicon.svg")
    html = web.get("/lp/demo").text
    assert re.search(r'class="brand-image" src="/static/favicon\.svg\?v=[0-9a-f]+"', html)


def test_page_text_is_escaped(web: TestClient, admin: dict[str, str]) -> None:
    put_page(web, admin, headline="<b>Big</b>", body="one & two\n\n<script>x()</script>")
    html = web.get("/lp/demo").text
    assert "&lt;b&gt;Big&lt;/b&gt;" in html
    assert '<p class="body">one &amp; two</p>' in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html


def test_an_unknown_page_is_a_404_page(web: TestClient) -> None:
    for path in ("/lp/nope", "/lp/%3Cscript%3E", "/lp/" + "x" * 500):
        answer = web.get(path)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert answer.headers["cache-control"] == "no-store"
        assert "Page not found" in answer.text and "<script" not in answer.text


def test_static_files_are_ours_and_cacheable(web: TestClient) -> None:
    plain = web.get("/static/gangway.css")
    assert plain.status_code == 200 and plain.headers["cache-control"] == "public, max-age=300"
    again = web.get("/static/gangway.css", headers={"if-none-match": plain.headers["etag"]})
    assert again.status_code == 304
    for path in ("/static/nope.css", "/static/../app/settings.py", "/static/%2e%2e/README.md"):
        assert web.get(path).status_code == 404


# -- impressions -----------------------------------------------------------------------------


@pytest.mark.both_backends
def test_a_beacon_records_one_impression_with_everything(
    web: TestClient, settings: Settings
) -> None:
    answer = post_beacon(web, beacon(), **{"accept-language": "de-DE,de;q=0.9", "sec-gpc": "1"})
    assert answer.status_code == 202
    assert answer.headers["cache-control"] == "no-store"
    (row,) = rows(settings, "impressions")
    assert row["id"] == answer.json()["id"] and len(row["id"]) >= 22
    assert row["app_key"] == "demo" and row["page_slug"] == "demo" and row["pvid"] == "pv-1"
    assert row["ip"] == VISITOR_IP
    assert (row["os_family"], row["os_version"], row["device_model"]) == (
        "android",
        "14",
        "Pixel 8",
    )
    assert row["browser"] == "Chrome Mobile"
    assert row["language"] == "de-DE,de;q=0.9" and row["gpc"] == 1
    assert row["pid"] == "tiktokweb_int" and row["c"] == "summer"
    assert row["ttclid"] == TTCLID and row["af_sub1"] == TTCLID
    assert row["original_url"].startswith(f"{ORIGIN}/lp/demo?pid=tiktokweb_int")
    assert row["referrer"] == "https://www.tiktok.com/"
    assert (row["verdict"], row["verdict_reasons"]) == ("human", "")


def test_json_beacons_work_too(web: TestClient, settings: Settings) -> None:
    answer = web.post("/i/demo", content=beacon(), headers={"content-type": "application/json"})
    assert answer.status_code == 202
    assert len(rows(settings, "impressions")) == 1


@pytest.mark.both_backends
def test_the_same_pvid_is_one_impression(web: TestClient, settings: Settings) -> None:
    first = post_beacon(web, beacon("pv-same")).json()["id"]
    again = post_beacon(web, beacon("pv-same", params={"pid": "other"})).json()["id"]
    pixel = web.get("/i/demo?pid=x&pvid=pv-same")
    assert pixel.status_code == 200
    assert again == first
    (row,) = rows(settings, "impressions")
    assert row["pid"] == "tiktokweb_int"
    assert post_beacon(web, beacon("pv-other")).json()["id"] != first


def test_a_beacon_without_params_reads_the_page_url(web: TestClient, settings: Settings) -> None:
    body = json.dumps({"url": f"{ORIGIN}/lp/demo?pid=p2&c=c2&ttclid=T2&pvid=pv-u"})
    assert post_beacon(web, body).status_code == 202
    (row,) = rows(settings, "impressions")
    assert (row["pid"], row["c"], row["ttclid"], row["pvid"]) == ("p2", "c2", "T2", "pv-u")


def test_a_beacon_from_another_site_has_no_page_slug(web: TestClient, settings: Settings) -> None:
    post_beacon(web, beacon(url="https://www.example.com/lp/demo?pid=x"))
    assert rows(settings, "impressions")[0]["page_slug"] is None


def test_the_pixel_records_an_impression(web: TestClient, settings: Settings) -> None:
    landing = f"{ORIGIN}/lp/demo?pid=tiktokweb_int&ttclid={TTCLID}"
    answer = web.get(
        f"/i/demo?pid=tiktokweb_int&ttclid={TTCLID}&pvid=pv-px",
        headers={"referer": landing, "user-agent": IPHONE_UA},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    assert answer.headers["cache-control"] == "no-store"
    assert answer.content.startswith(b"GIF89a")
    (row,) = rows(settings, "impressions")
    assert row["pvid"] == "pv-px" and row["original_url"] == landing and row["page_slug"] == "demo"
    assert row["os_family"] == "ios" and row["ttclid"] == TTCLID


def test_head_is_answered_and_never_recorded(web: TestClient, settings: Settings) -> None:
    assert web.head("/i/demo?pid=x&pvid=h").status_code == 200
    head = web.head(f"/c/demo?pid=x&ttclid={TTCLID}", headers={"user-agent": ANDROID_UA})
    assert head.status_code == 302
    # Without a recorded click there is no click id to hand to Play.
    assert "gw_click_id" not in q(head.headers["location"])["referrer"][0]
    assert web.head("/lp/demo").status_code == 200
    assert rows(settings, "impressions") == [] and rows(settings, "clicks") == []


def test_unknown_apps_are_404(web: TestClient) -> None:
    for answer in (
        web.get("/i/nope"),
        web.post("/i/nope", content=beacon(), headers={"content-type": "text/plain"}),
        web.get("/c/nope"),
    ):
        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        (beacon(), "application/x-www-form-urlencoded", 415, None),
        ("{not json", "text/plain", 400, None),
        ("[1, 2]", "text/plain", 400, None),
        (beacon(url=5), "text/plain", 400, "url"),
        (beacon(referrer=["x"]), "text/plain", 400, "referrer"),
        (beacon(pvid={"a": 1}), "text/plain", 400, "pvid"),
        (beacon(params="pid=x"), "text/plain", 400, "params"),
        (b"\xff\xfe not UTF-8", "text/plain", 400, None),
        (json.dumps({"url": "x" * 70_000}), "text/plain", 413, None),
    ],
)
def test_a_bad_beacon_is_a_clear_4xx(
    web: TestClient,
    settings: Settings,
    body: str | bytes,
    content_type: str,
    status: int,
    field: str | None,
) -> None:
    answer = web.post("/i/demo", content=body, headers={"content-type": content_type})
    assert answer.status_code == status
    assert answer.json()["field"] == field
    assert rows(settings, "impressions") == []


def test_cors_allows_our_origin_and_the_app_s_listed_origins_only(
    web: TestClient, settings: Settings, admin: dict[str, str]
) -> None:
    shop = "https://www.example.com"
    put_app(web, admin, allowed_origins=[shop])
    for origin in (ORIGIN, shop):
        answer = post_beacon(web, beacon(f"pv-{origin}"), origin=origin)
        assert answer.status_code == 202
        assert answer.headers["access-control-allow-origin"] == origin
        assert answer.headers["vary"] == "Origin"
        preflight = web.options(
            "/i/demo",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "POST" in preflight.headers["access-control-allow-methods"]
    for stranger in ("https://evil.example", "null", "https://www.example.com.evil.example"):
        refused = post_beacon(web, beacon("pv-evil"), origin=stranger)
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers
        assert web.options("/i/demo", headers={"origin": stranger}).status_code == 403
    # A pixel (no Origin at all) is always welcome, and needs no CORS header.
    pixel = web.get("/i/demo?pvid=pv-img")
    assert pixel.status_code == 200 and "access-control-allow-origin" not in pixel.headers
    assert len(rows(settings, "impressions")) == 3


def test_no_origin_is_allowed_by_default_besides_our_own(web: TestClient) -> None:
    assert post_beacon(web, beacon(), origin="https://www.example.com").status_code == 403


# -- devices and verdicts --------------------------------------------------------------------


def test_tiktok_s_in_app_browser_is_marked(web: TestClient, settings: Settings) -> None:
    post_beacon(web, beacon(), **{"user-agent": TIKTOK_UA})
    (row,) = rows(settings, "impressions")
    assert row["in_app"] == "tiktok" and row["browser"] == "TikTok"
    assert row["os_family"] == "android" and row["device_model"] == "SM-S918B"


@pytest.mark.parametrize(
    ("ua", "reasons"),
    [
        (PREVIEW_UA, "preview_ua"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "crawler_ua"),
        ("", "no_ua"),
    ],
)
def test_bots_are_recorded_with_their_verdict_and_still_redirected(
    web: TestClient, settings: Settings, ua: str, reasons: str
) -> None:
    answer = web.get("/c/demo?pid=x", headers={"user-agent": ua})
    assert answer.status_code == 302
    (row,) = rows(settings, "clicks")
    assert (row["verdict"], row["verdict_reasons"]) == ("bot", reasons)


def test_a_burst_from_one_ip_is_marked_suspect_but_answered(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, burst_limit=3)
    seed(settings.db)
    with open_client(settings) as web, open_client(settings, ip="198.51.100.1") as other:
        for i in range(5):
            assert web.get(f"/c/demo?n={i}", headers={"user-agent": IPHONE_UA}).status_code == 302
        assert other.get("/c/demo?n=9", headers={"user-agent": IPHONE_UA}).status_code == 302
        assert post_beacon(web, beacon()).status_code == 202
    found = rows(settings, "clicks", "1 ORDER BY rowid")
    assert [r["verdict"] for r in found] == ["human"] * 3 + ["suspect"] * 2 + ["human"]
    assert found[3]["verdict_reasons"] == "burst_ip"
    assert rows(settings, "impressions")[0]["verdict"] == "suspect"


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, trusted_proxies="10.0.0.0/8")
    seed(settings.db)
    forwarded = {"x-forwarded-for": "198.51.100.23, 10.1.1.1"}
    with open_client(settings, ip="10.0.0.5") as proxied, open_client(settings) as direct:
        proxied.get("/c/demo?n=1", headers=forwarded)
        direct.get("/c/demo?n=2", headers=forwarded)
    ips = [r["ip"] for r in rows(settings, "clicks", "1 ORDER BY rowid")]
    assert ips == ["198.51.100.23", VISITOR_IP]


def test_cdn_location_headers_count_only_when_trusted(tmp_path: Path) -> None:
    for trust, expected in ((True, ("US", "CA")), (False, (None, None))):
        settings = make_settings(tmp_path / str(trust), trust_geo_headers=trust)
        seed(settings.db)
        with open_client(settings) as web:
            web.get(
                "/c/demo",
                headers={
                    "cloudfront-viewer-country": "US",
                    "cloudfront-viewer-country-region": "CA",
                },
            )
        (row,) = rows(settings, "clicks")
        assert (row["country"], row["region"]) == expected


# -- clicks ----------------------------------------------------------------------------------


@pytest.mark.both_backends
def test_an_iphone_click_goes_to_the_app_store_and_is_recorded(
    web: TestClient, settings: Settings
) -> None:
    answer = web.get(
        f"/c/demo?pid=tiktokweb_int&c=summer&ttclid={TTCLID}&af_sub1={TTCLID}&pvid=pv-c",
        headers={"user-agent": IPHONE_UA},
    )
    assert answer.status_code == 302
    assert answer.headers["location"] == IOS_STORE
    assert answer.headers["cache-control"] == "no-store"
    (row,) = rows(settings, "clicks")
    assert row["platform"] == "ios" and row["destination"] == IOS_STORE
    assert row["pid"] == "tiktokweb_int" and row["c"] == "summer"
    assert row["ttclid"] == TTCLID and row["af_sub1"] == TTCLID and row["pvid"] == "pv-c"
    assert row["ip"] == VISITOR_IP and row["os_family"] == "ios"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", row["id"])


@pytest.mark.both_backends
def test_an_android_click_hands_its_id_to_play(web: TestClient, settings: Settings) -> None:
    answer = web.get(
        "/c/demo?pid=tiktokweb_int&c=summer&af_c_id=17&af_adset=a&af_ad_id=9",
        headers={"user-agent": ANDROID_UA},
    )
    location = answer.headers["location"]
    assert location.startswith(PLAY_STORE + "&referrer=")
    referrer = parse_qs(q(location)["referrer"][0])
    (row,) = rows(settings, "clicks")
    assert referrer == {
        "gw_click_id": [row["id"]],
        "pid": ["tiktokweb_int"],
        "c": ["summer"],
        "af_c_id": ["17"],
        "af_adset": ["a"],
        "af_ad_id": ["9"],
    }


def test_click_ids_are_unique(web: TestClient, settings: Settings) -> None:
    for _ in range(20):
        web.get("/c/demo")
    assert len({r["id"] for r in rows(settings, "clicks")}) == 20


def test_platform_forces_the_store(web: TestClient, settings: Settings) -> None:
    answer = web.get("/c/demo?platform=steam", headers={"user-agent": IPHONE_UA})
    assert answer.headers["location"] == STEAM_STORE
    assert rows(settings, "clicks")[0]["platform"] == "steam"


def test_desktop_goes_to_the_web_url(web: TestClient, settings: Settings) -> None:
    assert web.get("/c/demo", headers={"user-agent": DESKTOP_UA}).headers["location"] == (
        "https://example.com/"
    )
    assert rows(settings, "clicks")[0]["platform"] == "web"


def test_af_r_is_followed_only_to_a_configured_host(web: TestClient, settings: Settings) -> None:
    evil = web.get("/c/demo?af_r=https://evil.example/", headers={"user-agent": IPHONE_UA})
    assert evil.headers["location"] == IOS_STORE
    ok = web.get("/c/demo?af_r=https://example.com/promo", headers={"user-agent": IPHONE_UA})
    assert ok.headers["location"] == "https://example.com/promo"
    flags = [r["flags"] for r in rows(settings, "clicks", "1 ORDER BY rowid")]
    assert flags == ["redirect_rejected", ""]


@pytest.mark.both_backends
def test_a_click_s_original_url_is_its_page_view_s_landing_url(
    web: TestClient, settings: Settings
) -> None:
    landing = f"{ORIGIN}/lp/demo?pid=tiktokweb_int&c=summer"
    post_beacon(web, beacon("pv-o", url=landing))
    web.get("/c/demo?pid=tiktokweb_int&pvid=pv-o", headers={"referer": f"{ORIGIN}/elsewhere"})
    # No recorded page view: a Referer of ours; a foreign one is no original URL.
    web.get("/c/demo?pid=x&pvid=pv-none", headers={"referer": f"{ORIGIN}/lp/demo?c=ref"})
    web.get("/c/demo?pid=y", headers={"referer": "https://evil.example/lp/demo"})
    found = rows(settings, "clicks", "1 ORDER BY rowid")
    assert found[0]["original_url"] == landing and found[0]["page_slug"] == "demo"
    assert found[1]["original_url"] == f"{ORIGIN}/lp/demo?c=ref" and found[1]["page_slug"] == "demo"
    assert found[2]["original_url"] == f"{ORIGIN}/c/demo?pid=y" and found[2]["page_slug"] is None


# -- direct click URLs -----------------------------------------------------------------------


@pytest.mark.both_backends
def test_a_direct_click_is_recorded_under_our_names_and_redirected(
    web: TestClient, settings: Settings
) -> None:
    query = urlencode(
        {
            "af_media_source": "tiktokweb_int",
            "af_campaign": "launch",
            "af_campaign_id": "55",
            "af_adset": "s",
            "af_sub2": "x",
            "ttclid": TTCLID,
            "af_r": "https://store.steampowered.com/app/440/?utm=1",
        }
    )
    answer = web.get(f"/v1.0/c2s/click/app/steam/440?{query}", headers={"user-agent": DESKTOP_UA})
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://store.steampowered.com/app/440/?utm=1"
    (row,) = rows(settings, "clicks")
    assert (row["pid"], row["c"], row["af_c_id"]) == ("tiktokweb_int", "launch", "55")
    assert (row["af_adset"], row["af_sub2"], row["ttclid"]) == ("s", "x", TTCLID)
    assert row["platform"] == "steam"
    assert json.loads(row["params"])["af_media_source"] == "tiktokweb_int"


def test_a_direct_click_without_af_r_goes_to_the_platform_store(web: TestClient) -> None:
    answer = web.get(
        "/v1.0/c2s/click/app/STEAM/440?af_media_source=x&platform=ios&af_r=https://evil.example/"
    )
    assert answer.headers["location"] == STEAM_STORE


@pytest.mark.parametrize(
    "path",
    [
        "/v1.0/c2s/click/app/steam/999",
        "/v1.0/c2s/click/app/pager/440",
        "/v1.0/c2s/click/app/xbox/440",
        # An empty app id: a path with a trailing slash is refused, never redirected.
        "/v1.0/c2s/click/app/steam/",
    ],
)
def test_a_direct_click_for_no_app_is_404(web: TestClient, path: str) -> None:
    answer = web.get(path)
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
