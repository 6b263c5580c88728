"""The app surface: installs and in-app events (http-api.md section 2).

`POST /api/v1/installs` reads top to bottom: parse the body (every malformed field is a 400
naming it), answer a known `app_instance_id` with its stored answer, find the device's prior
install and the candidate touches, let the pure planner decide what to write (`app.plans`, over
the engine of `app.attribution`), then write the install, the claim of its click and its
postback in one transaction (`store.installs.record_install`). A 200 means all three are on disk.

Two installs racing for one click: the store lets exactly one claim it. The loser's plan is
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
  its "past", so a broken device clock could claim clicks made after the install. An
  `event_time` is held to the same bound, and to at most a day before its install: an event
  TikTok refuses would otherwise be queued, and take its batch down with it.
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
- The prior install is looked up by device id however old it is: beyond the re-attribution
  window of the device's first install, a matched touch makes the install `reattributed`.
- A PC, console or TV client posts its store as `platform` (`steam`, `epic`, ...), with no
  device ids or referrer; the desktop rule matches it (`app.attribution`).
- An event's answer carries `conditions` (each as evaluated) when its mapping has some, and
  `flags` when a TikTok property was cut or left out (`app.postbacks.tiktok.event_properties`).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app import attribution, fields, plans
from app.addresses import parse_ip
from app.attribution import AttributionSettings
from app.conversions import attributing_install
from app.devices import bot_verdict, parse_user_agent
from app.fields import FieldError
from app.ids import new_id
from app.params import MAX_USER_AGENT_BYTES, clean_text
from app.plans import DEVICE_IDS, EventRequest, InstallRequest
from app.reports.privacy import reported_attribution
from app.reports.rollups import event_increments, install_increments
from app.revenue import RevenueError, parse_revenue
from app.services import Services, services
from app.store.records import AppRecord, CandidateQuery, ClickAlreadyClaimed, IntegrationRecord
from app.vocabulary import DIRECT_PLATFORMS, PARTNER
from app.web.caller import authorised_app, request_ip
from app.web.errors import ApiError

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
# How far ahead of the server's clock an install or event may say it happened (device clocks
# drift).
MAX_FUTURE_SECONDS = 86_400
# How long before its install an event may say it happened: the install time is the first
# open's and device clocks drift, but an event a day older than its install is a broken clock.
EVENT_BEFORE_INSTALL_SECONDS = 86_400
ZERO_ID_RE = re.compile(r"^[0\-]*$")


def _id(
    obj: dict[str, Any], key: str, parent: str = "", *, limit: int = MAX_ID_CHARS
) -> str | None:
    """An optional identifier: blank is absent, refused (never cut) over `limit` characters."""
    return fields.string(obj, key, parent, limit=limit, blank_is_absent=True)


def _text(obj: dict[str, Any], key: str, *, limit: int) -> str | None:
    """Descriptive text: blank is absent, cleaned and cut to `limit` bytes."""
    return fields.string(obj, key, limit=limit, blank_is_absent=True, cut=True)


# -- installs ----------------------------------------------------------------------------------


def _parse_install(request: Request, svc: Services, body: dict[str, Any]) -> InstallRequest:
    platform = fields.required_string(body, "platform", limit=20).lower()
    if platform not in PLATFORMS:
        raise FieldError("platform", f"must be one of {', '.join(PLATFORMS)}")
    instance = fields.required_string(body, "app_instance_id", limit=MAX_ID_CHARS)
    now = svc.clock()
    install_time = fields.time(body, "install_time", now)
    assert install_time is not None
    if install_time > now + MAX_FUTURE_SECONDS:
        raise FieldError("install_time", "is more than a day in the future")
    for key in ("referrer_click_time", "install_begin_time"):
        fields.time(body, key, None)

    device = dict(fields.optional_object(body, "device"))
    device_ids: dict[str, str] = {}
    for key in DEVICE_IDS:
        value = _id(device, key, "device")
        if value is not None and not ZERO_ID_RE.match(value):
            device_ids[key] = value.lower() if key in ("idfa", "idfv", "gaid") else value

    att = _text(body, "att_status", limit=32)
    att_status = None
    if att is not None:
        att_status = ATT_STATUSES.get(att.lower().replace("_", ""))
        if att_status is None:
            raise FieldError(
                "att_status", "must be authorized, denied, restricted or not_determined"
            )

    ip = _ip(body) or request_ip(request, svc)
    user_agent = _text(body, "user_agent", limit=MAX_USER_AGENT_BYTES)
    if user_agent is None:
        header = request.headers.get("user-agent")
        user_agent = clean_text(header, MAX_USER_AGENT_BYTES)[0] if header else None
    os_version = _text(body, "os_version", limit=32)
    device_model = _text(body, "device_model", limit=128)
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
        language=_text(body, "language", limit=64),
        att_status=att_status,
        install_referrer=_id(body, "install_referrer", limit=MAX_REFERRER_CHARS),
        device_ids=device_ids,
    )


def _ip(body: dict[str, Any]) -> str | None:
    """The body's `ip`, as the touch collectors store addresses (IPv4-mapped IPv6 as IPv4)."""
    text = _id(body, "ip", limit=64)
    if text is None:
        return None
    try:
        return str(parse_ip(text))
    except ValueError:
        raise FieldError("ip", "must be an IPv4 or IPv6 address") from None


