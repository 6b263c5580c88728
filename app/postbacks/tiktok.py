"""TikTok Events API 1.3: the payloads Gangway sends and how it reads TikTok's answers.

Everything here is pure: values in, values out. The outbox worker builds a request with
`build_event` + `build_request`, posts it (the only place with a network), hands the answer to
`classify_answer`, and asks `next_retry_delay` when to try again. Revenue is read by
`app.revenue`, the parser the event endpoint validates with, so what it stored can be sent.

Contract: `spec/postbacks.md` (request, mapping, delivery, CCPA limited data use).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from app.postbacks import catalogue
from app.revenue import parse_currency, parse_revenue
from app.touches import Touch

TRACK_PATH = "/open_api/v1.3/event/track/"
PARTNER_NAME = "Gangway"
EVENT_SOURCE = "web"
MAX_EVENTS_PER_REQUEST = 1000

# The mapping catalogue lives in `app.postbacks.catalogue`; these names stay for callers.
DEFAULT_EVENT_MAP: Mapping[str, str] = catalogue.DEFAULT_EVENT_MAP
PARTNER_EVENTS: tuple[tuple[str, str], ...] = catalogue.PARTNER_IDENTIFIERS

# --- Hashed user identifiers -------------------------------------------------------------------

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def _sha256_or_passthrough(normalised: str, raw: str, field: str) -> str:
    # A caller that already hashed (as TikTok's own docs tell advertisers to) must not be
    # hashed twice: a hash of a hash matches nobody.
    stripped = raw.strip()
    if _SHA256_HEX.fullmatch(stripped):
        return stripped.lower()
    if not normalised:
        # sha256("") would be one shared identity for every user with a blank value.
        raise ValueError(f"{field} is empty after normalisation")
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def _normalise_email(value: str) -> str:
    return value.strip().lower()


def _normalise_phone(value: str) -> str:
    # E.164 is "+" then country code and number, digits only. "00" is the international call
    # prefix most of the world dials in place of "+". A number without either is taken to
    # already start with its country code: guessing a country would hash the wrong person.
    digits = "".join(ch for ch in value if ch.isdigit())
    if "+" not in value and digits.startswith("00"):
        digits = digits[2:]
    return f"+{digits}" if digits else ""


def _normalise_external_id(value: str) -> str:
    # Trimmed only: an app's own user ids may be case-sensitive.
    return value.strip()


def hash_email(value: str) -> str:
    """SHA-256 hex of the trimmed, lower-cased email; a 64-hex value is passed through."""
    return _sha256_or_passthrough(_normalise_email(value), value, "email")


def hash_phone(value: str) -> str:
    """SHA-256 hex of the phone number in E.164 (`+` and digits); a 64-hex value passes."""
    return _sha256_or_passthrough(_normalise_phone(value), value, "phone")


def hash_external_id(value: str) -> str:
    """SHA-256 hex of the trimmed external id; a 64-hex value is passed through."""
    return _sha256_or_passthrough(_normalise_external_id(value), value, "external_id")


_USER_HASHERS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("email", hash_email),
    ("phone", hash_phone),
    ("external_id", hash_external_id),
)


def hashed_user(user: Mapping[str, str] | None) -> dict[str, str]:
    """The event's `user` fields as TikTok takes them: hashed, blank or absent ones left out."""
    hashed: dict[str, str] = {}
    if not user:
        return hashed
    for field, hasher in _USER_HASHERS:
        value = user.get(field)
        if not isinstance(value, str):
            continue
        try:
            hashed[field] = hasher(value)
        except ValueError:
            # Blank after normalisation ("  ", a phone with no digits): the spec says absent
            # values are left out, never sent empty.
            continue
    return hashed


# --- CCPA limited data use ---------------------------------------------------------------------

# Cloudflare's CF-IPCountry says "XX" when it does not know and "T1" for Tor exits: neither is a
# location, and the spec has unknown locations err to limited.
_NO_COUNTRY = frozenset({"", "XX", "T1"})


def limited_data_use(
    *,
    ccpa_limit: bool,
    country: str | None,
    region: str | None,
    gpc: bool,
    covered_states: frozenset[str],
) -> bool:
    """Whether an event goes out with `limited_data_use: true` (spec postbacks.md section 4).

    With the switch on: limited for Global Privacy Control, for a covered US state, and for an
    unknown location (no country, or the US without a state); not limited for a location known
    to be outside the covered states. `covered_states` are two-letter codes (`CA`, `TX`, ...);
    a region given as ISO 3166-2 (`US-CA`) is accepted too.
    """
    if not ccpa_limit:
        return False
    if gpc:
        return True
    country_code = (country or "").strip().upper()
    if country_code in _NO_COUNTRY:
        return True
    if country_code != "US":
        return False
    state = (region or "").strip().upper().removeprefix("US-")
    if not state:
        return True
    return state in {s.upper() for s in covered_states}


