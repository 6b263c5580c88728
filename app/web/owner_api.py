"""The owner's API: apps, the TikTok integration, hosted pages, install receipts
(http-api.md 3).

Authenticated by an admin token (`Authorization: Bearer <token>`, made with
`python -m app token create`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app import configs
from app.clock import iso
from app.fields import FieldError
from app.mapping import MappingError, validate_af_parameters
from app.postbacks import catalogue
from app.services import services
from app.store.records import AppRecord, IntegrationRecord, PageRecord
from app.vocabulary import PARTNER
from app.web.caller import require_admin
from app.web.errors import ApiError, json_object, read_json


def _app_json(app: AppRecord) -> dict[str, Any]:
    return {
        "app_key": app.app_key,
        **app.config,
        "sdk_key": app.sdk_key,
        "created_at": iso(app.created_at),
        "updated_at": iso(app.updated_at),
    }


def _integration_json(rec: IntegrationRecord) -> dict[str, Any]:
    # The access token is write-only: an owner can see that one is set, never read it back.
    return {
        "app_key": rec.app_key,
        "partner": rec.partner,
        **rec.config,
        "access_token_set": bool(rec.access_token),
        "updated_at": iso(rec.updated_at),
    }


def _page_json(page: PageRecord) -> dict[str, Any]:
    return {
        "slug": page.slug,
        **page.config,
        "created_at": iso(page.created_at),
        "updated_at": iso(page.updated_at),
    }


def _validated(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except FieldError as exc:
        raise ApiError.from_field(exc) from None
    except MappingError as exc:
        raise ApiError.invalid(exc.field, str(exc)) from None


async def _existing_app(request: Request, app_key: str) -> AppRecord:
    app = await services(request).store.configs.get_app(app_key)
    if app is None:
        raise ApiError(404, "not_found", f"no app {app_key!r}")
    return app


# -- the partner's events --------------------------------------------------------------------


async def partner_events(request: Request) -> Response:
    """`GET /api/v1/partners/tiktokweb_int/events`: what a mapping's `partner_event` may be."""
    await require_admin(request)
    return JSONResponse({"partner": PARTNER, **catalogue.listing()})


# -- apps --------------------------------------------------------------------------------------


async def list_apps(request: Request) -> Response:
    await require_admin(request)
    apps = await services(request).store.configs.list_apps()
    return JSONResponse({"apps": [_app_json(a) for a in apps]})


async def get_app(request: Request) -> Response:
    await require_admin(request)
    return JSONResponse(_app_json(await _existing_app(request, request.path_params["app_key"])))


async def put_app(request: Request) -> Response:
    await require_admin(request)
    app_key = _validated(configs.validate_app_key, request.path_params["app_key"])
    config = _validated(configs.validate_app, json_object(await read_json(request)))
    svc = services(request)
    app = await svc.store.configs.put_app(app_key, config, svc.clock())
    return JSONResponse(_app_json(app))


async def delete_app(request: Request) -> Response:
    await require_admin(request)
    if not await services(request).store.configs.delete_app(request.path_params["app_key"]):
        raise ApiError(404, "not_found", f"no app {request.path_params['app_key']!r}")
    return Response(status_code=204)


# -- integration -------------------------------------------------------------------------------


async def get_integration(request: Request) -> Response:
    await require_admin(request)
    app = await _existing_app(request, request.path_params["app_key"])
    rec = await services(request).store.configs.get_integration(app.app_key, PARTNER)
    if rec is None:
        raise ApiError(404, "not_found", f"app {app.app_key!r} has no {PARTNER}")
    return JSONResponse(_integration_json(rec))


async def put_integration(request: Request) -> Response:
    await require_admin(request)
    app = await _existing_app(request, request.path_params["app_key"])
    config, token = _validated(configs.validate_integration, json_object(await read_json(request)))
    svc = services(request)
    rec = await svc.store.configs.put_integration(app.app_key, PARTNER, config, token, svc.clock())
    if config["enabled"] and not config["dry_run"] and not rec.access_token:
        # Stored anyway (the owner may add the token next), but said plainly: nothing can be
        # delivered to TikTok without it.
        body = _integration_json(rec) | {
            "warning": "access_token is not set: postbacks cannot be delivered"
        }
        return JSONResponse(body)
    return JSONResponse(_integration_json(rec))


async def delete_integration(request: Request) -> Response:
    await require_admin(request)
    app = await _existing_app(request, request.path_params["app_key"])
    if not await services(request).store.configs.delete_integration(app.app_key, PARTNER):
        raise ApiError(404, "not_found", f"app {app.app_key!r} has no {PARTNER}")
    return Response(status_code=204)


# -- pages -------------------------------------------------------------------------------------


async def list_pages(request: Request) -> Response:
    await require_admin(request)
    pages = await services(request).store.configs.list_pages()
    return JSONResponse({"pages": [_page_json(p) for p in pages]})


async def get_page(request: Request) -> Response:
    await require_admin(request)
    page = await services(request).store.configs.get_page(request.path_params["slug"])
    if page is None:
        raise ApiError(404, "not_found", f"no page {request.path_params['slug']!r}")
    return JSONResponse(_page_json(page))


async def put_page(request: Request) -> Response:
    await require_admin(request)
    slug = _validated(configs.validate_slug, request.path_params["slug"])
    config = _validated(
        configs.validate_page, json_object(await read_json(request)), validate_af_parameters
    )
    svc = services(request)
    app = await svc.store.configs.get_app(config["app_key"])
    if app is None:
        raise ApiError.invalid("app_key", f"no app {config['app_key']!r}")
    for i, cta in enumerate(config["ctas"]):
        if cta not in app.config["destinations"]:
            raise ApiError.invalid(f"ctas[{i}]", f"app {app.app_key!r} has no {cta} destination")
    page = await svc.store.configs.put_page(slug, config, svc.clock())
    return JSONResponse(_page_json(page))


async def delete_page(request: Request) -> Response:
    await require_admin(request)
    if not await services(request).store.configs.delete_page(request.path_params["slug"]):
        raise ApiError(404, "not_found", f"no page {request.path_params['slug']!r}")
    return Response(status_code=204)


# -- install receipts --------------------------------------------------------------------------


async def get_install(request: Request) -> Response:
    """An install as stored, its conversion data, its attribution receipt and its postbacks."""
    await require_admin(request)
    svc = services(request)
    install = await svc.store.installs.get_install(request.path_params["install_id"])
    if install is None:
        raise ApiError(404, "not_found", "no such install")
    row = asdict(install)
    receipt = row.pop("receipt")
    answer = row.pop("answer")
    # Flags as 0/1, the install's time last under its API name: the answer this route has
    # always given.
    for flag in ("is_limited_data_use", "is_retained_organic"):
        row[flag] = int(row[flag])
    row["install_time"] = iso(row.pop("time"))
    row["received_at"] = iso(row["received_at"])
    row["touch_time"] = iso(row["touch_time"])
    postbacks = [
        {
            "id": p.id,
            "event": p.event,
            "state": p.state,
            "attempts": p.attempts,
            "last_code": p.last_code,
            "last_message": p.last_message,
        }
        for p in await svc.store.outbox.postbacks_for(install.id)
    ]
    return JSONResponse(
        {**row, "conversion_data": answer, "receipt": receipt, "postbacks": postbacks}
    )
