"""The app surface: installs and in-app events (http-api.md section 2), and install receipts.

An install is attributed by the pure engine over the candidates the store finds; its row, the
claim of its click and its postback are written in one transaction, so a 200 answer means all
three are on disk.
"""

from __future__ import annotations

import hmac
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app import attribution
from app.attribution import AttributionSettings, Candidates, Decision, InstallFacts
from app.clock import iso, parse_time
from app.configs import PARTNER
from app.devices import bot_verdict
from app.ids import new_id
from app.params import clean_text
from app.postbacks import rules
from app.services import Services, services
from app.store.sqlite import AppRecord, ClickAlreadyClaimed, IntegrationRecord, NewPostback
from app.touches import CAMPAIGN_PARAMS, Touch
from app.web.errors import ApiError, json_object, read_json
from app.web.owner_api import require_admin
from app.web.tracking import request_ip

DEVICE_IDS = ("idfa", "idfv", "gaid", "android_id")
ATT_STATUSES = ("authorized", "denied", "restricted", "not_determined")
PLATFORM_RE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
# Two installs racing for one click: the loser re-runs the waterfall without it. More than a
# few rounds would mean a flood of installs from one IP; past this they go organic.
MAX_CLAIM_ROUNDS = 4


async def _authorised_app(request: Request, body: dict[str, Any]) -> AppRecord:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <sdk_key>")
    app_key = body.get("app_key")
    if not isinstance(app_key, str) or not app_key:
        raise ApiError.invalid("app_key", "app_key is required")
    app = await services(request).store.get_app(app_key)
    # One answer for "no such app" and "wrong key": the endpoint must not reveal app keys.
    if app is None or not _same(app.sdk_key, key.strip()):
        raise ApiError(401, "unauthorized", "sdk_key does not belong to this app_key")
    return app


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _text(
    body: dict[str, Any], key: str, *, required: bool = False, limit: int = 512
) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise ApiError.invalid(key, f"{key} is required")
        return None
    if not isinstance(value, str):
        raise ApiError.invalid(key, f"{key} must be a string")
    return clean_text(value, limit)[0]