# --- Event properties --------------------------------------------------------------------------


def _json_number(amount: str) -> float | int:
    """A plain decimal string as a JSON number: whole amounts as integers (`10.00` is 10)."""
    value = Decimal(amount)
    # 2^53: the largest whole number a double (what TikTok reads JSON into) holds exactly.
    if value == value.to_integral_value() and abs(value) < 2**53:
        return int(value)
    return float(value)


def as_text(value: object) -> str:
    """`str(value)` as UTF-8 can carry it: a lone surrogate (JSON lets an app send "\\ud800")
    becomes U+FFFD, so the payload can be stored in the outbox and sent."""
    return str(value).encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def revenue_properties(event_value: Mapping[str, object] | None) -> dict[str, object]:
    """TikTok `properties.value` and `currency` from an event's `event_value`.

    Only keys present in `event_value` appear, except that revenue without a currency is sent
    in USD. `value` is a JSON number made from `app.revenue`'s decimal string. Raises
    `RevenueError` (a ValueError naming the field) for what that parser refuses; the event
    endpoint refused it already, so nothing stored fails here.
    """
    properties: dict[str, object] = {}
    if not event_value:
        return properties
    parsed = parse_revenue(event_value)
    if parsed is not None:
        amount, currency = parsed
        properties["value"] = _json_number(amount)
        properties["currency"] = currency
    elif (currency_only := parse_currency(event_value)) is not None:
        properties["currency"] = currency_only
    return properties


# AppsFlyer's standard in-app event parameters -> TikTok `properties`. The four content
# parameters make the `contents` list (one item per position when they are lists); the others
# are plain text properties.
CONTENT_PARAMS: tuple[tuple[str, str], ...] = (
    ("af_content_id", "content_id"),
    ("af_content_type", "content_type"),
    ("af_quantity", "quantity"),
    ("af_price", "price"),
)
TEXT_PARAMS: tuple[tuple[str, str], ...] = (
    ("af_search_string", "query"),
    ("af_description", "description"),
    ("af_order_id", "order_id"),
)
MAX_CONTENTS = 50
# Characters Gangway sends at most per text property (TikTok refuses or cuts longer values);
# a cut value is flagged `property_truncated` on the event.
TEXT_LIMITS: Mapping[str, int] = {
    "content_id": 256,
    "content_type": 64,
    "query": 256,
    "description": 512,
    "order_id": 128,
}
_MAX_QUANTITY = 2**31 - 1


def _text_property(value: object, name: str, flags: set[str]) -> str | None:
    if value is None or isinstance(value, bool | list | dict):
        if value is not None:
            flags.add("property_invalid")
        return None
    text = as_text(value).strip()
    if not text:
        return None
    limit = TEXT_LIMITS[name]
    if len(text) > limit:
        flags.add("property_truncated")
        text = text[:limit]
    return text


def _quantity(value: object, flags: set[str]) -> int | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, bool) else None
    except ArithmeticError:
        number = None
    if (
        number is None
        or not number.is_finite()
        or number != number.to_integral_value()
        or not 0 <= number <= _MAX_QUANTITY
    ):
        flags.add("property_invalid")
        return None
    return int(number)


def _price(value: object, flags: set[str]) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        flags.add("property_invalid")
        return None
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        number = None
    if number is None or not number.is_finite() or number.adjusted() >= 15:
        flags.add("property_invalid")
        return None
    return _json_number(format(number, "f"))


def _content_values(event_value: Mapping[str, object], key: str) -> list[object] | None:
    value = event_value.get(key)
    if value is None:
        return None
    return list(value) if isinstance(value, list) else [value]


