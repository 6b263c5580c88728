"""Headers every answer carries, the request counter behind /metrics, the access log.

Pure ASGI (not BaseHTTPMiddleware), so streamed answers are not buffered.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import jsonfast
from app.addresses import truncate_ip
from app.clock import iso
from app.devices import client_ip
from app.postbacks.tiktok import limited_data_use
from app.web.errors import DISCONNECTED

access_log = logging.getLogger("gangway.access")

# Routes whose query strings are a visitor's ad parameters and click ids (a `ttclid` per click,
# the click URL inside a QR code): their query strings are never logged.
TRACKING_PREFIXES = (
    "/lp/",
    "/i/",
    "/c/",
    "/v1.0/c2s/",
    "/qr.svg",
    "/smartscript.js",
    "/banner.js",
    "/static/",
)

# No third-party source anywhere: a hosted page loads everything from us (spec principle 2).
# 'unsafe-inline' styles are not allowed either; pages use our stylesheet only.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class SecurityHeaders:
    """Adds the security headers to every answer that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
                headers.setdefault("Content-Security-Policy", CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestCounter:
    """Counts requests by endpoint and answer status for /metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # A handler that raises before answering is counted as the 500 the server sends.
        status = 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            state = scope.get("state") or {}
            svc = state.get("services")
            endpoint = scope.get("endpoint")
            if svc is not None:
                name = getattr(endpoint, "__name__", None) or "unmatched"
                if state.get(DISCONNECTED):
                    svc.counters.disconnects[name] += 1
                else:
                    svc.counters.requests[(name, status)] += 1


class AccessLog:
    """One JSON line per request on the `gangway.access` logger: time, method, path, status,
    duration, client IP. Tracking routes are logged without their query strings, and the IP of
    a visitor whose data use is limited (Global Privacy Control, a covered US state, or an
    unknown location, as for TikTok's `limited_data_use`) is truncated to its network."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting)
        finally:
            access_log.info(jsonfast.dumps(access_record(scope, status, started)))


_last_second: list[Any] = [None, None]


def _now_iso() -> str | None:
    """The time in whole seconds, formatted once a second (every access line writes it)."""
    second = int(time.time())
    if _last_second[0] != second:
        _last_second[:] = [second, iso(second)]
    text: str | None = _last_second[1]
    return text


def access_record(scope: Scope, status: int, started: float) -> dict[str, Any]:
    state = scope.get("state") or {}
    svc = state.get("services")
    headers = Headers(scope=scope)
    peer = scope["client"][0] if scope.get("client") else None
    ip = peer
    if svc is not None:
        forwarded = ",".join(headers.getlist("x-forwarded-for")) or None
        ip = client_ip(peer, forwarded, svc.trusted_proxies)
    path: str = scope["path"]
    record: dict[str, Any] = {
        "time": _now_iso(),
        "method": scope["method"],
        "path": path,
        "status": 499 if state.get(DISCONNECTED) else status,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }
    query = scope.get("query_string", b"")
    if query and not path.startswith(TRACKING_PREFIXES):
        record["query"] = query.decode("latin-1")
    if ip is not None:
        record["ip"] = truncate_ip(ip) if _limited(svc, headers, ip) else ip
    if state.get(DISCONNECTED):
        record["disconnected"] = True
    return record


def _limited(svc: Any, headers: Headers, ip: str) -> bool:
    """Whether this visitor's data use is limited, erring to yes (spec postbacks.md 4)."""
    if headers.get("sec-gpc", "").strip() == "1" or svc is None:
        return True
    location = svc.locator.locate(headers, ip)
    return limited_data_use(
        ccpa_limit=True,
        country=location.country,
        region=location.region,
        gpc=False,
        covered_states=svc.settings.ldu_states,
    )
