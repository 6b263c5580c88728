"""The public touch collectors: impressions (`/i/`), clicks (`/c/`) and direct click URLs.

Each handler parses the request, asks the pure modules (params, devices, destinations) what it
means, records the touch through the writer and answers. A touch acknowledged is on disk.

Nothing here refuses a visitor for what is in the URL: values are bounded and flagged by
`app.params`, a burst of touches from one IP only marks them `suspect` (`burst_ip`), and a click
always ends in a redirect to a host the owner configured. What is refused with a 4xx is what no
real browser sends: an impression beacon that is not JSON, a beacon from an origin the app does
not list, an unknown app.

HEAD is answered like GET and never recorded: link checkers and preview fetchers send it, and
a HEAD is nobody looking at anything.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from app import destinations, mapping, params
from app.devices import bot_verdict, parse_user_agent
from app.ids import new_id
from app.params import Incoming
from app.reports.rollups import touch_increments
from app.services import Services, services
from app.store.records import AppRecord
from app.touches import Touch, TouchKind, TouchRecord
from app.vocabulary import DEFAULT_TTCLID_SUB, DIRECT_PLATFORMS
from app.web.caller import request_ip
from app.web.errors import ApiError, json_object, read_json
from app.web.links import own_origin

# The smallest transparent GIF: what an impression pixel answers.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store"}
# How long a browser may reuse a CORS preflight answer (one day).
PREFLIGHT_MAX_AGE = "86400"


def build_touch_record(
    request: Request,
    svc: Services,
    *,
    kind: TouchKind,
    app_key: str,
    incoming: Incoming,
    original_url: str | None,
    referrer: str | None,
    pvid: str | None,
    page_slug: str | None,
    user_agent: str | None,
    flags: set[str],
    all_params: Mapping[str, str] | None = None,
    platform: str | None = None,
    destination: str | None = None,
    touch_id: str | None = None,
    ttclid_sub: str = DEFAULT_TTCLID_SUB,
) -> TouchRecord:
    """A touch from a request: device, verdict, location and params, plus what only storage
    needs (language, in-app browser, all params, flags).

    `user_agent` is the request's from `params.clean_user_agent`, its flags among `flags`: the
    caller cleans it, once, since a click routes on it before it is recorded.

    `ttclid_sub` is the page's (`_ttclid_sub`): a touch whose URL carried a ttclid that no
    af_subN holds gets it there, by the snippet's rule (`mapping.ttclid_slot`), so raw data and
    conversion data show it whichever touch won, an impression as a click."""
    ip = request_ip(request, svc)
    now = svc.clock()
    device = parse_user_agent(user_agent)
    burst = ip is not None and svc.burst.hit(ip, now)
    verdict = bot_verdict(user_agent, method=request.method, burst=burst)
    location = svc.locator.locate(request.headers, ip)
    campaign = incoming.campaign()
    slot = mapping.ttclid_slot(campaign, incoming.ttclid, ttclid_sub)
    if slot is not None and incoming.ttclid:
        campaign[slot] = incoming.ttclid
    touch = Touch(
        id=touch_id or new_id(),
        kind=kind,
        app_key=app_key,
        time=now,
        ip=ip,
        user_agent=user_agent,
        os_family=device.os_family,
        os_version=device.os_version,
        device_model=device.device_model,
        browser=device.browser,
        pid=incoming.pid,
        params=campaign,
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
    return TouchRecord(
        touch=touch,
        page_slug=page_slug,
        language=params.clean_header(
            request.headers.get("accept-language"), params.MAX_LANGUAGE_BYTES
        ),
        in_app=device.in_app,
        all_params=incoming.params if all_params is None else all_params,
        flags=tuple(sorted(set(incoming.flags) | flags)),
        destination=destination,
    )


async def _app(svc: Services, app_key: str) -> AppRecord:
    app = await svc.store.configs.get_app(app_key)
    if app is None:
        raise ApiError(404, "not_found", "unknown app", "app_key")
    return app


async def _ttclid_sub(svc: Services, slug: str | None, incoming: Incoming) -> str:
    """The af_subN the touch's page writes a ttclid to (`ttclid_sub`), else the default. The
    page is read only when the touch has a ttclid that no af_subN holds yet."""
    needed = mapping.ttclid_slot(incoming.campaign(), incoming.ttclid, DEFAULT_TTCLID_SUB)
    page = await svc.store.configs.get_page(slug) if slug and needed else None
    sub = page.config.get("ttclid_sub") if page else None
    return sub if isinstance(sub, str) and sub else DEFAULT_TTCLID_SUB


def _page_slug(url: str | None, origin: str) -> str | None:
    """The hosted page a URL of ours points at (`/lp/<slug>`), if any."""
    if not url or not url.startswith(origin + "/lp/"):
        return None
    try:
        slug = urlsplit(url).path.removeprefix("/lp/")
    except ValueError:
        return None
    return slug or None


def _ours(url: str | None, origin: str) -> str | None:
    """`url` when it is a page of this service, else None."""
    return url if url and (url == origin or url.startswith(origin + "/")) else None


def _request_url(request: Request, origin: str) -> str:
    """The URL this request was made to, on our public origin (behind a proxy the request's
    own host may be an internal one)."""
    query = request.url.query
    return f"{origin}{request.url.path}" + (f"?{query}" if query else "")


# -- impressions -----------------------------------------------------------------------------


def _cors_headers(request: Request, app: AppRecord, svc: Services) -> dict[str, str] | None:
    """CORS headers for an allowed Origin; None when the Origin is not allowed. No Origin at
    all (a pixel, a server, a same-origin GET) needs none.

    Allowed: our own origin and the app's `allowed_origins` (its owner's own sites, whose
    snippet sends beacons here). Credentials are allowed because `sendBeacon` always sends in
    credentials mode; nothing on this endpoint reads a cookie.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return {}
    if origin == own_origin(request, svc.settings) or origin in app.config.get(
        "allowed_origins", []
    ):
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }
    return None