def contents(event_value: Mapping[str, object], flags: set[str]) -> list[dict[str, object]]:
    """TikTok's `contents` list from `af_content_id`, `af_content_type`, `af_quantity` and
    `af_price`. Each may be one value or a list (AppsFlyer's arrays for a cart): lists are read
    by position, and a single value applies to every item. At most `MAX_CONTENTS` items
    (`contents_truncated` beyond); an item with nothing readable is left out."""
    columns = {name: _content_values(event_value, key) for key, name in CONTENT_PARAMS}
    lengths = [len(v) for v in columns.values() if v is not None and len(v) != 1]
    count = max(lengths, default=1 if any(v for v in columns.values()) else 0)
    if count > MAX_CONTENTS:
        flags.add("contents_truncated")
        count = MAX_CONTENTS
    items: list[dict[str, object]] = []

    def at(name: str, i: int) -> object:
        values = columns[name]
        if not values:
            return None
        return values[0] if len(values) == 1 else values[i] if i < len(values) else None

    for i in range(count):
        item: dict[str, object] = {}
        for name in ("content_id", "content_type"):
            text = _text_property(at(name, i), name, flags)
            if text is not None:
                item[name] = text
        quantity = _quantity(at("quantity", i), flags)
        if quantity is not None:
            item["quantity"] = quantity
        price = _price(at("price", i), flags)
        if price is not None:
            item["price"] = price
        if item:
            items.append(item)
    return items


def event_properties(
    event_value: Mapping[str, object] | None, *, include_revenue: bool
) -> tuple[dict[str, object], tuple[str, ...]]:
    """(TikTok `properties`, flags) of an in-app event: `value` and `currency` only when
    `include_revenue` (the caller allows it for Purchase only), then `contents`, `query`,
    `description` and `order_id` from AppsFlyer's standard parameters, whatever the revenue.
    Flags: `contents_truncated`, `property_truncated`, `property_invalid` (a value of the wrong
    type, left out). Raises `RevenueError` as `revenue_properties` does."""
    if not event_value:
        return {}, ()
    flags: set[str] = set()
    properties = revenue_properties(event_value) if include_revenue else {}
    items = contents(event_value, flags)
    if items:
        properties["contents"] = items
    for key, name in TEXT_PARAMS:
        text = _text_property(event_value.get(key), name, flags)
        if text is not None:
            properties[name] = text
    return properties, tuple(sorted(flags))


# --- Payloads ----------------------------------------------------------------------------------


