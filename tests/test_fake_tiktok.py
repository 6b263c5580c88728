"""The fake TikTok Events API refuses what real TikTok would refuse, and plays scripted answers.

Other tests trust the fake to catch a bad payload; these tests are why that trust is earned.
Plain httpx requests, no Gangway code, so a bug in the payload builder cannot hide one here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from app.postbacks.tiktok import TRACK_PATH
from tests.fakes.tiktok_api import (  # noqa: F401  (pytest finds fixtures by their names)
    FakeTikTok,
    fake_tiktok_fixture,
    fake_tiktok_server_fixture,
)

TOKEN_HEADERS = {"Access-Token": "token-123", "Content-Type": "application/json"}
EMAIL_HASH = "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f"


def event(event_id: str = "install-1", **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "event": "Download",
        "event_time": 1763719300,
        "event_id": event_id,
        "limited_data_use": False,
        "user": {"ttclid": "E.C.P.abc", "ip": "203.0.113.7", "user_agent": "Mozilla/5.0"},
        "page": {"url": "https://example.com/lp/demo?ttclid=E.C.P.abc"},
    }
    item.update(overrides)
    return item


def body(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_source": "web",
        "event_source_id": "CPIXEL0000000000000",
        "partner_name": "Gangway",
        "data": list(events) or [event()],
    }


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    # One client for the module: building a fresh one (and its TLS context) per request costs
    # more than the request.
    with httpx.Client(timeout=5.0) as shared:
        yield shared


def post(
    client: httpx.Client,
    fake: FakeTikTok,
    payload: object,
    headers: dict[str, str] | None = None,
    path: str = TRACK_PATH,
    timeout: float = 5.0,
) -> httpx.Response:
    return client.post(
        fake.base_url + path,
        json=payload,
        headers=TOKEN_HEADERS if headers is None else headers,
        timeout=timeout,
    )


def test_good_request_is_accepted_and_recorded(
    client: httpx.Client, fake_tiktok: FakeTikTok
) -> None:
    purchase = event(
        "event-9",
        event="Purchase",
        user={"ttclid": "E.C.P.abc", "email": EMAIL_HASH},
        properties={"value": 9.99, "currency": "USD", "content_id": "sku-1"},
    )
    response = post(client, fake_tiktok, {**body(event(), purchase), "test_event_code": "TEST123"})

    answer = response.json()
    assert response.status_code == 200
    assert answer["code"] == 0
    assert answer["message"] == "OK"
    assert answer["request_id"]
    assert fake_tiktok.violations == []
    [received] = fake_tiktok.requests
    assert received.headers["access-token"] == "token-123"
    assert received.body["test_event_code"] == "TEST123"
    assert [e["event_id"] for e in fake_tiktok.events()] == ["install-1", "event-9"]


def test_request_ids_are_unique(client: httpx.Client, fake_tiktok: FakeTikTok) -> None:
    first = post(client, fake_tiktok, body()).json()["request_id"]
    second = post(client, fake_tiktok, body()).json()["request_id"]
    assert first != second


def _with_event(**overrides: Any) -> Callable[[dict[str, Any]], None]:
    def change(payload: dict[str, Any]) -> None:
        payload["data"][0].update(overrides)

    return change


def _set_user(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(payload: dict[str, Any]) -> None:
        payload["data"][0]["user"][key] = value

    return change


BAD_BODIES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("milliseconds", _with_event(event_time=1763719300123), "milliseconds"),
    ("float time", _with_event(event_time=1763719300.5), "event_time"),
    ("string time", _with_event(event_time="1763719300"), "event_time"),
    ("empty event", _with_event(event=""), "event"),
    ("no event_id", _with_event(event_id=None), "event_id"),
    ("empty user value", _set_user("ip", ""), "user.ip"),
    ("unhashed email", _set_user("email", "alice@example.com"), "user.email"),
    ("upper-case hash", _set_user("phone", EMAIL_HASH.upper()), "user.phone"),
    ("ldu string", _with_event(limited_data_use="false"), "limited_data_use"),
    ("page url number", _with_event(page={"url": 7}), "page.url"),
    (
        "string value",
        _with_event(properties={"value": "9.99", "currency": "USD"}),
        "properties.value",
    ),
    ("value without currency", _with_event(properties={"value": 9.99}), "currency"),
    (
        "lower-case currency",
        _with_event(properties={"value": 9.99, "currency": "usd"}),
        "currency",
    ),
    ("app source", lambda p: p.update(event_source="app"), "event_source"),
    ("no pixel", lambda p: p.update(event_source_id=""), "event_source_id"),
    ("empty data", lambda p: p.update(data=[]), "data"),
    ("1,001 events", lambda p: p.update(data=[event(f"e{i}") for i in range(1001)]), "1001"),
    ("test code number", lambda p: p.update(test_event_code=5), "test_event_code"),
]


@pytest.mark.parametrize(
    ("change", "reason_part"),
    [pytest.param(change, part, id=name) for name, change, part in BAD_BODIES],
)
def test_bad_body_is_refused_as_parameter_error(
    client: httpx.Client,
    fake_tiktok: FakeTikTok,
    change: Callable[[dict[str, Any]], None],
    reason_part: str,
) -> None:
    payload = copy.deepcopy(body())
    change(payload)

    response = post(client, fake_tiktok, payload)

    # TikTok answers parameter errors with HTTP 200 and code 40002, not with a 4xx.
    assert response.status_code == 200
    assert response.json()["code"] == 40002
    [violation] = fake_tiktok.violations
    assert reason_part in violation.reason
    assert response.json()["message"] == violation.reason
    assert fake_tiktok.requests == []
    assert fake_tiktok.events() == []


def test_thousand_events_is_the_limit_not_over_it(
    client: httpx.Client, fake_tiktok: FakeTikTok
) -> None:
    response = post(client, fake_tiktok, body(*[event(f"e{i}") for i in range(1000)]))
    assert response.json()["code"] == 0
    assert len(fake_tiktok.events()) == 1000


@pytest.mark.parametrize(
    ("headers", "reason_part"),
    [
        pytest.param({"Content-Type": "application/json"}, "Access-Token", id="no token"),
        pytest.param(
            {"Access-Token": "", "Content-Type": "application/json"}, "Access-Token", id="empty"
        ),
        pytest.param(
            {"Access-Token": "token-123", "Content-Type": "text/plain"},
            "Content-Type",
            id="text/plain",
        ),
    ],
)
def test_bad_headers_are_refused(
    client: httpx.Client, fake_tiktok: FakeTikTok, headers: dict[str, str], reason_part: str
) -> None:
    response = client.post(
        fake_tiktok.base_url + TRACK_PATH,
        content=b'{"event_source": "web"}',
        headers=headers,
        timeout=5.0,
    )
    assert response.json()["code"] == 40002
    [violation] = fake_tiktok.violations
    assert reason_part in violation.reason


def test_charset_parameter_on_content_type_is_fine(
    client: httpx.Client, fake_tiktok: FakeTikTok
) -> None:
    headers = {**TOKEN_HEADERS, "Content-Type": "application/json; charset=utf-8"}
    assert post(client, fake_tiktok, body(), headers=headers).json()["code"] == 0


def test_wrong_path_and_method_are_refused(client: httpx.Client, fake_tiktok: FakeTikTok) -> None:
    assert (
        post(client, fake_tiktok, body(), path="/open_api/v1.2/event/track/").json()["code"]
        == 40002
    )
    got = client.get(fake_tiktok.base_url + TRACK_PATH, headers=TOKEN_HEADERS, timeout=5.0)
    assert got.json()["code"] == 40002
    reasons = [v.reason for v in fake_tiktok.violations]
    assert "path" in reasons[0]
    assert "POST" in reasons[1]


def test_body_that_is_not_json_is_refused(client: httpx.Client, fake_tiktok: FakeTikTok) -> None:
    response = client.post(
        fake_tiktok.base_url + TRACK_PATH, content=b"data=1", headers=TOKEN_HEADERS, timeout=5.0
    )
    assert response.json()["code"] == 40002
    assert "JSON" in fake_tiktok.violations[0].reason


def test_scripted_code_answers_the_next_requests_then_stops(
    client: httpx.Client, fake_tiktok: FakeTikTok
) -> None:
    fake_tiktok.script(code=40100, message="Too many requests", times=3)

    answers = [post(client, fake_tiktok, body(event(f"e{i}"))).json() for i in range(4)]

    assert [a["code"] for a in answers] == [40100, 40100, 40100, 0]
    assert answers[0]["message"] == "Too many requests"
    # Refused requests were valid, so they are kept, but TikTok took only the last one.
    assert len(fake_tiktok.requests) == 4
    assert [e["event_id"] for e in fake_tiktok.events()] == ["e3"]


def test_scripts_play_in_the_order_given(client: httpx.Client, fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.script(code=50000)
    fake_tiktok.script(code=20001, message="partial")
    codes = [post(client, fake_tiktok, body()).json()["code"] for _ in range(3)]
    assert codes == [50000, 20001, 0]
    # Partial success still delivers.
    assert len(fake_tiktok.events()) == 2


def test_scripted_outage_lasts_until_cleared(client: httpx.Client, fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.script(http_status=503, times=None)

    during = [post(client, fake_tiktok, body()) for _ in range(3)]
    fake_tiktok.clear_script()
    after = post(client, fake_tiktok, body())

    assert [r.status_code for r in during] == [503, 503, 503]
    # A load balancer in front of a down service answers without TikTok JSON.
    assert "json" not in during[0].headers["content-type"]
    assert after.status_code == 200
    assert after.json()["code"] == 0
    assert len(fake_tiktok.events()) == 1


def test_scripted_http_status_with_code_answers_json(
    client: httpx.Client, fake_tiktok: FakeTikTok
) -> None:
    fake_tiktok.script(http_status=500, code=50002)
    response = post(client, fake_tiktok, body())
    assert response.status_code == 500
    assert response.json()["code"] == 50002
    assert fake_tiktok.events() == []


def test_scripted_hang_outlasts_the_client_timeout(
    client: httpx.Client, fake_tiktok: FakeTikTok
) -> None:
    # 5 s of hang against a 0.3 s client timeout: the margin keeps this deterministic.
    fake_tiktok.script(hang_seconds=5, times=1)

    with pytest.raises(httpx.ReadTimeout):
        post(client, fake_tiktok, body(), timeout=0.3)
    after = post(client, fake_tiktok, body())

    assert after.json()["code"] == 0


def test_script_needs_a_positive_count(fake_tiktok: FakeTikTok) -> None:
    with pytest.raises(ValueError):
        fake_tiktok.script(code=40100, times=0)


def test_wait_for_events_reports_what_arrived(
    client: httpx.Client, fake_tiktok: FakeTikTok
) -> None:
    fake_tiktok.script(http_status=503, times=None)
    post(client, fake_tiktok, body(event("refused-1")))

    with pytest.raises(AssertionError, match="refused-1"):
        fake_tiktok.wait_for_events(1, timeout=0.2)


def test_wait_for_events_returns_the_events(client: httpx.Client, fake_tiktok: FakeTikTok) -> None:
    post(client, fake_tiktok, body(event("a"), event("b")))
    assert [e["event_id"] for e in fake_tiktok.wait_for_events(2)] == ["a", "b"]


def test_reset_forgets_everything(client: httpx.Client, fake_tiktok: FakeTikTok) -> None:
    fake_tiktok.script(code=40100, times=None)
    post(client, fake_tiktok, body())
    post(client, fake_tiktok, {"event_source": "app"})

    fake_tiktok.reset()

    assert fake_tiktok.requests == []
    assert fake_tiktok.violations == []
    assert post(client, fake_tiktok, body()).json()["code"] == 0


def test_one_invalid_event_refuses_the_whole_request_naming_it(
    client: httpx.Client, fake_tiktok: FakeTikTok
) -> None:
    # As TikTok does: the request is refused whole (code 40002, HTTP 200), its message names
    # the event by its index, and none of the valid events around it is taken.
    events = [event(f"e{i}") for i in range(6)]
    events[3]["event_time"] = 99_999_999_999  # the year 5138
    answer = post(client, fake_tiktok, body(*events)).json()
    assert answer["code"] == 40002
    assert answer["message"].startswith("data[3].event_time")
    assert fake_tiktok.events() == []
    # Alone, the valid ones are taken.
    assert post(client, fake_tiktok, body(*events[:3])).json()["code"] == 0
    assert len(fake_tiktok.events()) == 3
