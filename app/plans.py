"""What an install or an in-app event will write: the plans the app surface carries out (pure).

`POST /api/v1/installs` parses its body into an `InstallRequest`, reads the prior install and the
candidate touches, and asks `plan_install` what to write: the `Install` (with its receipt and
conversion data), the click it claims and its postback. The store writes the plan in one
transaction. When another install claimed the click first, the handler plans again with that
click marked claimed (`without_claimed`), so the loser moves on to the next touch or organic.

`POST /api/v1/events` does the same with `event_rule` (does the event send a postback?),
`touch_to_describe` (which touch the postback carries) and `plan_event`.

Decisions where the spec is silent are listed in `docs/decisions.md` ("Installs" and "Events").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from app import attribution
from app.attribution import Candidates, Decision, InstallFacts
from app.conversions import Event, Install, PriorInstall
from app.postbacks import rules
from app.postbacks.postback import NewPostback
from app.touches import Touch, campaign_columns
from app.vocabulary import PARTNER

DEVICE_IDS = ("idfa", "idfv", "gaid", "android_id")
# A click marked claimed by a concurrent install (never an app_instance_id: those are sent by
# apps, this has a space and parentheses no id check would let through unnoticed).
CLAIMED_CONCURRENTLY = "(claimed concurrently)"


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
    device_ids: Mapping[str, str]


@dataclass(frozen=True)
class InstallPlan:
    decision: Decision
    install: Install
    # The click this install claims (None: it claims none); written in the same transaction.
    claim_click: str | None
    postbacks: list[NewPostback]


def install_facts(
    req: InstallRequest,
    prior: PriorInstall | None,
    *,
    is_bot: bool,
    first_install_time: float | None = None,
) -> InstallFacts:
    """What the attribution engine compares touches with. `first_install_time` is the time of
    the install `prior` re-installed (`prior.first_install_id`), when that is not `prior`."""
    return InstallFacts(
        app_instance_id=req.app_instance_id,
        platform=req.platform,
        time=req.time,
        ip=req.ip,
        os_version=req.os_version,
        device_model=req.device_model,
        att_status=req.att_status,
        install_referrer=req.install_referrer,
        is_bot=is_bot,
        prior_install_id=prior.id if prior else None,
        prior_install_time=prior.time if prior else None,
        first_install_id=prior.first_install_id if prior else None,
        first_install_time=(
            prior.time if prior and prior.first_install_id == prior.id else first_install_time
        ),
    )


def without_claimed(candidates: Candidates, lost: set[str]) -> Candidates:
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


def plan_install(
    *,
    app_key: str,
    req: InstallRequest,
    facts: InstallFacts,
    candidates: Candidates,
    settings: attribution.AttributionSettings,
    prior: PriorInstall | None,
    integration: Mapping[str, Any] | None,
    install_id: str,
    now: float,
    unified: Mapping[str, str],
    covered_states: frozenset[str],
) -> InstallPlan:
    decision = attribution.decide(facts, candidates, settings)
    answer = attribution.conversion_data(decision, install_id, True, unified)
    event = rules.install_postback(
        decision=decision,
        install_id=install_id,
        install_time=facts.time,
        integration=integration,
        covered_states=covered_states,
    )
    postbacks = (
        [NewPostback(app_key, PARTNER, "install", install_id, str(event["event"]), event)]
        if event
        else []
    )
    # A rejected install names its click only in the receipt: reports must not credit it.
    touch = decision.touch if decision.status in attribution.CREDITED else None
    params = touch.params if touch else {}
    install = Install(
        id=install_id,
        app_key=app_key,
        app_instance_id=req.app_instance_id,
        platform=req.platform,
        time=req.time,
        received_at=now,
        ip=req.ip,
        user_agent=req.user_agent,
        os_version=req.os_version,
        device_model=req.device_model,
        language=req.language,
        idfa=req.device_ids.get("idfa"),
        idfv=req.device_ids.get("idfv"),
        gaid=req.device_ids.get("gaid"),
        android_id=req.device_ids.get("android_id"),
        att_status=req.att_status,
        install_referrer=req.install_referrer,
        status=decision.status,
        match_type=decision.match_type if touch else None,
        touch_type=touch.kind if touch else None,
        touch_id=touch.id if touch else None,
        touch_time=touch.time if touch else None,
        media_source=attribution.unified_pid(touch.pid if touch else None, unified),
        original_media_source=touch.pid if touch else None,
        **campaign_columns(params),
        channel=params.get("af_channel"),
        site_id=params.get("af_siteid"),
        ttclid=touch.ttclid if touch else None,
        original_url=touch.original_url if touch else None,
        country=touch.country if touch else None,
        region=touch.region if touch else None,
        is_limited_data_use=bool(event and event.get("limited_data_use")),
        is_retained_organic=False,
        receipt=decision.receipt,
        answer=answer,
        reinstall_of=(prior.first_install_id if prior and decision.status == "reinstall" else None),
    )
    claim = (
        decision.touch.id
        if decision.status in attribution.CREDITED
        and decision.touch
        and decision.touch.kind == "click"
        else None
    )
    return InstallPlan(decision, install, claim, postbacks)


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRequest:
    """A `POST /api/v1/events` body, checked."""

    app_instance_id: str
    event_name: str
    # The app's id of the event, or None (Gangway makes one).
    event_id: str | None
    event_time: float
    event_value: dict[str, Any]
    # Hashed into the postback, never stored.
    user: Mapping[str, str]
    revenue: str | None
    currency: str | None


@dataclass(frozen=True)
class EventRule:
    """Whether an event sends a postback (`decision`), and its mapping entry when it does.
    `conditions` records each condition of the mapping as this event met it or not."""

    decision: rules.EventPostbackDecision
    entry: Mapping[str, Any] | None
    conditions: tuple[dict[str, object], ...] = ()


@dataclass(frozen=True)
class EventPlan:
    event: Event
    postbacks: list[NewPostback]


def event_rule(
    attributed: Install, integration: Mapping[str, Any] | None, req: EventRequest
) -> EventRule:
    """`attributed` is the install whose attribution the event carries
    (`conversions.attributing_install`)."""
    decision, entry = rules.event_decision(
        install=rules.InstallAttribution(
            status=attributed.status,
            original_media_source=attributed.original_media_source,
            time=attributed.time,
            is_retained_organic=attributed.is_retained_organic,
        ),
        integration=integration,
        event_name=req.event_name,
        event_time=req.event_time,
    )
    if entry is None:
        return EventRule(decision, None)
    records, met = rules.check_conditions(entry, req.event_value)
    if not met:
        return EventRule("condition_failed", None, tuple(records))
    return EventRule(decision, entry, tuple(records))


def touch_to_describe(
    rule: EventRule, attributed: Install, integration: Mapping[str, Any] | None
) -> tuple[str, str] | None:
    """(kind, id) of the TikTok touch the event's postback describes; None when no postback is
    sent or the install has no TikTok touch (nothing to read)."""
    if rule.entry is None or integration is None:
        return None
    if (
        attributed.touch_id
        and attributed.touch_type
        and attributed.original_media_source == PARTNER
    ):
        return attributed.touch_type, attributed.touch_id
    return None


def plan_event(
    *,
    app_key: str,
    req: EventRequest,
    install: Install,
    attributed: Install,
    rule: EventRule,
    integration: Mapping[str, Any] | None,
    touch: Touch | None,
    event_id: str,
    stored_id: str,
    now: float,
    covered_states: frozenset[str],
) -> EventPlan:
    postbacks: list[NewPostback] = []
    decision = rule.decision
    flags: tuple[str, ...] = ()
    if rule.entry is not None and integration is not None:
        payload, flags = rules.event_postback_and_flags(
            entry=rule.entry,
            event_id=stored_id,
            event_time=req.event_time,
            touch=touch,
            event_value=req.event_value,
            user=req.user or None,
            integration=integration,
            covered_states=covered_states,
        )
        # An event TikTok can match to nobody (an organic user under `for_users: "all"` with
        # no hashed identifier) would only count as noise: it is recorded, not sent.
        if rules.has_match_key(payload):
            postbacks.append(
                NewPostback(
                    app_key, PARTNER, "event", stored_id, rules.tiktok_event(rule.entry), payload
                )
            )
        else:
            decision = "no_match_key"
    answer: dict[str, Any] = {
        "event_id": event_id,
        "media_source": attributed.media_source,
        "postback": decision,
    }
    if rule.conditions:
        answer["conditions"] = [dict(c) for c in rule.conditions]
    if flags:
        answer["flags"] = list(flags)
    event = Event(
        id=stored_id,
        app_key=app_key,
        event_id=event_id,
        install_id=install.id,
        app_instance_id=req.app_instance_id,
        event_name=req.event_name,
        event_time=req.event_time,
        received_at=now,
        revenue=req.revenue,
        currency=req.currency,
        event_value=req.event_value,
        media_source=attributed.media_source,
        postback=decision,
        answer=answer,
    )
    return EventPlan(event, postbacks)
