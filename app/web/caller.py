"""Who is calling, and from where: the owner (an admin token or a console session), the app's
sdk_key, the client IP.

One module so that handlers of every audience share these answers instead of importing each
other: a 401 never depends on which module a route lives in, and one function decides the IP.
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request

from app.accounts import TOKEN_OWNER, Owner
from app.devices import client_ip
from app.services import Services, services
from app.store.records import AppRecord
from app.web.errors import ApiError, json_object, read_json
from app.web.sessions import SAFE_METHODS, csrf_ok, current_session


def request_ip(request: Request, svc: Services) -> str | None:
    """The one place that decides a request's client IP (`X-Forwarded-For` is believed only
    from the trusted proxies)."""
    peer = request.client.host if request.client else None
    forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
    return client_ip(peer, forwarded, svc.trusted_proxies)


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def require_owner(request: Request, *, configure: bool = False) -> Owner:
    """The owner behind a request of the owner API: an admin token (every app, no CSRF: it is
    no ambient credential), or a console session (its role and app limit; a state-changing
    request needs the session's CSRF token and must not come from another site).

    401 without either; 403 for a session request failing CSRF, and for a viewer when
    `configure` (configuration, secrets and retries are the admins')."""
    token = _bearer(request)
    svc = services(request)
    if token is not None:
        if not await svc.store.tokens.token_valid(token, svc.clock()):
            raise ApiError(401, "unauthorized", "unknown admin token")
        return TOKEN_OWNER
    found = await current_session(request)
    if found is None:
        raise ApiError(
            401, "unauthorized", "send Authorization: Bearer <admin token>, or log in at /admin"
        )
    session, owner = found
    if request.method not in SAFE_METHODS and not csrf_ok(request, session):
        raise ApiError(403, "csrf", "send the session's X-CSRF-Token, from our own origin")
    if configure and not owner.is_admin:
        raise ApiError(403, "forbidden", "viewers may not change or read configuration")
    return owner


async def authorised_app(request: Request) -> tuple[AppRecord, dict[str, Any]]:
    """The app the request's sdk_key belongs to, and the JSON body naming it.

    The key is checked before a byte of the body is read: a caller without a valid sdk_key
    gets 401 whatever it sent, and so learns nothing of the body's field rules."""
    key = _bearer(request)
    if key is None:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <sdk_key>")
    app = await services(request).store.configs.app_by_sdk_key(key)
    if app is None or not hmac.compare_digest(app.sdk_key.encode(), key.encode()):
        raise ApiError(401, "unauthorized", "unknown sdk_key")
    body = json_object(await read_json(request))
    app_key = body.get("app_key")
    if app_key is None or app_key == "":
        raise ApiError.invalid("app_key", "app_key is required")
    if not isinstance(app_key, str):
        raise ApiError.invalid("app_key", "app_key must be a string")
    # One answer for "no such app" and "another app's key": the endpoint must not reveal app
    # keys. (A lone surrogate, which no app key can hold, is simply another key.)
    if not hmac.compare_digest(app.app_key.encode(), app_key.encode("utf-8", "surrogatepass")):
        raise ApiError(401, "unauthorized", "sdk_key does not belong to this app_key")
    return app, body