def _attribution_settings(
    app: AppRecord, integration: IntegrationRecord | None
) -> AttributionSettings:
    view_through = bool(
        integration and integration.config.get("enabled") and integration.config.get("view_through")
    )
    return attribution.settings_from_config(
        app.config.get("attribution", {}), view_through=view_through
    )


async def post_install(request: Request) -> Response:
    svc = services(request)
    app, body = await authorised_app(request)
    req = _parse_install(request, svc, body)
    store = svc.store

    integration = await store.configs.get_integration(app.app_key, PARTNER)
    settings = _attribution_settings(app, integration)
    clicks_range, impressions_range = attribution.candidate_ranges(settings, req.time, req.platform)
    # One read of the store: the install already kept under this app_instance_id, else every
    # earlier install of the device however old (one beyond the re-attribution window makes a
    # touch's install a re-attribution rather than a new one; a device has a handful), its
    # first install, and the candidate touches.
    inputs = await store.installs.install_inputs(
        app.app_key,
        req.app_instance_id,
        req.device_ids,
        CandidateQuery(
            app_key=app.app_key,
            ip=req.ip,
            referrer_click_id=attribution.referrer_click_id(req.install_referrer),
            clicks=clicks_range,
            impressions=impressions_range,
        ),
    )
    if inputs.stored is not None:
        return JSONResponse(inputs.stored.answer | {"is_first_launch": False})
    prior, first = inputs.prior, inputs.first
    assert inputs.candidates is not None  # read whenever nothing was stored
    found = inputs.candidates
    verdict = bot_verdict(req.user_agent) if req.user_agent else None
    facts = plans.install_facts(
        req,
        prior,
        is_bot=verdict is not None and attribution.is_bot_install(req.user_agent, verdict.label),
        first_install_time=first.time if first else None,
    )
    lost: set[str] = set()
    # Each lost race marks one more click claimed, so this ends within (clicks + 2) rounds.
    for _ in range(len(found.clicks) + 2):
        now = svc.clock()
        plan = plans.plan_install(
            app_key=app.app_key,
            req=req,
            facts=facts,
            candidates=plans.without_claimed(found, lost),
            settings=settings,
            prior=prior,
            integration=integration.config if integration else None,
            install_id=new_id(),
            now=now,
            unified=dict(svc.settings.unified_pids),
            covered_states=svc.settings.ldu_states,
        )
        try:
            saved, created = await store.installs.record_install(
                plan.install,
                claim_click=plan.claim_click,
                postbacks=plan.postbacks,
                now=now,
                rollups=install_increments(plan.install),
            )
        except ClickAlreadyClaimed:
            assert plan.claim_click is not None
            lost.add(plan.claim_click)
            continue
        if not created:
            # The same app_instance_id won a concurrent request: its answer is the answer.
            return JSONResponse(saved.answer | {"is_first_launch": False})
        svc.counters.installs[plan.decision.status] += 1
        if plan.postbacks:
            svc.nudge_outbox()
        return JSONResponse(plan.install.answer)
    raise AssertionError("an install lost more click races than it had clicks")


