"""`GET /openapi.json`: the OpenAPI 3.1 description of every route of `app.server.routes()`.

The document is written here in code, one small builder per audience, from the same constants
the validators use (`app.configs`), so ranges, defaults and names cannot drift from what is
enforced. Each operation is keyed by (path template, method); its `operationId` is the handler's
`module.function` as the route table names it, so a handler that moves takes its id along.
`tests/test_openapi.py` walks the route table against the document both ways.

Conventions of the document:
- HEAD is not listed: every GET also answers HEAD (tracking URLs answer it without recording).
- Errors are one shape, `#/components/schemas/Error`, with a 4xx status. Two answers are not
  errors of the API and keep their own shape: the landing page's 404 is an HTML page for
  people, and `/healthz` says 503 in its own JSON for load balancers.
- Request bodies accept fields the document does not list (they are ignored); a wrong type is
  a 400 naming the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from importlib import metadata
from typing import Any, get_args

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app import attribution, audiences, configs, vocabulary
from app.postbacks import conditions, rules, tiktok
from app.reports import raw
from app.reports.overview import GROUPS, MAX_DAYS
from app.tiktok_ads import connection as ads_connection
from app.touches import CAMPAIGN_COLUMNS
from app.web.errors import MAX_BODY

Schema = dict[str, Any]
Operation = dict[str, Any]

CACHE_CONTROL = "public, max-age=300"
Security = list[dict[str, list[str]]]
# The owner's routes take an admin token, or a console session (with its CSRF token).
ADMIN: Security = [{"adminToken": []}, {"consoleSession": []}]
SDK: Security = [{"sdkKey": []}]
PUBLIC: Security = []
# Every method but HEAD is documented (see the module docstring).
UNDOCUMENTED_METHODS = frozenset({"HEAD"})
_CONVERTER = re.compile(r"\{(\w+):\w+\}")


# -- schema helpers ----------------------------------------------------------------------------


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def string(description: str | None = None, *, nullable: bool = False, **extra: Any) -> Schema:
    schema: Schema = {"type": ["string", "null"] if nullable else "string", **extra}
    if description:
        schema["description"] = description
    return schema


def obj(
    properties: dict[str, Schema],
    required: Iterable[str] = (),
    *,
    closed: bool = False,
    description: str | None = None,
) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required := list(required):
        schema["required"] = required
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def boolean(default: bool, description: str | None = None) -> Schema:
    schema: Schema = {"type": "boolean", "default": default}
    if description:
        schema["description"] = description
    return schema


def time_output(nullable: bool = True) -> Schema:
    return string("ISO 8601 UTC", nullable=nullable, format="date-time")


def time_input(description: str) -> Schema:
    return {
        "description": f"{description}; ISO 8601 or Unix seconds",
        "oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
    }


def nullable_strings(names: Iterable[str]) -> dict[str, Schema]:
    return {name: string(nullable=True) for name in names}


# -- operation helpers -------------------------------------------------------------------------


def path_param(name: str, description: str, pattern: str | None = None) -> Schema:
    schema = string(pattern=pattern) if pattern else string()
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def query(name: str, description: str, *, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": string(),
    }


def query_params(description: str) -> Schema:
    """Any query parameters at all: campaign parameters arrive under whatever names the ad
    network or the owner's mapping gives them, and are kept (bounded) as sent."""
    return {
        "name": "params",
        "in": "query",
        "description": description,
        "style": "form",
        "explode": True,
        "schema": {"type": "object", "additionalProperties": string()},
    }


def json_body(schema: Schema, *media: str) -> Schema:
    types = media or ("application/json",)
    return {
        "required": True,
        "description": f"JSON, at most {MAX_BODY // 1024} KiB",
        "content": {t: {"schema": schema} for t in types},
    }


def ok(
    description: str, schema: Schema | None = None, media: str = "application/json", **extra: Any
) -> Schema:
    answer: Schema = {"description": description, **extra}
    if schema is not None:
        answer["content"] = {media: {"schema": schema}}
    return answer


def error(description: str) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": ref("Error")}},
    }


def shared(name: str) -> Schema:
    return {"$ref": f"#/components/responses/{name}"}


def op(
    summary: str,
    tag: str,
    security: Security,
    responses: dict[str, Schema],
    *,
    parameters: Iterable[Schema] = (),
    body: Schema | None = None,
    description: str | None = None,
) -> Operation:
    operation: Operation = {"summary": summary, "tags": [tag], "security": security}
    if description:
        operation["description"] = description
    if params := list(parameters):
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = responses
    return operation


# JSON endpoints refuse bodies past the limit and content types they do not read.
BODY_ERRORS = {"413": shared("TooLarge"), "415": shared("UnsupportedMediaType")}
ADMIN_ERRORS = {"401": shared("Unauthorized"), "403": shared("Forbidden")}


# -- components --------------------------------------------------------------------------------


def error_schema() -> Schema:
    return obj(
        {
            "error": string(
                "A stable code: invalid, invalid_json, unauthorized, not_found, too_large, "
                "unsupported_media_type, origin_not_allowed, already_sent, unknown_install, "
                "method_not_allowed"
            ),
            "message": string("For people; not to be parsed"),
            "field": string(
                "The offending field as a JSON path (`destinations.ios.store_url`)", nullable=True
            ),
        },
        ["error", "message", "field"],
    )


def destinations_schema() -> Schema:
    store = obj(
        {
            "app_id": string("The store's id of the app", nullable=True, maxLength=200),
            "store_url": string("http(s) URL", format="uri", maxLength=configs.MAX_TEXT),
        },
        ["store_url"],
    )
    download = obj(
        {"url": string("http(s) URL", format="uri", maxLength=configs.MAX_TEXT)}, ["url"]
    )
    return obj(
        {
            name: download if name in vocabulary.URL_DESTINATIONS else store
            for name in vocabulary.DESTINATIONS
        },
        closed=True,
        description="Where clicks go, by platform; an unknown platform is a 400",
    )


def attribution_schema() -> Schema:
    settings: dict[str, Schema] = {
        key: {"type": "integer", "default": default, "minimum": lo, "maximum": hi}
        for key, (default, lo, hi) in attribution.ATTRIBUTION_RANGES.items()
    }
    settings["probabilistic_ios"] = boolean(True)
    return obj(settings)