def _time(body: dict[str, Any], key: str, default: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    try:
        return parse_time(value)
    except ValueError as exc:
        raise ApiError.invalid(key, f"{key}: {exc}") from None


# -- installs ----------------------------------------------------------------------------------


def _attribution_settings(
    app: AppRecord, integration: IntegrationRecord | None
) -> AttributionSettings:
    config = dict(app.config.get("attribution", {}))
    view_through = bool(
        integration and integration.config.get("enabled") and integration.config.get("view_through")
    )
    return AttributionSettings(
        click_lookback_days=config.get("click_lookback_days", 7),
        probabilistic_window_hours=config.get("probabilistic_window_hours", 24),
        viewthrough_lookback_hours=config.get("viewthrough_lookback_hours", 24),
        reattribution_window_days=config.get("reattribution_window_days", 90),
        min_click_to_install_seconds=config.get("min_click_to_install_seconds", 10),
        probabilistic_ios=config.get("probabilistic_ios", True),
        view_through_pids=frozenset({PARTNER}) if view_through else frozenset(),
    )


def _parse_install(request: Request, svc: Services, body: dict[str, Any]) -> dict[str, Any]:
    platform = _text(body, "platform", required=True, limit=20)
    assert platform is not None
    platform = platform.lower()
    if not PLATFORM_RE.match(platform):
        raise ApiError.invalid("platform", "platform must be a name such as ios or android")
    device = body.get("device") or {}
    if not isinstance(device, dict):
        raise ApiError.invalid("device", "device must be an object")
    ids = {}
    for key in DEVICE_IDS:
        value = _text(device, key, limit=128)
        if value:
            ids[key] = value
    att = _text(body, "att_status", limit=32)
    if att is not None and att not in ATT_STATUSES:
        raise ApiError.invalid("att_status", f"att_status must be one of {', '.join(ATT_STATUSES)}")
    ip = _text(body, "ip", limit=64) or request_ip(request, svc)
    return {
        "platform": platform,
        "app_instance_id": _text(body, "app_instance_id", required=True, limit=128),
        "time": _time(body, "install_time", svc.clock()),
        "ip": ip,
        "user_agent": _text(body, "user_agent", limit=1024),
        "os_version": _text(body, "os_version", limit=32),
        "device_model": _text(body, "device_model", limit=128),
        "language": _text(body, "language", limit=64),
        "att_status": att,
        "install_referrer": _text(body, "install_referrer", limit=2048),
        **ids,
    }


async def _candidates(
    svc: Services, app: AppRecord, facts: InstallFacts, settings: AttributionSettings
) -> Candidates:
    click_id = attribution.referrer_click_id(facts.install_referrer)
    referrer_click = await svc.store.click_by_id(click_id) if click_id else None
    if referrer_click is not None and referrer_click.app_key != app.app_key:
        referrer_click = None
    clicks: list[Touch] = []
    impressions: list[Touch] = []
    if facts.ip:
        clicks, impressions = await svc.store.candidate_touches(
            app.app_key, facts.ip, attribution.lookback_start(settings, facts.time), facts.time
        )
    return Candidates(
        referrer_click=referrer_click,
        referrer_click_id=click_id,
        clicks=clicks,
        impressions=impressions,
    )


def _install_row(
    facts: dict[str, Any],
    app: AppRecord,
    decision: Decision,
    install_id: str,
    now: float,
    answer: dict[str, Any],
    limited: bool,
    unified: dict[str, str],
) -> dict[str, Any]:
    touch = decision.touch if decision.status == "attributed" else None
    params = touch.params if touch else {}
    return {
        "id": install_id,
        "app_key": app.app_key,
        "app_instance_id": facts["app_instance_id"],
        "platform": facts["platform"],
        "time": facts["time"],
        "received_at": now,
        "ip": facts["ip"],
        "user_agent": facts["user_agent"],
        "os_version": facts["os_version"],
        "device_model": facts["device_model"],
        "language": facts["language"],
        "idfa": facts.get("idfa"),
        "idfv": facts.get("idfv"),
        "gaid": facts.get("gaid"),
        "android_id": facts.get("android_id"),
        "att_status": facts["att_status"],
        "install_referrer": facts["install_referrer"],
        "status": decision.status,
        "match_type": decision.match_type if touch else None,
        "touch_type": touch.kind if touch else None,
        "touch_id": touch.id if touch else None,
        "touch_time": touch.time if touch else None,
        "media_source": attribution.unified_pid(touch.pid if touch else None, unified),
        "original_media_source": touch.pid if touch else None,
        "campaign": params.get("c"),
        "campaign_id": params.get("af_c_id"),
        "adset": params.get("af_adset"),
        "adset_id": params.get("af_adset_id"),
        "ad": params.get("af_ad"),
        "ad_id": params.get("af_ad_id"),
        "channel": params.get("af_channel"),
        "site_id": params.get("af_siteid"),
        **{k: params.get(k) for k in CAMPAIGN_PARAMS if k.startswith("af_sub")},
        "ttclid": touch.ttclid if touch else None,
        "deep_link_value": params.get("deep_link_value"),
        "original_url": touch.original_url if touch else None,
        "country": touch.country if touch else None,
        "region": touch.region if touch else None,
        "is_limited_data_use": int(limited),
        "receipt": json.dumps(decision.receipt),
        "answer": json.dumps(answer),
    }


async def post_install(request: Request) -> Response:
    svc = services(request)
    body = json_object(await read_json(request))
    app = await _authorised_app(request, body)
    facts = _parse_install(request, svc, body)

    stored = await svc.store.install_by_instance(app.app_key, facts["app_instance_id"])
    if stored is not None:
        return JSONResponse(json.loads(stored["answer"]) | {"is_first_launch": False})

    integration = await svc.store.get_integration(app.app_key, PARTNER)
    settings = _attribution_settings(app, integration)
    device_ids = {k: facts[k] for k in DEVICE_IDS if facts.get(k)}
    prior = await svc.store.prior_install(
        app.app_key, device_ids, facts["time"] - settings.reattribution_window_days * 86_400
    )
    verdict = bot_verdict(facts["user_agent"]) if facts["user_agent"] else None
    install = InstallFacts(
        app_instance_id=facts["app_instance_id"],
        platform=facts["platform"],
        time=facts["time"],
        ip=facts["ip"],
        os_version=facts["os_version"],
        device_model=facts["device_model"],
        att_status=facts["att_status"],
        install_referrer=facts["install_referrer"],
        is_bot=verdict is not None and verdict.label == "bot",
        prior_install_id=prior["id"] if prior else None,
        prior_install_time=prior["time"] if prior else None,
    )
    unified = dict(svc.settings.unified_pids)
    for _ in range(MAX_CLAIM_ROUNDS):
        candidates = await _candidates(svc, app, install, settings)
        decision = attribution.decide(install, candidates, settings)
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
        limited = bool(event and event.get("limited_data_use"))
        claim = (
            decision.touch.id
            if decision.status == "attributed" and decision.touch and decision.touch.kind == "click"
            else None
        )
        now = svc.clock()
        row = _install_row(facts, app, decision, install_id, now, answer, limited, unified)
        try:
            saved, created = await svc.store.record_install(
                row, claim_click=claim, postbacks=postbacks, now=now
            )
        except ClickAlreadyClaimed:
            continue
        if created:
            svc.counters.installs[decision.status] += 1
            if postbacks and svc.outbox is not None:
                svc.outbox.nudge()
            return JSONResponse(answer)
        return JSONResponse(json.loads(saved["answer"]) | {"is_first_launch": False})
    raise ApiError(409, "conflict", "the install's click was claimed concurrently; retry")


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


def _revenue(value: dict[str, Any]) -> tuple[str | None, str | None]:
    revenue = value.get("af_revenue")
    currency = value.get("af_currency")
    if revenue is None:
        return None, None
    try:
        amount = Decimal(str(revenue))
    except InvalidOperation:
        raise ApiError.invalid(
            "event_value.af_revenue", "af_revenue must be a decimal number such as 9.99"
        ) from None
    if not amount.is_finite():
        raise ApiError.invalid("event_value.af_revenue", "af_revenue must be a finite number")
    if currency is None:
        currency = "USD"
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise ApiError.invalid(
            "event_value.af_currency", "af_currency must be an ISO 4217 code such as USD"
        )
    return str(amount), currency.upper()


async def post_event(request: Request) -> Response:
    svc = services(request)
    body = json_object(await read_json(request))
    app = await _authorised_app(request, body)
    instance = _text(body, "app_instance_id", required=True, limit=128)
    event_name = _text(body, "event_name", required=True, limit=100)
    event_id = _text(body, "event_id", limit=128)
    now = svc.clock()
    event_time = _time(body, "event_time", now)
    value = body.get("event_value") or {}
    if not isinstance(value, dict):
        raise ApiError.invalid("event_value", "event_value must be an object")
    user = body.get("user")
    if user is not None and not isinstance(user, dict):
        raise ApiError.invalid("user", "user must be an object")
    revenue, currency = _revenue(value)
    assert instance is not None and event_name is not None

    install = await svc.store.install_by_instance(app.app_key, instance)
    if install is None:
        raise ApiError(
            404, "unknown_install", "no install with this app_instance_id", "app_instance_id"
        )
    event_id = event_id or new_id()
    stored = await svc.store.event_by_id(app.app_key, event_id)
    if stored is not None:
        return JSONResponse(json.loads(stored["answer"]), status_code=202)

    integration = await svc.store.get_integration(app.app_key, PARTNER)
    config = integration.config if integration else None
    decision, entry = rules.event_decision(
        install=rules.InstallAttribution(
            status=install["status"],
            original_media_source=install["original_media_source"],
            time=install["time"],
            is_retained_organic=bool(install["is_retained_organic"]),
        ),
        integration=config,
        event_name=event_name,
        event_time=event_time,
    )
    media_source = install["media_source"]
    answer = {"event_id": event_id, "media_source": media_source, "postback": decision}
    postbacks: list[NewPostback] = []
    stored_id = new_id()
    if entry is not None and config is not None:
        touch = None
        if install["touch_id"] and install["original_media_source"] == PARTNER:
            touch = await svc.store.touch_by_id(install["touch_type"], install["touch_id"])
        event = rules.event_postback(
            entry=entry,
            event_id=stored_id,
            event_time=event_time,
            touch=touch,
            event_value=value,
            user={k: str(v) for k, v in (user or {}).items() if isinstance(v, str | int)},
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
        "event_value": json.dumps(value, ensure_ascii=False),
        "media_source": media_source,
        "postback": decision,
        "answer": json.dumps(answer),
    }
    saved, created = await svc.store.record_event(row, postbacks=postbacks, now=now)
    if created and postbacks and svc.outbox is not None:
        svc.outbox.nudge()
    return JSONResponse(json.loads(saved["answer"]), status_code=202)
