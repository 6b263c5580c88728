"""The app surface: installs and in-app events (http-api.md section 2), and install receipts.

`POST /api/v1/installs` reads top to bottom: parse the body (every malformed field is a 400
naming it), answer a known `app_instance_id` with its stored answer, find the device's prior
install and the candidate touches (`app/store/candidates.py`), let the pure engine decide
(`app.attribution`), then write the install, the claim of its click and its postback in one
transaction (`store.record_install`). A 200 means all three are on disk.

Two installs racing for one click: the store lets exactly one claim it. The loser's decision is
made again over the same candidates with that click marked claimed (the receipt says `claimed`),
so it moves on to the next touch or to organic, and is answered without a retry by the app.

Decisions where the spec is silent:
- The install's `user_agent` is the body's, else the request's own header (an SDK posting from
  the device). Its OS version and model fill in `os_version` and `device_model` when the body
  leaves them out and the UA is of the install's platform; placeholder models are not used.
- Device ids made only of zeros (an iOS IDFA under ATT denial, a GAID with ad tracking limited)
  are no device ids: keeping them would make every such phone a reinstall of the first one.
  IDFA, IDFV and GAID are UUIDs and stored lower-cased, so either case finds the device.
- `att_status` takes the spec's spelling or Apple's (`notDetermined`); it is stored in the spec's.
- `install_time` more than a day ahead of the server's clock is a 400: every touch would be in
  its "past", so a broken device clock could claim clicks made after the install.
- Identifiers (`app_instance_id`, `event_id`, device ids, the referrer) over their length limit
  or holding a NUL or a lone surrogate are a 400, not cut or cleaned: two different ids made
  one would merge two installs or two events. Descriptive text (user agent, model, language)
  is cleaned and cut to its limit instead.
- `referrer_click_time` and `install_begin_time` are checked as times and not used: the click
  time that counts is the one the server recorded.
- Revenue: `af_currency` defaults to USD when `af_revenue` comes alone, and revenue is stored as
  a plain decimal string as sent (`app.revenue` reads both, for the postback too).
- A reinstall's events carry the first install's attribution, including its postback window and
  the TikTok touch the postback describes; the answer's `media_source` is that install's.
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app import attribution
from app.addresses import parse_ip
from app.attribution import AttributionSettings, Candidates, Decision, InstallFacts
from app.clock import iso, parse_time
from app.devices import bot_verdict, parse_user_agent
from app.ids import new_id
from app.params import MAX_USER_AGENT_BYTES, clean_text
from app.postbacks import rules
from app.revenue import RevenueError, parse_revenue
from app.services import Services, services
from app.store.candidates import CandidateQuery
from app.store.sqlite import AppRecord, ClickAlreadyClaimed, IntegrationRecord, NewPostback
from app.touches import campaign_columns
from app.vocabulary import APP_KEY_RE, DIRECT_PLATFORMS, PARTNER
from app.web.errors import ApiError, json_object, read_json
from app.web.owner_api import require_admin
from app.web.tracking import request_ip

DEVICE_IDS = ("idfa", "idfv", "gaid", "android_id")
# Apple's ATTrackingManager names, keyed by their spelling without case or underscores.
ATT_STATUSES = {
    "authorized": "authorized",
    "denied": "denied",
    "restricted": "restricted",
    "notdetermined": "not_determined",
}
PLATFORMS = DIRECT_PLATFORMS
USER_FIELDS = ("email", "phone", "external_id")
MAX_ID_CHARS = 128
MAX_REFERRER_CHARS = 2048
MAX_EVENT_NAME_CHARS = 100
# How far ahead of the server's clock an install may say it happened (device clocks drift).
MAX_FUTURE_SECONDS = 86_400
ZERO_ID_RE = re.compile(r"^[0\-]*$")
# A click marked claimed by a concurrent install (never an app_instance_id: those are sent by
# apps, this has a space and parentheses no id check would let through unnoticed).
CLAIMED_CONCURRENTLY = "(claimed concurrently)"


# -- authentication and fields ----------------------------------------------------------------


async def _authorised_app(request: Request) -> tuple[AppRecord, dict[str, Any]]:
    """The app the request's sdk_key belongs to, and the JSON body naming it."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    # Refused before the body is read: no credentials, no parsing of what they sent.
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <sdk_key>")
    body = json_object(await read_json(request))
    app_key = body.get("app_key")
    if app_key is None or app_key == "":
        raise ApiError.invalid("app_key", "app_key is required")
    if not isinstance(app_key, str):
        raise ApiError.invalid("app_key", "app_key must be a string")
    # A key no app can have (a lone surrogate, say, which no query can even carry) is no app.
    app = await services(request).store.get_app(app_key) if APP_KEY_RE.fullmatch(app_key) else None
    # One answer for "no such app" and "wrong key": the endpoint must not reveal app keys.
    if app is None or not hmac.compare_digest(app.sdk_key.encode(), key.strip().encode()):
        raise ApiError(401, "unauthorized", "sdk_key does not belong to this app_key")
    return app, body


