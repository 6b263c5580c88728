"""A fake TikTok Marketing API v1.3: a real HTTP server on 127.0.0.1 that holds callers to the
contract of `spec/tiktok-ads.md` (sections 1 to 4).

Endpoints (paths under `/open_api/v1.3/`):

- `GET advertiser/info/?advertiser_ids=[..]` -> `data.list[{advertiser_id, name, currency,
  timezone, display_timezone}]`;
- `GET report/integrated/get/` -> `data.list[{dimensions, metrics}]`, `data.page_info{page,
  page_size, total_number, total_page}`;
- `POST oauth2/access_token/` and `POST oauth2/revoke_token/` (JSON, no `Access-Token`);
- `POST dmp/custom_audience/file/upload/` (multipart), `POST dmp/custom_audience/create/`,
  `POST dmp/custom_audience/update/` (JSON).

Every request is checked. One that breaks the contract (a missing `Access-Token`, an array not
sent as a JSON string, a report window over 30 days, `page_size` over 1,000, a file whose
`file_signature` is not the MD5 of its bytes, an update without `action`, a file whose
`calculate_type` differs from the audience's, a create or update leaving fewer than 1,000
users, ...) is kept in `violations` with the reason and answered HTTP 200 code 40002 with the
reason as message, as TikTok answers parameter errors; a missing token is answered 40104 ("access
token is null"), TikTok's code for it. Valid requests are kept in `requests` with the answer
they got; `seen` lists every request, valid or not, in arrival order (for "no request lacked
Access-Token").

Account state is real enough to answer realistically rather than refuse: an unknown or revoked
token answers 40105, an advertiser the token was not granted answers 40001.

Scripting, as in the Events API fake (`tests/fakes/tiktok_api.py`):

    fake.script(code=40100, times=2)                # the next two matching requests
    fake.script(code=40067, above_days=15, times=None)  # every report window over 15 days
    fake.script(http_status=504)                    # a non-JSON gateway timeout
    fake.script(hang_seconds=5)                     # answered only after 5 s (ends on reset)
    fake.script(code=40105, path="report/")         # only requests whose path contains it

Entries play in the order scripted; one that does not match a request (path, window size) is
skipped and kept for a later one. `max_qps` makes the fake answer 40100 above that many requests
in any second, as TikTok's per-app limit does.

Report data: `add_advertiser` and `add_ad`, then `set_stats(ad_id, day, spend, ...)` for single
cells, or `seed(...)` for a large block whose cells are computed, not stored (the benchmark's
10,000 ads x 60 days would otherwise hold 600,000 objects). `spend_by_campaign_day()` is what a
correct pull must store. Where the spec is silent the fake copies TikTok's public docs and
clients (the official `tiktok-business-api-sdk` and open-source connectors):
- `page` starts at 1 and `page_size` defaults to 10; `total_page` is ceil(total / page_size),
  0 when there are no rows, and a page past the end answers an empty list;
- rows of ads without data in the window are left out; metrics are strings, IDs are strings, a
  metric without a value is `"-"`;
- deleted ads are left out unless `filtering` keeps `ad_status` IN `["STATUS_ALL"]`;
- without the `country_code` dimension a row sums the ad's countries;
- `oauth2/access_token/` answers `data.access_token`, `data.advertiser_ids`, `data.scope`;
  `dmp/custom_audience/file/upload/` answers `data.file_path`; `create/` answers
  `data.custom_audience_id`; `update/` actions are `APPEND`, `REMOVE` and `REPLACE`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from email.parser import BytesParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

API_PREFIX = "/open_api/v1.3/"
PARAMETER_ERROR = 40002
NO_PERMISSION = 40001
TOKEN_MISSING = 40104
TOKEN_INVALID = 40105
RATE_LIMITED = 40100
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10
MAX_WINDOW_DAYS = 30
MIN_AUDIENCE = 1000
CALCULATE_TYPES = (
    "IDFA_MD5",
    "GAID_MD5",
    "IDFA_SHA256",
    "GAID_SHA256",
    "EMAIL_SHA256",
    "PHONE_SHA256",
)
AUDIENCE_ACTIONS = ("APPEND", "REMOVE", "REPLACE")
ALLOWED_DIMENSIONS = (("ad_id", "stat_time_day"), ("ad_id", "stat_time_day", "country_code"))
KNOWN_METRICS = frozenset(
    {
        "campaign_id",
        "campaign_name",
        "adgroup_id",
        "adgroup_name",
        "ad_name",
        "currency",
        "spend",
        "impressions",
        "clicks",
    }
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MD5_HEX = re.compile(r"[0-9a-f]{32}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ContractViolation(Exception):
    """Raised inside the fake when a request breaks the Marketing API contract."""


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise ContractViolation(reason)


@dataclass(frozen=True)
class Seen:
    """Any request that arrived: what it carried and, if it broke the contract, why."""

    method: str
    path: str
    headers: dict[str, str]
    violation: str | None


@dataclass(frozen=True)
class ReceivedRequest:
    """A valid request, parsed, and the answer it got (`answer` None: a non-JSON body)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any] | None
    http_status: int
    answer: dict[str, Any] | None

    @property
    def code(self) -> int | None:
        return None if self.answer is None else int(self.answer["code"])

    @property
    def endpoint(self) -> str:
        """The path after `/open_api/v1.3/`, without slashes at either end."""
        return self.path.removeprefix(API_PREFIX).strip("/")


