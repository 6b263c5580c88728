"""The public touch collectors: impressions (`/i/`), clicks (`/c/`) and direct click URLs.

Each handler parses the request, asks the pure modules (params, devices, destinations) what it
means, records the touch through the writer and answers. A touch acknowledged is on disk.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from app import destinations, params
from app.configs import DIRECT_PLATFORMS
from app.devices import bot_verdict, client_ip, parse_user_agent
from app.ids import new_id
from app.params import Incoming
from app.services import Services, services
from app.store.sqlite import AppRecord, TouchRecord
from app.touches import Touch, TouchKind
from app.web.errors import ApiError, json_object, read_json
from app.web.links import own_origin

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store"}
# Beacons are small; a page URL with a long query is the largest honest part.
MAX_BEACON = 16 * 1024


def request_ip(request: Request, svc: Services) -> str | None:
    """The one place that decides a request's client IP."""
    peer = request.client.host if request.client else None
    forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
    return client_ip(peer, forwarded, svc.trusted_proxies)


def build_touch(
    request: Request,
    svc: Services,
    *,
    kind: TouchKind,
    app_key: str,
    incoming: Incoming,
    original_url: str | None,
    referrer: str | None,
    pvid: str | None,
    platform: str | None = None,
    touch_id: str | None = None,
) -> tuple[Touch, dict[str, Any]]:
    """A touch from a request: device, verdict, location and params. Also answers the extras
    only storage needs (language, in-app browser)."""
    ua = request.headers.get("user-agent")
    ua, _ = params.clean_text(ua, 1024) if ua else (None, set())
    ip = request_ip(request, svc)
    now = svc.clock()
    device = parse_user_agent(ua)
    burst = bool(ip) and svc.burst.hit(ip or "", now)
    verdict = bot_verdict(ua, method=request.method, burst=burst)
    location = svc.locator.locate(request.headers, ip)
    touch = Touch(
        id=touch_id or new_id(),
        kind=kind,
        app_key=app_key,
        time=now,
        ip=ip,
        user_agent=ua,
        os_family=device.os_family,
        os_version=device.os_version,
        device_model=device.device_model,
        browser=device.browser,
        pid=incoming.pid,
        params=incoming.campaign(),
        ttclid=incoming.ttclid,
        original_url=original_url,
        referrer=referrer,
        pvid=pvid,
        platform=platform,
        verdict=verdict.label,
        verdict_reasons=verdict.reasons,
        country=location.country,
        region=location.region,
        gpc=request.headers.get("sec-gpc", "").strip() == "1",
    )
    language = request.headers.get("accept-language")
    extras = {
        "language": params.clean_text(language, 256)[0] if language else None,
        "in_app": device.in_app,
    }
    return touch, extras


async def _app(svc: Services, app_key: str) -> AppRecord:
    app = await svc.store.get_app(app_key)
    if app is None:
        raise ApiError(404, "not_found", "unknown app")
    return app


def _page_slug(url: str | None, origin: str) -> str | None:
    """The hosted page a URL of ours points at (`/lp/<slug>`), if any."""
    if not url or not url.startswith(origin + "/lp/"):
        return None
    slug = urlsplit(url).path.removeprefix("/lp/")
    return slug or None


def _ours(url: str | None, origin: str) -> str | None:
    return url if url and (url == origin or url.startswith(origin + "/")) else None


# -- impressions -----------------------------------------------------------------------------


def _cors_headers(request: Request, app: AppRecord, svc: Services) -> dict[str, str] | None:
    """CORS headers for an allowed Origin; None when the Origin is not allowed. No Origin at
    all (a pixel, a server) needs none."""
    origin = request.headers.get("origin")
    if origin is None:
        return {}
    if origin == own_origin(request, svc.settings) or origin in app.config.get(
        "allowed_origins", []
    ):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return None


