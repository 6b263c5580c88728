"""CCPA limited data use, end to end: a click with a location -> an install -> the postback's
`limited_data_use`, through real servers and the fake TikTok.

Two servers: one that trusts the CDN's location headers (`GANGWAY_TRUST_GEO_HEADERS`), one that
looks the visitor's IP up in a MaxMind-format database this module writes itself (and does not
trust the headers, so a forged header changes nothing there).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from tests.fakes.tiktok_api import FakeTikTok
from tests.fixtures import install, put_integration, seed, visit
from tests.live import LiveServer

CALIFORNIA_IP = "198.51.100.9"
TEXAS_IP = "203.0.113.9"
NEW_YORK_IP = "100.64.0.9"
GERMANY_IP = "192.0.2.9"
UNKNOWN_IP = "100.100.0.9"


def _server(tmp: Path, fake: FakeTikTok, env: dict[str, str]) -> Iterator[LiveServer]:
    db = str(tmp / "gangway.db")
    token, sdk_key = seed(db)
    server = LiveServer(db, {"GANGWAY_TIKTOK_API_URL": fake.base_url, **env}).start()
    server.admin_token = token  # type: ignore[attr-defined]
    server.sdk_key = sdk_key  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def geo_headers_server(
    tmp_path_factory: pytest.TempPathFactory, fake_tiktok_server: FakeTikTok
) -> Iterator[LiveServer]:
    yield from _server(
        tmp_path_factory.mktemp("ccpa-headers"),
        fake_tiktok_server,
        {"GANGWAY_TRUST_GEO_HEADERS": "true"},
    )


@pytest.fixture(scope="module")
def geoip_server(
    tmp_path_factory: pytest.TempPathFactory, fake_tiktok_server: FakeTikTok
) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("ccpa-mmdb")
    writer = MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City", languages=["en"]
    )
    for network, country, region in (
        ("198.51.100.0/24", "US", "CA"),
        ("203.0.113.0/24", "US", "TX"),
        ("100.64.0.0/24", "US", "NY"),
        ("192.0.2.0/24", "DE", "BE"),
    ):
        writer.insert_network(
            IPSet([network]),
            {"country": {"iso_code": country}, "subdivisions": [{"iso_code": region}]},
        )
    writer.to_db_file(str(folder / "city.mmdb"))
    yield from _server(
        folder,
        fake_tiktok_server,
        {
            "GANGWAY_GEOIP_DB": str(folder / "city.mmdb"),
            # The test client is the proxy: it says who the visitor is in X-Forwarded-For.
            "GANGWAY_TRUSTED_PROXIES": "127.0.0.1",
            # New York is covered only because this setting says so.
            "GANGWAY_LDU_STATES": "CA,TX,NY",
        },
    )


def limited_data_use(
    server: LiveServer, fake: FakeTikTok, ccpa_limit: bool, headers: dict[str, str], name: str
) -> bool:
    """Set the switch, click with `headers`, install: the install postback's flag."""
    put_integration(server, ccpa_limit=ccpa_limit)
    v = visit(server.url, f"E.C.P.{name}", headers)
    installed = install(server, f"ccpa-{name}", v.install_referrer)
    [sent] = fake.wait_for_events(1)
    assert sent["event_id"] == installed["install_id"]
    flag = sent["limited_data_use"]
    assert isinstance(flag, bool)
    return flag


def cloudflare(country: str, region: str | None = None) -> dict[str, str]:
    return {"CF-IPCountry": country, **({"CF-Region-Code": region} if region else {})}


@pytest.mark.parametrize(
    ("ccpa_limit", "headers", "expected"),
    [
        pytest.param(True, cloudflare("US", "CA"), True, id="California"),
        pytest.param(True, cloudflare("US", "TX"), True, id="Texas"),
        pytest.param(True, cloudflare("DE", "BE"), False, id="Germany"),
        pytest.param(True, {}, True, id="unknown location"),
        pytest.param(True, cloudflare("XX"), True, id="Cloudflare does not know"),
        pytest.param(True, cloudflare("US", "NY"), False, id="New York, not in the default list"),
        pytest.param(
            True,
            {"CloudFront-Viewer-Country": "US", "CloudFront-Viewer-Country-Region": "VA"},
            True,
            id="CloudFront, Virginia",
        ),
        pytest.param(True, cloudflare("DE", "BE") | {"Sec-GPC": "1"}, True, id="Sec-GPC"),
        pytest.param(False, cloudflare("US", "CA"), False, id="switch off, California"),
        pytest.param(False, {}, False, id="switch off, unknown"),
        pytest.param(False, cloudflare("US", "TX") | {"Sec-GPC": "1"}, False, id="switch off, GPC"),
    ],
)
def test_location_from_trusted_cdn_headers(
    geo_headers_server: LiveServer,
    fake_tiktok: FakeTikTok,
    ccpa_limit: bool,
    headers: dict[str, str],
    expected: bool,
    request: pytest.FixtureRequest,
) -> None:
    name = "h-" + re.sub(r"\W+", "-", request.node.callspec.id)
    assert limited_data_use(geo_headers_server, fake_tiktok, ccpa_limit, headers, name) is expected


@pytest.mark.parametrize(
    ("ccpa_limit", "ip", "headers", "expected"),
    [
        pytest.param(True, CALIFORNIA_IP, {}, True, id="California"),
        pytest.param(True, TEXAS_IP, {}, True, id="Texas"),
        pytest.param(True, NEW_YORK_IP, {}, True, id="New York, covered by the setting"),
        pytest.param(True, GERMANY_IP, {}, False, id="Germany"),
        pytest.param(True, UNKNOWN_IP, {}, True, id="not in the database"),
        pytest.param(
            True,
            GERMANY_IP,
            cloudflare("US", "CA"),
            False,
            id="untrusted headers change nothing",
        ),
        pytest.param(False, CALIFORNIA_IP, {}, False, id="switch off"),
    ],
)
def test_location_from_a_maxmind_database(
    geoip_server: LiveServer,
    fake_tiktok: FakeTikTok,
    ccpa_limit: bool,
    ip: str,
    headers: dict[str, str],
    expected: bool,
    request: pytest.FixtureRequest,
) -> None:
    name = "m-" + re.sub(r"\W+", "-", request.node.callspec.id)
    sent_headers = {"X-Forwarded-For": ip, **headers}
    assert limited_data_use(geoip_server, fake_tiktok, ccpa_limit, sent_headers, name) is expected


def test_the_touch_ip_sent_is_the_visitors_not_the_proxys(
    geoip_server: LiveServer, fake_tiktok: FakeTikTok
) -> None:
    put_integration(geoip_server)
    v = visit(geoip_server.url, "E.C.P.proxy", {"X-Forwarded-For": GERMANY_IP})
    install(geoip_server, "ccpa-proxy", v.install_referrer)
    [sent] = fake_tiktok.wait_for_events(1)
    user: dict[str, Any] = sent["user"]
    assert user["ip"] == GERMANY_IP
