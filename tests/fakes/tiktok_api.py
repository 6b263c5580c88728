"""A fake TikTok Events API: a real HTTP server on 127.0.0.1 that holds callers to the contract.

Every request is checked against `spec/postbacks.md` section 1 (method, path, headers, body
shape, `event_time` in whole Unix seconds, hashed identifiers, ...). A request that breaks it is
kept in `violations` with the reason and answered the way TikTok answers a parameter error
(HTTP 200, code 40002), so code under test sees a realistic refusal and the test can assert on
exactly what was wrong. A valid request is kept in `requests` and answered with code 0, unless
the test scripted something else:

    fake.script(code=40100, times=3)        # the next three valid requests: rate limited
    fake.script(http_status=503, times=None)  # an outage until fake.clear_script()
    fake.script(hang_seconds=5, times=1)     # answer the next one only after 5 s

Scripted answers are used in the order they were scripted; `times=None` repeats for ever, so
anything scripted after it waits for `clear_script()`. `http_status` without `code` answers a
plain-text body, as a load balancer in front of a down service would; with `code` the answer is
TikTok JSON. A hang ends early when the fake is reset or closed, so no test waits on it.

`events()` lists the events TikTok would have taken: those of valid requests answered with a
2xx status and code 0 or 20001. Requests refused by a script stay in `requests` (with the answer
they got) but add nothing to `events()`, so "an outage, then recovery" reads as the events that
finally arrived. Retries after a hang may deliver an event twice; TikTok drops repeats of the
same `event` + `event_id`, and tests may assert on that id.

Fixtures (import `fake_tiktok_fixture` and `fake_tiktok_server_fixture`, or load this module as a
plugin): `fake_tiktok_server` is one server per test module (starting threads per test buys
nothing); `fake_tiktok` hands it to a test after `reset()`, so every test starts with no
requests, no violations and no script.
"""

from __future__ import annotations

import json
import math
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app.postbacks.tiktok import MAX_EVENTS_PER_REQUEST, TRACK_PATH

PARAMETER_ERROR = 40002
HASHED_USER_FIELDS = ("email", "phone", "external_id")
# Event properties: the content list (at most 50 items) and the plain text ones.
MAX_CONTENTS = 50
TEXT_PROPERTIES = ("query", "description", "order_id", "content_type")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_CURRENCY = re.compile(r"[A-Z]{3}")
# Unix seconds from 2001-09-09 to 2286-11-20. Milliseconds of any recent date are ~1.7e12, far
# above; a small number is a duration or a bug, not a time.
_SECONDS_RANGE = (1_000_000_000, 10_000_000_000)


@dataclass(frozen=True)
class ReceivedRequest:
    """A valid request as the fake saw it, and the answer it got."""

    headers: dict[str, str]
    body: dict[str, Any]
    http_status: int
    answer: dict[str, Any] | None
    accepted: bool


@dataclass(frozen=True)
class Violation:
    """A request that broke the contract: why, and what was sent."""

    reason: str
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes


@dataclass
class _Scripted:
    code: int | None
    http_status: int | None
    hang_seconds: float
    message: str | None
    times: int | None


@dataclass
class _State:
    requests: list[ReceivedRequest] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    script: list[_Scripted] = field(default_factory=list)


class ContractViolation(Exception):
    """Raised inside the fake when a request breaks the Events API contract."""


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise ContractViolation(reason)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_user(user: object, where: str) -> None:
    if not isinstance(user, dict):
        raise ContractViolation(f"{where}.user must be an object")
    for key, value in user.items():
        _require(
            isinstance(value, str) and value != "",
            f"{where}.user.{key} must be a non-empty string, got {value!r}",
        )
        if key in HASHED_USER_FIELDS:
            _require(
                _SHA256_HEX.fullmatch(value) is not None,
                f"{where}.user.{key} must be SHA-256 as 64 lowercase hex, got {value!r}",
            )