async def impression(request: Request) -> Response:
    svc = services(request)
    app = await _app(svc, request.path_params["app_key"])
    cors = _cors_headers(request, app, svc)
    if request.method == "OPTIONS":
        if cors is None:
            raise ApiError(403, "origin_not_allowed", "this origin may not send impressions")
        return Response(
            status_code=204,
            headers=cors
            | {
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "86400",
            },
        )
    if request.method == "HEAD":
        return Response(PIXEL, media_type="image/gif", headers=NO_STORE)
    if cors is None:
        raise ApiError(403, "origin_not_allowed", "this origin may not send impressions")

    origin = own_origin(request, svc.settings)
    if request.method == "POST":
        body = json_object(await read_json(request, allow_text_plain=True, limit=MAX_BEACON))
        url, url_flags = params.clean_url(body.get("url"))
        referrer, _ = params.clean_url(body.get("referrer"))
        raw_params = body.get("params")
        incoming = (
            params.from_mapping(raw_params)
            if isinstance(raw_params, Mapping)
            else params.from_url(url or "")
        )
        pvid = body.get("pvid") if isinstance(body.get("pvid"), str) else None
    else:
        incoming = params.from_query(request.url.query)
        pvid = incoming.params.pop("pvid", None)
        # The pixel sits on the landing page, so its Referer is the landing URL.
        url, url_flags = params.clean_url(request.headers.get("referer"))
        referrer = None
    pvid = params.clean_text(pvid, 64)[0] if pvid else None

    touch, extras = build_touch(
        request,
        svc,
        kind="impression",
        app_key=app.app_key,
        incoming=incoming,
        original_url=url,
        referrer=referrer,
        pvid=pvid,
    )
    record = TouchRecord(
        touch=touch,
        page_slug=_page_slug(url, origin),
        all_params=incoming.params,
        flags=tuple(sorted(set(incoming.flags) | url_flags)),
        **extras,
    )
    touch_id = await svc.store.record_touch(record)
    svc.counters.touches["impression"] += 1
    if request.method == "POST":
        return JSONResponse({"id": touch_id}, status_code=202, headers=NO_STORE | cors)
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE | cors)


# -- clicks ----------------------------------------------------------------------------------


async def _original_url(
    request: Request, svc: Services, app_key: str, pvid: str | None, origin: str
) -> str:
    """The landing URL of the click's page view, else a Referer of ours, else the click URL."""
    if pvid:
        seen = await svc.store.impression_by_pvid(app_key, pvid)
        if seen and seen.original_url:
            return seen.original_url
    referer = _ours(request.headers.get("referer"), origin)
    if referer:
        return params.clean_text(referer, params.MAX_URL_BYTES)[0]
    return params.clean_text(str(request.url), params.MAX_URL_BYTES)[0]


async def _click(request: Request, svc: Services, app: AppRecord, incoming: Incoming) -> Response:
    origin = own_origin(request, svc.settings)
    pvid = incoming.params.get("pvid") or None
    forced = incoming.params.get("platform") or None
    referer = _ours(request.headers.get("referer"), origin)
    recording = request.method != "HEAD"
    device = parse_user_agent(request.headers.get("user-agent"))
    click_id = new_id() if recording else None
    dest = destinations.choose(
        app.config,
        os_family=device.os_family,
        forced_platform=forced,
        params=incoming.params,
        click_id=click_id,
        fallback_url=referer,
    )
    if recording:
        touch, extras = build_touch(
            request,
            svc,
            kind="click",
            app_key=app.app_key,
            incoming=incoming,
            original_url=await _original_url(request, svc, app.app_key, pvid, origin),
            referrer=referer,
            pvid=pvid,
            platform=dest.platform,
            touch_id=click_id,
        )
        await svc.store.record_touch(
            TouchRecord(
                touch=touch,
                page_slug=_page_slug(referer, origin),
                all_params=incoming.params,
                flags=tuple(sorted(set(incoming.flags) | set(dest.flags))),
                destination=dest.url,
                **extras,
            )
        )
        svc.counters.touches["click"] += 1
    return RedirectResponse(dest.url, status_code=302, headers=NO_STORE)


async def click(request: Request) -> Response:
    svc = services(request)
    app = await _app(svc, request.path_params["app_key"])
    return await _click(request, svc, app, params.from_query(request.url.query))


# AppsFlyer's direct click parameter names -> ours.
_DIRECT_NAMES = {
    "af_media_source": "pid",
    "af_campaign": "c",
    "af_campaign_id": "af_c_id",
}


async def direct_click(request: Request) -> Response:
    """`/v1.0/c2s/click/app/{platform}/{app_id}`: PC, console and CTV stores."""
    svc = services(request)
    platform = request.path_params["platform"].lower()
    if platform not in DIRECT_PLATFORMS:
        raise ApiError(404, "not_found", f"unknown platform {platform!r}")
    app = await svc.store.app_for_destination(platform, request.path_params["app_id"])
    if app is None:
        raise ApiError(404, "not_found", "no app has that platform and app id")
    raw = params.from_query(request.url.query)
    renamed = {_DIRECT_NAMES.get(k, k): v for k, v in raw.params.items()}
    renamed["platform"] = platform
    return await _click(request, svc, app, Incoming(renamed, raw.flags))
