"""Which installs and events get a TikTok postback, and the event each one sends (pure).

postbacks.md section 2 and attribution.md section 6: installs attributed to `tiktokweb_int`
send the integration's install event; in-app events send their mapped TikTok event when the
install is TikTok's (or `for_users: "all"`), inside `window_days`. Nothing is sent for organic,
reinstall, re-attributed (re-engagement) or rejected installs, nor after retention made an
install organic. A mapping's `conditions` hold an event back (`condition_failed`), and an event
TikTok could match to nobody is not sent (`no_match_key`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.attribution import Decision
from app.postbacks import catalogue, conditions, tiktok
from app.touches import Touch
from app.vocabulary import DEFAULT_INSTALL_EVENT, PARTNER, REVENUE_EVENT

DAY = 86_400

EventPostbackDecision = Literal[
    "queued",
    "not_mapped",
    "outside_window",
    "not_attributed",
    "disabled",
    "condition_failed",
    "no_match_key",
]
# What in a payload's `user` lets TikTok match the event to a person: a ttclid or a hashed
# identifier alone, or the browser's IP and user agent together.
MATCH_KEYS = ("ttclid", "email", "phone", "external_id")


@dataclass(frozen=True)
class InstallAttribution:
    """What the event rules need to know of an event's install."""

    status: str
    original_media_source: str | None
    time: float
    is_retained_organic: bool = False


def _limited(config: Mapping[str, Any], touch: Touch | None, states: frozenset[str]) -> bool:
    return tiktok.limited_data_use(
        ccpa_limit=bool(config.get("ccpa_limit")),
        country=touch.country if touch else None,
        region=touch.region if touch else None,
        gpc=touch.gpc if touch else False,
        covered_states=states,
    )


def install_postback(
    *,
    decision: Decision,
    install_id: str,
    install_time: float,
    integration: Mapping[str, Any] | None,
    covered_states: frozenset[str],
) -> dict[str, object] | None:
    """The install's event for TikTok's `data` list, or None when nothing is to be sent."""
    touch = decision.touch
    if (
        decision.status != "attributed"
        or touch is None
        or touch.pid != PARTNER
        or integration is None
        or not integration.get("enabled")
    ):
        return None
    return tiktok.build_event(
        event=integration.get("install_event") or DEFAULT_INSTALL_EVENT,
        event_time=install_time,
        event_id=install_id,
        touch=touch,
        limited_data_use=_limited(integration, touch, covered_states),
    )


def event_decision(
    *,
    install: InstallAttribution,
    integration: Mapping[str, Any] | None,
    event_name: str,
    event_time: float,
) -> tuple[EventPostbackDecision, Mapping[str, Any] | None]:
    """(decision, the mapping entry when queued) for one in-app event."""
    if integration is None or not integration.get("enabled"):
        return "disabled", None
    inapp = integration.get("inapp_postbacks", {})
    if not inapp.get("enabled", True):
        return "disabled", None
    entry = next((e for e in inapp.get("events", []) if e["app_event"] == event_name), None)
    if entry is None:
        return "not_mapped", None
    # Retention made the install organic: its later events send nothing, not even under
    # `for_users: "all"` (reporting.md section 5, "no postback"). A rejected install was fraud.
    # A re-attributed one is re-engagement, and tiktokweb_int sends no re-engagement postbacks.
    if install.is_retained_organic or install.status in ("rejected", "reattributed"):
        return "not_attributed", None
    ours = install.status == "attributed" and install.original_media_source == PARTNER
    if not ours and inapp.get("for_users") != "all":
        return "not_attributed", None
    window = inapp.get("window_days", 0)
    if window and event_time - install.time > window * DAY:
        return "outside_window", None
    return "queued", entry


def tiktok_event(entry: Mapping[str, Any]) -> str:
    """The TikTok event a mapping entry sends (a partner identifier under its TikTok name)."""
    return catalogue.tiktok_event(str(entry["partner_event"]))


def check_conditions(
    entry: Mapping[str, Any], event_value: Mapping[str, object]
) -> tuple[list[dict[str, object]], bool]:
    """(one record per condition of the mapping, whether all were met); ([], True) when the
    mapping has none."""
    records = conditions.evaluate(entry.get("conditions") or [], event_value)
    return records, all(r["met"] for r in records)


def has_match_key(payload: Mapping[str, object]) -> bool:
    """Whether TikTok can match the event: its `user` has a ttclid or a hashed identifier, or
    both the IP and the user agent of a touch."""
    user = payload.get("user")
    if not isinstance(user, Mapping):
        return False
    return any(user.get(k) for k in MATCH_KEYS) or bool(user.get("ip") and user.get("user_agent"))


def event_postback(
    *,
    entry: Mapping[str, Any],
    event_id: str,
    event_time: float,
    touch: Touch | None,
    event_value: Mapping[str, object],
    user: Mapping[str, str] | None,
    integration: Mapping[str, Any],
    covered_states: frozenset[str],
) -> dict[str, object]:
    """The mapped event for TikTok's `data` list. `touch` is the install's TikTok touch, or
    None for an event of another source sent under `for_users: "all"` (no ttclid then)."""
    payload, _ = event_postback_and_flags(
        entry=entry,
        event_id=event_id,
        event_time=event_time,
        touch=touch,
        event_value=event_value,
        user=user,
        integration=integration,
        covered_states=covered_states,
    )
    return payload


def event_postback_and_flags(
    *,
    entry: Mapping[str, Any],
    event_id: str,
    event_time: float,
    touch: Touch | None,
    event_value: Mapping[str, object],
    user: Mapping[str, str] | None,
    integration: Mapping[str, Any],
    covered_states: frozenset[str],
) -> tuple[dict[str, object], tuple[str, ...]]:
    """`event_postback` and the flags its properties got (`tiktok.event_properties`)."""
    event = tiktok_event(entry)
    # Revenue only on Purchase, even if a stored mapping says otherwise (the config API refuses
    # it elsewhere; a mapping written before that rule must not leak revenue to TikTok).
    properties, flags = tiktok.event_properties(
        event_value, include_revenue=bool(entry.get("include_revenue")) and event == REVENUE_EVENT
    )
    payload = tiktok.build_event(
        event=event,
        event_time=event_time,
        event_id=event_id,
        touch=touch,
        limited_data_use=_limited(integration, touch, covered_states),
        user=user,
        properties=properties,
    )
    return payload, flags