def _check_event(event: object, index: int) -> None:
    where = f"data[{index}]"
    if not isinstance(event, dict):
        raise ContractViolation(f"{where} must be an object")
    name = event.get("event")
    _require(isinstance(name, str) and name != "", f"{where}.event must be a non-empty string")
    event_time = event.get("event_time")
    if not isinstance(event_time, int) or isinstance(event_time, bool):
        raise ContractViolation(
            f"{where}.event_time must be an integer of Unix seconds, got {event_time!r}"
        )
    low, high = _SECONDS_RANGE
    _require(
        event_time < high,
        f"{where}.event_time {event_time} is milliseconds, not Unix seconds",
    )
    _require(event_time >= low, f"{where}.event_time {event_time} is not a Unix time in seconds")
    event_id = event.get("event_id")
    _require(
        isinstance(event_id, str) and event_id != "",
        f"{where}.event_id must be a non-empty string",
    )
    _require("user" in event, f"{where}.user is missing")
    _check_user(event["user"], where)
    if "limited_data_use" in event:
        _require(
            isinstance(event["limited_data_use"], bool),
            f"{where}.limited_data_use must be a boolean",
        )
    if "page" in event:
        page = event["page"]
        _require(isinstance(page, dict), f"{where}.page must be an object")
        for key in ("url", "referrer"):
            if key in page:
                _require(isinstance(page[key], str), f"{where}.page.{key} must be a string")
    if "properties" in event:
        properties = event["properties"]
        _require(isinstance(properties, dict), f"{where}.properties must be an object")
        if "value" in properties:
            _require(
                _is_number(properties["value"]),
                f"{where}.properties.value must be a JSON number, got {properties['value']!r}",
            )
            _require(
                "currency" in properties, f"{where}.properties.value needs properties.currency"
            )
        if "currency" in properties:
            currency = properties["currency"]
            _require(
                isinstance(currency, str) and _CURRENCY.fullmatch(currency) is not None,
                f"{where}.properties.currency must be 3 uppercase letters, got {currency!r}",
            )
        _check_contents(properties, where)
        for key in TEXT_PROPERTIES:
            if key in properties:
                _require(
                    isinstance(properties[key], str) and properties[key] != "",
                    f"{where}.properties.{key} must be a non-empty string",
                )


def _check_contents(properties: dict[str, Any], where: str) -> None:
    if "contents" not in properties:
        return
    contents = properties["contents"]
    _require(
        isinstance(contents, list) and 0 < len(contents) <= MAX_CONTENTS,
        f"{where}.properties.contents must be a list of 1 to {MAX_CONTENTS} objects",
    )
    for i, item in enumerate(contents):
        at = f"{where}.properties.contents[{i}]"
        _require(isinstance(item, dict) and item != {}, f"{at} must be a non-empty object")
        for key in ("content_id", "content_type"):
            if key in item:
                _require(isinstance(item[key], str) and item[key] != "", f"{at}.{key}: string")
        if "quantity" in item:
            quantity = item["quantity"]
            _require(
                isinstance(quantity, int) and not isinstance(quantity, bool) and quantity >= 0,
                f"{at}.quantity must be a whole number, got {quantity!r}",
            )
        if "price" in item:
            _require(_is_number(item["price"]), f"{at}.price must be a JSON number")


def check_request(method: str, path: str, headers: Mapping[str, str], raw: bytes) -> dict[str, Any]:
    """The parsed body of a request that keeps the contract; ContractViolation otherwise.

    `headers` has lower-case names.
    """
    _require(method == "POST", f"method must be POST, got {method}")
    _require(path == TRACK_PATH, f"path must be {TRACK_PATH}, got {path}")
    _require(headers.get("access-token", "").strip() != "", "Access-Token header is missing")
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    _require(
        media_type == "application/json",
        f"Content-Type must be application/json, got {headers.get('content-type')!r}",
    )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ContractViolation("body is not JSON") from None
    if not isinstance(body, dict):
        raise ContractViolation("body must be a JSON object")
    _require(body.get("event_source") == "web", 'event_source must be "web"')
    source_id = body.get("event_source_id")
    _require(
        isinstance(source_id, str) and source_id != "",
        "event_source_id must be a non-empty string (the Pixel code)",
    )
    if "test_event_code" in body:
        _require(isinstance(body["test_event_code"], str), "test_event_code must be a string")
    if "partner_name" in body:
        _require(isinstance(body["partner_name"], str), "partner_name must be a string")
    data = body.get("data")
    if not isinstance(data, list):
        raise ContractViolation("data must be a list of events")
    _require(len(data) >= 1, "data is empty")
    _require(
        len(data) <= MAX_EVENTS_PER_REQUEST,
        f"data has {len(data)} events; at most {MAX_EVENTS_PER_REQUEST} per request",
    )
    for index, event in enumerate(data):
        _check_event(event, index)
    return body