def _optional_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ApiError.invalid(key, f"{key} must be a string")


async def _beacon(
    request: Request,
) -> tuple[Incoming, str | None, str | None, str | None, set[str]]:
    """A beacon body: (params, page URL, referrer, pvid, flags). http-api.md section 1:
    `{"url", "referrer", "pvid", "params"}`, all optional, as text/plain or JSON."""
    body = json_object(await read_json(request, allow_text_plain=True))
    url, url_flags = params.clean_url(_optional_str(body, "url"))
    referrer, referrer_flags = params.clean_url(_optional_str(body, "referrer"))
    raw_pvid = _optional_str(body, "pvid")
    raw_params = body.get("params")
    if raw_params is not None and not isinstance(raw_params, Mapping):
        raise ApiError.invalid("params", "params must be an object of strings")
    incoming = (
        params.from_mapping(raw_params) if raw_params is not None else params.from_url(url or "")
    )
    # The snippet sends the pvid on its own and among the params; a hand-made beacon may only
    # have it in the page URL.
    pvid = params.clean_pvid(raw_pvid or incoming.params.get("pvid"))
    if pvid is None and url and raw_params is not None:
        pvid = params.clean_pvid(params.from_url(url).params.get("pvid"))
    return incoming, url, referrer, pvid, url_flags | referrer_flags


async def impression(request: Request) -> Response:
    """`POST /i/{app_key}` (beacon, 202 with the id) and `GET /i/{app_key}` (1x1 GIF)."""
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
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
            },
        )
    if request.method == "HEAD":
        return Response(PIXEL, media_type="image/gif", headers=NO_STORE)
    if cors is None:
        raise ApiError(403, "origin_not_allowed", "this origin may not send impressions")

    origin = own_origin(request, svc.settings)
    if request.method == "POST":
        incoming, url, referrer, pvid, flags = await _beacon(request)
    else:
        incoming = params.from_query(request.url.query)
        pvid = params.clean_pvid(incoming.params.get("pvid"))
        # The pixel sits on the page it counts, so its Referer is that page's URL.
        url, flags = params.clean_url(request.headers.get("referer"))
        referrer = None
    user_agent, ua_flags = params.clean_user_agent(request.headers.get("user-agent"))
    slug = _page_slug(url, origin)

    record = build_touch_record(
        request,
        svc,
        kind="impression",
        app_key=app.app_key,
        incoming=incoming,
        original_url=url,
        referrer=referrer,
        pvid=pvid,
        page_slug=slug,
        user_agent=user_agent,
        flags=flags | ua_flags,
        ttclid_sub=await _ttclid_sub(svc, slug, incoming),
    )
    # A pvid seen before answers the first impression's id and stores nothing.
    touch_id = await svc.store.touches.record_touch(
        record, rollups=touch_increments(record.touch, svc.settings.unified_pids)
    )
    if touch_id == record.touch.id:
        svc.counters.touches["impression"] += 1
    if request.method == "POST":
        return JSONResponse({"id": touch_id}, status_code=202, headers=NO_STORE | cors)
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE | cors)


