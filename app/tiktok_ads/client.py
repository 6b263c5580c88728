"""TikTok Marketing API v1.3 over httpx: the one place Gangway talks to an advertiser account.

Contract: `spec/tiktok-ads.md` sections 1 to 3. Every call sends the token in `Access-Token`
(the OAuth calls carry app credentials in their body instead), arrays in query strings as JSON
strings, and reads `{code, message, request_id, data}`; `code 0` is success.

What an answer means is decided by `classify` (pure), so callers catch a class, not a number:
- `Retryable`: rate limits (40100, 40133), TikTok's internal errors (50000, 50002, 60001), a
  non-JSON or 5xx answer, a timeout or a dropped connection. Retried here with exponential
  backoff and jitter, up to `max_attempts`; then raised.
- `QueryTooLarge` (40067): the caller halves its report window.
- `NeedsReauth` (40104, 40105): the token is missing, revoked or wrong; the connection needs the
  owner again, nothing is retried.
- `Refused`: any other code (40001, 40002, 40006, ...): the request itself was wrong, and
  TikTok's message says why.

At most `RATE_PER_SECOND` requests a second leave per app (`limiter_for(app_key)`, shared by
every client of the process for that app), so a backfill of many pages never trips TikTok's
own limit. Each request is logged as one JSON line (`gangway.tiktok_ads`): method, path, HTTP
status, code, request_id, ms and attempt; never the token, never the query.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("gangway.tiktok_ads")

API_PREFIX = "/open_api/v1.3/"
ADVERTISER_INFO = "advertiser/info/"
REPORT = "report/integrated/get/"
ACCESS_TOKEN = "oauth2/access_token/"
REVOKE_TOKEN = "oauth2/revoke_token/"
FILE_UPLOAD = "dmp/custom_audience/file/upload/"
AUDIENCE_CREATE = "dmp/custom_audience/create/"
AUDIENCE_UPDATE = "dmp/custom_audience/update/"

RETRY_CODES = frozenset({40100, 40133, 50000, 50002, 60001})
QUERY_TOO_LARGE = 40067
REAUTH_CODES = frozenset({40104, 40105})
RATE_PER_SECOND = 10
MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0

Sleep = Callable[[float], Awaitable[None]]


class MarketingError(Exception):
    """TikTok did not answer `code 0`. `code` is None when there was no TikTok JSON at all."""

    def __init__(self, code: int | None, message: str, request_id: str = "") -> None:
        super().__init__(f"TikTok {code if code is not None else 'error'}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


class Retryable(MarketingError):
    pass


class QueryTooLarge(MarketingError):
    pass


class NeedsReauth(MarketingError):
    pass


class Refused(MarketingError):
    pass


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange, read: TikTok's fields, or `code` None for a body that was not them."""

    http_status: int
    code: int | None
    message: str
    request_id: str
    data: Any


