"""What Gangway sends to TikTok's Events API and how it reads the answers (app/postbacks/tiktok)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from app.postbacks.tiktok import (
    DEFAULT_EVENT_MAP,
    MAX_EVENTS_PER_REQUEST,
    PARTNER_EVENTS,
    RETRY_CAP_SECONDS,
    TRACK_PATH,
    build_event,
    build_request,
    classify_answer,
    hash_email,
    hash_external_id,
    hash_phone,
    hashed_user,
    limited_data_use,
    next_retry_delay,
    revenue_properties,
)
from app.revenue import RevenueError
from app.touches import Touch
from app.vocabulary import DEFAULT_INSTALL_EVENT
from tests.fakes.tiktok_api import (  # noqa: F401  (pytest finds fixtures by their names)
    FakeTikTok,
    fake_tiktok_fixture,
    fake_tiktok_server_fixture,
)

EMAIL_VECTOR = "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"
PHONE_VECTOR = "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd"
COVERED = frozenset({"CA", "VA", "CO", "CT", "UT", "TX", "OR"})


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def click(**overrides: object) -> Touch:
    values: dict[str, object] = {
        "id": "clk-1",
        "kind": "click",
        "app_key": "demo",
        "time": 1763719000.0,
        "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8)",
        "ttclid": "E.C.P.CsABc-123",
        "original_url": "https://example.com/lp/demo?pid=tiktokweb_int&ttclid=E.C.P.CsABc-123",
        "referrer": "https://www.tiktok.com/",
    }
    values.update(overrides)
    return Touch(**values)  # type: ignore[arg-type]


# --- hashing ------------------------------------------------------------------------------------


def test_hash_vectors() -> None:
    assert hash_email(" ALICE_abc@gmail.com ") == EMAIL_VECTOR
    assert hash_phone("(+1)2133734253") == PHONE_VECTOR


def test_email_is_trimmed_and_lower_cased() -> None:
    assert hash_email("\tBob@Example.COM\n") == sha256("bob@example.com")


@pytest.mark.parametrize(
    "phone",
    ["+1 (213) 373-4253", "+1.213.373.4253", "001 213 373 4253", "12133734253", " +12133734253 "],
)
def test_phone_is_hashed_in_e164(phone: str) -> None:
    assert hash_phone(phone) == PHONE_VECTOR


def test_external_id_is_trimmed_but_keeps_its_case() -> None:
    assert hash_external_id("  User-7 ") == sha256("User-7")
    assert hash_external_id("User-7") != hash_external_id("user-7")


def test_already_hashed_values_are_not_hashed_again() -> None:
    assert hash_email(EMAIL_VECTOR.upper()) == EMAIL_VECTOR
    assert hash_phone(f" {PHONE_VECTOR} ") == PHONE_VECTOR
    assert hash_external_id(EMAIL_VECTOR) == EMAIL_VECTOR


@pytest.mark.parametrize(
    ("hasher", "value"),
    [(hash_email, "   "), (hash_phone, "n/a"), (hash_phone, ""), (hash_external_id, " ")],
)
def test_blank_values_are_refused_not_hashed(hasher: Callable[[str], str], value: str) -> None:
    # sha256("") would make every blank user one and the same person to TikTok.
    with pytest.raises(ValueError):
        hasher(value)


def test_hashed_user_hashes_known_fields_and_leaves_out_blank_ones() -> None:
    user = {"email": "Alice@Example.com", "phone": "  ", "external_id": "u-1", "name": "Alice"}
    assert hashed_user(user) == {"email": sha256("alice@example.com"), "external_id": sha256("u-1")}
    assert hashed_user(None) == {}
    assert hashed_user({}) == {}


# --- CCPA limited data use ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ccpa_limit", "country", "region", "gpc", "expected"),
    [
        pytest.param(True, "US", "CA", False, True, id="California"),
        pytest.param(True, "US", "TX", False, True, id="Texas"),
        pytest.param(True, "US", "US-CA", False, True, id="ISO 3166-2 region"),
        pytest.param(True, "us", "ca", False, True, id="lower case"),
        pytest.param(True, "US", "NY", False, False, id="New York, not covered"),
        pytest.param(True, "DE", None, False, False, id="Germany"),
        pytest.param(True, "DE", "DE", False, False, id="Germany, region code like Delaware"),
        pytest.param(True, None, None, False, True, id="unknown location"),
        pytest.param(True, "XX", None, False, True, id="Cloudflare unknown country"),
        pytest.param(True, "US", None, False, True, id="US, unknown state"),
        pytest.param(True, "DE", None, True, True, id="GPC"),
        pytest.param(False, "US", "CA", True, False, id="switch off"),
        pytest.param(False, None, None, False, False, id="switch off, unknown location"),
    ],
)
def test_limited_data_use(
    ccpa_limit: bool, country: str | None, region: str | None, gpc: bool, expected: bool
) -> None:
    result = limited_data_use(
        ccpa_limit=ccpa_limit, country=country, region=region, gpc=gpc, covered_states=COVERED
    )
    assert result is expected


# --- properties -----------------------------------------------------------------------------------


def test_revenue_becomes_a_json_number_with_currency() -> None:
    properties = revenue_properties(
        {"af_revenue": "9.99", "af_currency": "eur", "af_content_id": "sku-1", "level": "3"}
    )
    assert properties == {"value": 9.99, "currency": "EUR"}
    assert '"value": 9.99' in json.dumps(properties)


def test_whole_revenue_is_an_integer_and_currency_defaults_to_usd() -> None:
    assert revenue_properties({"af_revenue": "10.00"}) == {"value": 10, "currency": "USD"}


def test_only_present_keys_appear() -> None:
    assert revenue_properties(None) == {}
    assert revenue_properties({"af_content_id": "sku-2"}) == {}


@pytest.mark.parametrize(
    ("revenue", "value"),
    [("1e3", 1000), ("-4.50", -4.5), (12, 12), (0.1, 0.1), ("999999999999999", 999999999999999)],
)
def test_value_is_the_json_number_of_the_parsed_decimal(revenue: object, value: object) -> None:
    sent = revenue_properties({"af_revenue": revenue})["value"]
    assert (sent, type(sent)) == (value, type(value))


def test_a_currency_alone_is_sent_without_a_value() -> None:
    assert revenue_properties({"af_currency": "eur"}) == {"currency": "EUR"}


def test_what_the_revenue_parser_refuses_is_refused_here_too() -> None:
    # The cases themselves are tests/test_revenue.py's: there is one parser.
    with pytest.raises(RevenueError) as refused:
        revenue_properties({"af_revenue": "NaN"})
    assert refused.value.field == "af_revenue"


# --- events and requests --------------------------------------------------------------------------


def test_install_event_carries_the_touch_and_no_properties() -> None:
    event = build_event(
        event=DEFAULT_INSTALL_EVENT,
        event_time=1763719300.75,
        event_id="inst-1",
        touch=click(),
        limited_data_use=False,
    )
    assert event == {
        "event": "Download",
        "event_time": 1763719300,
        "event_id": "inst-1",
        "limited_data_use": False,
        "user": {
            "ttclid": "E.C.P.CsABc-123",
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8)",
        },
        "page": {
            "url": "https://example.com/lp/demo?pid=tiktokweb_int&ttclid=E.C.P.CsABc-123",
            "referrer": "https://www.tiktok.com/",
        },
    }
    assert type(event["event_time"]) is int


def test_purchase_carries_revenue_and_hashed_user() -> None:
    event = build_event(
        event=DEFAULT_EVENT_MAP["af_purchase"],
        event_time=1763719500.0,
        event_id="evt-7",
        touch=click(),
        limited_data_use=True,
        user={"email": " ALICE_abc@gmail.com ", "phone": "(+1)2133734253"},
        properties=revenue_properties({"af_revenue": "9.99", "af_currency": "USD"}),
    )
    assert event["event"] == "Purchase"
    assert event["limited_data_use"] is True
    assert event["properties"] == {"value": 9.99, "currency": "USD"}
    user = event["user"]
    assert isinstance(user, dict)
    assert user["email"] == EMAIL_VECTOR
    assert user["phone"] == PHONE_VECTOR
    assert user["ttclid"] == "E.C.P.CsABc-123"


def test_registration_without_revenue_has_no_properties() -> None:
    event = build_event(
        event=DEFAULT_EVENT_MAP["af_complete_registration"],
        event_time=1763719400.0,
        event_id="evt-8",
        touch=click(),
        limited_data_use=False,
        properties=revenue_properties(None),
    )
    assert event["event"] == "CompleteRegistration"
    assert "properties" not in event


def test_absent_values_are_left_out_never_sent_empty() -> None:
    bare = click(ttclid=None, ip="", original_url=None, referrer=None)
    event = build_event(
        event="Download",
        event_time=1763719300.0,
        event_id="inst-2",
        touch=bare,
        limited_data_use=False,
        user={"email": ""},
    )
    assert event["user"] == {"user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8)"}
    assert "page" not in event
    only_url = build_event(
        event="Download",
        event_time=1763719300.0,
        event_id="inst-3",
        touch=click(referrer=None),
        limited_data_use=False,
    )
    assert only_url["page"] == {"url": click().original_url}
    no_touch = build_event(
        event="Download", event_time=1763719300.0, event_id="i", touch=None, limited_data_use=True
    )
    assert no_touch["user"] == {}
    assert "page" not in no_touch


def test_request_wraps_events_for_the_pixel() -> None:
    event = build_event(
        event="Download",
        event_time=1763719300.0,
        event_id="i",
        touch=click(),
        limited_data_use=False,
    )
    request = build_request(pixel_code="CPIXEL", events=[event], test_event_code=None)
    assert request == {
        "event_source": "web",
        "event_source_id": "CPIXEL",
        "partner_name": "Gangway",
        "data": [event],
    }
    with_test = build_request(pixel_code="CPIXEL", events=[event], test_event_code="TEST42")
    assert with_test["test_event_code"] == "TEST42"
    assert "test_event_code" not in build_request(
        pixel_code="CPIXEL", events=[event], test_event_code=""
    )


def test_request_size_limits() -> None:
    event = build_event(
        event="Download", event_time=1763719300.0, event_id="i", touch=None, limited_data_use=False
    )
    full = build_request(
        pixel_code="P", events=[event] * MAX_EVENTS_PER_REQUEST, test_event_code=None
    )
    assert len(full["data"]) == 1000  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1001"):
        build_request(pixel_code="P", events=[event] * 1001, test_event_code=None)
    with pytest.raises(ValueError):
        build_request(pixel_code="P", events=[], test_event_code=None)


def test_mapping_tables_follow_the_spec() -> None:
    assert len(DEFAULT_EVENT_MAP) == 11
    assert DEFAULT_EVENT_MAP["af_purchase"] == "Purchase"
    identifiers = [identifier for identifier, _ in PARTNER_EVENTS]
    assert len(identifiers) == len(set(identifiers)) == 27
    assert dict(PARTNER_EVENTS)["Pay"] == "Purchase"


# --- answers --------------------------------------------------------------------------------------


def answer(code: object, message: str = "msg", request_id: str = "req-1") -> bytes:
    return json.dumps({"code": code, "message": message, "request_id": request_id}).encode()


@pytest.mark.parametrize(
    ("http_status", "body", "state", "code"),
    [
        pytest.param(200, answer(0), "sent", 0, id="ok"),
        pytest.param(200, answer(20001), "sent", 20001, id="partial success"),
        pytest.param(500, answer(0), "sent", 0, id="code decides over HTTP 5xx"),
        pytest.param(200, answer(40100), "retry", 40100, id="rate limited"),
        pytest.param(200, answer(40700), "retry", 40700, id="40700"),
        pytest.param(200, answer(50000), "retry", 50000, id="5xxxx"),
        pytest.param(200, answer(51002), "retry", 51002, id="other 5xxxx"),
        pytest.param(200, answer(40001), "failed", 40001, id="no permission"),
        pytest.param(200, answer(40002), "failed", 40002, id="parameter error"),
        pytest.param(200, answer(40105), "failed", 40105, id="bad token"),
        pytest.param(200, answer(10000), "failed", 10000, id="unknown code"),
        pytest.param(503, b"upstream unavailable", "retry", None, id="HTTP 503 text"),
        pytest.param(502, b"", "retry", None, id="HTTP 502 empty"),
        pytest.param(500, b"{not json", "retry", None, id="HTTP 500 broken JSON"),
        pytest.param(429, b"Too Many Requests", "retry", None, id="HTTP 429 no JSON"),
        pytest.param(200, b"<html>portal</html>", "retry", None, id="HTTP 200 not JSON"),
        pytest.param(200, answer("0"), "retry", None, id="HTTP 200 code not a number"),
        pytest.param(404, b"Not Found", "failed", None, id="HTTP 404 no code"),
        pytest.param(401, b"", "failed", None, id="HTTP 401 no code"),
    ],
)
def test_classify_answer(http_status: int, body: bytes, state: str, code: int | None) -> None:
    outcome = classify_answer(http_status=http_status, body=body)
    assert outcome.state == state
    assert outcome.code == code


def test_classify_answer_keeps_tiktok_message_and_request_id() -> None:
    partial = classify_answer(http_status=200, body=answer(20001, "1 event invalid", "r-9"))
    assert (partial.message, partial.request_id) == ("1 event invalid", "r-9")
    refused = classify_answer(http_status=200, body=answer(40002, "Invalid pixel code"))
    assert refused.message == "Invalid pixel code"


def test_answer_without_tiktok_json_says_what_came_back() -> None:
    outcome = classify_answer(http_status=404, body=b"Not Found")
    assert "404" in outcome.message
    assert "Not Found" in outcome.message
    assert outcome.request_id is None


def test_transport_errors_are_retried() -> None:
    outcome = classify_answer(http_status=None, body=None, transport_error="ReadTimeout")
    assert outcome.state == "retry"
    assert outcome.message == "ReadTimeout"
    assert outcome.code is None


# --- retries --------------------------------------------------------------------------------------


def test_retry_delay_is_within_half_and_whole_of_the_doubling_step() -> None:
    assert next_retry_delay(1, lambda: 0.0) == 0.5
    assert next_retry_delay(1, lambda: 0.999) == pytest.approx(0.9995)
    assert next_retry_delay(4, lambda: 0.0) == 4.0
    assert next_retry_delay(4, lambda: 0.5) == 6.0


def test_retry_delay_grows_and_never_passes_the_cap() -> None:
    previous_longest = 0.0
    for attempt in range(1, 60):
        shortest = next_retry_delay(attempt, lambda: 0.0)
        longest = next_retry_delay(attempt, lambda: 0.999999)
        assert longest <= RETRY_CAP_SECONDS == 3600
        # Equal jitter: the shortest wait of an attempt is never shorter than any earlier wait.
        assert shortest >= min(previous_longest, RETRY_CAP_SECONDS / 2)
        previous_longest = longest
    assert next_retry_delay(10_000, lambda: 0.0) == 1800.0


def test_retry_delay_needs_an_attempt_number() -> None:
    with pytest.raises(ValueError):
        next_retry_delay(0, lambda: 0.5)


# --- round trip through the fake TikTok -----------------------------------------------------------


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as http:
        yield http


def test_built_request_is_accepted_by_the_fake(
    client: httpx.Client, fake_tiktok: FakeTikTok
) -> None:
    install = build_event(
        event=DEFAULT_INSTALL_EVENT,
        event_time=1763719300.4,
        event_id="inst-1",
        touch=click(),
        limited_data_use=False,
    )
    purchase = build_event(
        event="Purchase",
        event_time=1763719500.0,
        event_id="evt-1",
        touch=click(ttclid=None, referrer=None),
        limited_data_use=True,
        user={"email": "alice@example.com", "phone": "+1 213 373 4253", "external_id": "u-1"},
        properties=revenue_properties(
            {"af_revenue": "9.99", "af_currency": "USD", "af_content_id": "sku-1"}
        ),
    )
    payload = build_request(
        pixel_code="CPIXEL0000000000000", events=[install, purchase], test_event_code="TEST1"
    )

    response = client.post(
        fake_tiktok.base_url + TRACK_PATH, json=payload, headers={"Access-Token": "tok"}
    )

    assert fake_tiktok.violations == []
    outcome = classify_answer(http_status=response.status_code, body=response.content)
    assert outcome.state == "sent"
    assert outcome.request_id
    assert fake_tiktok.events() == [install, purchase]
