"""The owner's API: apps, the TikTok integration, hosted pages, install receipts
(http-api.md 3).

Authenticated by an admin token (`Authorization: Bearer <token>`, made with
`python -m app token create`) or a console session with its CSRF token (`app.web.caller`).
What each route does is in `app.web.owner_service`, shared with the console.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.postbacks import catalogue
from app.services import services
from app.vocabulary import PARTNER
from app.web import owner_service as ops
from app.web.caller import require_owner
from app.web.errors import json_object, read_json

# -- the partner's events --------------------------------------------------------------------


async def partner_events(request: Request) -> Response:
    """`GET /api/v1/partners/tiktokweb_int/events`: what a mapping's `partner_event` may be
    (for configuring a mapping, so a configuring owner's)."""
    await require_owner(request, configure=True)
    return JSONResponse({"partner": PARTNER, **catalogue.listing()})


# -- apps --------------------------------------------------------------------------------------


async def list_apps(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    apps = await ops.list_apps(services(request), owner)
    return JSONResponse({"apps": [ops.app_json(a) for a in apps]})


async def get_app(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    app = await ops.get_app(services(request), owner, request.path_params["app_key"])
    return JSONResponse(ops.app_json(app))


async def put_app(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    body = json_object(await read_json(request))
    app = await ops.save_app(services(request), owner, request.path_params["app_key"], body)
    return JSONResponse(ops.app_json(app))


async def delete_app(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    await ops.delete_app(services(request), owner, request.path_params["app_key"])
    return Response(status_code=204)


async def rotate_sdk_key(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    app = await ops.rotate_sdk_key(services(request), owner, request.path_params["app_key"])
    return JSONResponse(ops.app_json(app))


# -- integration -------------------------------------------------------------------------------


async def get_integration(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    rec = await ops.get_integration(services(request), owner, request.path_params["app_key"])
    return JSONResponse(ops.integration_json(rec))


async def put_integration(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    body = json_object(await read_json(request))
    rec, warning = await ops.save_integration(
        services(request), owner, request.path_params["app_key"], body
    )
    answer = ops.integration_json(rec)
    return JSONResponse(answer | {"warning": warning} if warning else answer)


async def delete_integration(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    await ops.delete_integration(services(request), owner, request.path_params["app_key"])
    return Response(status_code=204)


# -- pages -------------------------------------------------------------------------------------


async def list_pages(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    pages = await ops.list_pages(services(request), owner)
    return JSONResponse({"pages": [ops.page_json(p) for p in pages]})


async def get_page(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    page = await ops.get_page(services(request), owner, request.path_params["slug"])
    return JSONResponse(ops.page_json(page))


async def put_page(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    body = json_object(await read_json(request))
    page = await ops.save_page(services(request), owner, request.path_params["slug"], body)
    return JSONResponse(ops.page_json(page))


async def delete_page(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    await ops.delete_page(services(request), owner, request.path_params["slug"])
    return Response(status_code=204)


# -- install receipts --------------------------------------------------------------------------


async def get_install(request: Request) -> Response:
    """An install as stored, its conversion data, its attribution receipt and its postbacks."""
    owner = await require_owner(request)
    receipt = await ops.install_receipt(services(request), owner, request.path_params["install_id"])
    return JSONResponse(receipt)
