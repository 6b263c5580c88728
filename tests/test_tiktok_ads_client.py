"""The Marketing API client against the fake: headers, JSON arrays, error classes, retries with
injected backoff, the per-app limiter, the request log, and the customer-file calls."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from app.tiktok_ads import client as marketing
from app.tiktok_ads.client import (
    MarketingClient,
    NeedsReauth,
    QueryTooLarge,
    RateLimiter,
    Refused,
    Retryable,
)
from tests.aio import run_async
from tests.fakes.tiktok_marketing import (  # noqa: F401  (pytest finds fixtures by name)
    FakeTikTokMarketing,
    fake_marketing_fixture,
    fake_marketing_server_fixture,
)

ADV = "7002238017842757633"
T = TypeVar("T")


class Sleeps:
    """An injected sleep: records what was asked and returns at once."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def call(
    fake: FakeTikTokMarketing,
    use: Callable[[MarketingClient], Awaitable[T]],
    *,
    token: str = "token-1",
    sleeps: Sleeps | None = None,
    timeout: float = 5.0,
) -> T:
    async def go() -> T:
        async with httpx.AsyncClient(timeout=timeout) as http:
            client = MarketingClient(
                http, fake.base_url, token, sleep=sleeps or Sleeps(), rand=random.Random(1)
            )
            return await use(client)

    return run_async(go())


def report_params(**overrides: Any) -> dict[str, str | int]:
    params: dict[str, str | int] = {
        "advertiser_id": ADV,
        "report_type": "BASIC",
        "service_type": "AUCTION",
        "data_level": "AUCTION_AD",
        "dimensions": marketing.json_param(["ad_id", "stat_time_day"]),
        "metrics": marketing.json_param(["spend"]),
        "start_date": "2026-11-01",
        "end_date": "2026-11-10",
        "page": 1,
        "page_size": 1000,
    }
    params.update(overrides)
    return params


def test_advertiser_info_sends_token_header_and_json_array(
    fake_marketing: FakeTikTokMarketing,
) -> None:
    fake_marketing.add_advertiser(ADV, currency="JPY", display_timezone="Asia/Tokyo")
    [info] = call(fake_marketing, lambda c: c.advertiser_info([ADV]))
    assert (info["currency"], info["display_timezone"]) == ("JPY", "Asia/Tokyo")
    [request] = fake_marketing.requests
    assert request.headers["access-token"] == "token-1"
    assert "authorization" not in request.headers
    assert json.loads(request.query["advertiser_ids"]) == [ADV]
    assert fake_marketing.violations == []


@pytest.mark.parametrize("code", [40100, 40133, 50000, 50002, 60001])
def test_retryable_codes_are_retried_with_backoff(
    fake_marketing: FakeTikTokMarketing, code: int
) -> None:
    fake_marketing.add_advertiser(ADV)
    fake_marketing.script(code=code, times=2)
    sleeps = Sleeps()
    data = call(fake_marketing, lambda c: c.report_page(report_params()), sleeps=sleeps)
    assert data["page_info"]["total_number"] == 0
    assert [r.code for r in fake_marketing.requests] == [code, code, 0]
    # Doubling, jittered down to no less than half.
    assert len(sleeps.asked) == 2
    assert 0.5 <= sleeps.asked[0] <= 1.0 and 1.0 <= sleeps.asked[1] <= 2.0


def test_non_json_504_and_a_hang_are_retried(fake_marketing: FakeTikTokMarketing) -> None:
    fake_marketing.add_advertiser(ADV)
    fake_marketing.script(http_status=504)
    fake_marketing.script(hang_seconds=5)
    data = call(fake_marketing, lambda c: c.report_page(report_params()), timeout=0.3)
    assert data["list"] == []
    assert len(fake_marketing.requests) >= 2