def _string(
    obj: dict[str, Any],
    key: str,
    *,
    limit: int,
    field: str | None = None,
    required: bool = False,
    exact: bool = False,
) -> str | None:
    """A string field: None when absent, null or empty. `exact` refuses one over `limit`
    characters, or one that storing would change (a NUL, a lone surrogate): identifiers are
    kept exactly as sent, since two ids cleaned to one would merge two installs or events.
    Otherwise the text is cleaned and cut to `limit` UTF-8 bytes (descriptive text)."""
    name = field or key
    value = obj.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ApiError.invalid(name, f"{name} is required")
        return None
    if not isinstance(value, str):
        raise ApiError.invalid(name, f"{name} must be a string")
    if not exact:
        return clean_text(value.strip(), limit)[0]
    if len(value) > limit:
        raise ApiError.invalid(name, f"{name} must be at most {limit} characters")
    text = value.strip()
    if clean_text(text, len(text) * 4)[0] != text:
        raise ApiError.invalid(name, f"{name} must be text without NUL or lone surrogates")
    return text


def _required(obj: dict[str, Any], key: str, *, limit: int) -> str:
    """A required identifier-like string (refused, not cut, over `limit` characters)."""
    value = _string(obj, key, limit=limit, required=True, exact=True)
    assert value is not None  # `required` raised otherwise
    return value


def _time(obj: dict[str, Any], key: str, default: float | None) -> float | None:
    value = obj.get(key)
    if value is None:
        return default
    try:
        return parse_time(value)
    except (ValueError, OverflowError):
        raise ApiError.invalid(key, f"{key} must be an ISO 8601 time or Unix seconds") from None


