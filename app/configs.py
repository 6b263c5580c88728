"""Owner configuration: apps, pages and the TikTok integration, validated and normalised.

Pure: a JSON value in, a normalised dict out, or `ConfigError` naming the offending field as a
JSON path (`destinations.ios.store_url`). Unknown fields are dropped, wrong types refused
(http-api.md: "Unknown JSON fields are ignored, wrong types are 400").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from app.attribution import ATTRIBUTION_RANGES, DEFAULT_PROBABILISTIC_IOS
from app.destinations import plain_http_url
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


class ConfigError(ValueError):
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(field or None, "must be a JSON object")
    return value


def _optional_object(obj: Mapping[str, Any], key: str, parent: str = "") -> Mapping[str, Any]:
    value = obj.get(key)
    return {} if value is None else _object(value, _path(parent, key))


def _string(
    obj: Mapping[str, Any],
    key: str,
    parent: str = "",
    *,
    required: bool = False,
    default: str | None = None,
    max_len: int = MAX_TEXT,
) -> str | None:
    field = _path(parent, key)
    value = obj.get(key)
    if value is None:
        if required:
            raise ConfigError(field, "is required")
        return default
    if not isinstance(value, str):
        raise ConfigError(field, "must be a string")
    value = value.strip()
    if required and not value:
        raise ConfigError(field, "must not be empty")
    if len(value) > max_len:
        raise ConfigError(field, f"must be at most {max_len} characters")
    return value


def _bool(obj: Mapping[str, Any], key: str, parent: str, default: bool) -> bool:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(_path(parent, key), "must be true or false")
    return value


def _int(obj: Mapping[str, Any], key: str, parent: str, default: int, lo: int, hi: int) -> int:
    field = _path(parent, key)
    value = obj.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, "must be a whole number")
    if not lo <= value <= hi:
        raise ConfigError(field, f"must be between {lo} and {hi}")
    return value


def _list(obj: Mapping[str, Any], key: str, parent: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(_path(parent, key), "must be a list")
    return value


def _valid_unicode(value: Any, field: str) -> None:
    """Refuse a lone surrogate anywhere in `value`: JSON lets a client send "\\ud800", and no
    UTF-8 column, page or answer can hold one. A bad object key is blamed on its parent, so
    the error itself stays printable."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(field or None, "must be valid Unicode text") from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _valid_unicode(key, field)
            _valid_unicode(item, _path(field, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _valid_unicode(item, _path(field, i))


def _url(value: str | None, field: str) -> str | None:
    """An http(s) URL with a host: anything else (javascript:, data:, relative) is refused,
    because these URLs end up as redirect targets and link hrefs. So is anything a browser may
    read as another host than Python does (credentials, backslashes, whitespace, controls),
    and a port that is not one."""
    if value is None or value == "":
        return None
    if plain_http_url(value) is None:
        raise ConfigError(field, "must be an http(s) URL with a host")
    return value


def _host(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(field, "must be a string")
    host = value.strip().lower().rstrip(".")
    if not HOST_RE.fullmatch(host):
        raise ConfigError(field, "must be a host name such as example.com (no scheme or path)")
    return host


def _origin(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(field, "must be a string")
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ConfigError(field, "must be an origin such as https://www.example.com") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(field, "must be an origin such as https://www.example.com")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def validate_app_key(app_key: str) -> str:
    if not APP_KEY_RE.fullmatch(app_key):
        raise ConfigError("app_key", "must be 1 to 40 lowercase letters, digits or '-'")
    return app_key


def validate_slug(slug: str) -> str:
    if not SLUG_RE.fullmatch(slug):
        raise ConfigError("slug", "must be 1 to 80 lowercase letters, digits or '-'")
    return slug


def validate_app(body: Any) -> dict[str, Any]:
    obj = _object(body, "")
    out: dict[str, Any] = {"name": _string(obj, "name", required=True, max_len=200)}

    destinations: dict[str, Any] = {}
    raw_destinations = _optional_object(obj, "destinations")
    for name, raw in raw_destinations.items():
        field = _path("destinations", name)
        if name not in DESTINATIONS:
            raise ConfigError(field, f"unknown destination; one of {', '.join(DESTINATIONS)}")
        dest = _object(raw, field)
        if name in URL_DESTINATIONS:
            url = _url(_string(dest, "url", field, required=True), _path(field, "url"))
            destinations[name] = {"url": url}
        else:
            store_url = _url(
                _string(dest, "store_url", field, required=True), _path(field, "store_url")
            )
            app_id = _string(dest, "app_id", field, max_len=200)
            destinations[name] = {"app_id": app_id or None, "store_url": store_url}
    out["destinations"] = destinations

    out["allowed_redirect_hosts"] = sorted(
        {
            _host(h, _path("allowed_redirect_hosts", i))
            for i, h in enumerate(_list(obj, "allowed_redirect_hosts", ""))
        }
    )
    out["allowed_origins"] = sorted(
        {
            _origin(o, _path("allowed_origins", i))
            for i, o in enumerate(_list(obj, "allowed_origins", ""))
        }
    )

    attribution = _optional_object(obj, "attribution")
    settings: dict[str, Any] = {}
    for key, (default, lo, hi) in ATTRIBUTION_RANGES.items():
        settings[key] = _int(attribution, key, "attribution", default, lo, hi)
    settings["probabilistic_ios"] = _bool(
        attribution, "probabilistic_ios", "attribution", DEFAULT_PROBABILISTIC_IOS
    )
    out["attribution"] = settings
    _valid_unicode(out, "")
    return out


def validate_integration(body: Any) -> tuple[dict[str, Any], str | None]:
    """The integration config without its token, and the token when one was sent (write-only:
    it is never answered back)."""
    obj = _object(body, "")
    enabled = _bool(obj, "enabled", "", True)
    pixel_code = _string(obj, "pixel_code", required=enabled, max_len=64)
    if pixel_code and not re.fullmatch(r"[A-Za-z0-9_]+", pixel_code):
        raise ConfigError("pixel_code", "must be letters and digits (TikTok's Pixel code)")
    access_token = _string(obj, "access_token", max_len=512) or None
    test_event_code = _string(obj, "test_event_code", max_len=64) or None
    install_event = (
        _string(obj, "install_event", default=DEFAULT_INSTALL_EVENT, max_len=64)
        or DEFAULT_INSTALL_EVENT
    )

    inapp = _optional_object(obj, "inapp_postbacks")
    for_users = _string(inapp, "for_users", "inapp_postbacks", default="this_partner")
    if for_users not in FOR_USERS:
        raise ConfigError("inapp_postbacks.for_users", f"must be one of {', '.join(FOR_USERS)}")
    events = []
    seen: set[str] = set()
    for i, raw in enumerate(_list(inapp, "events", "inapp_postbacks")):
        field = _path("inapp_postbacks.events", i)
        item = _object(raw, field)
        app_event = _string(item, "app_event", field, required=True, max_len=100)
        partner_event = _string(item, "partner_event", field, required=True, max_len=100)
        include_revenue = _bool(item, "include_revenue", field, False)
        if include_revenue and partner_event != REVENUE_EVENT:
            raise ConfigError(
                _path(field, "include_revenue"),
                f"revenue can only be sent with the {REVENUE_EVENT} event",
            )
        if app_event in seen:
            raise ConfigError(_path(field, "app_event"), "is mapped twice")
        seen.add(app_event or "")
        events.append(
            {
                "app_event": app_event,
                "partner_event": partner_event,
                "include_revenue": include_revenue,
            }
        )
    config = {
        "enabled": enabled,
        "pixel_code": pixel_code,
        "test_event_code": test_event_code,
        "view_through": _bool(obj, "view_through", "", True),
        "ccpa_limit": _bool(obj, "ccpa_limit", "", False),
        "install_event": install_event,
        "inapp_postbacks": {
            "enabled": _bool(inapp, "enabled", "inapp_postbacks", True),
            "window_days": _int(inapp, "window_days", "inapp_postbacks", 0, 0, 3650),
            "for_users": for_users,
            "events": events,
        },
    }
    _valid_unicode(config, "")
    _valid_unicode(access_token, "access_token")
    return config, access_token


def validate_page(
    body: Any, validate_mapping: Callable[[Any, str], Any] | None = None
) -> dict[str, Any]:
    """A page config. `validate_mapping` checks a non-null `mapping` (the snippet's rules
    own that shape); the caller checks that `app_key` names an existing app."""
    obj = _object(body, "")
    app_key = _string(obj, "app_key", required=True, max_len=40) or ""
    validate_app_key(app_key)
    ctas = []
    for i, name in enumerate(_list(obj, "ctas", "")):
        if name not in DESTINATIONS or name == "web":
            raise ConfigError(_path("ctas", i), "must name a store destination of the app")
        if name not in ctas:
            ctas.append(name)
    image_url = _string(obj, "image_url", max_len=2000) or None
    if image_url is not None and not image_url.startswith("/static/"):
        _url(image_url, "image_url")
    mapping = obj.get("mapping")
    if mapping is not None:
        if not isinstance(mapping, Mapping):
            raise ConfigError("mapping", "must be an object (afParameters) or null")
        if validate_mapping is not None:
            mapping = validate_mapping(mapping, "mapping")
    ttclid_sub = _string(obj, "ttclid_sub", default=DEFAULT_TTCLID_SUB) or DEFAULT_TTCLID_SUB
    if ttclid_sub not in TTCLID_SUBS:
        raise ConfigError("ttclid_sub", f"must be one of {', '.join(TTCLID_SUBS)}")
    page = {
        "app_key": app_key,
        "title": _string(obj, "title", required=True, max_len=200),
        "headline": _string(obj, "headline", default="", max_len=200),
        "body": _string(obj, "body", default="", max_len=MAX_TEXT),
        "image_url": image_url,
        "ctas": ctas,
        "mapping": mapping,
        "ttclid_sub": ttclid_sub,
    }
    _valid_unicode(page, "")
    return page
