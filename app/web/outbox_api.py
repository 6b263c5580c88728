"""The owner's handle on the outbox: retry a failed or dead postback (http-api.md section 3)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.services import services
from app.web.errors import ApiError
from app.web.owner_api import require_admin


async def retry(request: Request) -> Response:
    await require_admin(request)
    svc = services(request)
    postback_id = request.path_params["postback_id"]
    state = await svc.store.retry_postback(postback_id, svc.clock())
    if state is None:
        raise ApiError(404, "not_found", "no such postback")
    if state == "sent":
        raise ApiError(409, "already_sent", "this postback was delivered; it is not sent again")
    if svc.outbox is not None:
        svc.outbox.nudge()
    return JSONResponse({"id": postback_id, "state": "pending"}, status_code=202)
