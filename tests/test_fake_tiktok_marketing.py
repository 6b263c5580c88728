"""The fake TikTok Marketing API refuses what TikTok refuses, pages consistently, and plays
scripted answers.

Plain httpx requests, no Gangway code: a bug in the client cannot hide one here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.fakes.tiktok_marketing import (  # noqa: F401  (pytest finds fixtures by name)
    FakeTikTokMarketing,
    fake_marketing_fixture,
    fake_marketing_server_fixture,
)

ADV = "7002238017842757633"
TOKEN = {"Access-Token": "token-1"}
API = "/open_api/v1.3/"
METRICS = [
    "campaign_id",
    "campaign_name",
    "adgroup_id",
    "adgroup_name",
    "ad_name",
    "currency",
    "spend",
    "impressions",
    "clicks",
]
STATUS_ALL = [{"field_name": "ad_status", "filter_type": "IN", "filter_value": '["STATUS_ALL"]'}]


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as shared:
        yield shared


def report_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "advertiser_id": ADV,
        "report_type": "BASIC",
        "service_type": "AUCTION",
        "data_level": "AUCTION_AD",
        "dimensions": json.dumps(["ad_id", "stat_time_day"]),
        "metrics": json.dumps(METRICS),
        "filtering": json.dumps(STATUS_ALL),
        "start_date": "2026-11-01",
        "end_date": "2026-11-30",
        "page": 1,
        "page_size": 1000,
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def get_report(
    http: httpx.Client,
    fake: FakeTikTokMarketing,
    headers: dict[str, str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    answer: dict[str, Any] = http.get(
        fake.base_url + API + "report/integrated/get/",
        params=report_params(**overrides),
        headers=TOKEN if headers is None else headers,
    ).json()
    return answer


def test_advertiser_info_answers_currency_and_time_zones(
    http: httpx.Client, fake_marketing: FakeTikTokMarketing
) -> None:
    fake_marketing.add_advertiser(ADV, currency="EUR", display_timezone="Europe/Berlin")
    answer = http.get(
        fake_marketing.base_url + API + "advertiser/info/",
        params={"advertiser_ids": json.dumps([ADV])},
        headers=TOKEN,
    ).json()
    assert answer["code"] == 0 and answer["message"] == "OK" and answer["request_id"]
    [info] = answer["data"]["list"]
    assert (info["currency"], info["display_timezone"], info["timezone"]) == (
        "EUR",
        "Europe/Berlin",
        "Etc/GMT+8",
    )


def test_report_pages_are_consistent_and_cover_every_row(
    http: httpx.Client, fake_marketing: FakeTikTokMarketing
) -> None:
    fake_marketing.add_advertiser(ADV)
    fake_marketing.seed(ADV, ads=7, start=dt.date(2026, 11, 1), days=5, campaigns=2)
    pages = []
    page = 1
    while True:
        data = get_report(http, fake_marketing, page=page, page_size=4)["data"]
        pages.append(data)
        if page >= data["page_info"]["total_page"]:
            break
        page += 1
    infos = [p["page_info"] for p in pages]
    assert {i["total_number"] for i in infos} == {35}
    assert {i["total_page"] for i in infos} == {9}
    rows = [row for p in pages for row in p["list"]]
    keys = {(r["dimensions"]["ad_id"], r["dimensions"]["stat_time_day"]) for r in rows}
    assert len(rows) == len(keys) == 35
    assert all(r["dimensions"]["stat_time_day"].endswith(" 00:00:00") for r in rows)
    assert all(isinstance(v, str) for r in rows for v in r["metrics"].values())
    # Every 13th cell has no value: TikTok shows "-", not "0".
    assert any(r["metrics"]["spend"] == "-" for r in rows)
    # The rows add up to what the fake says a pull must store.
    total = sum(Decimal(r["metrics"]["spend"]) for r in rows if r["metrics"]["spend"] != "-")
    assert total == sum(fake_marketing.spend_by_campaign_day(ADV).values())
    # A page past the end is empty, not an error.
    past = get_report(http, fake_marketing, page=10, page_size=4)
    assert past["code"] == 0 and past["data"]["list"] == []


def test_deleted_ads_need_status_all_and_countries_split_rows(
    http: httpx.Client, fake_marketing: FakeTikTokMarketing
) -> None:
    fake_marketing.add_advertiser(ADV)
    fake_marketing.add_ad(ADV, "11", deleted=True)
    fake_marketing.set_stats("11", dt.date(2026, 11, 2), "5.00", country="US")
    fake_marketing.set_stats("11", dt.date(2026, 11, 2), "2.50", country="DE")

    without = get_report(http, fake_marketing, filtering=None)["data"]
    with_all = get_report(http, fake_marketing)["data"]
    by_country = get_report(
        http, fake_marketing, dimensions=json.dumps(["ad_id", "stat_time_day", "country_code"])
    )["data"]

    assert without["list"] == [] and without["page_info"]["total_page"] == 0
    [row] = with_all["list"]
    assert row["metrics"]["spend"] == "7.50"
    assert row["dimensions"]["stat_time_day"] == "2026-11-02 00:00:00"
    assert sorted(
        (r["dimensions"]["country_code"], r["metrics"]["spend"]) for r in by_country["list"]
    ) == [("DE", "2.50"), ("US", "5.00")]


@pytest.mark.parametrize(
    ("overrides", "reason_part"),
    [
        pytest.param({"end_date": "2026-12-01"}, "30 days", id="31-day window"),
        pytest.param({"page_size": 1001}, "page_size", id="page_size 1001"),
        pytest.param({"dimensions": "ad_id,stat_time_day"}, "dimensions", id="csv dims"),
        pytest.param({"metrics": "spend"}, "metrics", id="metrics not json"),
        pytest.param(
            {
                "filtering": json.dumps(
                    [
                        {
                            "field_name": "ad_status",
                            "filter_type": "IN",
                            "filter_value": ["STATUS_ALL"],
                        }
                    ]
                )
            },
            "filter_value",
            id="filter_value a list, not a string",
        ),
        pytest.param({"start_date": "2026/11/01"}, "start_date", id="date format"),
        pytest.param({"data_level": "AUCTION_CAMPAIGN"}, "data_level", id="level"),
        pytest.param({"metrics": json.dumps(["cost"])}, "metrics", id="unknown metric"),
        pytest.param({"end_date": None}, "end_date", id="no end date"),
    ],
)
def test_bad_report_requests_are_refused(
    http: httpx.Client,
    fake_marketing: FakeTikTokMarketing,
    overrides: dict[str, Any],
    reason_part: str,
) -> None:
    fake_marketing.add_advertiser(ADV)
    answer = get_report(http, fake_marketing, **overrides)
    assert answer["code"] == 40002
    [violation] = fake_marketing.violations
    assert reason_part in violation.reason
    assert fake_marketing.requests == []


def test_thirty_days_and_thousand_rows_are_the_limits_not_over(
    http: httpx.Client, fake_marketing: FakeTikTokMarketing
) -> None:
    fake_marketing.add_advertiser(ADV)
    assert get_report(http, fake_marketing, end_date="2026-11-30", page_size=1000)["code"] == 0


def test_missing_token_and_bad_tokens(
    http: httpx.Client, fake_marketing: FakeTikTokMarketing
) -> None:
    fake_marketing.add_advertiser(ADV)
    fake_marketing.add_advertiser("7000000000000000009", token="other-token")
    missing = get_report(http, fake_marketing, headers={})
    bearer = get_report(
        http, fake_marketing, headers={"Authorization": "Bearer token-1", "Access-Token": "token-1"}
    )
    unknown = get_report(http, fake_marketing, headers={"Access-Token": "nope"})
    not_granted = get_report(http, fake_marketing, advertiser_id="7000000000000000009")
    assert missing["code"] == 40104
    assert bearer["code"] == 40002
    assert unknown["code"] == 40105
    assert not_granted["code"] == 40001
    assert [s.violation is not None for s in fake_marketing.seen] == [True, True, False, False]


def test_scripts_match_by_window_and_path_and_play_in_order(
    http: httpx.Client, fake_marketing: FakeTikTokMarketing
) -> None:
    fake_marketing.add_advertiser(ADV)
    fake_marketing.script(code=40067, above_days=15, times=None)
    fake_marketing.script(code=40100, path="advertiser/info", times=1)
    big = get_report(http, fake_marketing)
    small = get_report(http, fake_marketing, end_date="2026-11-15")
    info = http.get(
        fake_marketing.base_url + API + "advertiser/info/",
        params={"advertiser_ids": json.dumps([ADV])},
        headers=TOKEN,
    ).json()
    info_again = http.get(
        fake_marketing.base_url + API + "advertiser/info/",
        params={"advertiser_ids": json.dumps([ADV])},
        headers=TOKEN,
    ).json()
    assert [big["code"], small["code"], info["code"], info_again["code"]] == [40067, 0, 40100, 0]


def test_scripted_non_json_504_and_hang(
    http: httpx.Client, fake_marketing: FakeTikTokMarketing
) -> None:
    fake_marketing.add_advertiser(ADV)
    fake_marketing.script(http_status=504)
    fake_marketing.script(hang_seconds=5)
    gateway = http.get(
        fake_marketing.base_url + API + "report/integrated/get/",
        params=report_params(),
        headers=TOKEN,
    )
    assert gateway.status_code == 504
    assert "json" not in gateway.headers["content-type"]
    with pytest.raises(httpx.ReadTimeout):
        http.get(
            fake_marketing.base_url + API + "report/integrated/get/",
            params=report_params(),
            headers=TOKEN,
            timeout=0.3,
        )
    assert get_report(http, fake_marketing)["code"] == 0


def test_qps_limit_answers_40100(http: httpx.Client, fake_marketing: FakeTikTokMarketing) -> None:
    fake_marketing.add_advertiser(ADV)
    fake_marketing.max_qps = 2
    codes = [get_report(http, fake_marketing)["code"] for _ in range(3)]
    assert codes == [0, 0, 40100]


def test_oauth_exchange_is_single_use_and_revoke_forgets_the_token(
    http: httpx.Client, fake_marketing: FakeTikTokMarketing
) -> None:
    fake_marketing.add_advertiser(ADV, token="seed-token")
    fake_marketing.advertiser_ids_as_numbers = True
    code = fake_marketing.issue_auth_code([ADV], token="oauth-token")
    body = {"app_id": fake_marketing.app_id, "secret": fake_marketing.secret, "auth_code": code}
    first = http.post(fake_marketing.base_url + API + "oauth2/access_token/", json=body).json()
    again = http.post(fake_marketing.base_url + API + "oauth2/access_token/", json=body).json()
    wrong = http.post(
        fake_marketing.base_url + API + "oauth2/access_token/", json={**body, "secret": "guess"}
    ).json()
    assert first["data"]["access_token"] == "oauth-token"
    assert first["data"]["advertiser_ids"] == [int(ADV)]
    assert again["code"] != 0 and wrong["code"] != 0
    assert get_report(http, fake_marketing, headers={"Access-Token": "oauth-token"})["code"] == 0

    revoke = {
        "app_id": fake_marketing.app_id,
        "secret": fake_marketing.secret,
        "access_token": "oauth-token",
    }
    assert (
        http.post(fake_marketing.base_url + API + "oauth2/revoke_token/", json=revoke).json()[
            "code"
        ]
        == 0
    )
    assert (
        get_report(http, fake_marketing, headers={"Access-Token": "oauth-token"})["code"] == 40105
    )


# --- audiences ---------------------------------------------------------------------------------


def hashes(start: int, count: int) -> list[str]:
    return [hashlib.md5(f"device-{i}".encode()).hexdigest() for i in range(start, start + count)]


def upload(
    http: httpx.Client,
    fake: FakeTikTokMarketing,
    lines: list[str],
    calculate_type: str = "IDFA_MD5",
    signature: str | None = None,
) -> dict[str, Any]:
    data = ("\n".join(lines) + "\n").encode()
    answer: dict[str, Any] = http.post(
        fake.base_url + API + "dmp/custom_audience/file/upload/",
        data={
            "advertiser_id": ADV,
            "calculate_type": calculate_type,
            "file_signature": signature or hashlib.md5(data).hexdigest(),
        },
        files={"file": ("members.csv", data, "text/csv")},
        headers=TOKEN,
    ).json()
    return answer


def post(
    http: httpx.Client, fake: FakeTikTokMarketing, endpoint: str, body: dict[str, Any]
) -> dict[str, Any]:
    answer: dict[str, Any] = http.post(
        fake.base_url + API + endpoint, json=body, headers=TOKEN
    ).json()
    return answer


def test_audience_create_append_remove_keep_membership(
    http: httpx.Client, fake_marketing: FakeTikTokMarketing
) -> None:
    fake_marketing.add_advertiser(ADV)
    first = upload(http, fake_marketing, hashes(0, 1000))["data"]["file_path"]
    created = post(
        http,
        fake_marketing,
        "dmp/custom_audience/create/",
        {
            "advertiser_id": ADV,
            "custom_audience_name": "buyers",
            "calculate_type": "IDFA_MD5",
            "file_paths": [first],
        },
    )
    audience_id = created["data"]["custom_audience_id"]
    more = upload(http, fake_marketing, hashes(1000, 5))["data"]["file_path"]
    appended = post(
        http,
        fake_marketing,
        "dmp/custom_audience/update/",
        {
            "advertiser_id": ADV,
            "custom_audience_id": audience_id,
            "file_paths": [more],
            "action": "APPEND",
        },
    )
    gone = upload(http, fake_marketing, hashes(0, 5))["data"]["file_path"]
    removed = post(
        http,
        fake_marketing,
        "dmp/custom_audience/update/",
        {
            "advertiser_id": ADV,
            "custom_audience_id": audience_id,
            "file_paths": [gone],
            "action": "REMOVE",
        },
    )

    assert [created["code"], appended["code"], removed["code"]] == [0, 0, 0]
    audience = fake_marketing.audience(audience_id)
    assert audience.members == set(hashes(5, 1000))
    assert audience.actions == ["CREATE", "APPEND", "REMOVE"]
    assert fake_marketing.violations == []


def test_audience_refusals(http: httpx.Client, fake_marketing: FakeTikTokMarketing) -> None:
    fake_marketing.add_advertiser(ADV)
    bad_signature = upload(http, fake_marketing, hashes(0, 3), signature="0" * 32)
    not_hex = upload(http, fake_marketing, ["Device-1"])
    small = upload(http, fake_marketing, hashes(0, 999))["data"]["file_path"]
    too_small = post(
        http,
        fake_marketing,
        "dmp/custom_audience/create/",
        {
            "advertiser_id": ADV,
            "custom_audience_name": "a",
            "calculate_type": "IDFA_MD5",
            "file_paths": [small],
        },
    )
    full = upload(http, fake_marketing, hashes(0, 1000))["data"]["file_path"]
    audience_id = post(
        http,
        fake_marketing,
        "dmp/custom_audience/create/",
        {
            "advertiser_id": ADV,
            "custom_audience_name": "a",
            "calculate_type": "IDFA_MD5",
            "file_paths": [full],
        },
    )["data"]["custom_audience_id"]
    gaid = upload(http, fake_marketing, hashes(2000, 5), calculate_type="GAID_MD5")
    one = upload(http, fake_marketing, hashes(0, 1))["data"]["file_path"]
    update = {"advertiser_id": ADV, "custom_audience_id": audience_id}
    no_action = post(
        http, fake_marketing, "dmp/custom_audience/update/", {**update, "file_paths": [one]}
    )
    mismatch = post(
        http,
        fake_marketing,
        "dmp/custom_audience/update/",
        {**update, "file_paths": [gaid["data"]["file_path"]], "action": "APPEND"},
    )
    under = post(
        http,
        fake_marketing,
        "dmp/custom_audience/update/",
        {**update, "file_paths": [one], "action": "REMOVE"},
    )

    assert [a["code"] for a in (bad_signature, not_hex, too_small, no_action, mismatch, under)] == [
        40002
    ] * 6
    reasons = [v.reason for v in fake_marketing.violations]
    for part in ("file_signature", "line 1", "1000 users", "action", "GAID_MD5", "leaves 999"):
        assert any(part in r for r in reasons), (part, reasons)
    # Nothing refused changed the audience.
    assert fake_marketing.audience(audience_id).members == set(hashes(0, 1000))