@dataclass(frozen=True)
class Violation:
    reason: str
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes


@dataclass
class FakeAd:
    advertiser_id: str
    ad_id: str
    ad_name: str
    adgroup_id: str
    adgroup_name: str
    campaign_id: str
    campaign_name: str
    deleted: bool = False


@dataclass(frozen=True)
class Cell:
    """One ad, day and country. `spend_cents` None: TikTok shows `"-"` for every metric."""

    spend_cents: int | None
    impressions: int
    clicks: int


@dataclass
class FakeAudience:
    custom_audience_id: str
    advertiser_id: str
    name: str
    calculate_type: str
    members: set[str]
    actions: list[str] = field(default_factory=list)


@dataclass
class _UploadedFile:
    advertiser_id: str
    calculate_type: str
    hashes: set[str]


@dataclass
class _Block:
    """Seeded ads whose cells are computed: cents = f(ad index, day index, country index)."""

    ads: list[FakeAd]
    start: dt.date
    days: int
    countries: tuple[str, ...]
    missing_every: int

    def cell(self, ad_index: int, day_index: int, country_index: int) -> Cell | None:
        if not 0 <= day_index < self.days:
            return None
        if self.missing_every and (ad_index + day_index + country_index) % self.missing_every == 0:
            return Cell(None, 0, 0)
        cents = (ad_index * 7919 + day_index * 104_729 + country_index * 1_299_709) % 50_000 + 1
        return Cell(cents, cents * 3 + day_index, cents % 97)


_Row = tuple[str, dt.date, str, Cell]


@dataclass
class _Scripted:
    code: int | None
    http_status: int | None
    hang_seconds: float
    message: str | None
    times: int | None
    path: str | None
    above_days: int | None

    def matches(self, path: str, window_days: int | None) -> bool:
        if self.path is not None and self.path not in path:
            return False
        if self.above_days is not None:
            return window_days is not None and window_days > self.above_days
        return True


@dataclass
class _State:
    requests: list[ReceivedRequest] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    script: list[_Scripted] = field(default_factory=list)


@dataclass
class _Advertiser:
    advertiser_id: str
    name: str
    currency: str
    timezone: str
    display_timezone: str | None


def _json_array(query: Mapping[str, str], name: str, required: bool = True) -> list[Any] | None:
    if name not in query:
        _require(not required, f"{name} is required")
        return None
    raw = query[name]
    try:
        value = json.loads(raw)
    except ValueError:
        raise ContractViolation(f"{name} must be a JSON array string, got {raw!r}") from None
    _require(isinstance(value, list), f"{name} must be a JSON array, got {raw!r}")
    assert isinstance(value, list)
    return value


