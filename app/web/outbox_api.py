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
from app.services import Services, services
from app.vocabulary import APP_KEY_RE
from app.web.errors import ApiError, json_object, read_json
from app.web.owner_api import require_admin

# Only these states have a next attempt to show.
_WAITING = ("pending", "retrying")


def _nudge(svc: Services) -> None:
    if svc.outbox is not None:
        svc.outbox.nudge()


def _sent_json(payload: dict[str, Any], attempt: dict[str, Any] | None) -> dict[str, Any] | None:
    """The request body as the last attempt sent it, narrowed to this postback's event (the
    other events of its batch are other postbacks). None before any request was made."""
    if attempt is None or not attempt.get("pixel_code"):
        return None
    return tiktok.build_request(
        pixel_code=attempt["pixel_code"],
        events=[payload],
        test_event_code=attempt.get("test_event_code"),
    )


async def get_postback(request: Request) -> Response:
    await require_admin(request)
    svc = services(request)
    found = await svc.store.get_postback(request.path_params["postback_id"])
    if found is None:
        raise ApiError(404, "not_found", "no such postback")
    log = found["attempt_log"]
    last_request = next((a for a in reversed(log) if a.get("pixel_code")), None)
    return JSONResponse(
        {
            "id": found["id"],
            "app_key": found["app_key"],
            "partner": found["partner"],
            "kind": found["kind"],
            "subject_id": found["subject_id"],
            "event": found["event"],
            "state": found["state"],
            "attempts": found["attempts"],
            "created_at": iso(found["created_at"]),
            "sent_at": iso(found["sent_at"]),
            "next_attempt_at": (
                iso(found["next_attempt_at"]) if found["state"] in _WAITING else None
            ),
            "last_http_status": found["last_http_status"],
            "last_code": found["last_code"],
            "last_message": found["last_message"],
            "last_request_id": found["last_request_id"],
            "payload": found["payload"],
            "sent_json": _sent_json(found["payload"], last_request),
            "attempt_log": [
                {
                    "time": iso(a["time"]),
                    "state": a["state"],
                    "http_status": a["http_status"],
                    "code": a["code"],
                    "message": a["message"],
                    "request_id": a["request_id"],
                    "batch_size": a["batch_size"],
                }
                for a in log
            ],
        }
    )


async def retry(request: Request) -> Response:
    await require_admin(request)
    svc = services(request)
    postback_id = request.path_params["postback_id"]
    state = await svc.store.retry_postback(postback_id, svc.clock())
    if state is None:
        raise ApiError(404, "not_found", "no such postback")
    if state == "sent":
        raise ApiError(409, "already_sent", "this postback was delivered; it is not sent again")
    _nudge(svc)
    return JSONResponse({"id": postback_id, "state": "pending"}, status_code=202)


async def retry_failed(request: Request) -> Response:
    await require_admin(request)
    svc = services(request)
    body = json_object(await read_json(request))
    app_key = body.get("app_key")
    if not isinstance(app_key, str) or not app_key:
        raise ApiError.invalid("app_key", "app_key is required")
    if not APP_KEY_RE.fullmatch(app_key) or await svc.store.get_app(app_key) is None:
        raise ApiError(404, "not_found", "no such app", "app_key")
    retried = await svc.store.retry_failed_postbacks(app_key, svc.clock())
    if retried:
        _nudge(svc)
    return JSONResponse({"app_key": app_key, "retried": retried}, status_code=202)
