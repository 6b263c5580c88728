"""Incoming URL parameters of a touch, bounded and cleaned.

Every value is hostile until proven otherwise: the query may hold 10 KB values, broken
percent-encoding, NUL bytes or the same key twice. Nothing here raises; what had to be changed
is reported as flags (`truncated`, `too_many_params`, `nul_removed`), so a touch is never
refused for its parameters (a real user must never be broken by an ad network's URL).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from app.touches import CAMPAIGN_PARAMS

MAX_PARAMS = 64
MAX_VALUE_BYTES = 512
MAX_TTCLID_BYTES = 1024
MAX_KEY_BYTES = 128
# The longest URL we keep as a touch's original URL or referrer.
MAX_URL_BYTES = 4096


@dataclass(frozen=True)
class Incoming:
    params: dict[str, str]
    flags: tuple[str, ...] = ()

    @property
    def pid(self) -> str | None:
        return self.params.get("pid") or None

    @property
    def ttclid(self) -> str | None:
        return self.params.get("ttclid") or None

    def campaign(self) -> dict[str, str]:
        return {k: v for k in CAMPAIGN_PARAMS if (v := self.params.get(k))}


def truncate_utf8(value: str, limit: int) -> tuple[str, bool]:
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return value, False
    # Cut on a character boundary: a half character would be garbage in every report.
    return raw[:limit].decode("utf-8", "ignore"), True


def clean_text(value: str, limit: int) -> tuple[str, set[str]]:
    flags: set[str] = set()
    if "\x00" in value:
        value = value.replace("\x00", "")
        flags.add("nul_removed")
    value, cut = truncate_utf8(value, limit)
    if cut:
        flags.add("truncated")
    return value, flags


def from_pairs(pairs: Iterable[tuple[str, str]]) -> Incoming:
    """The first non-empty value of each key wins (as in the snippet); at most MAX_PARAMS keys."""
    params: dict[str, str] = {}
    flags: set[str] = set()
    for key, value in pairs:
        key, key_flags = clean_text(key, MAX_KEY_BYTES)
        if not key:
            continue
        limit = MAX_TTCLID_BYTES if key == "ttclid" else MAX_VALUE_BYTES
        value, value_flags = clean_text(value, limit)
        flags |= key_flags | value_flags
        if key in params:
            if not params[key] and value:
                params[key] = value
            continue
        if len(params) >= MAX_PARAMS:
            flags.add("too_many_params")
            continue
        params[key] = value
    return Incoming(params, tuple(sorted(flags)))


def from_query(query: str) -> Incoming:
    # errors="replace": broken percent-encoding becomes U+FFFD instead of an exception.
    return from_pairs(parse_qsl(query, keep_blank_values=True, errors="replace"))


def from_url(url: str) -> Incoming:
    try:
        return from_query(urlsplit(url).query)
    except ValueError:  # e.g. an invalid IPv6 host: the URL is unusable, its params too
        return Incoming({}, ("bad_url",))


def from_mapping(values: Mapping[str, object]) -> Incoming:
    """Params a beacon sent already parsed; non-string values are dropped."""
    return from_pairs((str(k), v) for k, v in values.items() if isinstance(v, str))


def clean_url(value: object) -> tuple[str | None, set[str]]:
    if not isinstance(value, str) or not value:
        return None, set()
    return clean_text(value, MAX_URL_BYTES)