# -- clicks ----------------------------------------------------------------------------------


async def _click(
    request: Request,
    svc: Services,
    app: AppRecord,
    incoming: Incoming,
    *,
    all_params: Mapping[str, str] | None = None,
) -> Response:
    """Route a click, record it (unless HEAD) and answer the 302."""
    origin = own_origin(request, svc.settings)
    pvid = params.clean_pvid(incoming.params.get("pvid"))
    referer_url, referer_flags = params.clean_url(request.headers.get("referer"))
    referer = _ours(referer_url, origin)
    recording = request.method != "HEAD"
    user_agent, ua_flags = params.clean_user_agent(request.headers.get("user-agent"))
    device = parse_user_agent(user_agent)
    click_id = new_id() if recording else None
    dest = destinations.choose(
        app.config,
        os_family=device.os_family,
        forced_platform=incoming.params.get("platform") or None,
        params=incoming.params,
        click_id=click_id,
        fallback_url=referer,
    )
    if recording:
        # The original URL is the landing URL of the click's page view, else a Referer of ours,
        # else the click URL itself (http-api.md section 1).
        view = await svc.store.touches.page_view(app.app_key, pvid) if pvid else None
        view_url, view_slug = (view.original_url, view.page_slug) if view else (None, None)
        original_url = view_url or referer
        if original_url is None:
            original_url = params.clean_text(_request_url(request, origin), params.MAX_URL_BYTES)[0]
        slug = view_slug or _page_slug(referer, origin)
        record = build_touch_record(
            request,
            svc,
            kind="click",
            app_key=app.app_key,
            incoming=incoming,
            all_params=all_params,
            original_url=original_url,
            referrer=referer_url,
            pvid=pvid,
            page_slug=slug,
            user_agent=user_agent,
            flags=referer_flags | set(dest.flags) | ua_flags,
            platform=dest.platform,
            destination=dest.url,
            touch_id=click_id,
            ttclid_sub=await _ttclid_sub(svc, slug, incoming),
        )
        await svc.store.touches.record_touch(
            record, rollups=touch_increments(record.touch, svc.settings.unified_pids)
        )
        svc.counters.touches["click"] += 1
    return RedirectResponse(dest.url, status_code=302, headers=NO_STORE)


async def click(request: Request) -> Response:
    """`GET /c/{app_key}`: the click link of landing pages and the snippet."""
    svc = services(request)
    app = await _app(svc, request.path_params["app_key"])
    return await _click(request, svc, app, params.from_query(request.url.query))


# AppsFlyer's direct click parameter names -> ours. When a link carries both spellings, the
# AppsFlyer one is what the link's author meant for this URL shape, so it wins.
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
        raise ApiError(404, "not_found", "unknown platform", "platform")
    app = await svc.store.configs.app_for_destination(platform, request.path_params["app_id"])
    if app is None:
        raise ApiError(404, "not_found", "no app has that platform and app id", "app_id")
    raw = params.from_query(request.url.query)
    renamed = dict(raw.params)
    for theirs, ours in _DIRECT_NAMES.items():
        if renamed.get(theirs):
            renamed[ours] = renamed.pop(theirs)
    # The path names the store; a platform= in the query cannot send the click elsewhere.
    renamed["platform"] = platform
    return await _click(request, svc, app, Incoming(renamed, raw.flags), all_params=raw.params)
