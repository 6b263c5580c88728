"""Owner configuration: apps, pages and the TikTok integration, validated and normalised.

Pure: a JSON value in, a normalised dict out, or `FieldError` naming the offending field as a
JSON path (`destinations.ios.store_url`). Unknown fields are dropped, wrong types refused
(http-api.md: "Unknown JSON fields are ignored, wrong types are 400").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.attribution import ATTRIBUTION_RANGES, DEFAULT_PROBABILISTIC_IOS
from app.destinations import plain_http_url
from app.fields import (
    FieldError,
    as_object,
    boolean,
    listing,
    optional_object,
    path,
    string,
    valid_unicode,
    whole_number,
)
from app.postbacks import catalogue
from app.postbacks import conditions as event_conditions
from app.vocabulary import (
    APP_KEY_RE,
    DEFAULT_INSTALL_EVENT,
    DEFAULT_TTCLID_SUB,
    DESTINATIONS,
    REVENUE_EVENT,
    SLUG_RE,
    TTCLID_SUBS,
    URL_DESTINATIONS,
)

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HOST_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")

FOR_USERS = ("this_partner", "all")

MAX_TEXT = 2000


def _url(value: str | None, field: str) -> str | None:
    """An http(s) URL with a host: anything else (javascript:, data:, relative) is refused,
    because these URLs end up as redirect targets and link hrefs. So is anything a browser may
    read as another host than Python does (credentials, backslashes, whitespace, controls),
    and a port that is not one."""
    if value is None or value == "":
        return None
    if plain_http_url(value) is None:
        raise FieldError(field, "must be an http(s) URL with a host")
    return value


def _host(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    host = value.strip().lower().rstrip(".")
    if not HOST_RE.fullmatch(host):
        raise FieldError(field, "must be a host name such as example.com (no scheme or path)")
    return host


def _origin(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise FieldError(field, "must be an origin such as https://www.example.com") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise FieldError(field, "must be an origin such as https://www.example.com")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def validate_app_key(app_key: str) -> str:
    if not APP_KEY_RE.fullmatch(app_key):
        raise FieldError("app_key", "must be 1 to 40 lowercase letters, digits or '-'")
    return app_key


def validate_slug(slug: str) -> str:
    if not SLUG_RE.fullmatch(slug):
        raise FieldError("slug", "must be 1 to 80 lowercase letters, digits or '-'")
    return slug


def validate_app(body: Any) -> dict[str, Any]:
    obj = as_object(body, "")
    out: dict[str, Any] = {"name": string(obj, "name", required=True, limit=200)}

    destinations: dict[str, Any] = {}
    raw_destinations = optional_object(obj, "destinations")
    for name, raw in raw_destinations.items():
        field = path("destinations", name)
        if name not in DESTINATIONS:
            raise FieldError(field, f"unknown destination; one of {', '.join(DESTINATIONS)}")
        dest = as_object(raw, field)
        if name in URL_DESTINATIONS:
            url = _url(
                string(dest, "url", field, required=True, limit=MAX_TEXT), path(field, "url")
            )
            destinations[name] = {"url": url}
        else:
            store_url = _url(
                string(dest, "store_url", field, required=True, limit=MAX_TEXT),
                path(field, "store_url"),
            )
            app_id = string(dest, "app_id", field, limit=200)
            destinations[name] = {"app_id": app_id or None, "store_url": store_url}
    out["destinations"] = destinations

    out["allowed_redirect_hosts"] = sorted(
        {
            _host(h, path("allowed_redirect_hosts", i))
            for i, h in enumerate(listing(obj, "allowed_redirect_hosts", ""))
        }
    )
    out["allowed_origins"] = sorted(
        {
            _origin(o, path("allowed_origins", i))
            for i, o in enumerate(listing(obj, "allowed_origins", ""))
        }
    )

    attribution = optional_object(obj, "attribution")
    settings: dict[str, Any] = {}
    for key, (default, lo, hi) in ATTRIBUTION_RANGES.items():
        settings[key] = whole_number(attribution, key, "attribution", default, lo, hi)
    settings["probabilistic_ios"] = boolean(
        attribution, "probabilistic_ios", "attribution", DEFAULT_PROBABILISTIC_IOS
    )
    out["attribution"] = settings
    out["report_timezone"] = _report_timezone(obj)
    out["report_currency"] = _report_currency(obj)
    valid_unicode(out, "")
    return out


DEFAULT_REPORT_TIMEZONE = "UTC"
DEFAULT_REPORT_CURRENCY = "USD"


def _report_timezone(obj: Mapping[str, Any]) -> str:
    """An IANA zone name (`Europe/Paris`); the days of the app's reports (reporting.md 2)."""
    name = string(obj, "report_timezone", limit=64) or DEFAULT_REPORT_TIMEZONE
    if name.startswith("/") or ".." in name:
        raise FieldError("report_timezone", "must be an IANA time zone name (Europe/Paris)")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError(
            "report_timezone", "must be an IANA time zone name (Europe/Paris)"
        ) from None
    return name


def _report_currency(obj: Mapping[str, Any]) -> str:
    """The ISO 4217 code cost and ROAS are shown in."""
    code = string(obj, "report_currency", limit=3) or DEFAULT_REPORT_CURRENCY
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise FieldError("report_currency", "must be a three-letter ISO 4217 code (USD)")
    return code


