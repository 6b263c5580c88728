"""Which installs and events get a TikTok postback, and the event each one sends (pure).

postbacks.md section 2 and attribution.md section 6: installs attributed to `tiktokweb_int`
send the integration's install event; in-app events send their mapped TikTok event when the
install is TikTok's (or `for_users: "all"`), inside `window_days`. Nothing is sent for organic,
reinstall or rejected installs, nor after retention made an install organic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.attribution import Decision
from app.postbacks import tiktok
from app.touches import Touch
from app.vocabulary import DEFAULT_INSTALL_EVENT, PARTNER, REVENUE_EVENT

DAY = 86_400

EventPostbackDecision = Literal[
    "queued", "not_mapped", "outside_window", "not_attributed", "disabled"
]


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
    if install.is_retained_organic or install.status == "rejected":
        return "not_attributed", None
    ours = install.status == "attributed" and install.original_media_source == PARTNER
    if not ours and inapp.get("for_users") != "all":
        return "not_attributed", None
    window = inapp.get("window_days", 0)
    if window and event_time - install.time > window * DAY:
        return "outside_window", None
    return "queued", entry


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
    # Revenue only on Purchase, even if a stored mapping says otherwise (the config API refuses
    # it elsewhere; a mapping written before that rule must not leak revenue to TikTok).
    if entry.get("include_revenue") and entry["partner_event"] == REVENUE_EVENT:
        properties = tiktok.revenue_properties(event_value)
    else:
        content_id = event_value.get("af_content_id")
        properties = {"content_id": tiktok.as_text(content_id)} if content_id else {}
    return tiktok.build_event(
        event=entry["partner_event"],
        event_time=event_time,
        event_id=event_id,
        touch=touch,
        limited_data_use=_limited(integration, touch, covered_states),
        user=user,
        properties=properties,
    )
