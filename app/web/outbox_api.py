"""The owner's handle on the outbox (http-api.md section 3, postbacks.md section 3).

- `GET /api/v1/postbacks/{id}`: a postback, its state, the JSON sent for it and every attempt
  (time, HTTP status, TikTok's code, message and request_id).
- `POST /api/v1/postbacks/{id}/retry`: send a failed or dead postback again.
- `POST /api/v1/postbacks/retry` with `{"app_key": ...}`: send every failed or dead postback of
  an app again (after the owner fixed the integration).

Viewers may read postbacks; retrying is the admins'. The work is in `app.web.owner_service`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.services import services
from app.web import owner_service as ops
from app.web.caller import require_owner
from app.web.errors import json_object, read_json


async def get_postback(request: Request) -> Response:
    owner = await require_owner(request)
    detail = await ops.postback_detail(services(request), owner, request.path_params["postback_id"])
    return JSONResponse(detail)


async def retry(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    postback_id = request.path_params["postback_id"]
    await ops.retry_postback(services(request), owner, postback_id)
    return JSONResponse({"id": postback_id, "state": "pending"}, status_code=202)


async def retry_failed(request: Request) -> Response:
    owner = await require_owner(request, configure=True)
    body = json_object(await read_json(request))
    retried = await ops.retry_failed(services(request), owner, body.get("app_key"))
    return JSONResponse({"app_key": body["app_key"], "retried": retried}, status_code=202)