def test_retries_end_after_max_attempts(fake_marketing: FakeTikTokMarketing) -> None:
    fake_marketing.add_advertiser(ADV)
    fake_marketing.script(code=40100, times=None, message="Too many requests")
    with pytest.raises(Retryable, match="Too many requests"):
        call(fake_marketing, lambda c: c.report_page(report_params()))
    assert len(fake_marketing.requests) == marketing.MAX_ATTEMPTS


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (40067, QueryTooLarge),
        (40104, NeedsReauth),
        (40105, NeedsReauth),
        (40001, Refused),
        (40002, Refused),
        (40006, Refused),
    ],
)
def test_other_codes_raise_their_class_at_once(
    fake_marketing: FakeTikTokMarketing, code: int, error: type[Exception]
) -> None:
    fake_marketing.add_advertiser(ADV)
    fake_marketing.script(code=code, message="TikTok says no")
    with pytest.raises(error, match="TikTok says no"):
        call(fake_marketing, lambda c: c.report_page(report_params()))
    assert len(fake_marketing.requests) == 1


def test_unknown_token_needs_reauth(fake_marketing: FakeTikTokMarketing) -> None:
    fake_marketing.add_advertiser(ADV)
    with pytest.raises(NeedsReauth):
        call(fake_marketing, lambda c: c.advertiser_info([ADV]), token="revoked")


def test_one_log_line_per_request_without_the_token(
    fake_marketing: FakeTikTokMarketing, caplog: pytest.LogCaptureFixture
) -> None:
    fake_marketing.add_advertiser(ADV, token="secret-token-value")
    fake_marketing.script(code=40100)
    with caplog.at_level(logging.INFO, logger="gangway.tiktok_ads"):
        call(fake_marketing, lambda c: c.advertiser_info([ADV]), token="secret-token-value")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gangway.tiktok_ads"]
    assert [(x["method"], x["path"], x["code"]) for x in lines] == [
        ("GET", "/open_api/v1.3/advertiser/info/", 40100),
        ("GET", "/open_api/v1.3/advertiser/info/", 0),
    ]
    assert all(x["request_id"] and x["ms"] >= 0 for x in lines)
    assert "secret-token-value" not in caplog.text


def test_limiter_allows_ten_a_second_and_waits_for_the_eleventh() -> None:
    now = [100.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(10, 1.0, clock=lambda: now[0], sleep=sleep)

    async def go() -> list[float]:
        starts = []
        for _ in range(25):
            await limiter.acquire()
            starts.append(now[0])
            now[0] += 0.01
        return starts

    starts = run_async(go())
    # In any one second at most ten requests started.
    assert all(sum(1 for s in starts if t <= s < t + 1.0) <= 10 for t in starts)
    assert waits, "the eleventh request had to wait"
    assert starts[-1] - starts[0] < 2.5


def test_file_upload_create_and_update(fake_marketing: FakeTikTokMarketing) -> None:
    fake_marketing.add_advertiser(ADV)
    members = [hashlib.md5(f"idfa-{i}".encode()).hexdigest() for i in range(1001)]

    async def sync(c: MarketingClient) -> str:
        first = await c.upload_file(ADV, "IDFA_MD5", "\n".join(members[:1000]).encode())
        audience_id = await c.create_audience(ADV, "buyers", "IDFA_MD5", [first])
        more = await c.upload_file(ADV, "IDFA_MD5", members[1000].encode())
        await c.update_audience(ADV, audience_id, [more], "APPEND")
        return audience_id

    audience_id = call(fake_marketing, sync)
    assert fake_marketing.violations == []
    assert fake_marketing.audience(audience_id).members == set(members)


def test_oauth_exchange_accepts_numeric_ids_and_revoke(fake_marketing: FakeTikTokMarketing) -> None:
    fake_marketing.add_advertiser(ADV, token="seed")
    fake_marketing.advertiser_ids_as_numbers = True
    code = fake_marketing.issue_auth_code([ADV], token="oauth-token")
    token, ids = call(
        fake_marketing,
        lambda c: c.exchange_auth_code(fake_marketing.app_id, fake_marketing.secret, code),
        token="",
    )
    assert (token, ids) == ("oauth-token", [ADV])
    call(
        fake_marketing,
        lambda c: c.revoke_token(fake_marketing.app_id, fake_marketing.secret),
        token="oauth-token",
    )
    assert not fake_marketing.token_valid("oauth-token")
    assert fake_marketing.violations == []