def app_config_schema() -> Schema:
    return obj(
        {
            "name": string(maxLength=200),
            "destinations": ref("Destinations"),
            "allowed_redirect_hosts": array(
                string("A host name, no scheme or path"),
                description="Hosts `af_r` and `af_web_dp` may redirect to, besides the "
                "destinations' own",
            ),
            "allowed_origins": array(
                string("An origin such as https://www.example.com"),
                description="The owner's sites whose snippet may send impression beacons",
            ),
            "attribution": ref("AttributionSettings"),
            "report_timezone": string("IANA time zone of report days", default="UTC"),
            "report_currency": string(
                "ISO 4217 code cost and ROAS are shown in", default="USD", pattern="^[A-Z]{3}$"
            ),
        },
        ["name"],
        description="Full replace: what is left out takes its default",
    )


def app_schema() -> Schema:
    stored = obj(
        {
            "app_key": string(),
            "sdk_key": string(
                "The app's key for /api/v1/installs and /api/v1/events; kept across updates"
            ),
            "created_at": time_output(False),
            "updated_at": time_output(False),
        },
        [
            "app_key",
            "sdk_key",
            "name",
            "destinations",
            "allowed_redirect_hosts",
            "allowed_origins",
            "attribution",
            "created_at",
            "updated_at",
        ],
    )
    return {"allOf": [ref("AppConfig"), stored]}


def integration_config_schema() -> Schema:
    condition = obj(
        {
            "param": string(
                "A key of the event's event_value", pattern=conditions.PARAM_RE.pattern
            ),
            "op": string(enum=list(conditions.OPERATORS)),
            "value": {
                "type": ["string", "number"],
                "description": "A number for >, >=, <, <=; a string for contains",
            },
        },
        ["param", "op", "value"],
    )
    event = obj(
        {
            "app_event": string(maxLength=100),
            "partner_event": string(
                "A TikTok standard event, a partner identifier (sent under its TikTok name) or "
                "a custom name: GET /api/v1/partners/tiktokweb_int/events",
                maxLength=100,
            ),
            "partner_event_kind": string(
                "Answered: which of the three partner_event is",
                enum=["standard", "partner_identifier", "custom"],
                readOnly=True,
            ),
            "tiktok_event": string("Answered: the event TikTok receives", readOnly=True),
            "include_revenue": boolean(False, "Only where the event is sent as Purchase"),
            "conditions": array(
                condition,
                maxItems=conditions.MAX_CONDITIONS,
                description="All must hold for the event to be sent (else `condition_failed`)",
            ),
        },
        ["app_event", "partner_event"],
    )
    inapp = obj(
        {
            "enabled": boolean(True),
            "window_days": {
                "type": "integer",
                "default": 0,
                "minimum": 0,
                "maximum": 3650,
                "description": "0: no limit",
            },
            "for_users": string(enum=list(configs.FOR_USERS), default=configs.FOR_USERS[0]),
            "events": array(event, description="Each app_event at most once"),
        }
    )
    return obj(
        {
            "enabled": boolean(True),
            "pixel_code": string(
                "Required when enabled", nullable=True, maxLength=64, pattern="^[A-Za-z0-9_]+$"
            ),
            "access_token": string(
                "Write-only: never answered back", nullable=True, maxLength=512, writeOnly=True
            ),
            "test_event_code": string(nullable=True, maxLength=64),
            "view_through": boolean(True),
            "ccpa_limit": boolean(False),
            "dry_run": boolean(
                False,
                "Postbacks are built, kept and shown with their exact JSON (state dry_run), "
                "never sent to TikTok",
            ),
            "install_event": string(maxLength=64, default="Download"),
            "inapp_postbacks": inapp,
        }
    )


def integration_schema() -> Schema:
    stored = obj(
        {
            "app_key": string(),
            "partner": string(const=vocabulary.PARTNER),
            "access_token_set": {"type": "boolean"},
            "updated_at": time_output(False),
            "warning": string("Present when enabled without an access token"),
        },
        ["app_key", "partner", "access_token_set", "updated_at"],
    )
    return {"allOf": [ref("IntegrationConfig"), stored]}


def page_config_schema() -> Schema:
    ctas = [d for d in vocabulary.DESTINATIONS if d != "web"]
    return obj(
        {
            "app_key": string("An existing app", pattern=vocabulary.APP_KEY_RE.pattern),
            "title": string(maxLength=200),
            "headline": string(maxLength=200, default=""),
            "body": string(
                "Paragraphs separated by blank lines", maxLength=configs.MAX_TEXT, default=""
            ),
            "image_url": string("/static/... or an http(s) URL", nullable=True, maxLength=2000),
            "ctas": array(
                string(enum=ctas),
                description="Store buttons; each must be a destination of the app",
            ),
            "mapping": {
                "type": ["object", "null"],
                "description": "Smart Script afParameters; null is the TikTok preset",
            },
            "ttclid_sub": string(
                enum=list(vocabulary.TTCLID_SUBS), default=vocabulary.DEFAULT_TTCLID_SUB
            ),
        },
        ["app_key", "title"],
    )


def page_schema() -> Schema:
    stored = obj(
        {"slug": string(), "created_at": time_output(False), "updated_at": time_output(False)},
        ["slug", "created_at", "updated_at"],
    )
    return {"allOf": [ref("PageConfig"), stored]}


def install_request_schema() -> Schema:
    device = obj(
        {key: string(maxLength=128) for key in ("idfa", "idfv", "gaid", "android_id")},
        description="Device ids; all-zero ids are ignored",
    )
    return obj(
        {
            "app_key": string("The app the sdk_key belongs to"),
            "platform": string(
                "The store the app came from. A PC, console or TV client (steam, epic, "
                "nativepc, battlenet, playstation, ...) sends platform, app_instance_id, "
                "install_time and, when posting server to server, ip: it is matched by the "
                "desktop rule (IP and store family within desktop_window_minutes)",
                enum=list(vocabulary.DIRECT_PLATFORMS),
            ),
            "app_instance_id": string("Unique per install of the app", maxLength=128),
            "install_time": time_input("Defaults to now; at most a day ahead"),
            "device": device,
            "ip": string("Defaults to the request's client address"),
            "user_agent": string("Defaults to the request's User-Agent"),
            "os_version": string(maxLength=32),
            "device_model": string(maxLength=128),
            "language": string(maxLength=64),
            "install_referrer": string("Play Install Referrer, raw or URL-encoded", maxLength=2048),
            "referrer_click_time": time_input("Checked, not used"),
            "install_begin_time": time_input("Checked, not used"),
            "att_status": string(
                enum=["authorized", "denied", "restricted", "not_determined", "notDetermined"]
            ),
        },
        ["app_key", "platform", "app_instance_id"],
    )


