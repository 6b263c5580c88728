"""The owner's audiences (tiktok-ads.md section 3): `PUT/GET/DELETE
/api/v1/apps/{app_key}/audiences/{name}` and the list.

The service functions take the `Owner` asking, like `app.web.owner_service`, so the console
shows and does the same; the handlers only authenticate and shape JSON. Audiences are
configuration: reading and writing them needs a configuring owner (viewers are refused).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.accounts import Owner
from app.audiences import (
    Audience,
    needs_new_tiktok_audience,
    state_reason,
    validate_name,
    validate_rule,
)
from app.clock import iso
from app.services import Services, services
from app.tiktok_ads.connection import PARTNER
from app.web.caller import require_owner
from app.web.errors import ApiError, json_object, read_json
from app.web.owner_service import get_app, validated


def audience_json(audience: Audience) -> dict[str, Any]:
    return {
        "app_key": audience.app_key,
        "name": audience.name,
        **audience.rule.to_config(),
        "calculate_type": audience.rule.calculate_type,
        "tiktok_audience_id": audience.tiktok_audience_id,
        "state": audience.state,
        "reason": state_reason(audience),
        "member_count": audience.member_count,
        "sent_count": audience.sent_count,
        "last_sync_at": iso(audience.last_sync_at),
        "last_error": audience.last_error,
        "created_at": iso(audience.created_at),
        "updated_at": iso(audience.updated_at),
    }


def _no_audience(name: str) -> ApiError:
    return ApiError(404, "not_found", f"no audience {name!r}")


async def list_audiences(svc: Services, owner: Owner, app_key: str) -> list[Audience]:
    app = await get_app(svc, owner, app_key)
    return await svc.store.audiences.list_audiences(app.app_key)


async def get_audience(svc: Services, owner: Owner, app_key: str, name: str) -> Audience:
    app = await get_app(svc, owner, app_key)
    found = await svc.store.audiences.get_audience(app.app_key, name)
    if found is None:
        raise _no_audience(name)
    return found


async def save_audience(
    svc: Services, owner: Owner, app_key: str, name: str, body: Any
) -> Audience:
    """Create an audience or replace its rule; a new platform or advertiser starts a new
    TikTok audience at the next sync."""
    app = await get_app(svc, owner, app_key)
    name = validated(validate_name, name)
    rule = validated(validate_rule, body)
    connection = await svc.store.configs.get_integration(app.app_key, PARTNER)
    advertisers = (
        [str(a) for a in (connection.config.get("advertiser_ids") or ())] if connection else []
    )
    if connection is not None and rule.advertiser_id not in advertisers:
        # Caught now rather than at the first sync; without a connection yet, the sync says so.
        raise ApiError.invalid(
            "advertiser_id", "advertiser_id is not one of the TikTok Ads connection's advertisers"
        )
    old = await svc.store.audiences.get_audience(app.app_key, name)
    reset = old is not None and needs_new_tiktok_audience(old.rule, rule)
    return await svc.store.audiences.put_audience(app.app_key, name, rule, svc.clock(), reset=reset)


async def delete_audience(svc: Services, owner: Owner, app_key: str, name: str) -> None:
    app = await get_app(svc, owner, app_key)
    if not await svc.store.audiences.delete_audience(app.app_key, name):
        raise _no_audience(name)


# -- handlers ------------------------------------------------------------------------------------


async def list_all(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    found = await list_audiences(services(request), owner, request.path_params["app_key"])
    return JSONResponse({"audiences": [audience_json(a) for a in found]})


async def get_one(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    params = request.path_params
    found = await get_audience(services(request), owner, params["app_key"], params["name"])
    return JSONResponse(audience_json(found))


async def put_one(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    body = json_object(await read_json(request))
    params = request.path_params
    saved = await save_audience(services(request), owner, params["app_key"], params["name"], body)
    return JSONResponse(audience_json(saved))


async def delete_one(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    params = request.path_params
    await delete_audience(services(request), owner, params["app_key"], params["name"])
    return Response(status_code=204)
