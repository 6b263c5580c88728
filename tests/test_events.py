"""`POST /api/v1/events` (http-api.md section 2, attribution.md section 6).

An event carries its install's attribution (a reinstall's, the first install's), is stored once
per `event_id`, keeps its revenue as a decimal string with its currency, and answers, and
stores, the postback decision. Delivery itself is the outbox's (`test_outbox.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import OTHER_IP, START, Gangway, open_gangway


@pytest.fixture()
def gw(tmp_path: Path, backend_db: str) -> Iterator[Gangway]:
    yield from open_gangway(tmp_path, backend_db)


def tiktok_install(gw: Gangway, instance: str, **body: Any) -> dict[str, Any]:
    """An install the Play referrer credits to a TikTok click a minute earlier."""
    _, referrer = gw.android_click()
    gw.later(60)
    return gw.installed(instance, via=OTHER_IP, install_referrer=referrer, **body)


def post(gw: Gangway, instance: str, name: str, **body: Any) -> Any:
    return gw.http.post(
        "/api/v1/events",
        json={"app_key": "demo", "app_instance_id": instance, "event_name": name} | body,
        headers=gw.sdk,
    )


def sent(gw: Gangway, instance: str, name: str, **body: Any) -> dict[str, Any]:
    answer = post(gw, instance, name, **body)
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def stored_event(gw: Gangway, event_id: str) -> dict[str, Any]:
    conn_rows = gw.sql(
        "SELECT revenue, typeof(revenue), currency, media_source, postback, install_id, "
        "event_time FROM events WHERE event_id = ?",
        (event_id,),
    )
    assert len(conn_rows) == 1
    keys = ("revenue", "revenue_type", "currency", "media_source", "postback", "install_id")
    return dict(zip(keys + ("event_time",), conn_rows[0], strict=True))


def event_postbacks(gw: Gangway) -> list[dict[str, Any]]:
    rows = gw.sql("SELECT event, payload FROM postbacks WHERE kind = 'event' ORDER BY rowid")
    return [{"event": event, "payload": json.loads(payload)} for event, payload in rows]


@pytest.mark.both_backends
def test_a_purchase_of_a_tiktok_install_is_queued_with_its_revenue(gw: Gangway) -> None:
    install = tiktok_install(gw, "phone-1")
    answer = sent(
        gw,
        "phone-1",
        "af_purchase",
        event_id="order-1",
        event_time="2026-11-21T10:05:00Z",
        event_value={"af_revenue": "9.99", "af_currency": "eur", "af_content_id": "sku-1"},
    )
    assert answer == {
        "event_id": "order-1",
        "media_source": "tiktokglobal_int",
        "postback": "queued",
    }
    stored = stored_event(gw, "order-1")
    # A decimal string, never a float: 9.99 must add up to 9.99 in every report.
    assert (stored["revenue"], stored["revenue_type"], stored["currency"]) == (
        "9.99",
        "text",
        "EUR",
    )
    assert (stored["postback"], stored["install_id"]) == ("queued", install["install_id"])
    assert stored["event_time"] == START + 300
    [postback] = event_postbacks(gw)
    assert postback["event"] == "Purchase"
    assert postback["payload"]["user"]["ttclid"] == "E.C.P.abc"
    assert postback["payload"]["properties"]["currency"] == "EUR"


@pytest.mark.both_backends
def test_the_same_event_id_is_stored_once(gw: Gangway) -> None:
    tiktok_install(gw, "phone-1")
    first = sent(gw, "phone-1", "af_purchase", event_id="order-1", event_value={"af_revenue": 5})
    again = sent(gw, "phone-1", "af_purchase", event_id="order-1", event_value={"af_revenue": 7})
    assert again == first
    assert gw.sql("SELECT COUNT(*), MAX(revenue) FROM events") == [(1, "5")]
    assert len(event_postbacks(gw)) == 1


def test_every_postback_decision_is_answered_and_stored(gw: Gangway) -> None:
    tiktok_install(gw, "tiktok")
    gw.installed("organic", via="192.0.2.99")

    assert sent(gw, "tiktok", "af_level_achieved", event_id="e1")["postback"] == "not_mapped"
    organic = sent(gw, "organic", "af_purchase", event_id="e2")
    assert organic == {"event_id": "e2", "media_source": "organic", "postback": "not_attributed"}

    gw.put_integration(
        inapp_postbacks={
            "enabled": True,
            "window_days": 1,
            "for_users": "this_partner",
            "events": [{"app_event": "af_purchase", "partner_event": "Purchase"}],
        }
    )
    # An event two days after its install (and not ahead of the server's clock: issue #16).
    gw.later(2 * 86_400)
    two_days = {"event_time": int(START) + 60 + 2 * 86_400}
    assert sent(gw, "tiktok", "af_purchase", event_id="e3", **two_days)["postback"] == (
        "outside_window"
    )
    gw.put_integration(enabled=False)
    assert sent(gw, "tiktok", "af_purchase", event_id="e4")["postback"] == "disabled"

    stored = {
        event_id: postback for event_id, postback in gw.sql("SELECT event_id, postback FROM events")
    }
    assert stored == {
        "e1": "not_mapped",
        "e2": "not_attributed",
        "e3": "outside_window",
        "e4": "disabled",
    }
    assert event_postbacks(gw) == []


@pytest.mark.both_backends
def test_a_reinstalls_events_carry_the_first_installs_attribution(gw: Gangway) -> None:
    device = {"gaid": "38400000-8cf0-11bd-b23e-10b96e40000d"}
    tiktok_install(gw, "phone-1", device=device)
    gw.later(7 * 86_400)
    again = gw.installed("phone-2", via="192.0.2.50", device=device)
    assert again["status"] == "reinstall"

    answer = sent(gw, "phone-2", "af_purchase", event_id="after-reinstall")
    assert answer["media_source"] == "tiktokglobal_int"
    assert answer["postback"] == "queued"
    assert stored_event(gw, "after-reinstall")["install_id"] == again["install_id"]
    [postback] = event_postbacks(gw)
    # The TikTok click of the first install is the one the postback describes.
    assert postback["payload"]["user"]["ttclid"] == "E.C.P.abc"


def test_an_event_of_an_unknown_install_is_a_404(gw: Gangway) -> None:
    answer = post(gw, "never-installed", "af_purchase")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": "unknown_install",
        "message": "no install with this app_instance_id",
        "field": "app_instance_id",
    }


def test_an_event_without_an_id_is_stored_under_a_fresh_one(gw: Gangway) -> None:
    gw.installed("phone-1")
    first = sent(gw, "phone-1", "af_complete_registration")
    second = sent(gw, "phone-1", "af_complete_registration")
    assert first["event_id"] != second["event_id"]
    assert gw.sql("SELECT COUNT(*) FROM events") == [(2,)]


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("9.990", ("9.990", "USD")),  # as sent; USD when no currency is given
        (9.99, ("9.99", "USD")),  # a JSON number reads back as the decimal written
        (12, ("12", "USD")),
        ("1e3", ("1000", "USD")),
        (" -4.50 ", ("-4.50", "USD")),  # a refund
    ],
)
def test_revenue_is_kept_as_the_decimal_that_was_sent(
    gw: Gangway, value: object, stored: tuple[str, str]
) -> None:
    gw.installed("phone-1")
    sent(gw, "phone-1", "af_purchase", event_id="p", event_value={"af_revenue": value})
    assert gw.sql("SELECT revenue, currency FROM events") == [stored]


def test_user_identifiers_are_never_stored_in_clear(gw: Gangway) -> None:
    tiktok_install(gw, "phone-1")
    user = {"email": "Jane.Doe@Example.com", "phone": "+14155550100", "external_id": "crm-77"}
    sent(gw, "phone-1", "af_purchase", event_id="p", user=user)
    dump = "\n".join(
        str(row)
        for table in ("events", "postbacks", "installs")
        for row in gw.sql(f"SELECT * FROM {table}")
    )
    for value in user.values():
        assert value not in dump
        assert value.lower() not in dump
    # The postback has them, hashed.
    [postback] = event_postbacks(gw)
    assert len(postback["payload"]["user"]["email"]) == 64


MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("no app_instance_id", {"app_instance_id": None}, "app_instance_id"),
    ("app_instance_id not a string", {"app_instance_id": 3}, "app_instance_id"),
    ("no event_name", {"event_name": ""}, "event_name"),
    ("event_name not a string", {"event_name": {"name": "x"}}, "event_name"),
    ("event_name too long", {"event_name": "e" * 101}, "event_name"),
    ("event_id not a string", {"event_id": 12}, "event_id"),
    ("event_id too long", {"event_id": "i" * 129}, "event_id"),
    ("event_time not a time", {"event_time": "later"}, "event_time"),
    ("event_value not an object", {"event_value": "9.99"}, "event_value"),
    ("revenue not a number", {"event_value": {"af_revenue": "9,99"}}, "event_value.af_revenue"),
    ("revenue a boolean", {"event_value": {"af_revenue": True}}, "event_value.af_revenue"),
    ("revenue a list", {"event_value": {"af_revenue": [1]}}, "event_value.af_revenue"),
    ("revenue empty", {"event_value": {"af_revenue": ""}}, "event_value.af_revenue"),
    ("revenue NaN", {"event_value": {"af_revenue": "NaN"}}, "event_value.af_revenue"),
    ("revenue infinite", {"event_value": {"af_revenue": "-Infinity"}}, "event_value.af_revenue"),
    ("revenue huge", {"event_value": {"af_revenue": "1e999999999"}}, "event_value.af_revenue"),
    ("revenue tiny", {"event_value": {"af_revenue": "1e-999999999"}}, "event_value.af_revenue"),
    (
        "currency not ISO 4217",
        {"event_value": {"af_revenue": "1", "af_currency": "US$"}},
        "event_value.af_currency",
    ),
    ("currency not a string", {"event_value": {"af_currency": 840}}, "event_value.af_currency"),
    ("user not an object", {"user": "jane@example.com"}, "user"),
    ("user email not a string", {"user": {"email": ["jane@example.com"]}}, "user.email"),
]


@pytest.mark.parametrize(
    ("change", "field"), [(c, f) for _, c, f in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_every_malformed_event_field_is_a_400_naming_it(
    gw: Gangway, change: dict[str, Any], field: str
) -> None:
    gw.installed("phone-1")
    body = {"app_key": "demo", "app_instance_id": "phone-1", "event_name": "af_purchase"}
    answer = gw.http.post("/api/v1/events", json=body | change, headers=gw.sdk)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert gw.sql("SELECT COUNT(*) FROM events") == [(0,)]


def test_events_need_the_apps_sdk_key(gw: Gangway) -> None:
    gw.installed("phone-1")
    body = {"app_key": "demo", "app_instance_id": "phone-1", "event_name": "af_purchase"}
    assert gw.http.post("/api/v1/events", json=body).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert gw.http.post("/api/v1/events", json=body, headers=wrong).status_code == 401
    assert gw.sql("SELECT COUNT(*) FROM events") == [(0,)]


@pytest.mark.parametrize("name", ["af_purchase", "af_complete_registration"])
@pytest.mark.both_backends
def test_a_content_id_with_a_lone_surrogate_is_queued_repaired(gw: Gangway, name: str) -> None:
    """JSON lets an app send "\\ud800": the postback could not be written to the outbox and
    the whole event was a 500. The event is kept as sent; TikTok gets U+FFFD."""
    tiktok_install(gw, "phone-1")
    body = {"app_key": "demo", "app_instance_id": "phone-1", "event_name": name}
    body["event_value"] = {"af_revenue": "1", "af_content_id": "sku-\ud800"}
    answer = gw.http.post(
        "/api/v1/events",
        content=json.dumps(body),
        headers=gw.sdk | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["postback"] == "queued"
    (postback,) = event_postbacks(gw)
    assert postback["payload"]["properties"]["contents"] == [{"content_id": "sku-\ufffd"}]


def test_an_event_time_before_1970_is_a_400(gw: Gangway) -> None:
    tiktok_install(gw, "phone-1")
    answer = post(gw, "phone-1", "af_purchase", event_time="0001-01-01T00:00:00+14:00")
    assert (answer.status_code, answer.json()["field"]) == (400, "event_time")