def conversion_data_schema() -> Schema:
    touch = obj(
        {"type": string(enum=["click", "impression"]), "id": string(), "time": time_output(False)},
        ["type", "id", "time"],
    )
    return obj(
        {
            "install_id": string(),
            "is_first_launch": {"type": "boolean"},
            "status": string(enum=list(get_args(attribution.Status))),
            "af_status": string(enum=["Non-organic", "Organic"]),
            "media_source": string("`organic` when not attributed"),
            "original_media_source": string(nullable=True),
            "match_type": string(nullable=True),
            "touch": {"oneOf": [touch, {"type": "null"}]},
            **nullable_strings(CAMPAIGN_COLUMNS),
            "ttclid": string(nullable=True),
            "original_url": string(nullable=True),
        },
        ["install_id", "is_first_launch", "status", "af_status", "media_source"],
    )


def install_schema() -> Schema:
    postback = obj(
        {
            "id": string(),
            "event": string(),
            "state": ref("PostbackState"),
            "attempts": {"type": "integer"},
            "last_code": {"type": ["integer", "null"]},
            "last_message": string(nullable=True),
        }
    )
    return obj(
        {
            "id": string(),
            "app_key": string(),
            "app_instance_id": string(),
            "platform": string(),
            "install_time": time_output(False),
            "received_at": time_output(False),
            "status": string(enum=list(get_args(attribution.Status))),
            "media_source": string(),
            "touch_time": time_output(),
            "conversion_data": ref("ConversionData"),
            "receipt": obj({}, description="How the decision was made (attribution.md)"),
            "postbacks": array(postback),
        },
        ["id", "app_key", "app_instance_id", "status", "conversion_data", "receipt", "postbacks"],
        description="The stored install: these fields and its other stored columns",
    )


def event_request_schema() -> Schema:
    return obj(
        {
            "app_key": string("The app the sdk_key belongs to"),
            "app_instance_id": string(maxLength=128),
            "event_name": string(maxLength=100),
            "event_time": time_input("Defaults to now"),
            "event_id": string("Client-unique; the same id twice is stored once", maxLength=128),
            "event_value": obj(
                {
                    "af_revenue": {
                        "description": "A decimal number, negative for refunds",
                        "type": ["string", "number"],
                    },
                    "af_currency": string(
                        "ISO 4217; USD when af_revenue comes alone", pattern="^[A-Za-z]{3}$"
                    ),
                    **{
                        key: {
                            "description": f"Sent as properties.contents[].{name}; "
                            "one value or a list (one per content)",
                            "type": ["string", "number", "array"],
                        }
                        for key, name in tiktok.CONTENT_PARAMS
                    },
                    **{
                        key: string(f"Sent as properties.{name}")
                        for key, name in tiktok.TEXT_PARAMS
                    },
                }
            ),
            "user": obj(
                {k: string(maxLength=256) for k in ("email", "phone", "external_id")},
                description="Sent to postbacks hashed, never stored",
            ),
        },
        ["app_key", "app_instance_id", "event_name"],
    )


def event_answer_schema() -> Schema:
    return obj(
        {
            "event_id": string(),
            "media_source": string(),
            "postback": string(enum=list(get_args(rules.EventPostbackDecision))),
            "conditions": array(
                obj(
                    {
                        "param": string(),
                        "op": string(),
                        "value": {"type": ["string", "number"]},
                        "actual": {
                            "type": ["string", "number", "boolean", "null"],
                            "description": "What the event sent",
                        },
                        "met": {"type": "boolean"},
                    },
                    ["param", "op", "value", "actual", "met"],
                ),
                description="Present when the mapping has conditions: each as evaluated",
            ),
            "flags": array(
                string(enum=["contents_truncated", "property_truncated", "property_invalid"]),
                description="Present when a TikTok property was cut or left out",
            ),
        },
        ["event_id", "media_source", "postback"],
    )


def postback_schema() -> Schema:
    attempt = obj(
        {
            "time": time_output(False),
            "state": ref("PostbackState"),
            "http_status": {"type": ["integer", "null"]},
            "code": {"type": ["integer", "null"]},
            "message": string(nullable=True),
            "request_id": string(nullable=True),
            "batch_size": {"type": ["integer", "null"]},
        }
    )
    return obj(
        {
            "id": string(),
            "app_key": string(),
            "partner": string(),
            "kind": string(enum=["install", "event"]),
            "subject_id": string(),
            "event": string(),
            "state": ref("PostbackState"),
            "attempts": {"type": "integer"},
            "created_at": time_output(False),
            "sent_at": time_output(),
            "next_attempt_at": time_output(),
            "last_http_status": {"type": ["integer", "null"]},
            "last_code": {"type": ["integer", "null"]},
            "last_message": string(nullable=True),
            "last_request_id": string(nullable=True),
            "payload": obj({}, description="The event as queued"),
            "sent_json": {
                "type": ["object", "null"],
                "description": "The request body last sent for it (dry_run: that would be sent)",
            },
            "attempt_log": array(attempt),
        },
        ["id", "app_key", "state", "attempts", "payload", "attempt_log"],
    )


def schemas() -> dict[str, Schema]:
    return {
        "Error": error_schema(),
        "Destinations": destinations_schema(),
        "AttributionSettings": attribution_schema(),
        "AppConfig": app_config_schema(),
        "App": app_schema(),
        "IntegrationConfig": integration_config_schema(),
        "Integration": integration_schema(),
        "PageConfig": page_config_schema(),
        "Page": page_schema(),
        "ImpressionBeacon": obj(
            {
                "url": string("The page URL with its query"),
                "referrer": string("document.referrer"),
                "pvid": string("The page view id; the same pvid twice is one impression"),
                "params": {
                    "type": "object",
                    "additionalProperties": string(),
                    "description": "Incoming params, already parsed",
                },
            }
        ),
        "InstallRequest": install_request_schema(),
        "ConversionData": conversion_data_schema(),
        "Install": install_schema(),
        "EventRequest": event_request_schema(),
        "EventAnswer": event_answer_schema(),
        "PostbackState": string(enum=["pending", "retrying", "sent", "failed", "dead", "dry_run"]),
        "Postback": postback_schema(),
        **audience_schemas(),
        "TikTokAdsConfig": tiktok_ads_config_schema(),
        "TikTokAds": tiktok_ads_schema(),
    }


def shared_responses() -> dict[str, Schema]:
    return {
        "BadRequest": error(
            "Invalid: `field` names the offending field (`invalid`, `invalid_json`)"
        ),
        "Unauthorized": error("No or unknown credentials (`unauthorized`)"),
        "Forbidden": error(
            "A session request without its X-CSRF-Token or from another site (`csrf`), a "
            "viewer's request to configuration or a retry, or an app outside the user's "
            "(`forbidden`)"
        ),
        "NotFound": error("No such resource (`not_found`)"),
        "TooLarge": error(f"Body over {MAX_BODY // 1024} KiB (`too_large`)"),
        "UnsupportedMediaType": error("Not application/json (`unsupported_media_type`)"),
    }


