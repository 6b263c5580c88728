"""Hosted landing pages, the snippet files and QR codes.

A landing page's CTA hrefs are built here, on the server, with the page's mapping (the Python
twin of the snippet), so they work with JavaScript off; the snippet then fires the impression.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlencode, urlsplit

import segno
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from app import mapping
from app.devices import parse_user_agent
from app.ids import new_id
from app.paths import STATIC_DIR
from app.services import Services, services
from app.snippet_asset import ScriptAsset
from app.web.errors import ApiError
from app.web.links import click_base, own_origin
from app.web.templates import static_hash

# Store wording, as each store's own badge says it.
CTA_LABELS = {
    "ios": "Download on the App Store",
    "android": "Get it on Google Play",
    "apk": "Download APK",
    "steam": "Play on Steam",
    "epic": "Get it on Epic Games Store",
    "nativepc": "Download for PC",
    "playstation": "Get it on PlayStation",
    "xbox": "Get it on Xbox",
    "switch": "Get it on Nintendo Switch",
    "quest": "Get it on Meta Quest",
    "battlenet": "Play on Battle.net",
    "roku": "Add on Roku",
    "tizen": "Get it on Samsung Smart TV",
    "webos": "Get it on LG TV",
    "smartcast": "Get it on VIZIO",
    "vidaa": "Get it on VIDAA",
}
MAX_QR_URL = 2048
HTML_NO_STORE = {"Cache-Control": "no-store"}


def _cta_order(ctas: list[str], os_family: str | None) -> list[str]:
    """The visitor's own platform first: iOS for iPhones, Android (then APK) for Android."""
    preferred = {"ios": ["ios"], "android": ["android", "apk"]}.get(os_family or "", [])
    first = [c for c in preferred if c in ctas][:1]
    return first + [c for c in ctas if c not in first]


async def landing_page(request: Request) -> Response:
    svc = services(request)
    page = await svc.store.get_page(request.path_params["slug"])
    app = await svc.store.get_app(page.app_key) if page else None
    if page is None or app is None:
        return not_found_page(request, svc)

    origin = own_origin(request, svc.settings)
    pvid = new_id()
    page_url = f"{origin}{request.url.path}" + (
        f"?{request.url.query}" if request.url.query else ""
    )
    af_parameters = page.config.get("mapping") or mapping.TIKTOK_PRESET
    click_url = mapping.generate_one_link_url(
        {
            "oneLinkURL": click_base(origin, app.app_key),
            "afParameters": af_parameters,
            "ttclidSub": page.config.get("ttclid_sub", "af_sub1"),
        },
        page_url,
        referrer=request.headers.get("referer", ""),
        pvid=pvid,
    )
    device = parse_user_agent(request.headers.get("user-agent"))
    destinations = app.config.get("destinations", {})
    ctas = [c for c in page.config.get("ctas", []) if c in destinations]
    order = _cta_order(ctas, device.os_family)
    buttons = [
        {
            "platform": c,
            "label": CTA_LABELS.get(c, f"Get it on {c}"),
            "href": mapping.cta_url(click_url, c) if click_url else None,
            "primary": i == 0 and device.is_mobile,
        }
        for i, c in enumerate(order)
    ]
    qr_src = None
    if click_url and not device.is_mobile:
        qr_target = click_url + "&af_ss_qr=true"
        qr_src = "/qr.svg?" + urlencode({"u": qr_target})
    # The noscript pixel records the same incoming params the snippet would.
    pixel = f"/i/{app.app_key}?" + (request.url.query + "&" if request.url.query else "")
    context: dict[str, Any] = {
        "page": page.config,
        "app": {"app_key": app.app_key, "name": app.config.get("name", app.app_key)},
        "buttons": buttons,
        "pvid": pvid,
        "qr_src": qr_src,
        "pixel_src": pixel + "pvid=" + pvid,
        "mapping_json": page.config.get("mapping"),
        "ttclid_sub": page.config.get("ttclid_sub", "af_sub1"),
        "script_src": f"/smartscript.js?v={svc.scripts['smartscript'].content_hash}",
    }
    return svc.templates.TemplateResponse(request, "landing.html", context, headers=HTML_NO_STORE)


def not_found_page(request: Request, svc: Services) -> Response:
    return svc.templates.TemplateResponse(
        request, "404.html", {}, status_code=404, headers=HTML_NO_STORE
    )


def _script_response(request: Request, asset: ScriptAsset) -> Response:
    if request.query_params.get("v") == asset.content_hash:
        cache = "public, max-age=31536000, immutable"
    else:
        cache = "public, max-age=300"
    headers = {"ETag": asset.etag, "Cache-Control": cache}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type="text/javascript; charset=utf-8", headers=headers)


async def smartscript(request: Request) -> Response:
    return _script_response(request, services(request).scripts["smartscript"])


async def banner(request: Request) -> Response:
    return _script_response(request, services(request).scripts["banner"])


async def static_file(request: Request) -> Response:
    """Our CSS, images and fonts. A `?v=<content hash>` URL (what `static_url()` writes) is
    cached for a year; a plain one for five minutes."""
    name = request.path_params["path"]
    path = (STATIC_DIR / name).resolve()
    if STATIC_DIR.resolve() not in path.parents or not path.is_file():
        raise ApiError(404, "not_found", "no such file")
    version = static_hash(str(path.relative_to(STATIC_DIR.resolve())))
    immutable = request.query_params.get("v") == version
    return FileResponse(
        path,
        headers={
            "Cache-Control": "public, max-age=31536000, immutable"
            if immutable
            else "public, max-age=300",
            "ETag": f'"{version}"',
        },
    )


async def qr_code(request: Request) -> Response:
    svc = services(request)
    target = request.query_params.get("u", "")
    origin = own_origin(request, svc.settings)
    try:
        parts = urlsplit(target)
    except ValueError:
        parts = None
    ours = urlsplit(origin)
    if (
        parts is None
        or len(target) > MAX_QR_URL
        or (parts.scheme, parts.netloc) != (ours.scheme, ours.netloc)
    ):
        raise ApiError.invalid("u", "only URLs of this service can be encoded")
    buffer = io.BytesIO()
    segno.make(target, error="m").save(buffer, kind="svg", scale=4, border=2, xmldecl=False)
    return Response(
        buffer.getvalue(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )
