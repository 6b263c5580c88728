"""`POST /api/v1/installs` and `GET /api/v1/installs/{id}` (http-api.md 2, attribution.md).

In process, on a fresh seeded database per test, with an injected clock: touches are made the
way visitors make them (`/c/`, `/i/`), from the IP an `X-Forwarded-For` names (the test client
is a trusted proxy), and the app then reports its install. Each test checks what the app is
answered and what the owner sees in the receipt. The engine's rules one by one are
`test_attribution.py`; here is the surface around them: fields, ids, storage, the lookups.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.attribution import TimeRange
from app.paths import ROOT
from app.store.records import CandidateQuery
from app.store.sqlite.candidates import (
    CLICKS_SQL,
    IMPRESSIONS_SQL,
    REFERRER_CLICK_SQL,
    find_candidates,
)
from app.store.sqlite.installs import DEVICE_ID_COLUMNS, PRIOR_INSTALL_SQL
from tests.fixtures import (
    ANDROID_SDK_UA,
    ANDROID_UA,
    IOS_SDK_UA,
    IPHONE_UA,
    OTHER_IP,
    PHONE_IP,
    START,
    Gangway,
    open_gangway,
)

# Keys of the conversion data, exactly as http-api.md section 2 lists them.
ANSWER_KEYS = {
    "install_id",
    "is_first_launch",
    "status",
    "af_status",
    "media_source",
    "original_media_source",
    "match_type",
    "touch",
    "campaign",
    "campaign_id",
    "adset",
    "adset_id",
    "ad",
    "ad_id",
    "af_sub1",
    "af_sub2",
    "af_sub3",
    "af_sub4",
    "af_sub5",
    "ttclid",
    "deep_link_value",
    "original_url",
}


@pytest.fixture()
def gw(tmp_path: Path, backend_db: str) -> Iterator[Gangway]:
    yield from open_gangway(tmp_path, backend_db)


def tier(record: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in record["receipt"]["tiers"] if t["tier"] == name)


def losers(record: dict[str, Any]) -> dict[str, str]:
    return {
        loser["id"]: loser["reason"]
        for entry in record["receipt"]["tiers"]
        for loser in entry["losers"]
    }


# --- the answer: conversion data ---------------------------------------------------------------


@pytest.mark.both_backends
def test_a_play_referrer_install_gets_its_campaign_under_the_unified_pid(gw: Gangway) -> None:
    click_id, referrer = gw.android_click()
    gw.later(60)
    answer = gw.installed("phone-1", via=OTHER_IP, install_referrer=referrer)

    assert set(answer) == ANSWER_KEYS
    assert answer["is_first_launch"] is True
    assert answer["status"] == "attributed"
    assert answer["af_status"] == "Non-organic"
    assert answer["media_source"] == "tiktokglobal_int"
    assert answer["original_media_source"] == "tiktokweb_int"
    assert answer["match_type"] == "referrer"
    assert answer["touch"] == {"type": "click", "id": click_id, "time": "2026-11-21T10:00:00Z"}
    assert (answer["campaign"], answer["campaign_id"]) == ("summer", "1700")
    assert (answer["adset"], answer["adset_id"]) == ("teens", "17001")
    assert (answer["ad"], answer["ad_id"]) == ("video1", "170011")
    assert answer["af_sub1"] == answer["ttclid"] == "E.C.P.abc"
    assert answer["af_sub2"] is None
    assert answer["deep_link_value"] == "level7"
    # No pvid and no Referer: the click URL itself is the original URL (http-api.md 1).
    assert answer["original_url"].startswith("http://gangway.test/c/demo?pid=tiktokweb_int")

    stored = gw.record(answer["install_id"])
    assert stored["media_source"] == "tiktokglobal_int"
    assert stored["original_media_source"] == "tiktokweb_int"
    assert stored["original_url"] == answer["original_url"]
    assert stored["install_time"] == "2026-11-21T10:01:00Z"
    assert stored["conversion_data"] == answer
    assert [p["event"] for p in stored["postbacks"]] == ["Download"]
    # The click now belongs to this install.
    assert gw.sql("SELECT claimed_by FROM clicks WHERE id = ?", (click_id,)) == [("phone-1",)]


def test_an_install_nothing_led_to_is_organic_with_nulls(gw: Gangway) -> None:
    answer = gw.installed("phone-1")
    assert set(answer) == ANSWER_KEYS
    assert answer["status"] == "organic"
    assert answer["af_status"] == "Organic"
    assert answer["media_source"] == "organic"
    nulls = ANSWER_KEYS - {"install_id", "is_first_launch", "status", "af_status", "media_source"}
    assert {key: answer[key] for key in nulls} == dict.fromkeys(nulls)
    record = gw.record(answer["install_id"])
    assert record["receipt"]["tier"] == "organic"
    assert record["postbacks"] == []


@pytest.mark.both_backends
def test_the_same_app_instance_id_is_the_same_install(gw: Gangway) -> None:
    _, referrer = gw.android_click()
    gw.later(60)
    first = gw.installed("phone-1", install_referrer=referrer)
    # A retry from the app, even one saying something else, changes nothing.
    again = gw.installed("phone-1", via=OTHER_IP, platform="ios")
    assert again == first | {"is_first_launch": False}
    assert gw.sql("SELECT COUNT(*) FROM installs") == [(1,)]
    assert gw.sql("SELECT COUNT(*) FROM postbacks") == [(1,)]


def test_app_instance_ids_are_kept_exactly_so_two_never_merge(gw: Gangway) -> None:
    """Ids were cut to 128 bytes, not characters: two 101-character ids of accented letters
    with a common start became one, and the second phone was answered the first one's
    install."""
    first = gw.installed("\u00e9" * 100 + "1")
    second = gw.installed("\u00e9" * 100 + "2")
    assert second["install_id"] != first["install_id"] and second["is_first_launch"]
    stored = {row[0] for row in gw.sql("SELECT app_instance_id FROM installs")}
    assert stored == {"\u00e9" * 100 + "1", "\u00e9" * 100 + "2"}


def test_an_install_time_may_be_unix_seconds_and_defaults_to_now(gw: Gangway) -> None:
    explicit = gw.installed("phone-1", install_time=int(START) - 3600)
    implicit = gw.installed("phone-2")
    assert gw.record(explicit["install_id"])["install_time"] == "2026-11-21T09:00:00Z"
    assert gw.record(implicit["install_id"])["install_time"] == "2026-11-21T10:00:00Z"


# --- probabilistic matching through the endpoint -----------------------------------------------


@pytest.mark.both_backends
def test_an_iphone_install_from_the_clicks_ip_takes_that_click(gw: Gangway) -> None:
    click_id = gw.click(ua=IPHONE_UA)
    gw.later(120)
    # The SDK posts from the phone: IP and user agent are the request's own.
    answer = gw.installed(
        "iphone-1",
        ua=IOS_SDK_UA,
        platform="ios",
        device_model="iPhone15,2",
        att_status="authorized",
    )
    assert (answer["status"], answer["match_type"]) == ("attributed", "probabilistic_click")
    assert answer["touch"]["id"] == click_id

    receipt = gw.record(answer["install_id"])["receipt"]
    # OS version from the SDK's user agent (Darwin 23.5 is iOS 17.5), model family iPhone.
    assert receipt["signals"] == {
        "ip": "equal",
        "os": "equal",
        "os_version": "equal",
        "device_model": "equal",
    }
    assert receipt["touch"]["id"] == click_id
    assert receipt["click_to_install_seconds"] == 120
    assert gw.record(answer["install_id"])["user_agent"] == IOS_SDK_UA

    elsewhere = gw.installed("iphone-2", via=OTHER_IP, ua=IOS_SDK_UA, platform="ios")
    assert elsewhere["status"] == "organic"


@pytest.mark.both_backends
def test_a_click_is_claimed_by_one_install_and_the_next_hears_why(gw: Gangway) -> None:
    click_id = gw.click()
    gw.later(60)
    first = gw.installed("phone-1")
    second = gw.installed("phone-2")
    assert first["touch"]["id"] == click_id
    assert second["status"] == "organic"
    assert losers(gw.record(second["install_id"])) == {click_id: "claimed"}


def test_the_body_ip_is_the_install_ip_and_ipv4_mapped_addresses_match(gw: Gangway) -> None:
    click_id = gw.click()
    gw.later(60)
    # A server-to-server call: the request comes from the backend, the body names the phone.
    answer = gw.installed("phone-1", via="10.0.0.2", ip=f"::ffff:{PHONE_IP}")
    assert answer["touch"]["id"] == click_id
    assert gw.record(answer["install_id"])["ip"] == PHONE_IP


def test_the_sdk_user_agent_keeps_another_phone_model_off_the_click(gw: Gangway) -> None:
    pixel7 = ANDROID_UA.replace("Pixel 8", "Pixel 7")
    click_id = gw.click(ua=pixel7)
    gw.later(60)
    # No os_version or device_model in the body: Dalvik's user agent says Android 14, Pixel 8.
    answer = gw.installed("phone-1", ua=ANDROID_SDK_UA, os_version=None, device_model=None)
    assert answer["status"] == "organic"
    record = gw.record(answer["install_id"])
    assert (record["os_version"], record["device_model"]) == ("14", "Pixel 8")
    assert losers(record) == {click_id: "signal_mismatch"}


def test_a_click_seconds_before_the_install_is_rejected_and_stays_free(gw: Gangway) -> None:
    click_id = gw.click()
    gw.later(5)
    injected = gw.installed("phone-1")
    # Organic-shaped: a fraudster learns nothing of the campaign.
    assert injected["status"] == "rejected"
    assert injected["media_source"] == "organic"
    assert injected["campaign"] is None
    record = gw.record(injected["install_id"])
    assert record["receipt"]["reason"] == "click_injection"
    assert record["receipt"]["touch"]["id"] == click_id
    assert record["postbacks"] == []
    assert record["touch_id"] is None
    # The rejected install did not use the click up.
    gw.later(60)
    assert gw.installed("phone-2")["touch"]["id"] == click_id


def test_an_install_with_a_crawlers_user_agent_is_rejected(gw: Gangway) -> None:
    gw.click()
    gw.later(60)
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    bot = gw.installed("phone-1", user_agent=googlebot)
    assert bot["status"] == "rejected"
    assert gw.record(bot["install_id"])["receipt"]["reason"] == "bot_install"
    # okhttp is on crawler lists, and it is also what Android SDKs post with.
    sdk = gw.installed("phone-2", ua="okhttp/4.12.0")
    assert sdk["status"] == "attributed"


def test_view_through_decides_whether_a_page_view_alone_attributes(gw: Gangway) -> None:
    impression_id = gw.impression(ua=ANDROID_UA)
    gw.later(600)
    seen = gw.installed("phone-1")
    assert (seen["match_type"], seen["touch"]["id"]) == ("probabilistic_impression", impression_id)
    assert seen["touch"]["type"] == "impression"

    gw.put_integration(view_through=False)
    off = gw.installed("phone-2")
    assert off["status"] == "organic"
    assert losers(gw.record(off["install_id"])) == {impression_id: "not_view_through"}


def test_ios_probabilistic_matching_follows_att_and_the_app_setting(gw: Gangway) -> None:
    gw.click(ua=IPHONE_UA)
    gw.later(60)
    ios = {"platform": "ios", "device_model": "iPhone15,2", "ua": IOS_SDK_UA}
    denied = gw.installed("iphone-1", att_status="denied", **ios)
    assert denied["status"] == "organic"
    assert tier(gw.record(denied["install_id"]), "probabilistic_click")["skipped"] == "att_denied"

    gw.put_attribution(probabilistic_ios=False)
    off = gw.installed("iphone-2", att_status="authorized", **ios)
    skipped = tier(gw.record(off["install_id"]), "probabilistic_click")["skipped"]
    assert skipped == "ios_probabilistic_off"

    gw.put_attribution(probabilistic_ios=True)
    # Apple's own spelling of the status is understood too.
    on = gw.installed("iphone-3", att_status="notDetermined", **ios)
    assert on["match_type"] == "probabilistic_click"
    assert gw.record(on["install_id"])["att_status"] == "not_determined"


@pytest.mark.both_backends
def test_the_receipt_explains_every_loser_and_the_windows(gw: Gangway) -> None:
    stale = gw.click()  # 25 hours before the install: just outside the 24 h window
    gw.later(3600)
    older = gw.click()
    gw.click(ua="Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)")
    bot = gw.latest("clicks")
    gw.later(60)
    winner = gw.click()
    gw.later(24 * 3600 - 3660 + 60)
    answer = gw.installed("phone-1")
    assert answer["touch"]["id"] == winner

    receipt = gw.record(answer["install_id"])["receipt"]
    assert receipt["tier"] == "probabilistic_click"
    assert receipt["windows"]["probabilistic_window_hours"] == 24
    assert receipt["windows"]["min_click_to_install_seconds"] == 10
    clicks = tier({"receipt": receipt}, "probabilistic_click")
    assert clicks["candidates"] == 4
    assert clicks["window_start"] == "2026-11-21T10:01:00Z"
    assert losers({"receipt": receipt}) == {
        stale: "outside_window",
        older: "older",
        bot: "bot",
    }
    assert tier({"receipt": receipt}, "referrer")["skipped"] == "no_referrer_click_id"


def test_a_referrer_naming_an_unknown_click_is_organic_with_a_note(gw: Gangway) -> None:
    gw.click()  # a matching click that must not be guessed instead
    gw.later(60)
    answer = gw.installed("phone-1", install_referrer="gw_click_id%3Dnope%26pid%3Dtiktokweb_int")
    assert answer["status"] == "organic"
    assert gw.record(answer["install_id"])["receipt"]["notes"] == ["referrer_unknown_click"]


# --- reinstalls --------------------------------------------------------------------------------


@pytest.mark.both_backends
def test_a_known_device_is_a_reinstall_of_its_first_install(gw: Gangway) -> None:
    _, referrer = gw.android_click()
    gw.later(60)
    device = {"gaid": "38400000-8CF0-11BD-B23E-10B96E40000D"}
    first = gw.installed("phone-1", install_referrer=referrer, device=device)
    gw.later(86_400)
    second = gw.installed("phone-2", device={"gaid": device["gaid"].lower()})
    assert second["status"] == "reinstall"
    assert second["media_source"] == "organic"
    record = gw.record(second["install_id"])
    assert record["reinstall_of"] == first["install_id"]
    assert record["postbacks"] == []
    assert record["receipt"]["prior_install"]["id"] == first["install_id"]
    # A reinstall of the reinstall still points at the first install.
    gw.later(86_400)
    third = gw.installed("phone-3", device=device)
    assert gw.record(third["install_id"])["reinstall_of"] == first["install_id"]


def test_a_device_seen_before_the_reattribution_window_is_a_new_install(gw: Gangway) -> None:
    device = {"idfv": "E621E1F8-C36C-495A-93FC-0C247A3E6E5F"}
    gw.installed("iphone-1", platform="ios", device=device)
    gw.later(91 * 86_400)
    again = gw.installed("iphone-2", platform="ios", device=device)
    assert again["status"] == "organic"
    assert gw.record(again["install_id"])["reinstall_of"] is None


def test_zeroed_advertising_ids_are_no_device(gw: Gangway) -> None:
    # What iOS answers for the IDFA when tracking is denied: the same for every phone.
    zeros = {"idfa": "00000000-0000-0000-0000-000000000000"}
    gw.installed("iphone-1", platform="ios", device=zeros)
    other = gw.installed("iphone-2", platform="ios", device=zeros)
    assert other["status"] == "organic"
    assert gw.record(other["install_id"])["idfa"] is None


# --- malformed requests ------------------------------------------------------------------------

MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("no app_key", {"app_key": None}, "app_key"),
    ("app_key not a string", {"app_key": 7}, "app_key"),
    ("no platform", {"platform": None}, "platform"),
    ("unknown platform", {"platform": "<b>palm</b>"}, "platform"),
    ("platform not a string", {"platform": ["ios"]}, "platform"),
    ("no app_instance_id", {"app_instance_id": ""}, "app_instance_id"),
    ("app_instance_id not a string", {"app_instance_id": 12}, "app_instance_id"),
    ("app_instance_id too long", {"app_instance_id": "x" * 129}, "app_instance_id"),
    # Cleaned, "phone\0" would be "phone": two ids merged into one install.
    ("app_instance_id with a NUL", {"app_instance_id": "phone\x00"}, "app_instance_id"),
    ("device id with a NUL", {"device": {"gaid": "\x00abc"}}, "device.gaid"),
    ("install_time not a time", {"install_time": "yesterday"}, "install_time"),
    ("install_time a boolean", {"install_time": True}, "install_time"),
    ("install_time in milliseconds", {"install_time": 1763719000000}, "install_time"),
    ("install_time days ahead", {"install_time": int(START) + 2 * 86_400}, "install_time"),
    # Year 0 in UTC: was stored, then every receipt time written from it was a 500.
    ("install_time before 1970", {"install_time": "0001-01-01T00:00:00+14:00"}, "install_time"),
    ("device not an object", {"device": "gaid"}, "device"),
    ("device id not a string", {"device": {"gaid": 5}}, "device.gaid"),
    ("device id too long", {"device": {"idfv": "a" * 200}}, "device.idfv"),
    ("ip not an address", {"ip": "phone"}, "ip"),
    ("ip not a string", {"ip": 2130706433}, "ip"),
    ("att_status unknown", {"att_status": "maybe"}, "att_status"),
    (
        "install_referrer not a string",
        {"install_referrer": {"gw_click_id": "x"}},
        "install_referrer",
    ),
    ("install_referrer too long", {"install_referrer": "a=" + "b" * 3000}, "install_referrer"),
    ("user_agent not a string", {"user_agent": 1}, "user_agent"),
    ("os_version not a string", {"os_version": 14}, "os_version"),
    ("device_model not a string", {"device_model": False}, "device_model"),
    ("language not a string", {"language": ["en"]}, "language"),
    ("referrer_click_time not a time", {"referrer_click_time": "soon"}, "referrer_click_time"),
    ("install_begin_time not a time", {"install_begin_time": {}}, "install_begin_time"),
]


@pytest.mark.parametrize(
    ("change", "field"), [(c, f) for _, c, f in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_every_malformed_install_field_is_a_400_naming_it(
    gw: Gangway, change: dict[str, Any], field: str
) -> None:
    body = {"app_key": "demo", "platform": "android", "app_instance_id": "phone-1"} | change
    answer = gw.http.post("/api/v1/installs", json=body, headers=gw.sdk)
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert set(error) == {"error", "message", "field"}
    assert error["field"] == field
    assert "<b>" not in error["message"]
    assert gw.sql("SELECT COUNT(*) FROM installs") == [(0,)]


def test_the_body_and_the_credentials_are_checked_before_anything_is_stored(gw: Gangway) -> None:
    url = "/api/v1/installs"
    body = {"app_key": "demo", "platform": "android", "app_instance_id": "phone-1"}
    assert gw.http.post(url, json=body).status_code == 401
    wrong = {"Authorization": "Bearer not-the-key"}
    assert gw.http.post(url, json=body, headers=wrong).json()["error"] == "unauthorized"
    # Another app's key name gets the same answer as a wrong key: app keys are not revealed.
    other = gw.http.post(url, json=body | {"app_key": "nope"}, headers=gw.sdk)
    assert other.status_code == 401
    as_text = gw.http.post(
        url, content=json.dumps(body), headers=gw.sdk | {"Content-Type": "text/plain"}
    )
    assert as_text.status_code == 415
    broken = gw.http.post(
        url, content=b"{not json", headers=gw.sdk | {"Content-Type": "application/json"}
    )
    assert (broken.status_code, broken.json()["error"]) == (400, "invalid_json")
    listed = gw.http.post(url, json=[body], headers=gw.sdk)
    assert listed.status_code == 400
    huge = gw.http.post(url, json=body | {"padding": "x" * 70_000}, headers=gw.sdk)
    assert huge.status_code == 413
    assert gw.sql("SELECT COUNT(*) FROM installs") == [(0,)]


@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [
        # JSON Python's parser gives up on with RecursionError / ValueError: were 500s.
        (b'{"app_key": "demo", "x": ' + b"[" * 50_000 + b"}", 400, None),
        (b'{"app_key": "demo", "x": ' + b"7" * 5000 + b"}", 400, None),
        # A lone surrogate cannot be an app key (SQLite refused to look it up: a 500).
        (b'{"app_key": "\\ud800", "platform": "ios", "app_instance_id": "p"}', 401, None),
        # Nor an id: cleaned, it would merge with another one.
        (
            b'{"app_key": "demo", "platform": "ios", "app_instance_id": "p\\ud800"}',
            400,
            "app_instance_id",
        ),
    ],
    ids=["nested 50,000 deep", "5,000-digit number", "app_key surrogate", "id surrogate"],
)
def test_bodies_no_parser_or_column_takes_are_a_clear_4xx(
    gw: Gangway, raw: bytes, status: int, field: str | None
) -> None:
    answer = gw.http.post(
        "/api/v1/installs", content=raw, headers=gw.sdk | {"Content-Type": "application/json"}
    )
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error", "message", "field"}
    assert answer.json()["field"] == field
    assert gw.sql("SELECT COUNT(*) FROM installs") == [(0,)]


@pytest.mark.both_backends
def test_install_receipts_are_for_the_owner_only(gw: Gangway) -> None:
    answer = gw.installed("phone-1")
    url = f"/api/v1/installs/{answer['install_id']}"
    assert gw.http.get(url).status_code == 401
    assert gw.http.get(url, headers=gw.sdk).status_code == 401
    missing = gw.http.get("/api/v1/installs/nope", headers=gw.admin)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")


# --- the candidate lookups ---------------------------------------------------------------------


def test_attribution_lookups_ride_the_indexes(gw: Gangway) -> None:
    conn = sqlite3.connect(f"file:{gw.db}?mode=ro", uri=True)
    try:

        def plan(sql: str, params: list[Any]) -> str:
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
            return " | ".join(str(r[-1]) for r in rows)

        window = ["demo", PHONE_IP, 0.0, 1.0, 501]
        clicks = plan(CLICKS_SQL, window)
        impressions = plan(IMPRESSIONS_SQL, window)
        by_id = plan(REFERRER_CLICK_SQL, ["id", "demo"])
        devices = {
            column: plan(PRIOR_INSTALL_SQL.format(column=column), ["demo", "x", 0.0])
            for column in DEVICE_ID_COLUMNS
        }
    finally:
        conn.close()
    assert "USING INDEX clicks_match (app_key=? AND ip=? AND time>? AND time<?)" in clicks
    assert "USING INDEX impressions_match (app_key=? AND ip=? AND time>? AND time<?)" in (
        impressions
    )
    assert "USING INDEX sqlite_autoindex_clicks_1 (id=?)" in by_id
    for column, device in devices.items():
        assert f"USING INDEX installs_{column} (app_key=? AND {column}=?)" in device, device
    # Latest first comes from reading the index backwards, not from sorting the rows (a
    # device's few installs may be sorted).
    for found in (clicks, impressions, by_id):
        assert "TEMP B-TREE" not in found and "SCAN" not in found, found


def test_a_busy_ip_is_capped_and_the_receipt_says_so(gw: Gangway) -> None:
    for _ in range(3):
        gw.click()
        gw.later(1)
    conn = sqlite3.connect(f"file:{gw.db}?mode=ro", uri=True)
    try:
        query = CandidateQuery(
            "demo", PHONE_IP, None, TimeRange(START - 10, START + 10), TimeRange(0, 0), limit=2
        )
        found = find_candidates(conn, query)
    finally:
        conn.close()
    assert found.clicks_capped and not found.impressions_capped
    # The two latest are kept: latest wins inside a tier.
    assert [c.time for c in found.clicks] == [START + 2, START + 1]


def test_the_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    """`python -m benchmarks.attribution` at a size that takes a second, so it cannot rot."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.attribution",
            "--db",
            str(tmp_path / "bench.db"),
            "--touches",
            "4000",
            "--baseline-touches",
            "1000",
            "--installs",
            "200",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Exit 1 would be a missed 5 ms median: at this size, a broken benchmark.
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    lines = re.findall(r"(\w+) +([\d,]+) touches +([\d,]+) installs +([\d,]+) attributed", out)
    assert [(label, touches) for label, touches, _, _ in lines] == [
        ("baseline", "1,000"),
        ("benchmark", "4,000"),
    ], out
    for _, _, installs, attributed in lines:
        assert installs == "200"
        # Most installs come from touched IPs or referrers: a benchmark of misses proves little.
        assert int(attributed.replace(",", "")) > 50, out
    assert re.search(r"median [\d.]+ ms +p90 [\d.]+ ms +p99 [\d.]+ ms", out), out
    assert "ratio to baseline: median x" in out and "ms target: median x" in out, out