def security_schemes() -> dict[str, Schema]:
    return {
        "adminToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "An admin token, made with `python -m app token create`",
        },
        "consoleSession": {
            "type": "apiKey",
            "in": "cookie",
            "name": "gw_session",
            "description": "A console session (log in at /admin). POST, PUT and DELETE also "
            "send the session's CSRF token as X-CSRF-Token. Answers are limited to the user's "
            "apps; viewers may read installs and postbacks only",
        },
        "sdkKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "The app's `sdk_key` (answered by PUT /api/v1/apps/{app_key})",
        },
    }


# -- operations --------------------------------------------------------------------------------

APP_KEY = path_param("app_key", "The app", vocabulary.APP_KEY_RE.pattern)
SLUG = path_param("slug", "The hosted page", vocabulary.SLUG_RE.pattern)
VERSION = query("v", "Content hash: a matching one is cached for a year")
NOT_MODIFIED = {"304": ok("If-None-Match matched the ETag")}
REDIRECT = ok(
    "To the destination; Cache-Control: no-store",
    headers={"Location": {"schema": string(format="uri")}},
)
ORIGIN_REFUSED = error("An Origin the app does not allow (`origin_not_allowed`)")
UNKNOWN_APP = error("Unknown app (`not_found`)")


def tracking_operations() -> dict[tuple[str, str], Operation]:
    tag = "tracking"
    campaign = query_params(
        "Campaign parameters (`pid`, `c`, `af_c_id`, `af_adset`, `af_ad`, "
        "`af_sub1`..`af_sub5`, `ttclid`, ...), kept as sent"
    )
    click_params = [
        query("platform", "Forces the platform (a Steam button says platform=steam)"),
        query("pvid", "The page view the click came from"),
        query("af_r", "Redirect target; followed only to a host the owner configured"),
        query("af_web_dp", "Desktop target, under the same host rule"),
    ]
    direct = [
        path_param("platform", "The store", "^(" + "|".join(vocabulary.DIRECT_PLATFORMS) + ")$"),
        path_param("app_id", "The app's id in that store"),
        query("af_media_source", "Media source (pid)"),
        query("af_campaign", "Campaign name (c)"),
        query("af_campaign_id", "Campaign id (af_c_id)"),
        query("af_r", "Redirect target; followed only to a host the owner configured"),
    ]
    return {
        ("/lp/{slug}", "get"): op(
            "Hosted landing page",
            tag,
            PUBLIC,
            {
                "200": ok("The page", string(), "text/html"),
                "404": ok("Unknown page: an HTML page for people", string(), "text/html"),
            },
            parameters=[SLUG, query_params("Landing parameters, forwarded to the click URL")],
        ),
        ("/i/{app_key}", "get"): op(
            "Impression pixel",
            tag,
            PUBLIC,
            {
                "200": ok(
                    "A 1x1 GIF; Cache-Control: no-store", string(format="binary"), "image/gif"
                ),
                "403": ORIGIN_REFUSED,
                "404": UNKNOWN_APP,
            },
            parameters=[
                APP_KEY,
                query("pvid", "The page view; seen before: not recorded again"),
                campaign,
            ],
        ),
        ("/i/{app_key}", "post"): op(
            "Impression beacon",
            tag,
            PUBLIC,
            {
                "202": ok(
                    "Recorded (or already, for the same pvid)",
                    obj({"id": string("The impression id")}, ["id"]),
                ),
                "400": shared("BadRequest"),
                "403": ORIGIN_REFUSED,
                "404": UNKNOWN_APP,
                **BODY_ERRORS,
            },
            parameters=[APP_KEY],
            body=json_body(ref("ImpressionBeacon"), "text/plain", "application/json"),
            description="text/plain is accepted so browsers send it without a CORS preflight",
        ),
        ("/i/{app_key}", "options"): op(
            "CORS preflight of the beacon",
            tag,
            PUBLIC,
            {
                "204": ok("Allowed: the Access-Control-Allow-* headers"),
                "403": ORIGIN_REFUSED,
                "404": UNKNOWN_APP,
            },
            parameters=[APP_KEY],
        ),
        ("/c/{app_key}", "get"): op(
            "Click and store redirect",
            tag,
            PUBLIC,
            {"302": REDIRECT, "404": UNKNOWN_APP},
            parameters=[APP_KEY, *click_params, campaign],
        ),
        ("/v1.0/c2s/click/app/{platform}/{app_id}", "get"): op(
            "Direct click URL for PC, console and CTV stores",
            tag,
            PUBLIC,
            {
                "302": REDIRECT,
                "404": error("Unknown platform, or no app with that app id (`not_found`)"),
            },
            parameters=[*direct, campaign],
        ),
        ("/smartscript.js", "get"): op(
            "The Smart Script snippet",
            tag,
            PUBLIC,
            {"200": ok("JavaScript, with an ETag", string(), "text/javascript"), **NOT_MODIFIED},
            parameters=[VERSION],
        ),
        ("/banner.js", "get"): op(
            "The smart banner",
            tag,
            PUBLIC,
            {"200": ok("JavaScript, with an ETag", string(), "text/javascript"), **NOT_MODIFIED},
            parameters=[VERSION],
        ),
        ("/qr.svg", "get"): op(
            "QR code of a URL of this service",
            tag,
            PUBLIC,
            {
                "200": ok("An SVG QR code", string(), "image/svg+xml"),
                "400": error("`u` missing, not on this service's origin, or too long (`invalid`)"),
            },
            parameters=[query("u", "The URL to encode, on this service's origin", required=True)],
        ),
        ("/static/{path}", "get"): op(
            "Static files of the hosted pages",
            tag,
            PUBLIC,
            {
                "200": ok("The file, with an ETag", string(format="binary"), "*/*"),
                **NOT_MODIFIED,
                "404": shared("NotFound"),
            },
            parameters=[path_param("path", "The file under static/; may hold slashes"), VERSION],
        ),
    }


