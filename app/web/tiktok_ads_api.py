"""The owner API of the TikTok Ads connection and its cost pull (http-api.md section 3,
tiktok-ads.md): `GET/PUT/DELETE /api/v1/apps/{app_key}/integrations/tiktok_ads`,
`POST .../integrations/tiktok_ads/oauth` (the consent URL), the OAuth callback, and
`POST /api/v1/apps/{app_key}/cost/pull`. What each does is in `app.web.tiktok_ads_service`.

The callback is where TikTok sends the owner's browser back: it is authenticated by its
`state` (signed by this server, an hour at most, used once), not by a session or token.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from app.services import services
from app.web import tiktok_ads_service as ads
from app.web.caller import require_owner
from app.web.errors import json_object, read_json
from app.web.links import own_origin

NO_STORE = {"Cache-Control": "no-store"}


async def get_connection(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    answer = await ads.get_connection(services(request), owner, request.path_params["app_key"])
    return JSONResponse(answer, headers=NO_STORE)


async def put_connection(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    body = json_object(await read_json(request))
    answer, warning = await ads.save_connection(
        services(request), owner, request.path_params["app_key"], body
    )
    return JSONResponse(answer | {"warning": warning} if warning else answer, headers=NO_STORE)


async def delete_connection(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    await ads.delete_connection(services(request), owner, request.path_params["app_key"])
    return Response(status_code=204)


async def post_pull(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    # The body is optional: no Content-Type, no body (a pull of the backfill days).
    body = await read_json(request) if request.headers.get("content-type") else None
    await ads.request_pull(services(request), owner, request.path_params["app_key"], body)
    return JSONResponse({"started": True}, status_code=202, headers=NO_STORE)


async def post_oauth(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    svc = services(request)
    url = await ads.consent_url(
        svc, owner, request.path_params["app_key"], own_origin(request, svc.settings)
    )
    return JSONResponse({"consent_url": url}, headers=NO_STORE)


async def oauth_callback(request: Request) -> Response:
    try:
        app_key = await ads.oauth_callback(services(request), dict(request.query_params))
    except ads.ConsentDeclined as declined:
        screen = f"/admin/apps/{declined.app_key}/tiktok-ads?declined=1"
        return RedirectResponse(screen, status_code=303)
    # Back to the connection's console screen, which shows the result.
    return RedirectResponse(f"/admin/apps/{app_key}/tiktok-ads?connected=1", status_code=303)
