"""`GET /qr.svg?u=`: QR codes of our own URLs only, decoded back with a real QR reader.

The served SVG is turned into pixels here (segno draws each dark run of a row as one horizontal
stroke: `M x y` / `m dx dy` moves and `h n` runs) and read with zxing-cpp, so the test checks
what a phone camera would read, not what we meant to draw. A drawing command this small
rasterizer does not know fails the test rather than being skipped over. The landing-page browser
test decodes the code as Chromium displays it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import zxingcpp
from starlette.testclient import TestClient

from app.server import create_app
from app.settings import Settings
from tests.fixtures import MAC_UA, make_settings, seed

ORIGIN = "https://gangway.test"
PIXELS_PER_MODULE = 4


@pytest.fixture()
def web(settings: Settings, seeded: tuple[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url=ORIGIN) as c:
        yield c


def rasterize(svg: str) -> memoryview:
    """The QR code an SVG of ours draws, as grey pixels (rows x columns, 0 dark, 255 light)."""
    box = re.search(r'viewBox="0 0 (\d+) (\d+)"', svg)
    path = re.search(r'<path stroke="#000" d="([^"]+)"', svg)
    assert box and path, svg[:200]
    size = int(box.group(1))
    commands = re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path.group(1))
    assert "".join(c + a + (f" {b}" if b else "") for c, a, b in commands) == path.group(1)
    dark = [[False] * size for _ in range(size)]
    x = y = 0.0
    for command, a, b in commands:
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            for column in range(int(x), int(x + float(a))):
                dark[int(y)][column] = True
            x += float(a)
    side = size * PIXELS_PER_MODULE
    grey = bytearray(side * side)
    for row in range(side):
        for column in range(side):
            light = not dark[row // PIXELS_PER_MODULE][column // PIXELS_PER_MODULE]
            grey[row * side + column] = 255 if light else 0
    return memoryview(bytes(grey)).cast("B", shape=[side, side])


def decode(svg: str) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(rasterize(svg))]


def qr(web: TestClient, url: str) -> httpx.Response:
    return web.get("/qr.svg?" + urlencode({"u": url}))


@pytest.mark.parametrize(
    "url",
    [
        f"{ORIGIN}/c/demo?pid=tiktokweb_int&af_ss_qr=true",
        f"{ORIGIN}/c/demo?" + urlencode({"c": "été & more", "ttclid": "E.C.P." + "x" * 300}),
        f"{ORIGIN}/",
    ],
)
def test_a_url_of_ours_becomes_a_qr_code_that_reads_back(web: TestClient, url: str) -> None:
    answer = qr(web, url)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    assert answer.headers["cache-control"] == "public, max-age=86400"
    svg = answer.text
    # Nothing in it but the drawing: no script, no text, no link.
    assert re.sub(r"<path [^>]*/>", "", svg).startswith("<svg")
    assert "<script" not in svg and "href" not in svg
    assert decode(svg) == [url]


def test_the_landing_page_s_qr_code_reads_as_its_click_url(web: TestClient) -> None:
    html = web.get(
        "/lp/demo?pid=tiktokweb_int&c=summer&ttclid=T1", headers={"user-agent": MAC_UA}
    ).text
    src = re.search(r'<img src="(/qr\.svg\?u=[^"]+)"', html)
    assert src is not None
    svg = web.get(src.group(1).replace("&amp;", "&")).text
    (text,) = decode(svg)
    assert text.startswith(f"{ORIGIN}/c/demo?af_js_web=true&")
    params = parse_qs(urlsplit(text).query)
    assert params["pid"] == ["tiktokweb_int"] and params["c"] == ["summer"]
    assert params["ttclid"] == ["T1"] and params["af_sub1"] == ["T1"]
    assert params["af_ss_qr"] == ["true"] and "platform" not in params
    pvid = re.search(r'name="gw-pvid" content="([^"]+)"', html)
    assert pvid and params["pvid"] == [pvid.group(1)]


@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://evil.example/c/demo",
        "http://gangway.test/c/demo",  # our host, but not our scheme
        "https://gangway.test.evil.example/",
        "https://gangway.test@evil.example/",
        "https://evil.example/?u=https://gangway.test/",
        "//gangway.test/c/demo",
        "/c/demo",
        "javascript:alert(1)",
        "https://[gangway.test/",
        f"{ORIGIN}/c/demo?x=" + "a" * 3000,
    ],
)
def test_anything_else_is_refused(web: TestClient, url: str) -> None:
    answer = qr(web, url)
    assert answer.status_code == 400
    assert answer.json()["field"] == "u"


def test_behind_a_proxy_our_host_is_the_public_url(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, public_url="https://track.example.com/", allowed_hosts=frozenset({"10.0.0.8"})
    )
    seed(settings.db)
    with TestClient(create_app(settings), base_url="http://10.0.0.8:8000") as web:
        assert qr(web, "https://track.example.com/c/demo").status_code == 200
        assert qr(web, "http://10.0.0.8:8000/c/demo").status_code == 400