def app_operations() -> dict[tuple[str, str], Operation]:
    tag = "app"
    return {
        ("/api/v1/installs", "post"): op(
            "Report an install; answers its conversion data",
            tag,
            SDK,
            {
                "200": ok(
                    "The conversion data; the same app_instance_id again answers the "
                    "stored one with is_first_launch false",
                    ref("ConversionData"),
                ),
                "400": shared("BadRequest"),
                "401": error("No sdk_key, or not the sdk_key of app_key (`unauthorized`)"),
                **BODY_ERRORS,
            },
            body=json_body(ref("InstallRequest")),
        ),
        ("/api/v1/events", "post"): op(
            "Report an in-app event",
            tag,
            SDK,
            {
                "202": ok("Stored (once per event_id)", ref("EventAnswer")),
                "400": shared("BadRequest"),
                "401": error("No sdk_key, or not the sdk_key of app_key (`unauthorized`)"),
                "404": error("No install with this app_instance_id (`unknown_install`)"),
                **BODY_ERRORS,
            },
            body=json_body(ref("EventRequest")),
        ),
    }


def partner_events_schema() -> Schema:
    return obj(
        {
            "partner": string(const=vocabulary.PARTNER),
            "standard_events": array(
                obj(
                    {
                        "name": string(),
                        "revenue_allowed": {"type": "boolean"},
                        "default_app_event": string(
                            "The app event mapped to it by default", nullable=True
                        ),
                    },
                    ["name", "revenue_allowed", "default_app_event"],
                )
            ),
            "partner_identifiers": array(
                obj(
                    {
                        "name": string(),
                        "tiktok_event": string("What TikTok receives"),
                        "revenue_allowed": {"type": "boolean"},
                    },
                    ["name", "tiktok_event", "revenue_allowed"],
                )
            ),
            "custom_events": obj(
                {
                    "allowed": {"type": "boolean"},
                    "pattern": string(),
                    "revenue_allowed": {"type": "boolean"},
                },
                ["allowed", "pattern", "revenue_allowed"],
            ),
        },
        ["partner", "standard_events", "partner_identifiers", "custom_events"],
    )


def owner_operations() -> dict[tuple[str, str], Operation]:
    tag = "owner"
    found = {**ADMIN_ERRORS, "404": shared("NotFound")}
    put = {"400": shared("BadRequest"), **ADMIN_ERRORS, **BODY_ERRORS}
    gone = ok("Deleted")
    integration = "/api/v1/apps/{app_key}/integrations/" + vocabulary.PARTNER
    postback_id = path_param("postback_id", "The postback")
    return {
        ("/api/v1/apps", "get"): op(
            "List apps",
            tag,
            ADMIN,
            {"200": ok("Every app", obj({"apps": array(ref("App"))}, ["apps"])), **ADMIN_ERRORS},
        ),
        ("/api/v1/apps/{app_key}", "get"): op(
            "Get an app",
            tag,
            ADMIN,
            {"200": ok("The app", ref("App")), **found},
            parameters=[APP_KEY],
        ),
        ("/api/v1/apps/{app_key}", "put"): op(
            "Create or replace an app",
            tag,
            ADMIN,
            {"200": ok("Stored", ref("App")), **put},
            parameters=[APP_KEY],
            body=json_body(ref("AppConfig")),
        ),
        ("/api/v1/apps/{app_key}", "delete"): op(
            "Delete an app",
            tag,
            ADMIN,
            {"204": gone, **found},
            parameters=[APP_KEY],
        ),
        ("/api/v1/partners/" + vocabulary.PARTNER + "/events", "get"): op(
            "What a mapping's partner_event may be",
            tag,
            ADMIN,
            {
                "200": ok(
                    "TikTok's standard events and the partner identifiers", partner_events_schema()
                ),
                **ADMIN_ERRORS,
            },
        ),
        ("/api/v1/apps/{app_key}/sdk_key/rotate", "post"): op(
            "Give an app a new sdk_key (the old one stops working at once)",
            tag,
            ADMIN,
            {"200": ok("The app with its new sdk_key", ref("App")), **found},
            parameters=[APP_KEY],
        ),
        (integration, "get"): op(
            "Get the TikTok integration of an app",
            tag,
            ADMIN,
            {"200": ok("The integration", ref("Integration")), **found},
            parameters=[APP_KEY],
        ),
        (integration, "put"): op(
            "Set the TikTok integration of an app",
            tag,
            ADMIN,
            {
                "200": ok("Stored; access_token is never answered", ref("Integration")),
                **put,
                "404": shared("NotFound"),
            },
            parameters=[APP_KEY],
            body=json_body(ref("IntegrationConfig")),
        ),
        (integration, "delete"): op(
            "Delete the TikTok integration of an app",
            tag,
            ADMIN,
            {"204": gone, **found},
            parameters=[APP_KEY],
        ),
        ("/api/v1/pages", "get"): op(
            "List hosted pages",
            tag,
            ADMIN,
            {
                "200": ok("Every page", obj({"pages": array(ref("Page"))}, ["pages"])),
                **ADMIN_ERRORS,
            },
        ),
        ("/api/v1/pages/{slug}", "get"): op(
            "Get a hosted page",
            tag,
            ADMIN,
            {"200": ok("The page", ref("Page")), **found},
            parameters=[SLUG],
        ),
        ("/api/v1/pages/{slug}", "put"): op(
            "Create or replace a hosted page",
            tag,
            ADMIN,
            {"200": ok("Stored", ref("Page")), **put},
            parameters=[SLUG],
            body=json_body(ref("PageConfig")),
            description="app_key must name an app, and each CTA one of its destinations",
        ),
        ("/api/v1/pages/{slug}", "delete"): op(
            "Delete a hosted page",
            tag,
            ADMIN,
            {"204": gone, **found},
            parameters=[SLUG],
        ),
        ("/api/v1/installs/{install_id}", "get"): op(
            "Get an install with its attribution receipt and postbacks",
            tag,
            ADMIN,
            {"200": ok("The install", ref("Install")), **found},
            parameters=[path_param("install_id", "The install id")],
        ),
        ("/api/v1/postbacks/retry", "post"): op(
            "Send every failed or dead postback of an app again",
            tag,
            ADMIN,
            {
                "202": ok(
                    "Queued",
                    obj(
                        {"app_key": string(), "retried": {"type": "integer"}},
                        ["app_key", "retried"],
                    ),
                ),
                **put,
                "404": error("No such app (`not_found`, field app_key)"),
            },
            body=json_body(obj({"app_key": string()}, ["app_key"])),
        ),
        ("/api/v1/postbacks/{postback_id}", "get"): op(
            "Get a postback, the JSON sent for it and every attempt",
            tag,
            ADMIN,
            {"200": ok("The postback", ref("Postback")), **found},
            parameters=[postback_id],
        ),
        ("/api/v1/postbacks/{postback_id}/retry", "post"): op(
            "Send a failed or dead postback again",
            tag,
            ADMIN,
            {
                "202": ok(
                    "Queued",
                    obj({"id": string(), "state": string(const="pending")}, ["id", "state"]),
                ),
                **found,
                "409": error("Already delivered (`already_sent`)"),
            },
            parameters=[postback_id],
        ),
    }