class FakeTikTok:
    """The fake Events API server. Thread-safe; start with `start()`, stop with `close()`."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._state = _State()
        # Hanging handlers wait on this; reset/close sets it so they finish at once.
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def do_PUT(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                # The default logs every request to stderr, burying real test output.
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A handler stuck in a scripted hang must not hold up shutdown.
        self._server.daemon_threads = True
        # serve_forever checks for shutdown every poll_interval; its 0.5 s default would add half
        # a second to every module's teardown.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-tiktok",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeTikTok:
        self._thread.start()
        return self

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- scripting ------------------------------------------------------------------------

    def script(
        self,
        *,
        code: int | None = None,
        http_status: int | None = None,
        hang_seconds: float = 0.0,
        message: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer the next `times` valid requests this way (`None`: until `clear_script()`)."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for until cleared")
        with self._lock:
            self._state.script.append(_Scripted(code, http_status, hang_seconds, message, times))

    def clear_script(self) -> None:
        with self._lock:
            self._state.script.clear()

    def reset(self) -> None:
        """Forget requests, violations and script; end any hang in progress."""
        with self._lock:
            self._state = _State()
            self._release.set()
            self._release = threading.Event()

    # --- what arrived ---------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._state.requests)

    @property
    def violations(self) -> list[Violation]:
        with self._lock:
            return list(self._state.violations)

    def events(self) -> list[dict[str, Any]]:
        """Events of accepted requests, in the order they arrived."""
        with self._lock:
            return self._accepted_events()

    def wait_for_events(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least `n` events were accepted; AssertionError with what arrived."""
        with self._lock:
            arrived = self._lock.wait_for(lambda: len(self._accepted_events()) >= n, timeout)
            events = self._accepted_events()
            if not arrived:
                raise AssertionError(
                    f"expected {n} TikTok events within {timeout} s, got {len(events)}: "
                    f"events={events!r} violations={self._state.violations!r} "
                    f"refused={[r for r in self._state.requests if not r.accepted]!r}"
                )
            return events

    def _accepted_events(self) -> list[dict[str, Any]]:
        return [
            event
            for request in self._state.requests
            if request.accepted
            for event in request.body["data"]
        ]

    # --- serving --------------------------------------------------------------------------

    def _next_script(self) -> _Scripted | None:
        with self._lock:
            if not self._state.script:
                return None
            entry = self._state.script[0]
            if entry.times is not None:
                entry.times -= 1
                if entry.times == 0:
                    self._state.script.pop(0)
            return entry

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        length = int(headers.get("content-length", "0") or "0")
        raw = handler.rfile.read(length) if length > 0 else b""
        path = handler.path
        request_id = uuid.uuid4().hex
        # Records go to the state current on arrival: a request still hanging when a test
        # ends must not show up in the next test's lists after reset().
        with self._lock:
            state = self._state
            release = self._release
        try:
            body = check_request(handler.command, path, headers, raw)
        except ContractViolation as violation:
            reason = str(violation)
            with self._lock:
                state.violations.append(Violation(reason, handler.command, path, headers, raw))
                self._lock.notify_all()
            answer = {
                "code": PARAMETER_ERROR,
                "message": reason,
                "request_id": request_id,
                "data": {},
            }
            self._write(handler, 200, json.dumps(answer).encode(), "application/json")
            return

        scripted = self._next_script()
        if scripted is not None and scripted.hang_seconds > 0:
            release.wait(scripted.hang_seconds)
        status = 200
        answer_json: dict[str, Any] | None = {
            "code": 0,
            "message": "OK",
            "request_id": request_id,
            "data": {},
        }
        if scripted is not None:
            if scripted.http_status is not None:
                status = scripted.http_status
            if scripted.code is not None:
                answer_json = {
                    "code": scripted.code,
                    "message": scripted.message or f"scripted code {scripted.code}",
                    "request_id": request_id,
                    "data": {},
                }
            elif scripted.http_status is not None and not 200 <= scripted.http_status < 300:
                answer_json = None
        accepted = (
            200 <= status < 300 and answer_json is not None and answer_json["code"] in (0, 20001)
        )
        with self._lock:
            state.requests.append(ReceivedRequest(headers, body, status, answer_json, accepted))
            self._lock.notify_all()
        if answer_json is None:
            self._write(handler, status, b"upstream unavailable", "text/plain")
        else:
            self._write(handler, status, json.dumps(answer_json).encode(), "application/json")

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
            # The client gave up (its timeout fired during a scripted hang): nothing to tell it.
            return


# Fixtures carry explicit names so a test module can import them without its test parameters
# shadowing the imported functions.
@pytest.fixture(scope="module", name="fake_tiktok_server")
def fake_tiktok_server_fixture() -> Iterator[FakeTikTok]:
    fake = FakeTikTok().start()
    yield fake
    fake.close()


@pytest.fixture(name="fake_tiktok")
def fake_tiktok_fixture(fake_tiktok_server: FakeTikTok) -> FakeTikTok:
    fake_tiktok_server.reset()
    return fake_tiktok_server
