"""Console sessions: a signed cookie naming a server-side session, and the CSRF rules.

The cookie holds only a random session id, signed with itsdangerous under the namespace
(salt) `SESSION_SALT` and `GANGWAY_SECRET_KEY`; the session itself (its user, CSRF token,
creation and last use, revocation) lives in the store. So:

- a cookie that does not verify (tampered, another key, another namespace) is anonymous, never
  a 500;
- a cookie older than 7 days, or whose session was idle 12 hours, is anonymous;
- logging out revokes the session server-side: the same cookie replayed is anonymous.

CSRF (console.md section 2): every state-changing request made with a session carries the
session's token (form field `csrf_token` or header `X-CSRF-Token`), and is refused when
`Sec-Fetch-Site` says cross-site or `Origin` is not our own. Bearer-token calls carry no
ambient credential and need neither.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from app.accounts import Owner
from app.services import Services, services
from app.store.records import SessionRecord
from app.web.links import own_origin

COOKIE = "gw_session"
SESSION_SALT = "gangway.console.session"
ABSOLUTE_SECONDS = 7 * 24 * 3600
IDLE_SECONDS = 12 * 3600
TOUCH_EVERY_SECONDS = 60.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def _serializer(svc: Services) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(svc.settings.secret_key.reveal(), salt=SESSION_SALT)


def _secure(svc: Services) -> bool:
    return svc.settings.public_url.lower().startswith("https://")


def set_session_cookie(response: Response, svc: Services, session_id: str) -> None:
    response.set_cookie(
        COOKIE,
        _serializer(svc).dumps(session_id),
        max_age=ABSOLUTE_SECONDS,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(svc),
    )


def clear_session_cookie(response: Response, svc: Services) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(svc))


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


async def current_session(request: Request) -> tuple[SessionRecord, Owner] | None:
    """The request's live session and its user, or None (anonymous). Cached per request."""
    if hasattr(request.state, "gw_session"):
        cached: tuple[SessionRecord, Owner] | None = request.state.gw_session
        return cached
    found = await _load_session(request)
    request.state.gw_session = found
    return found


async def _load_session(request: Request) -> tuple[SessionRecord, Owner] | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    svc = services(request)
    try:
        session_id = _serializer(svc).loads(raw, max_age=ABSOLUTE_SECONDS)
    except BadData:  # a bad signature, a stale one, a payload that is not ours
        return None
    if not isinstance(session_id, str):
        return None
    session = await svc.store.users.get_session(session_id)
    now = svc.clock()
    if (
        session is None
        or session.revoked_at is not None
        or now - session.created_at > ABSOLUTE_SECONDS
        or now - session.last_seen_at > IDLE_SECONDS
    ):
        return None
    user = await svc.store.users.get_user(session.username)
    if user is None:
        return None
    if now - session.last_seen_at >= TOUCH_EVERY_SECONDS:
        await svc.store.users.touch_session(session.id, now)
    apps = None if user.apps is None else frozenset(user.apps)
    return session, Owner(role=user.role, apps=apps, username=user.username)


def cross_site(request: Request) -> bool:
    """A request a browser says came from another site, or from an origin not ours."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    ours = urlsplit(own_origin(request, services(request).settings))
    try:
        theirs = urlsplit(origin)
    except ValueError:
        return True
    return (theirs.scheme, theirs.netloc.lower()) != (ours.scheme, ours.netloc.lower())


def csrf_ok(request: Request, session: SessionRecord, form_token: object = None) -> bool:
    """Whether a state-changing request made with `session` may go ahead."""
    if cross_site(request):
        return False
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and isinstance(form_token, str):
        sent = form_token
    return sent is not None and hmac.compare_digest(sent.encode(), session.csrf_token.encode())