def _int_param(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    _require(raw.isdigit() and int(raw) >= 1, f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


def _date_param(query: Mapping[str, str], name: str) -> dt.date:
    raw = query.get(name)
    _require(raw is not None, f"{name} is required")
    assert raw is not None
    _require(_DATE.fullmatch(raw) is not None, f"{name} must be YYYY-MM-DD, got {raw!r}")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ContractViolation(f"{name} is not a date: {raw!r}") from None


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class FakeTikTokMarketing:
    """The fake Marketing API server. Thread-safe; `start()`, then `close()`."""

    def __init__(self, *, app_id: str = "7000000000000000001", secret: str = "app-secret") -> None:
        self.app_id = app_id
        self.secret = secret
        self._lock = threading.Condition()
        self._release = threading.Event()
        self._state = _State()
        self.max_qps: int | None = None
        self.advertiser_ids_as_numbers = False
        self._reset_data()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, the second waits for the
            # client's delayed ACK (40 ms a request on Linux).
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def do_PUT(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-tiktok-marketing",
            daemon=True,
        )

    def _reset_data(self) -> None:
        self._advertisers: dict[str, _Advertiser] = {}
        self._grants: dict[str, set[str]] = {}
        self._ads: dict[str, FakeAd] = {}
        self._ad_order: dict[str, list[str]] = {}
        self._cells: dict[str, dict[tuple[dt.date, str], Cell]] = {}
        self._blocks: list[_Block] = []
        self._block_of: dict[str, tuple[int, int]] = {}
        self._auth_codes: dict[str, tuple[str, list[str]]] = {}
        self._files: dict[str, _UploadedFile] = {}
        self._audiences: dict[str, FakeAudience] = {}
        # The rows of the last window asked for, compact (ad, day, country, cell): a test pages
        # through one window at a time, and 300,000 rows as dicts would be half a gigabyte.
        self._report_cache: dict[tuple[Any, ...], list[_Row]] = {}
        self._recent: list[float] = []

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeTikTokMarketing:
        self._thread.start()
        return self

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        """Forget requests, script, accounts, ads and audiences; end any hang in progress."""
        with self._lock:
            self._state = _State()
            self._release.set()
            self._release = threading.Event()
            self.max_qps = None
            self.advertiser_ids_as_numbers = False
            self._reset_data()

    # --- accounts -------------------------------------------------------------------------

    def add_advertiser(
        self,
        advertiser_id: str,
        *,
        token: str = "token-1",
        currency: str = "USD",
        timezone: str = "Etc/GMT+8",
        display_timezone: str | None = "America/Los_Angeles",
        name: str = "Demo advertiser",
    ) -> None:
        """An advertiser account, granted to `token` (the token becomes valid)."""
        with self._lock:
            self._advertisers[advertiser_id] = _Advertiser(
                advertiser_id, name, currency, timezone, display_timezone
            )
            self._grants.setdefault(token, set()).add(advertiser_id)
            self._ad_order.setdefault(advertiser_id, [])

    def grant(self, token: str, *advertiser_ids: str) -> None:
        with self._lock:
            self._grants.setdefault(token, set()).update(advertiser_ids)

    def token_valid(self, token: str) -> bool:
        with self._lock:
            return token in self._grants

    def issue_auth_code(self, advertiser_ids: list[str], token: str = "oauth-token-1") -> str:
        """An `auth_code` TikTok's consent page would hand the redirect; single use."""
        code = "auth-" + uuid.uuid4().hex
        with self._lock:
            self._auth_codes[code] = (token, list(advertiser_ids))
        return code

    # --- report data ----------------------------------------------------------------------

    def add_ad(
        self,
        advertiser_id: str,
        ad_id: str,
        *,
        campaign_id: str = "1800000000000001",
        campaign_name: str = "Campaign 1",
        adgroup_id: str = "1700000000000001",
        adgroup_name: str = "Ad group 1",
        ad_name: str | None = None,
        deleted: bool = False,
    ) -> FakeAd:
        ad = FakeAd(
            advertiser_id,
            ad_id,
            ad_name or f"Ad {ad_id}",
            adgroup_id,
            adgroup_name,
            campaign_id,
            campaign_name,
            deleted,
        )
        with self._lock:
            self._ads[ad_id] = ad
            self._ad_order.setdefault(advertiser_id, []).append(ad_id)
            self._report_cache.clear()
        return ad

    def set_stats(
        self,
        ad_id: str,
        day: dt.date,
        spend: str | None,
        *,
        country: str = "US",
        impressions: int = 0,
        clicks: int = 0,
    ) -> None:
        """One cell; `spend` as TikTok shows it ("12.34"), None for `"-"`."""
        cents = None if spend is None else int(Decimal(spend) * 100)
        with self._lock:
            self._cells.setdefault(ad_id, {})[(day, country)] = Cell(cents, impressions, clicks)
            self._report_cache.clear()

    def seed(
        self,
        advertiser_id: str,
        *,
        ads: int,
        start: dt.date,
        days: int,
        campaigns: int = 10,
        countries: tuple[str, ...] = ("US",),
        deleted_every: int = 0,
        missing_every: int = 13,
        id_base: int = 1_900_000_000_000_000,
    ) -> list[FakeAd]:
        """`ads` ads over `campaigns` campaigns with computed spend on every day from `start`.

        Every `missing_every`-th cell shows `"-"`, every `deleted_every`-th ad is deleted.
        """
        block_ads = []
        for i in range(ads):
            campaign = i % campaigns
            group = i % (campaigns * 3)
            block_ads.append(
                FakeAd(
                    advertiser_id,
                    str(id_base + i),
                    f"Ad {i}",
                    str(id_base + 100_000_000 + group),
                    f"Ad group {group}",
                    str(id_base + 200_000_000 + campaign),
                    f"Campaign {campaign}",
                    bool(deleted_every) and i % deleted_every == deleted_every - 1,
                )
            )
        block = _Block(block_ads, start, days, countries, missing_every)
        with self._lock:
            index = len(self._blocks)
            self._blocks.append(block)
            order = self._ad_order.setdefault(advertiser_id, [])
            for i, ad in enumerate(block_ads):
                self._ads[ad.ad_id] = ad
                self._block_of[ad.ad_id] = (index, i)
                order.append(ad.ad_id)
            self._report_cache.clear()
        return block_ads

    def _ad_cells(
        self, ad_id: str, start: dt.date, end: dt.date
    ) -> Iterator[tuple[dt.date, str, Cell]]:
        """The ad's cells in [start, end], by day then country (explicit cells win)."""
        block_at = self._block_of.get(ad_id)
        explicit = self._cells.get(ad_id, {})
        day = start
        while day <= end:
            found: dict[str, Cell] = {}
            if block_at is not None:
                block = self._blocks[block_at[0]]
                day_index = (day - block.start).days
                for ci, country in enumerate(block.countries):
                    cell = block.cell(block_at[1], day_index, ci)
                    if cell is not None:
                        found[country] = cell
            for (cell_day, country), cell in explicit.items():
                if cell_day == day:
                    found[country] = cell
            for country in sorted(found):
                yield day, country, found[country]
            day += dt.timedelta(days=1)

    def _all_days(self, advertiser_id: str) -> tuple[dt.date, dt.date] | None:
        days = [
            d
            for ad_id, cells in self._cells.items()
            if self._ads[ad_id].advertiser_id == advertiser_id
            for (d, _country) in cells
        ]
        for block in self._blocks:
            if block.ads and block.ads[0].advertiser_id == advertiser_id:
                days += [block.start, block.start + dt.timedelta(days=block.days - 1)]
        return (min(days), max(days)) if days else None

    def spend_by_campaign_day(
        self, advertiser_id: str, *, deleted: bool = True
    ) -> dict[tuple[str, dt.date], Decimal]:
        """Spend per (campaign_id, day) over every day with data: what a pull must store."""
        out: dict[tuple[str, dt.date], Decimal] = {}
        with self._lock:
            span = self._all_days(advertiser_id)
            if span is None:
                return out
            cents: dict[tuple[str, dt.date], int] = {}
            for ad_id in self._ad_order.get(advertiser_id, []):
                ad = self._ads[ad_id]
                if ad.deleted and not deleted:
                    continue
                for day, _country, cell in self._ad_cells(ad_id, *span):
                    key = (ad.campaign_id, day)
                    cents[key] = cents.get(key, 0) + (cell.spend_cents or 0)
        for key, value in cents.items():
            out[key] = Decimal(value) / 100
        return out

    # --- audiences ------------------------------------------------------------------------

    def audience(self, custom_audience_id: str) -> FakeAudience:
        with self._lock:
            found = self._audiences[custom_audience_id]
            return FakeAudience(
                found.custom_audience_id,
                found.advertiser_id,
                found.name,
                found.calculate_type,
                set(found.members),
                list(found.actions),
            )

    @property
    def audiences(self) -> list[FakeAudience]:
        with self._lock:
            ids = list(self._audiences)
        return [self.audience(i) for i in ids]

    # --- scripting ------------------------------------------------------------------------

    def script(
        self,
        *,
        code: int | None = None,
        http_status: int | None = None,
        hang_seconds: float = 0.0,
        message: str | None = None,
        times: int | None = 1,
        path: str | None = None,
        above_days: int | None = None,
    ) -> None:
        """Answer the next `times` matching valid requests this way (None: until cleared).

        `path`: only requests whose path contains it; `above_days`: only report requests whose
        window is longer than that many days (TikTok's 40067 "query too large")."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for until cleared")
        with self._lock:
            self._state.script.append(
                _Scripted(code, http_status, hang_seconds, message, times, path, above_days)
            )

    def clear_script(self) -> None:
        with self._lock:
            self._state.script.clear()

    # --- what arrived ---------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._state.requests)

    @property
    def violations(self) -> list[Violation]:
        with self._lock:
            return list(self._state.violations)

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._state.seen)

    def report_requests(self) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.endpoint == "report/integrated/get"]

    # --- serving --------------------------------------------------------------------------

    def _next_script(self, path: str, window_days: int | None) -> _Scripted | None:
        with self._lock:
            for index, entry in enumerate(self._state.script):
                if not entry.matches(path, window_days):
                    continue
                if entry.times is not None:
                    entry.times -= 1
                    if entry.times == 0:
                        self._state.script.pop(index)
                return entry
            return None

    def _over_qps(self) -> bool:
        with self._lock:
            if self.max_qps is None:
                return False
            now = time.monotonic()
            self._recent = [t for t in self._recent if now - t < 1.0]
            if len(self._recent) >= self.max_qps:
                return True
            self._recent.append(now)
            return False

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        length = int(headers.get("content-length", "0") or "0")
        raw = handler.rfile.read(length) if length > 0 else b""
        split = urlsplit(handler.path)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        request_id = uuid.uuid4().hex
        method = handler.command
        with self._lock:
            state = self._state
            release = self._release
        code = PARAMETER_ERROR
        try:
            endpoint = path.removeprefix(API_PREFIX).strip("/")
            _require(
                path.startswith(API_PREFIX) and path.endswith("/"),
                f"path must be {API_PREFIX}<endpoint>/ , got {path}",
            )
            needs_token = not endpoint.startswith("oauth2/")
            if needs_token:
                if headers.get("access-token", "").strip() == "":
                    code = TOKEN_MISSING
                    raise ContractViolation("Access-Token header is missing")
                _require(
                    "authorization" not in headers,
                    "the token goes in Access-Token, not Authorization",
                )
            body, window_days = self._check(method, endpoint, query, headers, raw)
        except ContractViolation as violation:
            reason = str(violation)
            with self._lock:
                state.violations.append(Violation(reason, method, path, headers, raw))
                state.seen.append(Seen(method, path, headers, reason))
                self._lock.notify_all()
            answer = {"code": code, "message": reason, "request_id": request_id, "data": {}}
            self._write(handler, 200, json.dumps(answer).encode(), "application/json")
            return

        with self._lock:
            state.seen.append(Seen(method, path, headers, None))
        scripted = self._next_script(path, window_days)
        if scripted is not None and scripted.hang_seconds > 0:
            release.wait(scripted.hang_seconds)
            with self._lock:
                if self._state is not state:
                    # Released by reset(): the test that scripted the hang is over, and the
                    # next one must not see this request touch its accounts or rate limit.
                    handler.close_connection = True
                    return
        status = 200
        answer: dict[str, Any] | None
        if scripted is not None and (scripted.code is not None or scripted.http_status):
            status = scripted.http_status or 200
            if scripted.code is not None:
                answer = {
                    "code": scripted.code,
                    "message": scripted.message or f"scripted code {scripted.code}",
                    "request_id": request_id,
                    "data": {},
                }
            else:
                answer = None
        elif self._over_qps():
            answer = {
                "code": RATE_LIMITED,
                "message": "Too many requests",
                "request_id": request_id,
                "data": {},
            }
        else:
            with self._lock:
                answer = self._answer(endpoint, query, headers, body, request_id)
        record_body = (
            body
            if endpoint != "dmp/custom_audience/file/upload"
            else {k: v for k, v in (body or {}).items() if k != "file"}
        )
        with self._lock:
            state.requests.append(
                ReceivedRequest(method, path, query, headers, record_body, status, answer)
            )
            self._lock.notify_all()
        if answer is None:
            self._write(handler, status, b"<html>504 Gateway Time-out</html>", "text/html")
        else:
            self._write(handler, status, json.dumps(answer).encode(), "application/json")

    # --- checks ---------------------------------------------------------------------------

    def _check(
        self,
        method: str,
        endpoint: str,
        query: dict[str, str],
        headers: dict[str, str],
        raw: bytes,
    ) -> tuple[dict[str, Any] | None, int | None]:
        """The parsed body (None for GET) and the report window in days, or ContractViolation."""
        gets = {"advertiser/info", "report/integrated/get"}
        posts = {
            "oauth2/access_token",
            "oauth2/revoke_token",
            "dmp/custom_audience/file/upload",
            "dmp/custom_audience/create",
            "dmp/custom_audience/update",
        }
        _require(endpoint in gets | posts, f"unknown endpoint {endpoint!r}")
        if endpoint in gets:
            _require(method == "GET", f"{endpoint} takes GET, got {method}")
            if endpoint == "advertiser/info":
                ids = _json_array(query, "advertiser_ids")
                assert ids is not None
                _require(0 < len(ids) <= 100, "advertiser_ids holds 1 to 100 IDs")
                _require(all(isinstance(i, str) for i in ids), "advertiser_ids must be strings")
                _json_array(query, "fields", required=False)
                return None, None
            return None, self._check_report(query)
        _require(method == "POST", f"{endpoint} takes POST, got {method}")
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if endpoint == "dmp/custom_audience/file/upload":
            _require(
                media_type == "multipart/form-data",
                f"file upload must be multipart/form-data, got {media_type!r}",
            )
            return self._check_upload(headers["content-type"], raw), None
        _require(
            media_type == "application/json",
            f"Content-Type must be application/json, got {media_type!r}",
        )
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ContractViolation("body is not JSON") from None
        _require(isinstance(body, dict), "body must be a JSON object")
        if endpoint.startswith("oauth2/"):
            needed = (
                "app_id",
                "secret",
                "auth_code" if "access_token" in endpoint else "access_token",
            )
            for name in needed:
                _require(
                    isinstance(body.get(name), str) and body[name] != "",
                    f"{name} must be a non-empty string",
                )
        elif endpoint == "dmp/custom_audience/create":
            self._check_create(body)
        else:
            self._check_update(body)
        return body, None

    def _check_report(self, query: dict[str, str]) -> int:
        _require(query.get("report_type") == "BASIC", "report_type must be BASIC")
        _require(query.get("data_level") == "AUCTION_AD", "data_level must be AUCTION_AD")
        _require(query.get("service_type", "AUCTION") == "AUCTION", "service_type must be AUCTION")
        advertiser_id = query.get("advertiser_id", "")
        _require(advertiser_id.isdigit(), "advertiser_id must be one advertiser ID")
        dimensions = _json_array(query, "dimensions")
        assert dimensions is not None
        _require(
            tuple(dimensions) in ALLOWED_DIMENSIONS,
            f"dimensions must be one of {ALLOWED_DIMENSIONS}, got {dimensions}",
        )
        metrics = _json_array(query, "metrics")
        assert metrics is not None
        unknown = [m for m in metrics if m not in KNOWN_METRICS]
        _require(metrics != [] and not unknown, f"unknown metrics {unknown}")
        filtering = _json_array(query, "filtering", required=False)
        for item in filtering or []:
            _require(isinstance(item, dict), "filtering items must be objects")
            _require(
                {"field_name", "filter_type", "filter_value"} <= set(item),
                "a filter needs field_name, filter_type, filter_value",
            )
            _require(
                isinstance(item["filter_value"], str), "filter_value must be a JSON array string"
            )
            try:
                values = json.loads(item["filter_value"])
            except ValueError:
                raise ContractViolation("filter_value must be a JSON array string") from None
            _require(isinstance(values, list), "filter_value must be a JSON array string")
        start = _date_param(query, "start_date")
        end = _date_param(query, "end_date")
        _require(start <= end, "start_date is after end_date")
        days = (end - start).days + 1
        _require(
            days <= MAX_WINDOW_DAYS,
            f"the time range of a daily report is at most {MAX_WINDOW_DAYS} days, got {days}",
        )
        page_size = _int_param(query, "page_size", DEFAULT_PAGE_SIZE)
        _require(page_size <= MAX_PAGE_SIZE, f"page_size is at most {MAX_PAGE_SIZE}")
        _int_param(query, "page", 1)
        return days

    def _check_upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        message = BytesParser(policy=default_policy).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
        )
        _require(message.is_multipart(), "multipart body could not be read")
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if not isinstance(name, str) or not isinstance(payload, bytes):
                continue
            if name == "file":
                filename = part.get_filename() or ""
                _require(
                    filename.lower().endswith((".csv", ".txt")),
                    f"file must be a .csv or .txt, got {filename!r}",
                )
                fields["file"] = payload
            else:
                fields[name] = payload.decode()
        for name in ("advertiser_id", "calculate_type", "file", "file_signature"):
            _require(name in fields, f"{name} is required")
        _require(
            fields["calculate_type"] in CALCULATE_TYPES,
            f"calculate_type {fields['calculate_type']!r} is not one of {CALCULATE_TYPES}",
        )
        data: bytes = fields["file"]
        signature = hashlib.md5(data).hexdigest()
        _require(
            fields["file_signature"].lower() == signature,
            f"file_signature {fields['file_signature']!r} is not the file's MD5 {signature}",
        )
        pattern = _MD5_HEX if fields["calculate_type"].endswith("_MD5") else _SHA256_HEX
        lines = [line.strip() for line in data.decode().splitlines() if line.strip()]
        _require(lines != [], "the file is empty")
        for number, line in enumerate(lines, 1):
            _require(
                pattern.fullmatch(line) is not None,
                f"line {number} is not lower-case {fields['calculate_type']} hex: {line!r}",
            )
        fields["hashes"] = lines
        return fields

    def _files_of(self, body: dict[str, Any], advertiser_id: str) -> list[_UploadedFile]:
        paths = body.get("file_paths")
        _require(isinstance(paths, list) and paths != [], "file_paths must be a non-empty list")
        assert isinstance(paths, list)
        files = []
        with self._lock:
            for path in paths:
                found = self._files.get(path) if isinstance(path, str) else None
                _require(found is not None, f"unknown file_path {path!r}")
                assert found is not None
                _require(
                    found.advertiser_id == advertiser_id,
                    f"file_path {path!r} was uploaded for another advertiser",
                )
                files.append(found)
        return files

    def _check_create(self, body: dict[str, Any]) -> None:
        advertiser_id = body.get("advertiser_id")
        _require(
            isinstance(advertiser_id, str) and advertiser_id != "", "advertiser_id must be a string"
        )
        assert isinstance(advertiser_id, str)
        name = body.get("custom_audience_name")
        _require(
            isinstance(name, str) and 0 < len(name) <= 128,
            "custom_audience_name must be 1 to 128 characters",
        )
        calculate_type = body.get("calculate_type")
        _require(calculate_type in CALCULATE_TYPES, f"calculate_type {calculate_type!r} unknown")
        files = self._files_of(body, advertiser_id)
        for f in files:
            _require(
                f.calculate_type == calculate_type,
                f"a file of {f.calculate_type} in an audience of {calculate_type}",
            )
        members = set().union(*(f.hashes for f in files))
        _require(
            len(members) >= MIN_AUDIENCE,
            f"an audience needs at least {MIN_AUDIENCE} users, this one has {len(members)}",
        )

    def _check_update(self, body: dict[str, Any]) -> None:
        advertiser_id = body.get("advertiser_id")
        _require(isinstance(advertiser_id, str), "advertiser_id must be a string")
        assert isinstance(advertiser_id, str)
        audience_id = body.get("custom_audience_id")
        with self._lock:
            audience = self._audiences.get(audience_id) if isinstance(audience_id, str) else None
        _require(audience is not None, f"unknown custom_audience_id {audience_id!r}")
        assert audience is not None
        _require(audience.advertiser_id == advertiser_id, "the audience is another advertiser's")
        # TikTok's default is REPLACE, which wipes the audience: the contract sends it always.
        _require("action" in body, "action is required (TikTok's default REPLACE wipes)")
        action = body["action"]
        _require(action in AUDIENCE_ACTIONS, f"action must be one of {AUDIENCE_ACTIONS}")
        files = self._files_of(body, advertiser_id)
        for f in files:
            _require(
                f.calculate_type == audience.calculate_type,
                f"a file of {f.calculate_type} for an audience of {audience.calculate_type}",
            )
        after = self._apply(audience.members, action, files)
        _require(
            len(after) >= MIN_AUDIENCE,
            f"the update leaves {len(after)} users; an audience needs {MIN_AUDIENCE}",
        )

    @staticmethod
    def _apply(members: set[str], action: str, files: list[_UploadedFile]) -> set[str]:
        change = set().union(*(f.hashes for f in files))
        if action == "APPEND":
            return members | change
        if action == "REMOVE":
            return members - change
        return change

    # --- answers (called with the lock held) ----------------------------------------------

    def _answer(
        self,
        endpoint: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: dict[str, Any] | None,
        request_id: str,
    ) -> dict[str, Any]:
        def ok(data: dict[str, Any]) -> dict[str, Any]:
            return {"code": 0, "message": "OK", "request_id": request_id, "data": data}

        def refuse(code: int, message: str) -> dict[str, Any]:
            return {"code": code, "message": message, "request_id": request_id, "data": {}}

        if endpoint == "oauth2/access_token":
            assert body is not None
            if body["app_id"] != self.app_id or body["secret"] != self.secret:
                return refuse(NO_PERMISSION, "app_id or secret is wrong")
            grant = self._auth_codes.pop(body["auth_code"], None)
            if grant is None:
                return refuse(40002, "auth_code is invalid or already used")
            token, advertisers = grant
            self._grants.setdefault(token, set()).update(advertisers)
            ids: list[Any] = (
                [int(a) for a in advertisers] if self.advertiser_ids_as_numbers else advertisers
            )
            return ok({"access_token": token, "advertiser_ids": ids, "scope": [4, 5, 8]})
        if endpoint == "oauth2/revoke_token":
            assert body is not None
            if body["app_id"] != self.app_id or body["secret"] != self.secret:
                return refuse(NO_PERMISSION, "app_id or secret is wrong")
            self._grants.pop(body["access_token"], None)
            return ok({})

        token = headers["access-token"].strip()
        granted = self._grants.get(token)
        if granted is None:
            return refuse(TOKEN_INVALID, "Access token is invalid or has been revoked")

        if endpoint == "advertiser/info":
            wanted = json.loads(query["advertiser_ids"])
            if not set(wanted) <= granted:
                return refuse(NO_PERMISSION, "No permission to operate advertiser")
            return ok(
                {"list": [self._advertiser_info(a) for a in wanted if a in self._advertisers]}
            )
        if endpoint == "report/integrated/get":
            if query["advertiser_id"] not in granted:
                return refuse(NO_PERMISSION, "No permission to operate advertiser")
            return ok(self._report(query))

        assert body is not None
        advertiser_id = str(body.get("advertiser_id"))
        if advertiser_id not in granted:
            return refuse(NO_PERMISSION, "No permission to operate advertiser")
        if endpoint == "dmp/custom_audience/file/upload":
            file_path = "custom_audience/" + uuid.uuid4().hex + ".csv"
            self._files[file_path] = _UploadedFile(
                advertiser_id, body["calculate_type"], set(body["hashes"])
            )
            return ok({"file_path": file_path, "size": len(body["file"])})
        files = [self._files[p] for p in body["file_paths"]]
        if endpoint == "dmp/custom_audience/create":
            audience_id = str(100_000_000 + len(self._audiences) + 1)
            self._audiences[audience_id] = FakeAudience(
                audience_id,
                advertiser_id,
                body["custom_audience_name"],
                body["calculate_type"],
                set().union(*(f.hashes for f in files)),
                ["CREATE"],
            )
            return ok({"custom_audience_id": audience_id})
        audience = self._audiences[body["custom_audience_id"]]
        audience.members = self._apply(audience.members, body["action"], files)
        audience.actions.append(body["action"])
        return ok({})

    def _advertiser_info(self, advertiser_id: str) -> dict[str, Any]:
        a = self._advertisers[advertiser_id]
        info: dict[str, Any] = {
            "advertiser_id": a.advertiser_id,
            "name": a.name,
            "currency": a.currency,
            "timezone": a.timezone,
            "status": "STATUS_ENABLE",
        }
        if a.display_timezone is not None:
            info["display_timezone"] = a.display_timezone
        return info

    def _report(self, query: dict[str, str]) -> dict[str, Any]:
        advertiser_id = query["advertiser_id"]
        dimensions = tuple(json.loads(query["dimensions"]))
        metrics = tuple(json.loads(query["metrics"]))
        status_all = any(
            f["field_name"] == "ad_status"
            and f["filter_type"] == "IN"
            and "STATUS_ALL" in json.loads(f["filter_value"])
            for f in json.loads(query.get("filtering", "[]"))
        )
        start = dt.date.fromisoformat(query["start_date"])
        end = dt.date.fromisoformat(query["end_date"])
        key = (advertiser_id, dimensions, status_all, start, end)
        rows = self._report_cache.get(key)
        if rows is None:
            rows = self._report_rows(advertiser_id, dimensions, status_all, start, end)
            self._report_cache.clear()
            self._report_cache[key] = rows
        page = int(query.get("page", "1"))
        page_size = int(query.get("page_size", str(DEFAULT_PAGE_SIZE)))
        total = len(rows)
        currency = self._advertisers[advertiser_id].currency
        by_country = "country_code" in dimensions
        return {
            "list": [
                self._row_json(row, metrics, currency, by_country)
                for row in rows[(page - 1) * page_size : page * page_size]
            ],
            "page_info": {
                "page": page,
                "page_size": page_size,
                "total_number": total,
                "total_page": math.ceil(total / page_size),
            },
        }

    def _row_json(
        self, row: _Row, metrics: tuple[str, ...], currency: str, by_country: bool
    ) -> dict[str, Any]:
        ad_id, day, country, cell = row
        ad = self._ads[ad_id]
        dims = {"ad_id": ad_id, "stat_time_day": f"{day.isoformat()} 00:00:00"}
        if by_country:
            dims["country_code"] = country
        values = {
            "campaign_id": ad.campaign_id,
            "campaign_name": ad.campaign_name,
            "adgroup_id": ad.adgroup_id,
            "adgroup_name": ad.adgroup_name,
            "ad_name": ad.ad_name,
            "currency": currency,
            "spend": "-" if cell.spend_cents is None else _money(cell.spend_cents),
            "impressions": "-" if cell.spend_cents is None else str(cell.impressions),
            "clicks": "-" if cell.spend_cents is None else str(cell.clicks),
        }
        return {"dimensions": dims, "metrics": {m: values[m] for m in metrics}}

    def _report_rows(
        self,
        advertiser_id: str,
        dimensions: tuple[str, ...],
        status_all: bool,
        start: dt.date,
        end: dt.date,
    ) -> list[_Row]:
        by_country = "country_code" in dimensions
        rows: list[_Row] = []
        for ad_id in sorted(self._ad_order.get(advertiser_id, [])):
            ad = self._ads[ad_id]
            if ad.deleted and not status_all:
                continue
            merged: dict[tuple[dt.date, str], Cell] = {}
            for day, country, cell in self._ad_cells(ad_id, start, end):
                slot = (day, country if by_country else "")
                before = merged.get(slot)
                if before is None:
                    merged[slot] = cell
                else:
                    spend = (
                        None
                        if before.spend_cents is None and cell.spend_cents is None
                        else (before.spend_cents or 0) + (cell.spend_cents or 0)
                    )
                    merged[slot] = Cell(
                        spend, before.impressions + cell.impressions, before.clicks + cell.clicks
                    )
            rows.extend((ad_id, day, country, cell) for (day, country), cell in merged.items())
        return rows

    @staticmethod
    def _write(
        handler: BaseHTTPRequestHandler, status: int, payload: bytes, content_type: str
    ) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            return


@pytest.fixture(scope="module", name="fake_marketing_server")
def fake_marketing_server_fixture() -> Iterator[FakeTikTokMarketing]:
    fake = FakeTikTokMarketing().start()
    yield fake
    fake.close()


@pytest.fixture(name="fake_marketing")
def fake_marketing_fixture(fake_marketing_server: FakeTikTokMarketing) -> FakeTikTokMarketing:
    fake_marketing_server.reset()
    return fake_marketing_server
