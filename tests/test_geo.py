"""Touch location: CDN headers, a MaxMind-format database made here, and the order between them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from app.geo import UNKNOWN_LOCATION, GeoIPDatabase, Location, Locator, location_from_headers


def _city(country: str, *regions: str) -> dict[str, Any]:
    """A record in the GeoIP2 City layout (names trimmed to what a lookup reads, plus one)."""
    record: dict[str, Any] = {"country": {"iso_code": country, "names": {"en": country}}}
    if regions:
        record["subdivisions"] = [{"iso_code": region} for region in regions]
    return record


def _write_database(path: Path, ip_version: int, networks: dict[str, dict[str, Any]]) -> Path:
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type="GeoIP2-City",
        languages=["en"],
        description="Gangway test database",
    )
    for network, record in networks.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GeoIPDatabase]:
    path = _write_database(
        tmp_path_factory.mktemp("geo") / "city.mmdb",
        6,
        {
            "198.51.100.0/24": _city("US", "CA"),
            "203.0.113.0/24": _city("US", "TX"),
            # Two subdivision levels, as GeoIP2 has for some countries: the first is the region.
            "192.0.2.0/24": _city("DE", "BY", "09162"),
            "2001:db8:de::/48": _city("DE", "BE"),
            # A country-only record, as in GeoLite2 Country.
            "100.64.0.0/16": _city("JP"),
            # A record without a country (MaxMind has such anonymous-network entries).
            "100.65.0.0/16": {"continent": {"code": "EU"}},
        },
    )
    db = GeoIPDatabase(path)
    yield db
    db.close()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"CloudFront-Viewer-Country": "US", "CloudFront-Viewer-Country-Region": "CA"},
            Location("US", "CA"),
        ),
        ({"cloudfront-viewer-country": "de"}, Location("DE", None)),
        ({"CF-IPCountry": "US", "CF-Region-Code": "TX"}, Location("US", "TX")),
        ({"cf-ipcountry": "fr", "cf-region-code": "idf"}, Location("FR", "IDF")),
        # A full ISO 3166-2 code is cut to the region part.
        ({"CF-IPCountry": "US", "CF-Region-Code": "US-NY"}, Location("US", "NY")),
        # CloudFront's pair wins when both CDNs are in the path.
        (
            {"CF-IPCountry": "GB", "CloudFront-Viewer-Country": "US"},
            Location("US", None),
        ),
        # Cloudflare's unknown and Tor markers are not places.
        ({"CF-IPCountry": "XX", "CF-Region-Code": "CA"}, None),
        ({"CF-IPCountry": "T1"}, None),
        # Anything that is not a two-letter code is ignored rather than stored.
        ({"CF-IPCountry": "USA"}, None),
        ({"CF-IPCountry": ""}, None),
        ({"CF-IPCountry": "U1"}, None),
        ({"CF-IPCountry": "US", "CF-Region-Code": "<script>"}, Location("US", None)),
        # A region header alone says nothing.
        ({"CF-Region-Code": "CA"}, None),
        ({}, None),
        ({"User-Agent": "curl/8.5.0"}, None),
    ],
)
def test_location_from_headers(headers: dict[str, str], expected: Location | None) -> None:
    assert location_from_headers(headers) == expected


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("198.51.100.23", Location("US", "CA")),
        ("203.0.113.200", Location("US", "TX")),
        ("192.0.2.1", Location("DE", "BY")),
        ("2001:db8:de:1::5", Location("DE", "BE")),
        # IPv4-mapped IPv6 is looked up as IPv4.
        ("::ffff:198.51.100.23", Location("US", "CA")),
        (" 203.0.113.1 ", Location("US", "TX")),
        ("100.64.3.4", Location("JP", None)),
    ],
)
def test_database_lookup(database: GeoIPDatabase, ip: str, expected: Location) -> None:
    assert database.lookup(ip) == expected


@pytest.mark.parametrize(
    "ip",
    [None, "", "not-an-ip", "999.1.1.1", "10.0.0.1", "8.8.8.8", "2001:db8:1::1", "100.65.0.1"],
)
def test_database_lookup_unknown_or_bad_ip(database: GeoIPDatabase, ip: str | None) -> None:
    assert database.lookup(ip) is None


def test_ipv6_lookup_in_an_ipv4_only_database_is_unknown(tmp_path: Path) -> None:
    db = GeoIPDatabase(_write_database(tmp_path / "v4.mmdb", 4, {"192.0.2.0/24": _city("DE")}))
    try:
        assert db.lookup("192.0.2.9") == Location("DE", None)
        assert db.lookup("2001:db8::1") is None
    finally:
        db.close()


def test_a_missing_database_file_fails_at_open(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        GeoIPDatabase(tmp_path / "absent.mmdb")


CDN_HEADERS = {"CF-IPCountry": "US", "CF-Region-Code": "NY"}


def test_locator_prefers_trusted_headers(database: GeoIPDatabase) -> None:
    locator = Locator(trust_headers=True, database=database)
    assert locator.locate(CDN_HEADERS, "198.51.100.23") == Location("US", "NY")


def test_locator_falls_back_to_the_database_when_headers_say_nothing(
    database: GeoIPDatabase,
) -> None:
    locator = Locator(trust_headers=True, database=database)
    assert locator.locate({}, "198.51.100.23") == Location("US", "CA")
    assert locator.locate({"CF-IPCountry": "XX"}, "203.0.113.1") == Location("US", "TX")


def test_locator_ignores_untrusted_headers(database: GeoIPDatabase) -> None:
    locator = Locator(trust_headers=False, database=database)
    assert locator.locate(CDN_HEADERS, "203.0.113.1") == Location("US", "TX")
    assert Locator(trust_headers=False, database=None).locate(CDN_HEADERS, "1.2.3.4") == (
        UNKNOWN_LOCATION
    )


def test_locator_without_any_answer_is_unknown(database: GeoIPDatabase) -> None:
    assert Locator(trust_headers=True, database=None).locate({}, "198.51.100.23") == Location(
        None, None
    )
    assert Locator(trust_headers=True, database=database).locate({}, "8.8.8.8") == Location(
        None, None
    )
    assert Locator(trust_headers=True, database=database).locate({}, None) == Location(None, None)
