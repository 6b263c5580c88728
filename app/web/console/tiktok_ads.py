"""The console's TikTok Ads screens (tiktok-ads.md sections 1 and 2): the apps and their
connection state; one app's connection (advertisers, token, cost settings), its last pulls, and
the buttons Connect (OAuth), Disconnect and Pull now. Thin handlers over
`app.web.tiktok_ads_service`, like every screen over the owner functions."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.responses import RedirectResponse, Response

from app.tiktok_ads.connection import (
    DEFAULT_BACKFILL_DAYS,
    DEFAULT_PULL_EVERY_HOURS,
    NEEDS_REAUTH,
    PARTNER,
    pull_outcome,
)
from app.web import owner_service as ops
from app.web import tiktok_ads_service as ads
from app.web.console.guard import Screen, console_headers, field_errors, screen
from app.web.errors import ApiError
from app.web.links import own_origin
from app.web.middleware import CSP


def _ids(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def _number(text: str) -> Any:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) < 10 else text


@screen(admin=True)
async def overview(s: Screen) -> Response:
    """Every app the owner sees, with its connection's state and last pull."""
    rows = []
    for app in await ops.list_apps(s.svc, s.owner):
        rec = await s.svc.store.configs.get_integration(app.app_key, PARTNER)
        state = await s.svc.store.tiktok_ads.connection_state(app.app_key) if rec else None
        last = await s.svc.store.tiktok_ads.recent_pulls(app.app_key, 1) if rec else []
        outcome = pull_outcome(last[0], s.svc.clock()) if last else None
        rows.append(
            {
                "app": app,
                "connected": rec is not None,
                "state": state,
                "last": last,
                "outcome": outcome,
            }
        )
    return s.render("console/tiktok_ads_list.html", {"rows": rows})


def _form_body(s: Screen) -> dict[str, Any]:
    campaigns = _ids(s.field("cost.campaign_ids"))
    body: dict[str, Any] = {
        "advertiser_ids": _ids(s.field("advertiser_ids")),
        "cost": {
            "enabled": s.checked("cost.enabled"),
            "backfill_days": _number(s.field("cost.backfill_days")),
            "pull_every_hours": _number(s.field("cost.pull_every_hours")),
            "by_country": s.checked("cost.by_country"),
            "campaign_ids": campaigns or None,
        },
        "audiences_enabled": s.checked("audiences_enabled"),
    }
    if s.field("access_token"):
        body["access_token"] = s.field("access_token")
    return body


@screen(admin=True)
async def connection(s: Screen) -> Response:
    app = await ops.get_app(s.svc, s.owner, s.request.path_params["app_key"])
    path = f"/admin/apps/{app.app_key}/tiktok-ads"
    if s.request.method == "POST":
        body = _form_body(s)
        try:
            _, warning = await ads.save_connection(s.svc, s.owner, app.app_key, body)
        except ApiError as exc:
            if exc.status != 400:
                raise
            return await _page(s, app.app_key, body, field_errors(exc), 400)
        return s.redirect(path, warning or "Saved the TikTok Ads connection.")
    if s.request.query_params.get("connected"):
        s.extra["done"] = "Connected to TikTok Ads."
    elif s.request.query_params.get("declined"):
        s.extra["done"] = (
            "Not connected: TikTok sent no authorisation (the consent was declined or "
            "cancelled). Nothing changed."
        )
    return await _page(s, app.app_key, None, {}, 200)


async def _page(
    s: Screen, app_key: str, typed: dict[str, Any] | None, errors: dict[str, str], status: int
) -> Response:
    app = await ops.get_app(s.svc, s.owner, app_key)
    try:
        answer: dict[str, Any] | None = await ads.get_connection(s.svc, s.owner, app_key)
    except ApiError as exc:
        if exc.status != 404:
            raise
        answer = None
    shown = (
        typed
        or answer
        or {
            "advertiser_ids": [],
            "cost": {
                "enabled": True,
                "backfill_days": DEFAULT_BACKFILL_DAYS,
                "pull_every_hours": DEFAULT_PULL_EVERY_HOURS,
                "by_country": True,
                "campaign_ids": None,
            },
            "audiences_enabled": False,
        }
    )
    context = {
        "app": app,
        "connection": answer,
        "shown": shown,
        "errors": errors,
        "needs_reauth": bool(answer and answer["state"] == NEEDS_REAUTH),
        "oauth": ads.oauth_enabled(s.svc),
        "done": s.extra.get("done"),
        # The page lives under its app's path; the navigation shows it under TikTok Ads.
        "nav": "/admin/tiktok-ads",
    }
    if context["done"] is None:
        context.pop("done")
    response = s.render("console/tiktok_ads.html", context, status)
    if context["oauth"]:
        # "Connect" posts here and is redirected to TikTok's consent page: a form's redirect
        # is held to form-action, so this page names TikTok's origin beside our own.
        origin = urlsplit(s.svc.settings.tiktok_api_url)
        allowed = f"form-action 'self' {origin.scheme}://{origin.netloc}"
        response.headers["Content-Security-Policy"] = CSP.replace("form-action 'self'", allowed)
    return response


@screen(admin=True)
async def connect(s: Screen) -> Response:
    """Off to TikTok's consent page; TikTok sends the owner back to the OAuth callback."""
    app_key = s.request.path_params["app_key"]
    url = await ads.consent_url(s.svc, s.owner, app_key, own_origin(s.request, s.svc.settings))
    return RedirectResponse(url, status_code=303, headers=console_headers(s.svc))


@screen(admin=True)
async def disconnect(s: Screen) -> Response:
    app_key = s.request.path_params["app_key"]
    await ads.delete_connection(s.svc, s.owner, app_key)
    return s.redirect(f"/admin/apps/{app_key}/tiktok-ads", "Disconnected; the token is forgotten.")


@screen(admin=True)
async def pull_now(s: Screen) -> Response:
    app_key = s.request.path_params["app_key"]
    days = s.field("days")
    body = {"days": _number(days)} if days else {}
    await ads.request_pull(s.svc, s.owner, app_key, body)
    return s.redirect(
        f"/admin/apps/{app_key}/tiktok-ads",
        "Pull started: reload in a moment to see it under Last pulls.",
    )
