"""Where a touch came from: country and region, for CCPA limited data use (postbacks.md section 4).

First that answers: the CDN's location headers when the owner trusts them
(`GANGWAY_TRUST_GEO_HEADERS`), then a MaxMind-format database (`GANGWAY_GEOIP_DB`), else
unknown. `Locator` applies that order; the two sources are usable on their own.

Codes are ISO 3166, upper-case: country "US", region "CA" (the subdivision without its country
prefix, as CloudFront and Cloudflare send it). A region is only kept together with its country.
Only trust the headers behind a CDN that sets them: anyone can send them to an exposed origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import maxminddb

from app.addresses import parse_ip

# Header pairs (country, region) in the order they are read; names compared lower-cased.
_HEADER_PAIRS: tuple[tuple[str, str], ...] = (
    ("cloudfront-viewer-country", "cloudfront-viewer-country-region"),
    ("cf-ipcountry", "cf-region-code"),
)
# Cloudflare's "XX" means no country; "T1" means Tor. Neither is a place.
_NOT_COUNTRIES = frozenset({"XX", "T1"})


@dataclass(frozen=True)
class Location:
    country: str | None
    region: str | None


UNKNOWN_LOCATION = Location(None, None)


def location_from_headers(headers: Mapping[str, str]) -> Location | None:
    """The location a CDN put in the request headers; None when no usable country is there."""
    lowered = {name.lower(): value for name, value in headers.items()}
    for country_header, region_header in _HEADER_PAIRS:
        if country_header in lowered:
            return _location(lowered[country_header], lowered.get(region_header))
    return None


class GeoIPDatabase:
    """A MaxMind-format (.mmdb) file with the GeoIP2/GeoLite2 City or Country layout.

    Opening a missing or corrupt file raises (the service should not start half-configured);
    looking up anything, valid or not, never does.
    """

    def __init__(self, path: Path) -> None:
        self._reader = maxminddb.open_database(str(path))

    def lookup(self, ip: str | None) -> Location | None:
        if ip is None:
            return None
        try:
            address = parse_ip(ip.strip())
        except ValueError:
            return None
        try:
            record = self._reader.get(address)
        except ValueError:
            # An IPv6 address asked of an IPv4-only database.
            return None
        if not isinstance(record, dict):
            return None
        country = _iso_code(record.get("country"))
        if country is None:
            return None
        subdivisions = record.get("subdivisions")
        region = None
        if isinstance(subdivisions, list) and subdivisions:
            region = _iso_code(subdivisions[0])
        return _location(country, region)

    def close(self) -> None:
        self._reader.close()


class Locator:
    """The location of a touch by the first source that answers, else `UNKNOWN_LOCATION`."""

    def __init__(self, *, trust_headers: bool, database: GeoIPDatabase | None) -> None:
        self._trust_headers = trust_headers
        self._database = database

    def locate(self, headers: Mapping[str, str], ip: str | None) -> Location:
        if self._trust_headers:
            located = location_from_headers(headers)
            if located is not None:
                return located
        if self._database is not None:
            located = self._database.lookup(ip)
            if located is not None:
                return located
        return UNKNOWN_LOCATION


def _iso_code(entry: Any) -> str | None:
    if isinstance(entry, dict):
        code = entry.get("iso_code")
        if isinstance(code, str):
            return code
    return None


def _location(country: str, region: str | None) -> Location | None:
    country = country.strip().upper()
    if len(country) != 2 or not country.isascii() or not country.isalpha():
        return None
    if country in _NOT_COUNTRIES:
        return None
    return Location(country, _region(country, region))


def _region(country: str, region: str | None) -> str | None:
    if region is None:
        return None
    region = region.strip().upper()
    # Some sources send the full ISO 3166-2 code ("US-CA"); the spec keeps only "CA".
    region = region.removeprefix(f"{country}-")
    # ISO 3166-2 subdivision codes are one to three letters or digits.
    if not 1 <= len(region) <= 3 or not region.isascii() or not region.isalnum():
        return None
    return region