def read_answer(http_status: int, body: bytes) -> Answer:
    """Read a response body; a body that is not TikTok's JSON envelope has `code` None."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("code"), int):
        snippet = body[:80].decode("utf-8", "replace").strip()
        return Answer(http_status, None, f"HTTP {http_status}: {snippet!r}", "", None)
    return Answer(
        http_status,
        int(parsed["code"]),
        str(parsed.get("message", "")),
        str(parsed.get("request_id", "")),
        parsed.get("data"),
    )


def classify(answer: Answer) -> MarketingError | None:
    """None for success; otherwise the error to raise (or retry)."""
    if answer.code is None:
        # A load balancer's page or an empty body: TikTok was not reached, so trying again is
        # all there is (spec: "a non-JSON 5xx answer is retried like 50000"). Anything else
        # non-JSON is no answer we can read either.
        return Retryable(None, answer.message)
    if answer.code == 0:
        return None
    if answer.code in RETRY_CODES or answer.http_status >= 500:
        return Retryable(answer.code, answer.message, answer.request_id)
    if answer.code == QUERY_TOO_LARGE:
        return QueryTooLarge(answer.code, answer.message, answer.request_id)
    if answer.code in REAUTH_CODES:
        return NeedsReauth(answer.code, answer.message, answer.request_id)
    return Refused(answer.code, answer.message, answer.request_id)


def backoff_delay(attempt: int, rand: random.Random) -> float:
    """Seconds before retry number `attempt` (1 = the first retry): doubling, capped, jittered
    down to half so clients that failed together do not return together."""
    ceiling: float = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** (attempt - 1))
    return ceiling * (0.5 + rand.random() / 2)


def json_param(value: Sequence[Any]) -> str:
    """An array as TikTok wants it in a query string: a JSON string."""
    return json.dumps(list(value), separators=(",", ":"))


class RateLimiter:
    """At most `rate` acquisitions in any `per` seconds (a sliding window of start times)."""

    def __init__(
        self,
        rate: int = RATE_PER_SECOND,
        per: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.per = per
        self._clock = clock
        self._sleep = sleep
        self._starts: list[float] = []
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self._starts = [t for t in self._starts if now - t < self.per]
                if len(self._starts) < self.rate:
                    self._starts.append(now)
                    return
                await self._sleep(self.per - (now - self._starts[0]))


_LIMITERS: dict[str, RateLimiter] = {}


def limiter_for(app_key: str) -> RateLimiter:
    """The process's limiter of one app: every client for that app shares its budget.

    Each is made on first use and bound to no event loop until it waits (asyncio.Lock binds
    lazily), so one limiter serves the server's loop and a CLI's `asyncio.run` alike."""
    limiter = _LIMITERS.get(app_key)
    if limiter is None:
        limiter = _LIMITERS[app_key] = RateLimiter()
    return limiter


class MarketingClient:
    """Calls of one advertiser token. `sleep` and `rand` are injectable so tests never wait."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token: str,
        *,
        limiter: RateLimiter | None = None,
        sleep: Sleep = asyncio.sleep,
        rand: random.Random | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/") + API_PREFIX
        self._token = token
        self._limiter = limiter or RateLimiter()
        self._sleep = sleep
        self._rand = rand or random.Random()
        self._max_attempts = max_attempts
        self.requests_sent = 0

    # -- transport ---------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Mapping[str, Any] | None = None,
        form: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        with_token: bool = True,
    ) -> Any:
        """`data` of a `code 0` answer; retries what is retryable, raises the rest."""
        headers = {"Access-Token": self._token} if with_token else {}
        attempt = 0
        while True:
            attempt += 1
            await self._limiter.acquire()
            started = time.perf_counter()
            try:
                response = await self._http.request(
                    method,
                    self._base + endpoint,
                    params=params,
                    json=json_body,
                    data=form,
                    files=files,
                    headers=headers,
                )
                answer = read_answer(response.status_code, response.content)
                error = classify(answer)
            except httpx.TransportError as exc:
                # A timeout (TikTok hanging) or a dropped connection: nothing was read.
                answer = Answer(0, None, f"{type(exc).__name__}", "", None)
                error = Retryable(None, f"no answer ({type(exc).__name__})")
            self.requests_sent += 1
            self._log(method, endpoint, answer, started, attempt)
            if error is None:
                return answer.data
            if not isinstance(error, Retryable) or attempt >= self._max_attempts:
                raise error
            await self._sleep(backoff_delay(attempt, self._rand))

    def _log(
        self, method: str, endpoint: str, answer: Answer, started: float, attempt: int
    ) -> None:
        log.info(
            json.dumps(
                {
                    "event": "tiktok_api",
                    "method": method,
                    "path": API_PREFIX + endpoint,
                    "http_status": answer.http_status,
                    "code": answer.code,
                    "request_id": answer.request_id,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    "attempt": attempt,
                }
            )
        )

    # -- calls -------------------------------------------------------------------------------

    async def advertiser_info(self, advertiser_ids: Sequence[str]) -> list[dict[str, Any]]:
        data = await self._call(
            "GET",
            ADVERTISER_INFO,
            params={
                "advertiser_ids": json_param(advertiser_ids),
                "fields": json_param(
                    ["advertiser_id", "name", "currency", "timezone", "display_timezone"]
                ),
            },
        )
        items = data.get("list") if isinstance(data, dict) else None
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    async def report_page(self, params: Mapping[str, str | int]) -> dict[str, Any]:
        """One page of `report/integrated/get/` (`params` built by the caller): its `data`."""
        data = await self._call("GET", REPORT, params=params)
        if not isinstance(data, dict):
            raise Refused(0, "report answer without data")
        return data

    async def upload_file(self, advertiser_id: str, calculate_type: str, content: bytes) -> str:
        """Upload one customer file (one hash a line); its `file_path` for create/update."""
        data = await self._call(
            "POST",
            FILE_UPLOAD,
            form={
                "advertiser_id": advertiser_id,
                "calculate_type": calculate_type,
                "file_signature": hashlib.md5(content).hexdigest(),
            },
            files={"file": ("audience.csv", content, "text/csv")},
        )
        return str(_field(data, "file_path"))

    async def create_audience(
        self, advertiser_id: str, name: str, calculate_type: str, file_paths: Sequence[str]
    ) -> str:
        data = await self._call(
            "POST",
            AUDIENCE_CREATE,
            json_body={
                "advertiser_id": advertiser_id,
                "custom_audience_name": name,
                "calculate_type": calculate_type,
                "file_paths": list(file_paths),
            },
        )
        return str(_field(data, "custom_audience_id"))

    async def update_audience(
        self, advertiser_id: str, custom_audience_id: str, file_paths: Sequence[str], action: str
    ) -> None:
        """`action` is APPEND or REMOVE, always sent: TikTok's default, REPLACE, wipes."""
        if action not in ("APPEND", "REMOVE", "REPLACE"):
            raise ValueError(f"unknown audience action {action!r}")
        await self._call(
            "POST",
            AUDIENCE_UPDATE,
            json_body={
                "advertiser_id": advertiser_id,
                "custom_audience_id": custom_audience_id,
                "file_paths": list(file_paths),
                "action": action,
            },
        )

    async def exchange_auth_code(
        self, app_id: str, secret: str, auth_code: str
    ) -> tuple[str, list[str]]:
        """(access token, advertiser IDs) for an OAuth `auth_code`; IDs may come as numbers."""
        data = await self._call(
            "POST",
            ACCESS_TOKEN,
            json_body={"app_id": app_id, "secret": secret, "auth_code": auth_code},
            with_token=False,
        )
        token = _field(data, "access_token")
        ids = data.get("advertiser_ids") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise Refused(0, "the token exchange answered no access_token")
        advertisers = (
            [str(i) for i in ids if isinstance(i, str | int)] if isinstance(ids, list) else []
        )
        return token, advertisers

    async def revoke_token(self, app_id: str, secret: str) -> None:
        await self._call(
            "POST",
            REVOKE_TOKEN,
            json_body={"app_id": app_id, "secret": secret, "access_token": self._token},
            with_token=False,
        )


def _field(data: Any, name: str) -> Any:
    if not isinstance(data, dict) or name not in data:
        raise Refused(0, f"TikTok's answer has no {name}")
    return data[name]