# -- audiences (tiktok-ads.md section 3) -------------------------------------------------------


def audience_schemas() -> dict[str, Schema]:
    days = {"type": "integer", "minimum": 1, "maximum": audiences.MAX_DAYS}
    events = array(string(maxLength=audiences.MAX_TEXT), maxItems=audiences.MAX_EVENTS)
    rule = {
        "advertiser_id": string(
            "One of the TikTok Ads connection's advertisers", pattern="^[0-9]+$"
        ),
        "platform": string(
            "One audience holds one ID type", enum=list(vocabulary.MOBILE_PLATFORMS)
        ),
        "installed_within_days": days | {"default": audiences.DEFAULT_DAYS},
        "media_source": string(f"After the unified PID map, or `{audiences.ANY_SOURCE}`"),
        "did_event": events | {"description": "Installs with any of these events"},
        "did_not_event": events | {"description": "Installs with none of these events"},
        "event_within_days": days | {"default": audiences.DEFAULT_DAYS},
    }
    return {
        "AudienceRule": obj(rule, ["advertiser_id", "platform", "media_source"]),
        "Audience": obj(
            {
                "app_key": string(),
                "name": string(pattern=audiences.NAME_RE.pattern),
                **rule,
                "calculate_type": string(enum=sorted(audiences.CALCULATE_TYPES.values())),
                "tiktok_audience_id": string("Set once TikTok created it", nullable=True),
                "state": string(enum=list(audiences.STATES)),
                "reason": string("Why it is in its state (waiting, too_small: the 1,000 floor)"),
                "member_count": {"type": "integer", "description": "Members at the last sync"},
                "sent_count": {"type": "integer", "description": "Members TikTok confirmed"},
                "last_sync_at": time_output(),
                "last_error": string(nullable=True),
                "created_at": time_output(False),
                "updated_at": time_output(False),
            },
            ["app_key", "name", "state", "member_count", "tiktok_audience_id", "last_sync_at"],
        ),
    }


def audience_operations() -> dict[tuple[str, str], Operation]:
    tag = "owner"
    one = "/api/v1/apps/{app_key}/audiences/{name}"
    name = path_param("name", "The audience", audiences.NAME_RE.pattern)
    found = {**ADMIN_ERRORS, "404": shared("NotFound")}
    return {
        ("/api/v1/apps/{app_key}/audiences", "get"): op(
            "List an app's audiences with their member count, TikTok ID, state and last sync",
            tag,
            ADMIN,
            {
                "200": ok(
                    "Every audience", obj({"audiences": array(ref("Audience"))}, ["audiences"])
                ),
                **found,
            },
            parameters=[APP_KEY],
        ),
        (one, "get"): op(
            "Get an audience",
            tag,
            ADMIN,
            {"200": ok("The audience", ref("Audience")), **found},
            parameters=[APP_KEY, name],
        ),
        (one, "put"): op(
            "Create an audience or replace its rule",
            tag,
            ADMIN,
            {
                "200": ok(
                    "Stored; synced daily and by `python -m app audiences sync`", ref("Audience")
                ),
                "400": shared("BadRequest"),
                **found,
                **BODY_ERRORS,
            },
            parameters=[APP_KEY, name],
            body=json_body(ref("AudienceRule")),
            description="A new platform or advertiser_id starts a new TikTok audience",
        ),
        (one, "delete"): op(
            "Stop syncing an audience (the TikTok audience is left as it is)",
            tag,
            ADMIN,
            {"204": ok("Deleted"), **found},
            parameters=[APP_KEY, name],
        ),
    }


def ops_operations() -> dict[tuple[str, str], Operation]:
    tag = "operations"
    return {
        ("/healthz", "get"): op(
            "Health for load balancers",
            tag,
            PUBLIC,
            {
                "200": ok(
                    "Healthy",
                    obj(
                        {
                            "status": string(const="ok"),
                            "db": string(const="ok"),
                            "outbox_pending": {"type": "integer"},
                        },
                        ["status", "db", "outbox_pending"],
                    ),
                ),
                "503": ok(
                    "The database does not answer",
                    obj({"status": string(const="error"), "db": string()}, ["status", "db"]),
                ),
            },
        ),
        ("/metrics", "get"): op(
            "Prometheus metrics",
            tag,
            PUBLIC,
            {"200": ok("Prometheus text format", string(), "text/plain")},
        ),
        ("/openapi.json", "get"): op(
            "This document",
            tag,
            PUBLIC,
            {"200": ok("OpenAPI 3.1, with an ETag", {"type": "object"}), **NOT_MODIFIED},
        ),
    }


# -- reports (`app.web.reports_api`) -----------------------------------------------------------

_COUNTS = {"type": "integer"}
_MONEY = string("A decimal amount")
_NULLABLE_RATE = string("A decimal ratio, 4 places; null when its divisor is zero", nullable=True)


def _figures() -> dict[str, Schema]:
    return {
        "impressions": _COUNTS,
        "impressions_all": _COUNTS,
        "clicks": _COUNTS,
        "clicks_all": _COUNTS,
        "installs": _COUNTS,
        "attributed_installs": _COUNTS,
        "installs_by_status": {"type": "object", "additionalProperties": _COUNTS},
        "installs_by_match_type": {"type": "object", "additionalProperties": _COUNTS},
        "reinstalls": _COUNTS,
        "rejected": _COUNTS,
        "events": {"type": "object", "additionalProperties": _COUNTS},
        "revenue": {
            "type": "object",
            "description": "event name -> currency -> amount",
            "additionalProperties": {"type": "object", "additionalProperties": _MONEY},
        },
        "revenue_in_report_currency": _MONEY,
        "revenue_unconverted": array(string("A currency without a rate for some day")),
        "report_currency": string(),
        "cost": _MONEY,
        "ecpi": _NULLABLE_RATE,
        "roas": _NULLABLE_RATE,
        "click_to_install_rate": _NULLABLE_RATE,
    }


def _range_params() -> list[Schema]:
    return [
        query("app_key", "The app", required=True),
        query("from", "First day, YYYY-MM-DD in the report time zone (default: 6 days before to)"),
        query("to", "Last day, inclusive (default: today)"),
        query("timezone", "IANA zone for days (default: the app's report_timezone)"),
    ]