# -- events ------------------------------------------------------------------------------------


def _parse_event(svc: Services, body: dict[str, Any]) -> EventRequest:
    instance = fields.required_string(body, "app_instance_id", limit=MAX_ID_CHARS)
    event_name = fields.required_string(body, "event_name", limit=MAX_EVENT_NAME_CHARS)
    event_id = _id(body, "event_id")
    now = svc.clock()
    event_time = fields.time(body, "event_time", now)
    assert event_time is not None  # it has a default
    if event_time > now + MAX_FUTURE_SECONDS:
        raise FieldError("event_time", "is more than a day in the future")
    value = dict(fields.optional_object(body, "event_value"))
    user_obj = dict(fields.optional_object(body, "user"))
    user = {k: v for k in USER_FIELDS if (v := _id(user_obj, k, "user", limit=256)) is not None}
    try:
        revenue, currency = parse_revenue(value) or (None, None)
    except RevenueError as exc:
        raise ApiError.invalid(f"event_value.{exc.field}", exc.message) from None
    return EventRequest(
        app_instance_id=instance,
        event_name=event_name,
        event_id=event_id,
        event_time=event_time,
        event_value=value,
        user=user,
        revenue=revenue,
        currency=currency,
    )


async def post_event(request: Request) -> Response:
    svc = services(request)
    app, body = await authorised_app(request)
    req = _parse_event(svc, body)
    store = svc.store

    install = await store.installs.install_by_instance(app.app_key, req.app_instance_id)
    if install is None:
        raise ApiError(
            404, "unknown_install", "no install with this app_instance_id", "app_instance_id"
        )
    if req.event_time < install.time - EVENT_BEFORE_INSTALL_SECONDS:
        # TikTok refuses events whose time is nonsense, and would refuse their whole batch.
        raise FieldError("event_time", "is more than a day before the install")
    event_id = req.event_id or new_id()
    stored = await store.events.event_by_id(app.app_key, event_id)
    if stored is not None:
        return JSONResponse(stored.answer, status_code=202)

    # A reinstall's events belong to the first install's attribution (attribution.md 4).
    first = await store.installs.get_install(install.reinstall_of) if install.reinstall_of else None
    recorded = attributing_install(install, first)
    # A retained install's later events are organic (reporting.md 5).
    attributed = reported_attribution(recorded)
    integration = await store.configs.get_integration(app.app_key, PARTNER)
    config = integration.config if integration else None
    rule = plans.event_rule(attributed, config, req)
    described = plans.touch_to_describe(rule, attributed, config)
    touch = await store.candidates.attributed_touch(*described) if described else None
    now = svc.clock()
    plan = plans.plan_event(
        app_key=app.app_key,
        req=req,
        install=install,
        attributed=attributed,
        rule=rule,
        integration=config,
        touch=touch,
        event_id=event_id,
        stored_id=new_id(),
        now=now,
        covered_states=svc.settings.ldu_states,
    )
    saved, created = await store.events.record_event(
        plan.event,
        postbacks=plan.postbacks,
        now=now,
        rollups=event_increments(
            plan.event, recorded, rewrite_retained=svc.settings.retention_rewrite_aggregates
        ),
    )
    if created and plan.postbacks:
        svc.nudge_outbox()
    return JSONResponse(saved.answer, status_code=202)