def validate_integration(body: Any) -> tuple[dict[str, Any], str | None]:
    """The integration config without its token, and the token when one was sent (write-only:
    it is never answered back)."""
    obj = as_object(body, "")
    enabled = boolean(obj, "enabled", "", True)
    pixel_code = string(obj, "pixel_code", required=enabled, limit=64)
    if pixel_code and not re.fullmatch(r"[A-Za-z0-9_]+", pixel_code):
        raise FieldError("pixel_code", "must be letters and digits (TikTok's Pixel code)")
    access_token = string(obj, "access_token", limit=512) or None
    test_event_code = string(obj, "test_event_code", limit=64) or None
    install_event = (
        string(obj, "install_event", default=DEFAULT_INSTALL_EVENT, limit=64)
        or DEFAULT_INSTALL_EVENT
    )

    inapp = optional_object(obj, "inapp_postbacks")
    for_users = string(
        inapp, "for_users", "inapp_postbacks", default="this_partner", limit=MAX_TEXT
    )
    if for_users not in FOR_USERS:
        raise FieldError("inapp_postbacks.for_users", f"must be one of {', '.join(FOR_USERS)}")
    events = []
    seen: set[str] = set()
    for i, raw in enumerate(listing(inapp, "events", "inapp_postbacks")):
        field = path("inapp_postbacks.events", i)
        item = as_object(raw, field)
        app_event = string(item, "app_event", field, required=True, limit=100)
        partner_event = string(item, "partner_event", field, required=True, limit=100) or ""
        kind = catalogue.resolve(partner_event)
        if kind is None:
            raise FieldError(
                path(field, "partner_event"),
                "must be a TikTok standard event, a partner identifier or a custom name of "
                "letters, digits, '_' or '-' (GET /api/v1/partners/tiktokweb_int/events)",
            )
        include_revenue = boolean(item, "include_revenue", field, False)
        if include_revenue and not kind.revenue_allowed:
            raise FieldError(
                path(field, "include_revenue"),
                f"revenue can only be sent with the {REVENUE_EVENT} event",
            )
        if app_event in seen:
            raise FieldError(path(field, "app_event"), "is mapped twice")
        seen.add(app_event or "")
        entry: dict[str, Any] = {
            "app_event": app_event,
            "partner_event": partner_event,
            "partner_event_kind": kind.kind,
            "tiktok_event": kind.tiktok_event,
            "include_revenue": include_revenue,
        }
        conditions = event_conditions.validate(item, field)
        if conditions:
            entry["conditions"] = conditions
        events.append(entry)
    config = {
        "enabled": enabled,
        "pixel_code": pixel_code,
        "test_event_code": test_event_code,
        "view_through": boolean(obj, "view_through", "", True),
        "ccpa_limit": boolean(obj, "ccpa_limit", "", False),
        # Postbacks built, kept and shown with their exact JSON, never sent: to check a setup
        # before going live (and the demo's, which must never call TikTok).
        "dry_run": boolean(obj, "dry_run", "", False),
        "install_event": install_event,
        "inapp_postbacks": {
            "enabled": boolean(inapp, "enabled", "inapp_postbacks", True),
            "window_days": whole_number(inapp, "window_days", "inapp_postbacks", 0, 0, 3650),
            "for_users": for_users,
            "events": events,
        },
    }
    valid_unicode(config, "")
    valid_unicode(access_token, "access_token")
    return config, access_token


def validate_page(
    body: Any, validate_mapping: Callable[[Any, str], Any] | None = None
) -> dict[str, Any]:
    """A page config. `validate_mapping` checks a non-null `mapping` (the snippet's rules
    own that shape); the caller checks that `app_key` names an existing app."""
    obj = as_object(body, "")
    app_key = string(obj, "app_key", required=True, limit=40) or ""
    validate_app_key(app_key)
    ctas = []
    for i, name in enumerate(listing(obj, "ctas", "")):
        if name not in DESTINATIONS or name == "web":
            raise FieldError(path("ctas", i), "must name a store destination of the app")
        if name not in ctas:
            ctas.append(name)
    image_url = string(obj, "image_url", limit=2000) or None
    if image_url is not None and not image_url.startswith("/static/"):
        _url(image_url, "image_url")
    mapping = obj.get("mapping")
    if mapping is not None:
        if not isinstance(mapping, Mapping):
            raise FieldError("mapping", "must be an object (afParameters) or null")
        if validate_mapping is not None:
            mapping = validate_mapping(mapping, "mapping")
    ttclid_sub = (
        string(obj, "ttclid_sub", default=DEFAULT_TTCLID_SUB, limit=MAX_TEXT) or DEFAULT_TTCLID_SUB
    )
    if ttclid_sub not in TTCLID_SUBS:
        raise FieldError("ttclid_sub", f"must be one of {', '.join(TTCLID_SUBS)}")
    page = {
        "app_key": app_key,
        "title": string(obj, "title", required=True, limit=200),
        "headline": string(obj, "headline", default="", limit=200),
        "body": string(obj, "body", default="", limit=MAX_TEXT),
        "image_url": image_url,
        "ctas": ctas,
        "mapping": mapping,
        "ttclid_sub": ttclid_sub,
    }
    valid_unicode(page, "")
    return page