def reports_operations() -> dict[tuple[str, str], Operation]:
    tag = "reports"
    bad = {"400": shared("BadRequest"), **ADMIN_ERRORS, "404": shared("NotFound")}
    figures = _figures()
    row = obj(
        {g: string() for g in GROUPS} | figures,
        list(figures),
        description="The group's values (those of group_by), then its figures",
    )
    totals = obj(figures, list(figures))
    overview = obj(
        {
            "app_key": string(),
            "from": string(format="date"),
            "to": string(format="date"),
            "timezone": string(),
            "group_by": array(string(enum=list(GROUPS))),
            "filters": {"type": "object", "additionalProperties": string()},
            "rows": array(row),
            "totals": totals,
            "previous": obj(
                {"from": string(format="date"), "to": string(format="date"), "totals": totals},
                ["from", "to", "totals"],
            ),
        },
        ["rows", "totals", "previous"],
    )
    upload = obj(
        {
            "imported": _COUNTS,
            "changed": _COUNTS,
            "rejected": array(obj({"line": _COUNTS, "error": string()}, ["line", "error"])),
        },
        ["imported", "changed", "rejected"],
    )
    csv_body: Schema = {
        "required": True,
        "description": "CSV (UTF-8, header row), as the body or as the `file` of a form",
        "content": {
            "text/csv": {"schema": string()},
            "multipart/form-data": {
                "schema": obj({"file": string(format="binary"), "app_key": string()}, ["file"])
            },
        },
    }
    upload_errors = {
        **bad,
        "413": error("File over 20 MiB (`too_large`)"),
        "415": error("Not CSV or a multipart form (`unsupported_media_type`)"),
    }
    counts = obj({t: _COUNTS for t in ("installs", "events", "clicks", "impressions", "postbacks")})
    return {
        ("/api/v1/reports/overview", "get"): op(
            "The overview: figures per group, totals and the previous period's totals",
            tag,
            ADMIN,
            {"200": ok("The overview", overview), **bad},
            parameters=[
                *_range_params(),
                query("group_by", f"Comma list of {', '.join(GROUPS)}"),
                *(query(d, f"Only this {d}") for d in GROUPS if d != "date"),
            ],
            description=f"A range is at most {MAX_DAYS} days; ecpi and roas are null where cost "
            "or installs are zero",
        ),
        ("/api/v1/raw/{kind}.csv", "get"): op(
            "Raw data as streamed CSV",
            tag,
            ADMIN,
            {
                "200": ok(
                    "CSV with a header row; Content-Disposition names the app and range",
                    string(),
                    "text/csv",
                ),
                **bad,
            },
            parameters=[
                path_param(
                    "kind", f"One of {', '.join(raw.KINDS)}", "^(" + "|".join(raw.KINDS) + ")$"
                ),
                *_range_params(),
                *(
                    query(
                        d,
                        f"Only rows of this {d}, as the overview's filter (400 where the "
                        "kind has no such column: postbacks, an impression's platform)",
                    )
                    for d in GROUPS
                    if d != "date"
                ),
            ],
        ),
        ("/api/v1/cost", "post"): op(
            "Upload cost (replaces rows with the same date, source and ids)",
            tag,
            ADMIN,
            {"200": ok("What was imported and the lines refused", upload), **upload_errors},
            parameters=[query("app_key", "The app (or the form's app_key)")],
            body=csv_body,
            description="Columns: date, media_source, campaign, campaign_id, adset, adset_id, "
            "ad, ad_id, country, cost, currency",
        ),
        ("/api/v1/cost/rates", "post"): op(
            "Upload currency rates to the app's report currency",
            tag,
            ADMIN,
            {"200": ok("What was imported and the lines refused", upload), **upload_errors},
            parameters=[query("app_key", "The app (or the form's app_key)")],
            body=csv_body,
            description="Columns: date, currency, rate_to_report_currency",
        ),
        ("/api/v1/privacy/erase", "post"): op(
            "Erase a user's data: rows changed per table",
            tag,
            ADMIN,
            {"200": ok("Rows changed", obj({"erased": counts}, ["erased"])), **bad, **BODY_ERRORS},
            body=json_body(
                obj(
                    {"app_key": string(), "app_instance_id": string(), "ttclid": string()},
                    description="app_key with app_instance_id, or ttclid alone",
                )
            ),
        ),
    }


# -- TikTok Ads ----------------------------------------------------------------------------------


def tiktok_ads_config_schema() -> Schema:
    ids = array(string(pattern="^[0-9]{1,30}$"))
    cost = obj(
        {
            "enabled": boolean(True, "Pull cost on a schedule"),
            "backfill_days": {
                "type": "integer",
                "default": ads_connection.DEFAULT_BACKFILL_DAYS,
                "minimum": 1,
                "maximum": ads_connection.MAX_BACKFILL_DAYS,
                "description": "Each pull re-pulls this many days (TikTok revises recent days)",
            },
            "pull_every_hours": {
                "type": "integer",
                "default": ads_connection.DEFAULT_PULL_EVERY_HOURS,
                "minimum": 1,
                "maximum": 168,
            },
            "by_country": boolean(True, "One cost row per ad, day and country"),
            "campaign_ids": {
                **array(string(pattern="^[0-9]{1,30}$")),
                "type": ["array", "null"],
                "description": "null: every campaign of the advertisers; a list keeps only those",
            },
        }
    )
    return obj(
        {
            "advertiser_ids": {**ids, "minItems": 1, "maxItems": ads_connection.MAX_ADVERTISERS},
            "access_token": string(
                "Write-only: never answered back", nullable=True, maxLength=512, writeOnly=True
            ),
            "cost": cost,
            "audiences_enabled": boolean(False),
        },
        ["advertiser_ids"],
    )


def tiktok_ads_schema() -> Schema:
    advertiser = obj(
        {
            "advertiser_id": string(),
            "name": string(),
            "currency": string(),
            "timezone": string("IANA zone of TikTok's report days (display_timezone)"),
        },
        ["advertiser_id", "currency", "timezone"],
    )
    pull = obj(
        {
            "id": string(),
            "trigger": string(enum=["schedule", "api", "cli"]),
            "outcome": string(
                "running; ok; failed (see error); interrupted: no end an hour after its start "
                "(the server stopped during it; the next pull covers its days)",
                enum=["running", "ok", "failed", "interrupted"],
            ),
            "started_at": time_output(False),
            "finished_at": time_output(),
            "start_date": string(format="date", nullable=True),
            "end_date": string(format="date", nullable=True),
            "rows": _COUNTS,
            "changed": _COUNTS,
            "spend": string("Spend stored, in the report currency"),
            "currency": string(),
            "superseded_uploads": {
                "type": "integer",
                "description": "Uploaded rows of the pulled days that reports now leave out",
            },
            "requests": _COUNTS,
            "error": string(nullable=True),
        },
        ["id", "outcome", "started_at", "rows", "spend", "error"],
    )
    stored = obj(
        {
            "app_key": string(),
            "partner": string(const=ads_connection.PARTNER),
            "access_token_set": {"type": "boolean"},
            "state": string(enum=list(ads_connection.STATES)),
            "state_message": string(nullable=True),
            "advertisers": array(advertiser),
            "updated_at": time_output(),
            "pulls": array(pull, description="The last ten pulls, newest first"),
            "warning": string("Present when TikTok refused or could not be asked"),
        },
        ["app_key", "partner", "access_token_set", "state", "pulls"],
    )
    return {"allOf": [ref("TikTokAdsConfig"), stored]}


