"""The owner's handle on the outbox (http-api.md section 3, postbacks.md section 3).

- `GET /api/v1/postbacks/{id}`: a postback, its state, the JSON sent for it and every attempt
  (time, HTTP status, TikTok's code, message and request_id).
- `POST /api/v1/postbacks/{id}/retry`: send a failed or dead postback again.
- `POST /api/v1/postbacks/retry` with `{"app_key": ...}`: send every failed or dead postback of
  an app again (after the owner fixed the integration).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.clock import iso
from app.postbacks import tiktok
from app.postbacks.postback import LoggedAttempt
from app.services import services
from app.vocabulary import APP_KEY_RE
from app.web.caller import require_admin
from app.web.errors import ApiError, json_object, read_json

# Only these states have a next attempt to show.
_WAITING = ("pending", "retrying")


def _sent_json(payload: dict[str, Any], attempt: LoggedAttempt | None) -> dict[str, Any] | None:
    """The request body as the last attempt sent it, narrowed to this postback's event (the
    other events of its batch are other postbacks). None before any request was made."""
    if attempt is None or not attempt.pixel_code:
        return None
    return tiktok.build_request(
        pixel_code=attempt.pixel_code,
        events=[payload],
        test_event_code=attempt.test_event_code,
    )


async def get_postback(request: Request) -> Response:
    await require_admin(request)
    svc = services(request)
    found = await svc.store.outbox.get_postback(request.path_params["postback_id"])
    if found is None:
        raise ApiError(404, "not_found", "no such postback")
    p, log = found.postback, found.attempts
    last_request = next((a for a in reversed(log) if a.pixel_code), None)
    return JSONResponse(
        {
            "id": p.id,
            "app_key": p.app_key,
            "partner": p.partner,
            "kind": p.kind,
            "subject_id": p.subject_id,
            "event": p.event,
            "state": p.state,
            "attempts": p.attempts,
            "created_at": iso(p.created_at),
            "sent_at": iso(p.sent_at),
            "next_attempt_at": iso(p.next_attempt_at) if p.state in _WAITING else None,
            "last_http_status": p.last_http_status,
            "last_code": p.last_code,
            "last_message": p.last_message,
            "last_request_id": p.last_request_id,
            "payload": p.payload,
            "sent_json": _sent_json(p.payload, last_request),
            "attempt_log": [
                {
                    "time": iso(a.time),
                    "state": a.state,
                    "http_status": a.http_status,
                    "code": a.code,
                    "message": a.message,
                    "request_id": a.request_id,
                    "batch_size": a.batch_size,
                }
                for a in log
            ],
        }
    )


async def retry(request: Request) -> Response:
    await require_admin(request)
    svc = services(request)
    postback_id = request.path_params["postback_id"]
    state = await svc.store.outbox.retry_postback(postback_id, svc.clock())
    if state is None:
        raise ApiError(404, "not_found", "no such postback")
    if state == "sent":
        raise ApiError(409, "already_sent", "this postback was delivered; it is not sent again")
    svc.nudge_outbox()
    return JSONResponse({"id": postback_id, "state": "pending"}, status_code=202)


async def retry_failed(request: Request) -> Response:
    await require_admin(request)
    svc = services(request)
    body = json_object(await read_json(request))
    app_key = body.get("app_key")
    if not isinstance(app_key, str) or not app_key:
        raise ApiError.invalid("app_key", "app_key is required")
    if not APP_KEY_RE.fullmatch(app_key) or await svc.store.configs.get_app(app_key) is None:
        raise ApiError(404, "not_found", "no such app", "app_key")
    retried = await svc.store.outbox.retry_failed_postbacks(app_key, svc.clock())
    if retried:
        svc.nudge_outbox()
    return JSONResponse({"app_key": app_key, "retried": retried}, status_code=202)
