"""The console's audiences (tiktok-ads.md section 3): each audience of the owner's apps with
its state and, for `waiting` and `too_small`, why (TikTok's 1,000-user floor). An admin's
screen, like the rest of the configuration. Read only: audiences are set with the owner API
(`PUT /api/v1/apps/{app_key}/audiences/{name}`)."""

from __future__ import annotations

from starlette.responses import Response

from app.audiences import MIN_MEMBERS, state_reason
from app.clock import iso
from app.web import owner_service as ops
from app.web.audiences_api import list_audiences
from app.web.console.guard import Screen, screen


@screen(admin=True)
async def audiences(s: Screen) -> Response:
    apps_ = await ops.list_apps(s.svc, s.owner)
    asked = s.request.query_params.get("app") or None
    shown = [a for a in apps_ if asked in (None, a.app_key)]
    rows = []
    for app in shown:
        for audience in await list_audiences(s.svc, s.owner, app.app_key):
            rows.append({"a": audience, "reason": state_reason(audience)})
    return s.render(
        "console/audiences.html",
        {
            "rows": rows,
            "apps": apps_,
            "app_key": asked if shown and asked else None,
            "floor": f"{MIN_MEMBERS:,}",
            "iso": iso,
        },
    )