def tiktok_ads_operations() -> dict[tuple[str, str], Operation]:
    tag = "tiktok_ads"
    found = {**ADMIN_ERRORS, "404": shared("NotFound")}
    put = {"400": shared("BadRequest"), **ADMIN_ERRORS, **BODY_ERRORS, "404": shared("NotFound")}
    conflict = error("Needs re-authorising, no token, OAuth not configured, or already running")
    connection = "/api/v1/apps/{app_key}/integrations/" + ads_connection.PARTNER
    return {
        (connection, "get"): op(
            "Get the TikTok Ads connection of an app, with its last ten cost pulls",
            tag,
            ADMIN,
            {"200": ok("The connection", ref("TikTokAds")), **found},
            parameters=[APP_KEY],
        ),
        (connection, "put"): op(
            "Connect an app to TikTok Ads (advertisers, token, cost pull settings)",
            tag,
            ADMIN,
            {"200": ok("Stored; access_token is never answered", ref("TikTokAds")), **put},
            parameters=[APP_KEY],
            body=json_body(ref("TikTokAdsConfig")),
        ),
        (connection, "delete"): op(
            "Disconnect: revoke the token at TikTok (with OAuth set up) and forget it",
            tag,
            ADMIN,
            {"204": ok("Disconnected"), **found},
            parameters=[APP_KEY],
        ),
        (connection + "/oauth", "post"): op(
            "Start connecting by OAuth: the TikTok consent URL to send the owner to",
            tag,
            ADMIN,
            {
                "200": ok(
                    "The consent URL (its state is good for an hour, once)",
                    obj({"consent_url": string(format="uri")}, ["consent_url"]),
                ),
                **found,
                "409": conflict,
            },
            parameters=[APP_KEY],
        ),
        ("/api/v1/tiktok_ads/oauth/callback", "get"): op(
            "Where TikTok sends the owner back after consent (authenticated by its state)",
            tag,
            PUBLIC,
            {
                "303": ok(
                    "To the connection's console screen: connected, or, with a good state and "
                    "no code (the owner declined), told so with nothing changed"
                ),
                "400": error("A forged, expired or used state, or an auth_code TikTok refused"),
                "404": error("The state's app is gone"),
                "409": conflict,
            },
            parameters=[
                query("auth_code", "The code to exchange (TikTok may call it `code`)"),
                query("code", "Another name of auth_code"),
                query("state", "The state made with the consent URL", required=True),
            ],
        ),
        ("/api/v1/apps/{app_key}/cost/pull", "post"): op(
            "Pull TikTok Ads cost now, in the background",
            tag,
            ADMIN,
            {
                "202": ok(
                    "Started; GET the connection for its outcome",
                    obj({"started": {"type": "boolean"}}, ["started"]),
                ),
                "400": shared("BadRequest"),
                **found,
                "409": conflict,
                **BODY_ERRORS,
            },
            parameters=[APP_KEY],
            body={
                "required": False,
                "description": "Optional; without it the connection's backfill_days are pulled",
                "content": {
                    "application/json": {
                        "schema": obj({"days": {"type": "integer", "minimum": 1, "maximum": 365}})
                    }
                },
            },
        ),
    }


def operations() -> dict[tuple[str, str], Operation]:
    """Every documented operation by (path template, lower-case method)."""
    return {
        **tracking_operations(),
        **app_operations(),
        **owner_operations(),
        **audience_operations(),
        **reports_operations(),
        **tiktok_ads_operations(),
        **ops_operations(),
    }


# -- the document ------------------------------------------------------------------------------


def path_template(route_path: str) -> str:
    """Starlette's `/static/{path:path}` as OpenAPI writes it: `/static/{path}`."""
    return _CONVERTER.sub(r"{\1}", route_path)


def operation_ids(routes: Iterable[BaseRoute]) -> dict[tuple[str, str], str]:
    """`module.function` of each routed (path, method); `.method` is added when one handler
    answers several methods, since operation ids are unique in a document."""
    found: dict[tuple[str, str], str] = {}
    for route in routes:
        if not isinstance(route, Route) or route.methods is None or not route.include_in_schema:
            continue
        methods = sorted(m.lower() for m in route.methods - UNDOCUMENTED_METHODS)
        endpoint = route.endpoint
        name = f"{endpoint.__module__.rsplit('.', 1)[-1]}.{endpoint.__name__}"
        for method in methods:
            key = (path_template(route.path), method)
            found[key] = f"{name}.{method}" if len(methods) > 1 else name
    return found


def _version() -> str:
    try:
        return metadata.version("gangway")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def build_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI document; `routes` (the app's route table) names the operations."""
    ids = operation_ids(routes)
    paths: dict[str, dict[str, Operation]] = {}
    for (path, method), operation in operations().items():
        if (operation_id := ids.get((path, method))) is not None:
            operation = {"operationId": operation_id, **operation}
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Gangway",
            "version": _version(),
            "summary": "Self-hostable web-to-app attribution",
            "description": "Every GET also answers HEAD. Every error is JSON "
            '`{"error", "message", "field"}` with a 4xx status.',
        },
        "tags": [
            {"name": "tracking", "description": "Public: landing pages, impressions, clicks"},
            {"name": "app", "description": "The app's SDK or server, with its sdk_key"},
            {"name": "owner", "description": "Configuration and inspection, with an admin token"},
            {"name": "operations", "description": "Health, metrics and this document"},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "responses": shared_responses(),
            "securitySchemes": security_schemes(),
        },
    }


# -- the handler -------------------------------------------------------------------------------


def _encoded(request: Request) -> tuple[bytes, str]:
    """The document as served, and its ETag: built once per application."""
    state = request.app.state
    cached: tuple[bytes, str] | None = getattr(state, "openapi_json", None)
    if cached is None:
        body = json.dumps(build_document(request.app.routes), separators=(",", ":")).encode()
        cached = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
        state.openapi_json = cached
    return cached


async def openapi_json(request: Request) -> Response:
    body, etag = _encoded(request)
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
