"""The console's screens (console.md section 3), each a thin handler over the shared owner
functions (`app.web.owner_service`), the dashboard's data function and the link tools.

Forms post fields named by the JSON path of the API body they build (`destinations.ios.
store_url`, `inapp_postbacks.events[0].partner_event`), so a 400's `field` is shown next to
the input of that name.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.responses import Response

from app.attribution import ATTRIBUTION_RANGES
from app.clock import iso
from app.mapping import TIKTOK_PRESET
from app.postbacks.tiktok import DEFAULT_EVENT_MAP, PARTNER_EVENTS
from app.vocabulary import (
    DEFAULT_INSTALL_EVENT,
    DEFAULT_TTCLID_SUB,
    DESTINATIONS,
    PARTNER,
    REVENUE_EVENT,
    TTCLID_SUBS,
    URL_DESTINATIONS,
)
from app.web import owner_service as ops
from app.web.console import links
from app.web.console.dashboard import dashboard_data
from app.web.console.guard import Screen, field_errors, screen
from app.web.errors import ApiError
from app.web.links import own_origin
from app.web.pages import STORES

# Destinations shown open on the app form; the others sit under "More stores".
MAIN_DESTINATIONS = ("ios", "android", "apk", "steam", "web")
POSTBACK_STATES = ("pending", "retrying", "sent", "failed", "dead")
BLANK_EVENT_ROWS = 3
_EVENT_FIELD = re.compile(r"^inapp_postbacks\.events\[(\d+)\]\.(\w+)$")
# TikTok's standard events offered in the picker, then the partner identifiers.
STANDARD_EVENTS = (
    DEFAULT_INSTALL_EVENT,
    *dict.fromkeys(DEFAULT_EVENT_MAP.values()),
    "PlaceAnOrder",
    "ClickButton",
    "SubmitForm",
    "Contact",
)


def _number(text: str) -> Any:
    """A form number as the API body has it: an int, or the text for the validator to refuse."""
    text = text.strip()
    return int(text) if re.fullmatch(r"-?\d{1,9}", text) else text


def _lines(text: str) -> list[str]:
    return [line.strip() for line in re.split(r"[\n,]", text) if line.strip()]


# -- dashboard -----------------------------------------------------------------------------------


@screen()
async def dashboard(s: Screen) -> Response:
    data = await dashboard_data(s.svc, s.owner, s.request.query_params)
    pages = await ops.list_pages(s.svc, s.owner) if data.apps else []
    return s.render(
        "console/dashboard.html",
        {"data": data, "has_pages": bool(pages), "iso": iso, "errors": data.errors},
        400 if data.errors else 200,
    )


# -- apps ----------------------------------------------------------------------------------------


def _app_form_values(s: Screen) -> dict[str, Any]:
    """The app body a submitted form builds (the API's JSON shape)."""
    dests: dict[str, Any] = {}
    for name in DESTINATIONS:
        if name in URL_DESTINATIONS:
            url = s.field(f"destinations.{name}.url")
            if url:
                dests[name] = {"url": url}
        else:
            store_url = s.field(f"destinations.{name}.store_url")
            app_id = s.field(f"destinations.{name}.app_id")
            if store_url or app_id:
                dests[name] = {"store_url": store_url or None, "app_id": app_id or None}
    attribution: dict[str, Any] = {
        key: _number(s.field(f"attribution.{key}"))
        for key in ATTRIBUTION_RANGES
        if s.field(f"attribution.{key}")
    }
    attribution["probabilistic_ios"] = s.checked("attribution.probabilistic_ios")
    return {
        "name": s.field("name"),
        "destinations": dests,
        "allowed_redirect_hosts": _lines(s.field("allowed_redirect_hosts")),
        "allowed_origins": _lines(s.field("allowed_origins")),
        "attribution": attribution,
    }


def _app_context(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "values": values,
        "main_destinations": MAIN_DESTINATIONS,
        "more_destinations": [d for d in DESTINATIONS if d not in MAIN_DESTINATIONS],
        "url_destinations": URL_DESTINATIONS,
        "stores": STORES,
        "ranges": ATTRIBUTION_RANGES,
    }


@screen(admin=True)
async def apps(s: Screen) -> Response:
    """The list of apps, and the form that creates one (GET shows, POST creates)."""
    context: dict[str, Any] = {"apps": await ops.list_apps(s.svc, s.owner)}
    if s.request.method == "POST":
        app_key = s.field("app_key")
        values = _app_form_values(s)
        try:
            app = await ops.save_app(s.svc, s.owner, app_key, values)
        except ApiError as exc:
            if exc.status != 400 and exc.status != 403:
                raise
            return s.render(
                "console/apps.html",
                context | _app_context(values) | {"app_key": app_key, "errors": field_errors(exc)},
                400,
            )
        # The sdk_key is shown this once (and again only on rotation).
        return s.render("console/sdk_key.html", {"app": app, "created": True})
    return s.render(
        "console/apps.html", context | _app_context({"destinations": {}}) | {"app_key": ""}
    )


@screen(admin=True)
async def app_detail(s: Screen) -> Response:
    app = await ops.get_app(s.svc, s.owner, s.request.path_params["app_key"])
    integration = await s.svc.store.configs.get_integration(app.app_key, PARTNER)
    context = {"app": app, "integration": integration}
    if s.request.method == "POST":
        values = _app_form_values(s)
        try:
            await ops.save_app(s.svc, s.owner, app.app_key, values)
        except ApiError as exc:
            if exc.status != 400:
                raise
            return s.render(
                "console/app.html",
                context | _app_context(values) | {"errors": field_errors(exc)},
                400,
            )
        return s.redirect(f"/admin/apps/{app.app_key}", "Saved.")
    return s.render("console/app.html", context | _app_context(app.config))


@screen(admin=True)
async def rotate_sdk_key(s: Screen) -> Response:
    app = await ops.rotate_sdk_key(s.svc, s.owner, s.request.path_params["app_key"])
    return s.render("console/sdk_key.html", {"app": app, "created": False})


@screen(admin=True)
async def delete_app(s: Screen) -> Response:
    app_key = s.request.path_params["app_key"]
    if s.field("confirm") != app_key:
        return s.redirect(f"/admin/apps/{app_key}", "Type the app key to confirm deleting it.")
    await ops.delete_app(s.svc, s.owner, app_key)
    return s.redirect("/admin/apps", f"Deleted {app_key}.")


# -- the TikTok integration ----------------------------------------------------------------------


def _integration_form_values(s: Screen) -> tuple[dict[str, Any], list[int]]:
    """The integration body, and the form row of each event it lists (errors name the row)."""
    assert s.form is not None
    rows: dict[int, dict[str, Any]] = {}
    for key in s.form.keys():
        match = _EVENT_FIELD.match(key)
        if match:
            rows.setdefault(int(match.group(1)), {})
    events, form_rows = [], []
    for i in sorted(rows):
        app_event = s.field(f"inapp_postbacks.events[{i}].app_event")
        partner_event = s.field(f"inapp_postbacks.events[{i}].partner_event")
        if not app_event and not partner_event:
            continue
        events.append(
            {
                "app_event": app_event,
                "partner_event": partner_event,
                "include_revenue": s.checked(f"inapp_postbacks.events[{i}].include_revenue"),
            }
        )
        form_rows.append(i)
    body: dict[str, Any] = {
        "enabled": s.checked("enabled"),
        "pixel_code": s.field("pixel_code"),
        "test_event_code": s.field("test_event_code"),
        "view_through": s.checked("view_through"),
        "ccpa_limit": s.checked("ccpa_limit"),
        "install_event": s.field("install_event"),
        "inapp_postbacks": {
            "enabled": s.checked("inapp_postbacks.enabled"),
            "window_days": _number(s.field("inapp_postbacks.window_days") or "0"),
            "for_users": s.field("inapp_postbacks.for_users") or "this_partner",
            "events": events,
        },
    }
    token = s.field("access_token")
    if token:
        body["access_token"] = token
    return body, form_rows


def _integration_context(config: dict[str, Any], token_set: bool) -> dict[str, Any]:
    events = list(config.get("inapp_postbacks", {}).get("events", []))
    events += [{"app_event": "", "partner_event": "", "include_revenue": False}] * BLANK_EVENT_ROWS
    return {
        "config": config,
        "events": events,
        "token_set": token_set,
        "app_events": list(DEFAULT_EVENT_MAP),
        "standard_events": STANDARD_EVENTS,
        "partner_events": PARTNER_EVENTS,
        "revenue_event": REVENUE_EVENT,
    }


@screen(admin=True)
async def integration(s: Screen) -> Response:
    app = await ops.get_app(s.svc, s.owner, s.request.path_params["app_key"])
    rec = await s.svc.store.configs.get_integration(app.app_key, PARTNER)
    if s.request.method == "POST":
        body, form_rows = _integration_form_values(s)
        try:
            rec, warning = await ops.save_integration(s.svc, s.owner, app.app_key, body)
        except ApiError as exc:
            if exc.status != 400:
                raise
            if exc.field and (m := re.match(r"inapp_postbacks\.events\[(\d+)\]", exc.field)):
                index = int(m.group(1))
                if index < len(form_rows):
                    exc.field = exc.field.replace(f"[{index}]", f"[{form_rows[index]}]", 1)
            shown = dict(body)
            shown["inapp_postbacks"] = dict(body["inapp_postbacks"])
            context = _integration_context(shown, bool(rec and rec.access_token))
            # The rows as typed, in their form positions (blank ones included).
            typed = []
            for i in range(max(form_rows, default=-1) + 1 + BLANK_EVENT_ROWS):
                typed.append(
                    {
                        "app_event": s.field(f"inapp_postbacks.events[{i}].app_event"),
                        "partner_event": s.field(f"inapp_postbacks.events[{i}].partner_event"),
                        "include_revenue": s.checked(
                            f"inapp_postbacks.events[{i}].include_revenue"
                        ),
                    }
                )
            context["events"] = typed
            return s.render(
                "console/integration.html",
                context | {"app": app, "errors": field_errors(exc)},
                400,
            )
        return s.redirect(
            f"/admin/apps/{app.app_key}/tiktok", warning or "Saved the TikTok integration."
        )
    config = (
        rec.config
        if rec
        else {
            "enabled": True,
            "view_through": True,
            "install_event": DEFAULT_INSTALL_EVENT,
            "inapp_postbacks": {
                "enabled": True,
                "window_days": 0,
                "for_users": "this_partner",
                "events": [],
            },
        }
    )
    context = _integration_context(config, bool(rec and rec.access_token))
    return s.render("console/integration.html", context | {"app": app})


# -- pages ---------------------------------------------------------------------------------------


@screen(admin=True)
async def pages(s: Screen) -> Response:
    """The list of pages; POST makes a page with the TikTok preset and opens it."""
    apps_ = await ops.list_apps(s.svc, s.owner)
    context: dict[str, Any] = {"pages": await ops.list_pages(s.svc, s.owner), "apps": apps_}
    if s.request.method == "POST":
        slug, app_key = s.field("slug"), s.field("app_key")
        app = next((a for a in apps_ if a.app_key == app_key), None)
        body = {
            "app_key": app_key,
            "title": app.config.get("name", app_key) if app else app_key,
            "headline": "",
            "body": "",
            "ctas": [d for d in (app.config["destinations"] if app else {}) if d != "web"],
            "mapping": None,
            "ttclid_sub": DEFAULT_TTCLID_SUB,
        }
        try:
            if await s.svc.store.configs.get_page(slug) is not None:
                raise ApiError.invalid("slug", "a page with this slug exists")
            await ops.save_page(s.svc, s.owner, slug, body)
        except ApiError as exc:
            if exc.status not in (400, 403):
                raise
            return s.render(
                "console/pages.html",
                context | {"slug": slug, "app_key": app_key, "errors": field_errors(exc)},
                400,
            )
        return s.redirect(f"/admin/pages/{slug}", "Page created with the TikTok preset.")
    return s.render("console/pages.html", context | {"slug": "", "app_key": ""})


def _page_form_values(s: Screen) -> dict[str, Any]:
    assert s.form is not None
    mapping: Any = None
    if s.field("mapping_mode") == "custom":
        text = s.field("mapping")
        try:
            mapping = json.loads(text) if text else {}
        except ValueError:
            raise ApiError.invalid("mapping", "is not valid JSON") from None
    return {
        "app_key": s.field("app_key"),
        "title": s.field("title"),
        "headline": s.field("headline"),
        "body": s.field("body"),
        "image_url": s.field("image_url") or None,
        "ctas": [c for c in s.form.getlist("ctas") if isinstance(c, str)],
        "mapping": mapping,
        "ttclid_sub": s.field("ttclid_sub") or DEFAULT_TTCLID_SUB,
    }


def _page_context(values: dict[str, Any], apps_: list[Any], mapping_text: str) -> dict[str, Any]:
    return {
        "values": values,
        "apps": apps_,
        "store_destinations": [d for d in DESTINATIONS if d != "web"],
        "stores": STORES,
        "ttclid_subs": TTCLID_SUBS,
        "mapping_text": mapping_text,
    }


@screen(admin=True)
async def page_detail(s: Screen) -> Response:
    page = await ops.get_page(s.svc, s.owner, s.request.path_params["slug"])
    apps_ = await ops.list_apps(s.svc, s.owner)
    if s.request.method == "POST":
        mapping_text = s.field("mapping")
        try:
            values = _page_form_values(s)
            await ops.save_page(s.svc, s.owner, page.slug, values)
        except ApiError as exc:
            if exc.status != 400:
                raise
            shown = {
                **page.config,
                **{
                    k: s.field(k)
                    for k in ("app_key", "title", "headline", "body", "image_url", "ttclid_sub")
                },
            }
            shown["ctas"] = [c for c in s.form.getlist("ctas")] if s.form else []
            shown["mapping"] = mapping_text if s.field("mapping_mode") == "custom" else None
            return s.render(
                "console/page.html",
                _page_context(shown, apps_, mapping_text)
                | {
                    "page": page,
                    "errors": field_errors(exc),
                    "custom": s.field("mapping_mode") == "custom",
                },
                400,
            )
        return s.redirect(f"/admin/pages/{page.slug}", "Saved.")
    mapping = page.config.get("mapping")
    text = json.dumps(mapping if mapping is not None else TIKTOK_PRESET, indent=2)
    return s.render(
        "console/page.html",
        _page_context(page.config, apps_, text) | {"page": page, "custom": mapping is not None},
    )


@screen(admin=True)
async def link_builder(s: Screen) -> Response:
    page = await ops.get_page(s.svc, s.owner, s.request.path_params["slug"])
    app = await ops.get_app(s.svc, s.owner, page.app_key)
    built = links.build_links(page, app, own_origin(s.request, s.svc.settings))
    doctor_url = "/admin/doctor?url=" + quote(built.destination_url, safe="")
    return s.render(
        "console/links.html",
        {"page": page, "app": app, "built": built, "doctor_url": doctor_url, "partner": PARTNER},
    )


@screen(admin=True)
async def link_doctor(s: Screen) -> Response:
    url = (s.request.query_params.get("url") or "").strip()
    diagnosis = None
    if url:
        origin = own_origin(s.request, s.svc.settings)
        page = app = None
        try:
            path = urlsplit(url).path
        except ValueError:
            path = ""
        if path.startswith("/lp/"):
            found = await s.svc.store.configs.get_page(path.removeprefix("/lp/"))
            if found is not None and s.owner.sees(found.app_key):
                page = found
                app = await s.svc.store.configs.get_app(found.app_key)
        diagnosis = links.diagnose(url, origin, page, app, page is not None)
    return s.render("console/doctor.html", {"url": url, "d": diagnosis})


# -- receipts and postbacks ----------------------------------------------------------------------


@screen()
async def install_receipt(s: Screen) -> Response:
    receipt = await ops.install_receipt(s.svc, s.owner, s.request.path_params["install_id"])
    return s.render(
        "console/receipt.html",
        {
            "r": receipt,
            "receipt": receipt["receipt"],
            "pretty": json.dumps(receipt["receipt"], indent=2, ensure_ascii=False),
            "conversion": json.dumps(receipt["conversion_data"], indent=2, ensure_ascii=False),
        },
    )


@screen()
async def postbacks(s: Screen) -> Response:
    state = s.request.query_params.get("state") or None
    state = state if state in POSTBACK_STATES else None
    apps_ = await ops.list_apps(s.svc, s.owner)
    asked = s.request.query_params.get("app") or None
    app_key = next((a.app_key for a in apps_ if a.app_key == asked), None)
    scope = [a.app_key for a in apps_ if app_key in (None, a.app_key)]
    found = await s.svc.store.activity.list_postbacks(scope, state, 200)
    return s.render(
        "console/postbacks.html",
        {
            "postbacks": found,
            "state": state,
            "states": POSTBACK_STATES,
            "apps": apps_,
            "app_key": app_key,
            "iso": iso,
        },
    )


@screen()
async def postback_detail(s: Screen) -> Response:
    detail = await ops.postback_detail(s.svc, s.owner, s.request.path_params["postback_id"])
    return s.render(
        "console/postback.html",
        {
            "p": detail,
            "sent": json.dumps(detail["sent_json"], indent=2, ensure_ascii=False)
            if detail["sent_json"]
            else None,
            "payload": json.dumps(detail["payload"], indent=2, ensure_ascii=False),
        },
    )


@screen(admin=True)
async def retry_postback(s: Screen) -> Response:
    postback_id = s.request.path_params["postback_id"]
    await ops.retry_postback(s.svc, s.owner, postback_id)
    return s.redirect(f"/admin/postbacks/{postback_id}", "Queued to be sent again.")


@screen(admin=True)
async def retry_failed(s: Screen) -> Response:
    app_key = s.field("app_key")
    retried = await ops.retry_failed(s.svc, s.owner, app_key)
    return s.redirect(f"/admin/postbacks?app={quote(app_key)}", f"{retried} queued again.")


@screen()
async def not_found(s: Screen) -> Response:
    """Any other /admin path: the console's own 404 page (the login form without a session)."""
    raise ApiError(404, "not_found", "There is no such page in the console.")


# -- users and tokens ----------------------------------------------------------------------------


@screen(full_admin=True)
async def users(s: Screen) -> Response:
    context: dict[str, Any] = {
        "users": await s.svc.store.users.list_users(),
        "tokens": await s.svc.store.tokens.list_tokens(),
        "iso": iso,
        "new_token": None,
    }
    if s.request.method == "POST":
        label = s.field("label")[:100]
        context["new_token"] = await s.svc.store.tokens.create_token(label, s.svc.clock())
        context["tokens"] = await s.svc.store.tokens.list_tokens()
    return s.render("console/users.html", context)


@screen(full_admin=True)
async def revoke_token(s: Screen) -> Response:
    if not await s.svc.store.tokens.revoke_token(s.request.path_params["token_id"]):
        raise ApiError(404, "not_found", "no such token")
    return s.redirect("/admin/users", "Token revoked.")