def build_event(
    *,
    event: str,
    event_time: float,
    event_id: str,
    touch: Touch | None,
    limited_data_use: bool,
    user: Mapping[str, str] | None = None,
    properties: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """One element of the request's `data` list.

    `event_time` is the install's or event's own time (Unix seconds, truncated to whole
    seconds), `event_id` its stable id so retries are deduplicated by TikTok. `user` carries the
    touch's browser values plus the hashed `user` fields; `page` the touch's landing URL and
    referrer. Absent values are left out, never sent empty.
    """
    if not event:
        raise ValueError("event name is empty")
    if not event_id:
        raise ValueError("event_id is empty")
    user_fields: dict[str, str] = {}
    page: dict[str, str] = {}
    if touch is not None:
        for name, value in (
            ("ttclid", touch.ttclid),
            ("ip", touch.ip),
            ("user_agent", touch.user_agent),
        ):
            if value:
                user_fields[name] = value
        if touch.original_url:
            page["url"] = touch.original_url
        # A click's Referer is the landing page itself; a page is not its own referrer, and
        # saying so would tell TikTok the visit came from nowhere else.
        if touch.referrer and touch.referrer != touch.original_url:
            page["referrer"] = touch.referrer
    user_fields.update(hashed_user(user))
    payload: dict[str, object] = {
        "event": event,
        "event_time": int(event_time),
        "event_id": event_id,
        "limited_data_use": limited_data_use,
        "user": user_fields,
    }
    if page:
        payload["page"] = page
    if properties:
        payload["properties"] = dict(properties)
    return payload


def build_request(
    *,
    pixel_code: str,
    events: Sequence[Mapping[str, object]],
    test_event_code: str | None,
) -> dict[str, object]:
    """The JSON body of one `POST {base}{TRACK_PATH}` carrying 1 to 1,000 events.

    Raises ValueError for an empty batch or one over MAX_EVENTS_PER_REQUEST: TikTok rejects an
    oversized request whole, so the caller must split rather than lose the lot.
    """
    if not pixel_code:
        raise ValueError("pixel_code is empty")
    if not events:
        raise ValueError("a request needs at least one event")
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise ValueError(
            f"{len(events)} events in one request; TikTok takes at most {MAX_EVENTS_PER_REQUEST}"
        )
    body: dict[str, object] = {
        "event_source": EVENT_SOURCE,
        "event_source_id": pixel_code,
        "partner_name": PARTNER_NAME,
    }
    if test_event_code:
        body["test_event_code"] = test_event_code
    body["data"] = [dict(event) for event in events]
    return body


# --- Answers and retries -----------------------------------------------------------------------

OutcomeState = Literal["sent", "retry", "failed"]

CODE_OK = 0
CODE_PARTIAL_SUCCESS = 20001
# Rate limiting (40100) and 40700 are TikTok saying "not now", not "never".
RETRYABLE_CODES = frozenset({40100, 40700})
# Statuses that mean "try later" when no TikTok JSON came back (a proxy or load balancer spoke).
_RETRYABLE_HTTP = frozenset({408, 425, 429})
_EXCERPT_CHARS = 200


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery attempt came to, with what the attempt log keeps of TikTok's answer."""

    state: OutcomeState
    code: int | None
    message: str
    request_id: str | None


def _parse_answer(body: bytes | None) -> Mapping[str, object] | None:
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _excerpt(body: bytes | None) -> str:
    if not body:
        return "empty body"
    text = body.decode("utf-8", errors="replace").strip()
    return text[:_EXCERPT_CHARS] or "empty body"


def classify_answer(
    *, http_status: int | None, body: bytes | None, transport_error: str | None = None
) -> Outcome:
    """Decide sent, retry or failed from one attempt (spec postbacks.md section 3).

    TikTok's JSON `code` decides whenever there is one, whatever the HTTP status:
    0 and 20001 (partial success) are sent; 40100, 40700 and every 5xxxx are retried; every
    other 4xxxx is failed. Without a JSON `code` (a proxy, a load balancer or an outage spoke):

    - no answer at all (timeout, connection error): retry;
    - HTTP 5xx, 408, 425, 429: retry (429 is rate limiting, like 40100);
    - HTTP 2xx without a code: retry. Nothing says TikTok took the events, and a resend is
      harmless because TikTok drops a repeated event + event_id within 48 hours;
    - other HTTP 4xx without a code (wrong base URL, a proxy refusing): failed, so the owner
      sees a configuration error instead of a day of silent retries;
    - a JSON code outside the known ranges: failed, with TikTok's message kept for the owner.
    """
    if transport_error is not None or http_status is None:
        return Outcome("retry", None, transport_error or "no answer", None)
    answer = _parse_answer(body)
    code = answer.get("code") if answer is not None else None
    if answer is not None and isinstance(code, int) and not isinstance(code, bool):
        message = answer.get("message")
        request_id = answer.get("request_id")
        text = message if isinstance(message, str) else ""
        rid = request_id if isinstance(request_id, str) and request_id else None
        if code in (CODE_OK, CODE_PARTIAL_SUCCESS):
            return Outcome("sent", code, text, rid)
        if code in RETRYABLE_CODES or 50000 <= code <= 59999:
            return Outcome("retry", code, text, rid)
        return Outcome("failed", code, text, rid)
    described = f"HTTP {http_status} without a TikTok answer: {_excerpt(body)}"
    if http_status >= 500 or http_status in _RETRYABLE_HTTP or 200 <= http_status < 300:
        return Outcome("retry", None, described, None)
    return Outcome("failed", None, described, None)


RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 3600.0
RETRY_HORIZON_SECONDS = 24 * 3600


def next_retry_delay(attempt: int, rand: Callable[[], float]) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 for the first), with jitter.

    The nominal delay doubles from 1 s and stops at 1 hour; the wait is drawn from its upper
    half ("equal jitter"). Why not full jitter: a draw near zero would answer TikTok's rate
    limiting (40100) by calling again at once, while equal jitter keeps every wait at least
    half the nominal one, so waits never shrink from one attempt to the next, and still spreads
    out the herd of postbacks that an outage releases together. `rand` returns [0, 1).
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    # The exponent is bounded first: 2 ** 10_000 would be a pointless giant integer.
    nominal = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * (1 << min(attempt - 1, 32)))
    half = nominal / 2
    return half + half * rand()


PostbackState = Literal["sent", "retrying", "failed", "dead"]


def after_attempt(
    outcome: OutcomeState, *, attempt: int, since: float, now: float, rand: Callable[[], float]
) -> tuple[PostbackState, float]:
    """A postback's next state and when it is next due, after attempt number `attempt` of the
    current run of retries (which began at `since`) came to `outcome` at `now`.

    Retries follow `next_retry_delay` for up to RETRY_HORIZON_SECONDS: the last one is moved to
    the end of the horizon rather than past it, and a retryable answer at or after the end means
    `dead` (postbacks.md section 3). `sent` and `failed` are final: their time is `now`.
    """
    if outcome != "retry":
        return outcome, now
    deadline = since + RETRY_HORIZON_SECONDS
    if now >= deadline:
        return "dead", now
    return "retrying", min(now + next_retry_delay(attempt, rand), deadline)
