"""Incoming URL parameters of a touch, bounded and cleaned.

Every value is hostile until proven otherwise: the query may hold 10 KB values, broken
percent-encoding, NUL bytes, lone surrogates (from JSON escapes) or the same key twice. Nothing
here raises; what had to be changed is reported as flags, so a touch is never refused for its
parameters (a real user must never be broken by an ad network's URL):

- `truncated`: a key, value, URL or header was longer than its bound and was cut;
- `ttclid_truncated`: the ttclid itself was cut (spec: capped at 1,024 bytes, flagged);
- `query_truncated`: the query string was longer than `MAX_QUERY_BYTES`; the rest was ignored;
- `too_many_params`: keys past the 64th were dropped;
- `nul_removed`: NUL characters were removed (they end C strings in every tool downstream);
- `invalid_unicode`: lone surrogates were replaced by U+FFFD (SQLite cannot store them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from app.touches import CAMPAIGN_PARAMS

MAX_PARAMS = 64
MAX_VALUE_BYTES = 512
MAX_TTCLID_BYTES = 1024
MAX_KEY_BYTES = 128
# The longest URL we keep as a touch's original URL or referrer.
MAX_URL_BYTES = 4096
# The most of a query string that is read at all: 64 params of 512 bytes fit twice over, and
# anything longer is not a link a person clicked.
MAX_QUERY_BYTES = 16 * 1024
# Header values kept on a touch.
MAX_USER_AGENT_BYTES = 1024
MAX_LANGUAGE_BYTES = 256
# Our page-view ids are 22 characters; anything much longer is not one of ours.
MAX_PVID_BYTES = 64

TTCLID = "ttclid"


@dataclass(frozen=True)
class Incoming:
    """The parameters of one touch: at most MAX_PARAMS keys, each value bounded, in the order
    they arrived; `flags` says what had to be changed to get there."""

    params: dict[str, str]
    flags: tuple[str, ...] = ()

    @property
    def pid(self) -> str | None:
        return self.params.get("pid") or None

    @property
    def ttclid(self) -> str | None:
        # Click ids arrive in any letter case (the snippet forwards them that way too).
        found = self.params.get(TTCLID)
        if found:
            return found
        return next((v for k, v in self.params.items() if k.lower() == TTCLID and v), None)

    def campaign(self) -> dict[str, str]:
        return {k: v for k in CAMPAIGN_PARAMS if (v := self.params.get(k))}

    def without(self, *keys: str) -> dict[str, str]:
        return {k: v for k, v in self.params.items() if k not in keys}


def truncate_utf8(value: str, limit: int) -> tuple[str, bool]:
    raw = value.encode("utf-8")
    if len(raw) <= limit:
        return value, False
    # Cut on a character boundary: a half character would be garbage in every report.
    return raw[:limit].decode("utf-8", "ignore"), True


def _valid_unicode(value: str) -> tuple[str, bool]:
    """`value` with lone surrogates replaced by U+FFFD. JSON lets a client send "\\ud800";
    Python accepts it, SQLite and every UTF-8 encoder after it do not."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A well-formed pair survives the UTF-16 round trip; a lone half becomes U+FFFD.
        fixed = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return fixed, True
    return value, False


def clean_text(value: str, limit: int) -> tuple[str, set[str]]:
    """`value` made storable and cut to `limit` UTF-8 bytes, with the flags that applied."""
    flags: set[str] = set()
    value, replaced = _valid_unicode(value)
    if replaced:
        flags.add("invalid_unicode")
    if "\x00" in value:
        value = value.replace("\x00", "")
        flags.add("nul_removed")
    value, cut = truncate_utf8(value, limit)
    if cut:
        flags.add("truncated")
    return value, flags


def clean_header(value: str | None, limit: int) -> str | None:
    """A header value as a touch keeps it: bounded, None when absent or blank."""
    if value is None or not value.strip():
        return None
    return clean_text(value, limit)[0]


def clean_user_agent(value: str | None) -> tuple[str | None, set[str]]:
    """The User-Agent header as touches keep and parse it: cleaned and bounded, None when
    absent or blank, with the flags of what had to change."""
    cleaned, flags = clean_text(value or "", MAX_USER_AGENT_BYTES)
    return (cleaned if cleaned.strip() else None), flags


def from_pairs(pairs: Iterable[tuple[str, str]]) -> Incoming:
    """The first non-empty value of each key wins (as in the snippet); at most MAX_PARAMS keys."""
    params: dict[str, str] = {}
    flags: set[str] = set()
    for raw_key, raw_value in pairs:
        key, key_flags = clean_text(raw_key, MAX_KEY_BYTES)
        if not key:
            continue
        is_ttclid = key.lower() == TTCLID
        value, value_flags = clean_text(
            raw_value, MAX_TTCLID_BYTES if is_ttclid else MAX_VALUE_BYTES
        )
        if is_ttclid and "truncated" in value_flags:
            flags.add("ttclid_truncated")
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
    """The parameters of a raw query string (no leading `?`)."""
    extra: set[str] = set()
    if len(query) > MAX_QUERY_BYTES:
        query = query[:MAX_QUERY_BYTES]
        extra.add("query_truncated")
    # errors="replace": broken percent-encoding becomes U+FFFD instead of an exception.
    found = from_pairs(parse_qsl(query, keep_blank_values=True, errors="replace"))
    if not extra:
        return found
    return Incoming(found.params, tuple(sorted(set(found.flags) | extra)))


def from_url(url: str) -> Incoming:
    """The parameters of a URL's query; none (flagged `bad_url`) when it cannot be parsed."""
    try:
        query = urlsplit(url).query
    except ValueError:  # e.g. an invalid IPv6 host: the URL is unusable, its params too
        return Incoming({}, ("bad_url",))
    return from_query(query)


def from_mapping(values: Mapping[str, object]) -> Incoming:
    """Params a beacon sent already parsed; values that are not strings are dropped."""
    return from_pairs((str(k), v) for k, v in values.items() if isinstance(v, str))


def to_query(params: Mapping[str, str]) -> str:
    """A query string of bounded params (percent-encoded, so safe in any URL we build)."""
    return urlencode(list(params.items()))


def clean_url(value: object) -> tuple[str | None, set[str]]:
    """A URL as a touch keeps it (original URL, referrer): bounded; None when absent."""
    if not isinstance(value, str) or not value:
        return None, set()
    return clean_text(value, MAX_URL_BYTES)


def clean_pvid(value: object) -> str | None:
    """A page-view id as sent (by our page, or by a customer's own); None when unusable."""
    if not isinstance(value, str):
        return None
    cleaned, _ = clean_text(value.strip(), MAX_PVID_BYTES)
    return cleaned or None
