"""Logging in and out of the console (console.md section 1).

Throttling: after 5 failed logins for one account, or 20 from one IP, in 15 minutes, every
further attempt answers 429 (a good password included: it does not lift the lock early) until
the failures are older than 15 minutes. Attempts refused with 429 are not counted, so waiting
is enough. A wrong name costs the time of a wrong password (`app.accounts.verify_password`).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app import accounts
from app.services import services
from app.web.caller import request_ip
from app.web.console.guard import Screen, console_headers, read_form, render, safe_next, screen
from app.web.errors import ApiError
from app.web.sessions import (
    clear_session_cookie,
    cross_site,
    current_session,
    new_csrf_token,
    new_session_id,
    set_session_cookie,
)

log = logging.getLogger("gangway.console")

WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_IP = 20
MAX_EMAIL = 254


async def login(request: Request) -> Response:
    svc = services(request)
    next_url = safe_next(request.query_params.get("next"))
    if request.method == "GET":
        if await current_session(request) is not None:
            return RedirectResponse(next_url, status_code=303, headers=console_headers(svc))
        return render(request, svc, "console/login.html", None, None, {"next": next_url})

    if cross_site(request):
        return render(
            request,
            svc,
            "console/login.html",
            None,
            None,
            {"next": next_url, "error": "This login form came from another site."},
            403,
        )
    try:
        form = await read_form(request)
    except ApiError as exc:
        return render(
            request,
            svc,
            "console/login.html",
            None,
            None,
            {"next": next_url, "error": exc.message},
            exc.status,
        )
    email = str(form.get("email") or "").strip().lower()[:MAX_EMAIL]
    password = str(form.get("password") or "")
    next_url = safe_next(str(form.get("next") or next_url))
    ip = request_ip(request, svc)
    now = svc.clock()

    def again(message: str, status: int) -> Response:
        return render(
            request,
            svc,
            "console/login.html",
            None,
            None,
            {"next": next_url, "email": email, "error": message},
            status,
        )

    by_account, by_ip = await svc.store.users.login_failures(email, ip, now - WINDOW_SECONDS)
    if by_account >= MAX_FAILURES_PER_ACCOUNT or by_ip >= MAX_FAILURES_PER_IP:
        log.warning("login throttled for an account or IP after repeated failures")
        return again("Too many failed attempts: try again in 15 minutes.", 429)

    user = await svc.store.users.get_user(email) if email else None
    if not accounts.verify_password(user.password_hash if user else None, password):
        await svc.store.users.record_login_failure(email, ip, now)
        return again("Wrong email or password.", 401)
    assert user is not None
    if accounts.needs_rehash(user.password_hash):
        await svc.store.users.set_password_hash(user.username, accounts.hash_password(password))

    previous = await current_session(request)
    if previous is not None:  # a second login in the same browser ends the first session
        await svc.store.users.revoke_session(previous[0].id, now)
    session_id = new_session_id()
    await svc.store.users.create_session(session_id, user.username, new_csrf_token(), now)
    log.info("console login: %s", user.username)
    response = RedirectResponse(next_url, status_code=303, headers=console_headers(svc))
    set_session_cookie(response, svc, session_id)
    return response


@screen()
async def logout(s: Screen) -> Response:
    await s.svc.store.users.revoke_session(s.session.id, s.svc.clock())
    response = RedirectResponse("/admin/login", status_code=303, headers=console_headers(s.svc))
    clear_session_cookie(response, s.svc)
    return response