def _object(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError.invalid(key, f"{key} must be an object")
    return value


# -- installs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallRequest:
    """A `POST /api/v1/installs` body, checked, with the request's own IP and UA filled in."""

    app_instance_id: str
    platform: str
    time: float
    ip: str | None
    user_agent: str | None
    os_version: str | None
    device_model: str | None
    language: str | None
    att_status: str | None
    install_referrer: str | None
    device_ids: dict[str, str]


def _parse_install(request: Request, svc: Services, body: dict[str, Any]) -> InstallRequest:
    platform = _required(body, "platform", limit=20).lower()
    if platform not in PLATFORMS:
        raise ApiError.invalid("platform", f"platform must be one of {', '.join(PLATFORMS)}")
    instance = _required(body, "app_instance_id", limit=MAX_ID_CHARS)
    now = svc.clock()
    install_time = _time(body, "install_time", now)
    assert install_time is not None
    if install_time > now + MAX_FUTURE_SECONDS:
        raise ApiError.invalid("install_time", "install_time is more than a day in the future")
    for key in ("referrer_click_time", "install_begin_time"):
        _time(body, key, None)

    device = _object(body, "device")
    device_ids: dict[str, str] = {}
    for key in DEVICE_IDS:
        value = _string(device, key, limit=MAX_ID_CHARS, field=f"device.{key}", exact=True)
        if value is not None and not ZERO_ID_RE.match(value):
            device_ids[key] = value.lower() if key in ("idfa", "idfv", "gaid") else value

    att = _string(body, "att_status", limit=32)
    att_status = None
    if att is not None:
        att_status = ATT_STATUSES.get(att.lower().replace("_", ""))
        if att_status is None:
            raise ApiError.invalid(
                "att_status", "att_status must be authorized, denied, restricted or not_determined"
            )

    ip = _ip(body) or request_ip(request, svc)
    user_agent = _string(body, "user_agent", limit=MAX_USER_AGENT_BYTES)
    if user_agent is None:
        header = request.headers.get("user-agent")
        user_agent = clean_text(header, MAX_USER_AGENT_BYTES)[0] if header else None
    os_version = _string(body, "os_version", limit=32)
    device_model = _string(body, "device_model", limit=128)
    if os_version is None or device_model is None:
        seen = parse_user_agent(user_agent)
        if seen.os_family == platform:
            os_version = os_version or seen.os_version
            if device_model is None and not attribution.is_placeholder_model(seen.device_model):
                device_model = seen.device_model

    return InstallRequest(
        app_instance_id=instance,
        platform=platform,
        time=install_time,
        ip=ip,
        user_agent=user_agent,
        os_version=os_version,
        device_model=device_model,
        language=_string(body, "language", limit=64),
        att_status=att_status,
        install_referrer=_string(body, "install_referrer", limit=MAX_REFERRER_CHARS, exact=True),
        device_ids=device_ids,
    )


def _ip(body: dict[str, Any]) -> str | None:
    """The body's `ip`, as the touch collectors store addresses (IPv4-mapped IPv6 as IPv4)."""
    text = _string(body, "ip", limit=64, exact=True)
    if text is None:
        return None
    try:
        return str(parse_ip(text))
    except ValueError:
        raise ApiError.invalid("ip", "ip must be an IPv4 or IPv6 address") from None


def _attribution_settings(
    app: AppRecord, integration: IntegrationRecord | None
) -> AttributionSettings:
    view_through = bool(
        integration and integration.config.get("enabled") and integration.config.get("view_through")
    )
    return attribution.settings_from_config(
        app.config.get("attribution", {}), view_through=view_through
    )


def _without_claimed(candidates: Candidates, lost: set[str]) -> Candidates:
    """`candidates` with the clicks other installs claimed meanwhile marked claimed."""
    if not lost:
        return candidates
    referrer = candidates.referrer_click
    if referrer is not None and referrer.id in lost:
        referrer = replace(referrer, claimed_by=CLAIMED_CONCURRENTLY)
    return replace(
        candidates,
        referrer_click=referrer,
        clicks=[
            replace(c, claimed_by=CLAIMED_CONCURRENTLY) if c.id in lost else c
            for c in candidates.clicks
        ],
    )


def _install_row(
    req: InstallRequest,
    app: AppRecord,
    decision: Decision,
    install_id: str,
    now: float,
    answer: dict[str, object],
    limited: bool,
    unified: dict[str, str],
    reinstall_of: str | None,
) -> dict[str, Any]:
    # A rejected install names its click only in the receipt: reports must not credit it.
    touch = decision.touch if decision.status == "attributed" else None
    params = touch.params if touch else {}
    return {
        "id": install_id,
        "app_key": app.app_key,
        "app_instance_id": req.app_instance_id,
        "platform": req.platform,
        "time": req.time,
        "received_at": now,
        "ip": req.ip,
        "user_agent": req.user_agent,
        "os_version": req.os_version,
        "device_model": req.device_model,
        "language": req.language,
        **{key: req.device_ids.get(key) for key in DEVICE_IDS},
        "att_status": req.att_status,
        "install_referrer": req.install_referrer,
        "status": decision.status,
        "match_type": decision.match_type if touch else None,
        "touch_type": touch.kind if touch else None,
        "touch_id": touch.id if touch else None,
        "touch_time": touch.time if touch else None,
        "media_source": attribution.unified_pid(touch.pid if touch else None, unified),
        "original_media_source": touch.pid if touch else None,
        **campaign_columns(params),
        "channel": params.get("af_channel"),
        "site_id": params.get("af_siteid"),
        "ttclid": touch.ttclid if touch else None,
        "original_url": touch.original_url if touch else None,
        "country": touch.country if touch else None,
        "region": touch.region if touch else None,
        "is_limited_data_use": int(limited),
        "receipt": json.dumps(decision.receipt),
        "answer": json.dumps(answer),
        "reinstall_of": reinstall_of,
    }


async def post_install(request: Request) -> Response:
    svc = services(request)
    app, body = await _authorised_app(request)
    req = _parse_install(request, svc, body)

    stored = await svc.store.install_by_instance(app.app_key, req.app_instance_id)
    if stored is not None:
        return JSONResponse(json.loads(stored["answer"]) | {"is_first_launch": False})

    integration = await svc.store.get_integration(app.app_key, PARTNER)
    settings = _attribution_settings(app, integration)
    prior = await svc.store.prior_install(
        app.app_key, req.device_ids, req.time - settings.reattribution_window_days * 86_400
    )
    verdict = bot_verdict(req.user_agent) if req.user_agent else None
    install = InstallFacts(
        app_instance_id=req.app_instance_id,
        platform=req.platform,
        time=req.time,
        ip=req.ip,
        os_version=req.os_version,
        device_model=req.device_model,
        att_status=req.att_status,
        install_referrer=req.install_referrer,
        is_bot=verdict is not None and attribution.is_bot_install(req.user_agent, verdict.label),
        prior_install_id=prior["id"] if prior else None,
        prior_install_time=prior["time"] if prior else None,
    )
    clicks_range, impressions_range = attribution.candidate_ranges(settings, req.time)
    found = await svc.store.attribution_candidates(
        CandidateQuery(
            app_key=app.app_key,
            ip=req.ip,
            referrer_click_id=attribution.referrer_click_id(req.install_referrer),
            clicks=clicks_range,
            impressions=impressions_range,
        )
    )
    unified = dict(svc.settings.unified_pids)
    lost: set[str] = set()
    # Each lost race marks one more click claimed, so this ends within (clicks + 2) rounds.
    for _ in range(len(found.clicks) + 2):
        decision = attribution.decide(install, _without_claimed(found, lost), settings)
        install_id = new_id()
        answer = attribution.conversion_data(decision, install_id, True, unified)
        event = rules.install_postback(
            decision=decision,
            install_id=install_id,
            install_time=install.time,
            integration=integration.config if integration else None,
            covered_states=svc.settings.ldu_states,
        )
        postbacks = (
            [NewPostback(app.app_key, PARTNER, "install", install_id, str(event["event"]), event)]
            if event
            else []
        )
        claim = (
            decision.touch.id
            if decision.status == "attributed" and decision.touch and decision.touch.kind == "click"
            else None
        )
        reinstall_of = (
            prior["first_install_id"] if prior and decision.status == "reinstall" else None
        )
        now = svc.clock()
        limited = bool(event and event.get("limited_data_use"))
        row = _install_row(
            req, app, decision, install_id, now, answer, limited, unified, reinstall_of
        )
        try:
            saved, created = await svc.store.record_install(
                row, claim_click=claim, postbacks=postbacks, now=now
            )
        except ClickAlreadyClaimed:
            assert claim is not None
            lost.add(claim)
            continue
        if not created:
            # The same app_instance_id won a concurrent request: its answer is the answer.
            return JSONResponse(json.loads(saved["answer"]) | {"is_first_launch": False})
        svc.counters.installs[decision.status] += 1
        if postbacks and svc.outbox is not None:
            svc.outbox.nudge()
        return JSONResponse(answer)
    raise AssertionError("an install lost more click races than it had clicks")


async def get_install(request: Request) -> Response:
    await require_admin(request)
    svc = services(request)
    row = await svc.store.get_install(request.path_params["install_id"])
    if row is None:
        raise ApiError(404, "not_found", "no such install")
    receipt = json.loads(row.pop("receipt"))
    answer = json.loads(row.pop("answer"))
    row["install_time"] = iso(row.pop("time"))
    row["received_at"] = iso(row["received_at"])
    row["touch_time"] = iso(row["touch_time"])
    postbacks = [
        {
            "id": p.id,
            "event": p.event,
            "state": p.state,
            "attempts": p.attempts,
            "last_code": p.last_code,
            "last_message": p.last_message,
        }
        for p in await svc.store.postbacks_for(row["id"])
    ]
    return JSONResponse(
        {**row, "conversion_data": answer, "receipt": receipt, "postbacks": postbacks}
    )


# -- events ------------------------------------------------------------------------------------


def _json_text(value: object) -> str:
    """JSON as stored: readable UTF-8, unless the client sent a lone surrogate ("\\ud800"),
    which no UTF-8 column can hold; then escaped ASCII, which still reads back the same."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)
    return text


def _user(body: dict[str, Any]) -> dict[str, str]:
    """The event's `user` identifiers; they go to postbacks hashed and are never stored."""
    user = _object(body, "user")
    found: dict[str, str] = {}
    for key in USER_FIELDS:
        value = _string(user, key, limit=256, field=f"user.{key}", exact=True)
        if value is not None:
            found[key] = value
    return found


async def post_event(request: Request) -> Response:
    svc = services(request)
    app, body = await _authorised_app(request)
    instance = _required(body, "app_instance_id", limit=MAX_ID_CHARS)
    event_name = _required(body, "event_name", limit=MAX_EVENT_NAME_CHARS)
    event_id = _string(body, "event_id", limit=MAX_ID_CHARS, exact=True)
    now = svc.clock()
    event_time = _time(body, "event_time", now)
    value = _object(body, "event_value")
    user = _user(body)
    try:
        revenue, currency = parse_revenue(value) or (None, None)
    except RevenueError as exc:
        raise ApiError.invalid(f"event_value.{exc.field}", exc.message) from None
    assert event_time is not None  # it has a default

    install = await svc.store.install_by_instance(app.app_key, instance)
    if install is None:
        raise ApiError(
            404, "unknown_install", "no install with this app_instance_id", "app_instance_id"
        )
    event_id = event_id or new_id()
    stored = await svc.store.event_by_id(app.app_key, event_id)
    if stored is not None:
        return JSONResponse(json.loads(stored["answer"]), status_code=202)

    # A reinstall's events belong to the first install's attribution (attribution.md 4).
    attributed = await svc.store.attributing_install(install)
    integration = await svc.store.get_integration(app.app_key, PARTNER)
    config = integration.config if integration else None
    decision, entry = rules.event_decision(
        install=rules.InstallAttribution(
            status=attributed["status"],
            original_media_source=attributed["original_media_source"],
            time=attributed["time"],
            is_retained_organic=bool(attributed["is_retained_organic"]),
        ),
        integration=config,
        event_name=event_name,
        event_time=event_time,
    )
    media_source = attributed["media_source"]
    answer = {"event_id": event_id, "media_source": media_source, "postback": decision}
    postbacks: list[NewPostback] = []
    stored_id = new_id()
    if entry is not None and config is not None:
        touch = None
        if attributed["touch_id"] and attributed["original_media_source"] == PARTNER:
            touch = await svc.store.attributed_touch(
                attributed["touch_type"], attributed["touch_id"]
            )
        event = rules.event_postback(
            entry=entry,
            event_id=stored_id,
            event_time=event_time,
            touch=touch,
            event_value=value,
            user=user or None,
            integration=config,
            covered_states=svc.settings.ldu_states,
        )
        postbacks.append(
            NewPostback(app.app_key, PARTNER, "event", stored_id, entry["partner_event"], event)
        )
    row = {
        "id": stored_id,
        "app_key": app.app_key,
        "event_id": event_id,
        "install_id": install["id"],
        "app_instance_id": instance,
        "event_name": event_name,
        "event_time": event_time,
        "received_at": now,
        "revenue": revenue,
        "currency": currency,
        "event_value": _json_text(value),
        "media_source": media_source,
        "postback": decision,
        "answer": json.dumps(answer),
    }
    saved, created = await svc.store.record_event(row, postbacks=postbacks, now=now)
    if created and postbacks and svc.outbox is not None:
        svc.outbox.nudge()
    return JSONResponse(json.loads(saved["answer"]), status_code=202)
