"""The attribution waterfall, rule by rule (`attribution.md` sections 2 to 5).

Each table row is one situation: the touches the store found, the install, the settings, and the
outcome a marketer would see (status, tier, touch) plus the reason each losing touch lost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from app.attribution import (
    AttributionSettings,
    Candidates,
    Decision,
    InstallFacts,
    conversion_data,
    decide,
    parse_install_referrer,
    referrer_click_id,
    settings_from_config,
    unified_pid,
)
from app.configs import validate_app
from app.touches import Touch
from app.vocabulary import DEFAULT_UNIFIED_PIDS

INSTALL_TIME = datetime(2026, 11, 21, 10, 0, tzinfo=UTC).timestamp()
SECOND = 1
HOUR = 3_600
DAY = 86_400
IP = "203.0.113.7"
OTHER_IP = "198.51.100.9"
INSTANCE = "instance-1"
# Impressions only match for pids with view-through on; most rows want them to be able to.
VIEW_THROUGH = AttributionSettings(view_through_pids=frozenset({"tiktokweb_int"}))


def click(touch_id: str, before: float, **fields: Any) -> Touch:
    """A human click from the install's phone `before` seconds before the install."""
    base: dict[str, Any] = {
        "id": touch_id,
        "kind": "click",
        "app_key": "demo",
        "time": INSTALL_TIME - before,
        "ip": IP,
        "os_family": "android",
        "os_version": "14",
        "device_model": "Pixel 8",
        "pid": "tiktokweb_int",
        "params": {"c": "summer", "af_c_id": "1700"},
    }
    return Touch(**{**base, **fields})


def impression(touch_id: str, before: float, **fields: Any) -> Touch:
    return click(touch_id, before, kind="impression", **fields)


def install(**fields: Any) -> InstallFacts:
    base: dict[str, Any] = {
        "app_instance_id": INSTANCE,
        "platform": "android",
        "time": INSTALL_TIME,
        "ip": IP,
        "os_version": "14",
        "device_model": "Pixel 8",
        "att_status": None,
        "install_referrer": None,
    }
    return InstallFacts(**{**base, **fields})


def ios_click(touch_id: str, before: float, **fields: Any) -> Touch:
    apple: dict[str, Any] = {"os_family": "ios", "os_version": "17.1", "device_model": "iPhone"}
    return click(touch_id, before, **{**apple, **fields})


def ios_impression(touch_id: str, before: float, **fields: Any) -> Touch:
    return ios_click(touch_id, before, kind="impression", **fields)


IOS_INSTALL: dict[str, Any] = {
    "platform": "ios",
    "os_version": "17.1.2",
    "device_model": "iPhone15,2",
    "att_status": "authorized",
}


@dataclass(frozen=True)
class Row:
    name: str
    # (status, match_type, touch id) as the install endpoint would report them.
    expect: tuple[str, str | None, str | None]
    clicks: tuple[Touch, ...] = ()
    impressions: tuple[Touch, ...] = ()
    referrer: Touch | None = None
    # The id the Play referrer named when no stored click has it.
    unknown_referrer_id: str | None = None
    install: Mapping[str, Any] = field(default_factory=dict)
    settings: AttributionSettings = VIEW_THROUGH
    # touch id -> the reason the receipt must give for its loss
    losers: Mapping[str, str] = field(default_factory=dict)
    reason: str | None = None


def run(row: Row) -> Decision:
    named = row.referrer.id if row.referrer else row.unknown_referrer_id
    candidates = Candidates(
        referrer_click=row.referrer,
        referrer_click_id=named,
        clicks=row.clicks,
        impressions=row.impressions,
    )
    return decide(install(**row.install), candidates, row.settings)


def loser_reasons(decision: Decision) -> dict[str, str]:
    tiers: Any = decision.receipt["tiers"]
    return {loser["id"]: loser["reason"] for tier in tiers for loser in tier["losers"]}


def check(row: Row) -> Decision:
    decision = run(row)
    touch_id = decision.touch.id if decision.touch else None
    assert (decision.status, decision.match_type, touch_id) == row.expect
    assert decision.receipt["reason"] == row.reason
    reasons = loser_reasons(decision)
    for touch_id, reason in row.losers.items():
        assert reasons.get(touch_id) == reason, f"{touch_id}: {reasons}"
    # The receipt is stored and served as JSON.
    json.dumps(decision.receipt)
    return decision


# attribution.md section 2: every window includes its edge, one second inside counts, one second
# outside does not; touches after the install never count.
WINDOW_ROWS = [
    Row(
        "referrer click exactly at the 7 day lookback edge",
        ("attributed", "referrer", "r"),
        referrer=click("r", 7 * DAY, ip=OTHER_IP),
    ),
    Row(
        "referrer click one second inside the lookback",
        ("attributed", "referrer", "r"),
        referrer=click("r", 7 * DAY - SECOND, ip=OTHER_IP),
    ),
    Row(
        "referrer click one second outside the lookback",
        ("organic", None, None),
        referrer=click("r", 7 * DAY + SECOND, ip=OTHER_IP),
        losers={"r": "outside_window"},
    ),
    Row(
        "click_lookback_days setting moves the referrer edge",
        ("organic", None, None),
        referrer=click("r", DAY + SECOND, ip=OTHER_IP),
        settings=AttributionSettings(click_lookback_days=1),
        losers={"r": "outside_window"},
    ),
    Row(
        "probabilistic click exactly at the 24 hour edge",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", 24 * HOUR),),
    ),
    Row(
        "probabilistic click one second inside the window",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", 24 * HOUR - SECOND),),
    ),
    Row(
        "probabilistic click one second outside the window",
        ("organic", None, None),
        clicks=(click("c", 24 * HOUR + SECOND),),
        losers={"c": "outside_window"},
    ),
    Row(
        "probabilistic_window_hours setting: at its edge",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", HOUR),),
        settings=AttributionSettings(probabilistic_window_hours=1),
    ),
    Row(
        "probabilistic_window_hours setting: one second outside",
        ("organic", None, None),
        clicks=(click("c", HOUR + SECOND),),
        settings=AttributionSettings(probabilistic_window_hours=1),
        losers={"c": "outside_window"},
    ),
    Row(
        "impression exactly at the 24 hour view-through edge",
        ("attributed", "probabilistic_impression", "i"),
        impressions=(impression("i", 24 * HOUR),),
    ),
    Row(
        "impression one second inside the view-through window",
        ("attributed", "probabilistic_impression", "i"),
        impressions=(impression("i", 24 * HOUR - SECOND),),
    ),
    Row(
        "impression one second outside the view-through window",
        ("organic", None, None),
        impressions=(impression("i", 24 * HOUR + SECOND),),
        losers={"i": "outside_window"},
    ),
    Row(
        "a shorter view-through window leaves the click window alone",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", 3 * HOUR),),
        settings=replace(VIEW_THROUGH, viewthrough_lookback_hours=2),
    ),
    Row(
        "viewthrough_lookback_hours setting: one second outside",
        ("organic", None, None),
        impressions=(impression("i", 2 * HOUR + SECOND),),
        settings=replace(VIEW_THROUGH, viewthrough_lookback_hours=2),
        losers={"i": "outside_window"},
    ),
    Row(
        "a click at the install's own second counts (upper edge)",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", 0),),
        settings=AttributionSettings(min_click_to_install_seconds=0),
    ),
    Row(
        "a click one second after the install does not",
        ("organic", None, None),
        clicks=(click("c", -SECOND),),
        settings=AttributionSettings(min_click_to_install_seconds=0),
        losers={"c": "outside_window"},
    ),
    Row(
        "an impression at the install's own second counts",
        ("attributed", "probabilistic_impression", "i"),
        impressions=(impression("i", 0),),
    ),
    Row(
        "an impression one second after the install does not",
        ("organic", None, None),
        impressions=(impression("i", -SECOND),),
        losers={"i": "outside_window"},
    ),
    Row(
        "a referrer click after the install does not count",
        ("organic", None, None),
        referrer=click("r", -SECOND),
        losers={"r": "outside_window"},
    ),
    Row(
        "view-through off: an impression never matches",
        ("organic", None, None),
        impressions=(impression("i", HOUR),),
        settings=AttributionSettings(),
        losers={"i": "not_view_through"},
    ),
    Row(
        "view-through is per pid: another source's impression does not match",
        ("organic", None, None),
        impressions=(impression("i", HOUR, pid="othernet_int"),),
        losers={"i": "not_view_through"},
    ),
    Row(
        "view-through is per pid: an impression without pid does not match",
        ("organic", None, None),
        impressions=(impression("i", HOUR, pid=None),),
        losers={"i": "not_view_through"},
    ),
    Row(
        "view-through is always off for bot impressions",
        ("organic", None, None),
        impressions=(impression("i", HOUR, verdict="bot", verdict_reasons=("crawler_ua",)),),
        losers={"i": "bot"},
    ),
]

# attribution.md section 4, the time-based states: reattribution window and click injection.
STATE_WINDOW_ROWS = [
    Row(
        "prior install exactly 90 days ago: reinstall, no new attribution",
        ("reinstall", None, None),
        referrer=click("r", HOUR),
        install={"prior_install_id": "first", "prior_install_time": INSTALL_TIME - 90 * DAY},
    ),
    Row(
        "prior install one second inside the reattribution window",
        ("reinstall", None, None),
        clicks=(click("c", HOUR),),
        install={
            "prior_install_id": "first",
            "prior_install_time": INSTALL_TIME - 90 * DAY + SECOND,
        },
    ),
    Row(
        "prior install one second outside the reattribution window: re-attributed to the click",
        ("reattributed", "probabilistic_click", "c"),
        clicks=(click("c", HOUR),),
        install={
            "prior_install_id": "first",
            "prior_install_time": INSTALL_TIME - 90 * DAY - SECOND,
        },
    ),
    Row(
        "reattribution_window_days setting moves the edge",
        ("reattributed", "probabilistic_click", "c"),
        clicks=(click("c", HOUR),),
        install={"prior_install_id": "first", "prior_install_time": INSTALL_TIME - 2 * DAY},
        settings=AttributionSettings(reattribution_window_days=1),
    ),
    Row(
        "outside the reattribution window, the referrer click re-attributes",
        ("reattributed", "referrer", "r"),
        referrer=click("r", HOUR),
        install={"prior_install_id": "first", "prior_install_time": INSTALL_TIME - 91 * DAY},
    ),
    Row(
        "outside the reattribution window, an impression re-attributes too",
        ("reattributed", "probabilistic_impression", "i"),
        impressions=(impression("i", HOUR),),
        install={"prior_install_id": "first", "prior_install_time": INSTALL_TIME - 91 * DAY},
    ),
    Row(
        "outside the reattribution window with no touch: organic",
        ("organic", None, None),
        install={"prior_install_id": "first", "prior_install_time": INSTALL_TIME - 91 * DAY},
    ),
    Row(
        "the window runs from the first install, not from the latest reinstall: one second out",
        ("reattributed", "probabilistic_click", "c"),
        clicks=(click("c", HOUR),),
        install={
            "prior_install_id": "reinstall",
            "prior_install_time": INSTALL_TIME - 10 * DAY,
            "first_install_id": "first",
            "first_install_time": INSTALL_TIME - 90 * DAY - SECOND,
        },
    ),
    Row(
        "the window runs from the first install, not from the latest reinstall: one second in",
        ("reinstall", None, None),
        clicks=(click("c", HOUR),),
        install={
            "prior_install_id": "reinstall",
            "prior_install_time": INSTALL_TIME - 10 * DAY,
            "first_install_id": "first",
            "first_install_time": INSTALL_TIME - 90 * DAY + SECOND,
        },
    ),
    Row(
        "a re-attribution's click that came too fast is still click injection",
        ("rejected", "probabilistic_click", "c"),
        clicks=(click("c", 3),),
        install={"prior_install_id": "first", "prior_install_time": INSTALL_TIME - 91 * DAY},
        reason="click_injection",
    ),
    Row(
        "a prior install whose time is unknown is a reinstall",
        ("reinstall", None, None),
        clicks=(click("c", HOUR),),
        install={"prior_install_id": "first"},
    ),
    Row(
        "click exactly min_click_to_install_seconds before the install is fine",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", 10),),
    ),
    Row(
        "click one second more than the minimum before the install is fine",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", 11),),
    ),
    Row(
        "click one second too close to the install: click injection",
        ("rejected", "probabilistic_click", "c"),
        clicks=(click("c", 9),),
        reason="click_injection",
    ),
    Row(
        "a referrer click too close to the install is click injection too",
        ("rejected", "referrer", "r"),
        referrer=click("r", 9),
        reason="click_injection",
    ),
    Row(
        "the latest click decides: a too-fast click is not skipped for an older one",
        ("rejected", "probabilistic_click", "fast"),
        clicks=(click("fast", 2), click("slow", HOUR)),
        reason="click_injection",
        losers={"slow": "older"},
    ),
    Row(
        "min_click_to_install_seconds setting raises the bar",
        ("rejected", "probabilistic_click", "c"),
        clicks=(click("c", 59),),
        settings=AttributionSettings(min_click_to_install_seconds=60),
        reason="click_injection",
    ),
    Row(
        "impressions are never click injection",
        ("attributed", "probabilistic_impression", "i"),
        impressions=(impression("i", 1),),
    ),
]


# attribution.md section 3, tier 1 and the tier order.
REFERRER_ROWS = [
    Row(
        "referrer click matches whatever its signals say",
        ("attributed", "referrer", "r"),
        referrer=click(
            "r", 3 * DAY, ip=OTHER_IP, os_family="windows", os_version="10", device_model=None
        ),
    ),
    Row(
        "deterministic beats probabilistic even when older",
        ("attributed", "referrer", "r"),
        referrer=click("r", 6 * DAY),
        clicks=(click("c", HOUR),),
        impressions=(impression("i", 60),),
    ),
    Row(
        "a referrer naming an unknown click is organic, with no probabilistic fall-through",
        ("organic", None, None),
        unknown_referrer_id="forged",
        clicks=(click("c", HOUR),),
        impressions=(impression("i", HOUR),),
    ),
    Row(
        "referrer click claimed by another install: the next tier decides",
        ("attributed", "probabilistic_click", "c"),
        referrer=click("r", 2 * HOUR, claimed_by="instance-2"),
        clicks=(click("c", 3 * HOUR),),
        losers={"r": "claimed"},
    ),
    Row(
        "referrer click claimed by this same app_instance_id still matches",
        ("attributed", "referrer", "r"),
        referrer=click("r", 2 * HOUR, claimed_by=INSTANCE),
    ),
    Row(
        "a bot referrer click never matches",
        ("organic", None, None),
        referrer=click("r", HOUR, verdict="bot", verdict_reasons=("preview_ua",)),
        losers={"r": "bot"},
    ),
    Row(
        "a suspect referrer click may match",
        ("attributed", "referrer", "r"),
        referrer=click("r", HOUR, verdict="suspect", verdict_reasons=("burst_ip",)),
    ),
    Row(
        "a referrer click outside its lookback leaves the impression tier to decide",
        ("attributed", "probabilistic_impression", "i"),
        referrer=click("r", 8 * DAY),
        impressions=(impression("i", HOUR),),
        losers={"r": "outside_window"},
    ),
    Row(
        "nothing at all: organic",
        ("organic", None, None),
    ),
]

# attribution.md section 3, tiers 2 and 3: the signals and the claims.
PROBABILISTIC_ROWS = [
    Row(
        "inside a tier the latest click wins",
        ("attributed", "probabilistic_click", "new"),
        clicks=(click("old", 5 * HOUR), click("new", HOUR)),
        losers={"old": "older"},
    ),
    Row(
        "two clicks in the same second: the greater id wins, the other lost a tie",
        ("attributed", "probabilistic_click", "b"),
        clicks=(click("b", HOUR), click("a", HOUR)),
        losers={"a": "tie"},
    ),
    Row(
        "the tie goes the same way whatever order the store returns the clicks in",
        ("attributed", "probabilistic_click", "b"),
        clicks=(click("a", HOUR), click("b", HOUR)),
        losers={"a": "tie"},
    ),
    Row(
        "clicks always beat impressions, even newer ones",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", 20 * HOUR),),
        impressions=(impression("i", 60),),
    ),
    Row(
        "inside the impression tier the latest impression wins",
        ("attributed", "probabilistic_impression", "new"),
        impressions=(impression("old", 5 * HOUR), impression("new", HOUR)),
        losers={"old": "older"},
    ),
    Row(
        "a click claimed by another install is no candidate",
        ("attributed", "probabilistic_impression", "i"),
        clicks=(click("c", HOUR, claimed_by="instance-2"),),
        impressions=(impression("i", 2 * HOUR),),
        losers={"c": "claimed"},
    ),
    Row(
        "only the referrer tier ignores a claim by the same app_instance_id",
        ("organic", None, None),
        clicks=(click("c", HOUR, claimed_by=INSTANCE),),
        losers={"c": "claimed"},
    ),
    Row(
        "an unclaimed older click wins over a claimed newer one",
        ("attributed", "probabilistic_click", "free"),
        clicks=(click("taken", HOUR, claimed_by="instance-2"), click("free", 2 * HOUR)),
        losers={"taken": "claimed"},
    ),
    Row(
        "a bot click never matches",
        ("organic", None, None),
        clicks=(click("c", HOUR, verdict="bot", verdict_reasons=("crawler_ua",)),),
        losers={"c": "bot"},
    ),
    Row(
        "a suspect click may match",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", HOUR, verdict="suspect", verdict_reasons=("no_ua",)),),
    ),
    Row(
        "IP must be equal",
        ("organic", None, None),
        clicks=(click("c", HOUR, ip=OTHER_IP),),
        losers={"c": "signal_mismatch"},
    ),
    Row(
        "an install without IP matches nothing probabilistically",
        ("organic", None, None),
        clicks=(click("c", HOUR),),
        install={"ip": None},
        losers={"c": "signal_mismatch"},
    ),
    Row(
        "an IPv4-mapped IPv6 address is the same IPv4 address",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", HOUR, ip=f"::ffff:{IP}"),),
    ),
    Row(
        "OS family must equal the install platform",
        ("organic", None, None),
        clicks=(click("c", HOUR, os_family="ios", device_model=None),),
        losers={"c": "signal_mismatch"},
    ),
    Row(
        "a touch whose OS is unknown cannot equal the platform",
        ("organic", None, None),
        clicks=(click("c", HOUR, os_family=None),),
        losers={"c": "signal_mismatch"},
    ),
    Row(
        "OS major versions that differ: no match",
        ("organic", None, None),
        clicks=(click("c", HOUR, os_version="13"),),
        losers={"c": "signal_mismatch"},
    ),
    Row(
        "only the major version is compared",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", HOUR, os_version="14.1.2"),),
    ),
    Row(
        "an OS version unknown on one side is not compared",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", HOUR, os_version=None),),
    ),
    Row(
        "device models that differ: no match",
        ("organic", None, None),
        clicks=(click("c", HOUR, device_model="SM-S918B"),),
        losers={"c": "signal_mismatch"},
    ),
    Row(
        "device models compare case- and space-insensitively",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", HOUR, device_model=" pixel  8 "),),
    ),
    Row(
        "a device model unknown on one side is not compared",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", HOUR),),
        install={"device_model": None},
    ),
    Row(
        "Chrome's reduced UA (Android 10; K) says nothing about version or model",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", HOUR, os_version="10", device_model="K"),),
    ),
    Row(
        "a UA parser's generic model says nothing about the model",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", HOUR, device_model="Smartphone"),),
    ),
    Row(
        "Android 10 still differs from an older install version",
        ("organic", None, None),
        clicks=(click("c", HOUR, os_version="10", device_model="K"),),
        install={"os_version": "9"},
        losers={"c": "signal_mismatch"},
    ),
    Row(
        "impressions get the same signal test",
        ("organic", None, None),
        impressions=(impression("i", HOUR, ip=OTHER_IP),),
        losers={"i": "signal_mismatch"},
    ),
]

# attribution.md section 3: iOS installs and ATT; Apple UAs name only the device family.
IOS_ROWS = [
    Row(
        "iOS with ATT authorized: probabilistic click",
        ("attributed", "probabilistic_click", "c"),
        clicks=(ios_click("c", HOUR),),
        install=IOS_INSTALL,
    ),
    Row(
        "iOS with no ATT status sent",
        ("attributed", "probabilistic_click", "c"),
        clicks=(ios_click("c", HOUR),),
        install={**IOS_INSTALL, "att_status": None},
    ),
    Row(
        "iOS with ATT not determined",
        ("attributed", "probabilistic_impression", "i"),
        impressions=(ios_impression("i", HOUR),),
        install={**IOS_INSTALL, "att_status": "notDetermined"},
    ),
    Row(
        "iOS with ATT denied: no probabilistic click",
        ("organic", None, None),
        clicks=(ios_click("c", HOUR),),
        impressions=(ios_impression("i", HOUR),),
        install={**IOS_INSTALL, "att_status": "denied"},
        losers={"c": "att_denied", "i": "att_denied"},
    ),
    Row(
        "iOS with ATT restricted: no probabilistic click",
        ("organic", None, None),
        clicks=(ios_click("c", HOUR),),
        install={**IOS_INSTALL, "att_status": "Restricted"},
        losers={"c": "att_restricted"},
    ),
    Row(
        "probabilistic_ios off: iOS installs get no probabilistic match",
        ("organic", None, None),
        clicks=(ios_click("c", HOUR),),
        impressions=(ios_impression("i", HOUR),),
        install=IOS_INSTALL,
        settings=replace(VIEW_THROUGH, probabilistic_ios=False),
        losers={"c": "ios_probabilistic_off", "i": "ios_probabilistic_off"},
    ),
    Row(
        "probabilistic_ios off leaves Android installs alone",
        ("attributed", "probabilistic_click", "c"),
        clicks=(click("c", HOUR),),
        settings=AttributionSettings(probabilistic_ios=False),
    ),
    Row(
        "probabilistic_ios off leaves the deterministic tier alone",
        ("attributed", "referrer", "r"),
        referrer=ios_click("r", HOUR),
        install=IOS_INSTALL,
        settings=AttributionSettings(probabilistic_ios=False),
    ),
    Row(
        "an iPad click is not this iPhone",
        ("organic", None, None),
        clicks=(ios_click("c", HOUR, device_model="iPad"),),
        install=IOS_INSTALL,
        losers={"c": "signal_mismatch"},
    ),
    Row(
        "Safari since iOS 26 says iOS 18: not a version mismatch",
        ("attributed", "probabilistic_click", "c"),
        clicks=(ios_click("c", HOUR, os_version="18.6"),),
        install={**IOS_INSTALL, "os_version": "26.1"},
    ),
    Row(
        "a touch on iOS 18 is not an install on iOS 17",
        ("organic", None, None),
        clicks=(ios_click("c", HOUR, os_version="18.6"),),
        install={**IOS_INSTALL, "os_version": "17.4"},
        losers={"c": "signal_mismatch"},
    ),
]

# attribution.md section 4: rejected installs.
REJECTED_ROWS = [
    Row(
        "an install from a bot IP and UA is rejected, even with a referrer click",
        ("rejected", None, None),
        referrer=click("r", HOUR),
        install={"is_bot": True},
        reason="bot_install",
    ),
    Row(
        "a bot install is rejected before the reinstall check",
        ("rejected", None, None),
        install={
            "is_bot": True,
            "prior_install_id": "first",
            "prior_install_time": INSTALL_TIME - DAY,
        },
        reason="bot_install",
    ),
]


def _ids(rows: list[Row]) -> list[str]:
    return [row.name for row in rows]


# The desktop rule: PC, console and TV installs match on IP and platform family inside
# desktop_window_minutes (default 60), with no mobile OS, version or model check.
MINUTE = 60
STEAM_INSTALL: dict[str, Any] = {"platform": "steam", "os_version": "10", "device_model": None}
PC_TOUCH: dict[str, Any] = {"os_family": "windows", "os_version": "10", "device_model": None}


def pc_click(touch_id: str, before: float, **fields: Any) -> Touch:
    """A click of a direct click URL or a Steam button from a Windows browser."""
    return click(touch_id, before, **{**PC_TOUCH, "platform": "steam", **fields})


DESKTOP_ROWS = [
    Row(
        "a PC client's install minutes after a Steam click from the same IP",
        ("attributed", "probabilistic_click", "c"),
        clicks=(pc_click("c", 5 * MINUTE),),
        install=STEAM_INSTALL,
    ),
    Row(
        "desktop click one second inside the desktop window",
        ("attributed", "probabilistic_click", "c"),
        clicks=(pc_click("c", 60 * MINUTE - SECOND),),
        install=STEAM_INSTALL,
    ),
    Row(
        "desktop click exactly at the edge of the desktop window",
        ("attributed", "probabilistic_click", "c"),
        clicks=(pc_click("c", 60 * MINUTE),),
        install=STEAM_INSTALL,
    ),
    Row(
        "desktop click one second outside the desktop window",
        ("organic", None, None),
        clicks=(pc_click("c", 60 * MINUTE + SECOND),),
        install=STEAM_INSTALL,
        losers={"c": "outside_window"},
    ),
    Row(
        "desktop_window_minutes setting: one second outside",
        ("organic", None, None),
        clicks=(pc_click("c", 10 * MINUTE + SECOND),),
        install=STEAM_INSTALL,
        settings=replace(VIEW_THROUGH, desktop_window_minutes=10),
        losers={"c": "outside_window"},
    ),
    Row(
        "desktop_window_minutes setting: one second inside",
        ("attributed", "probabilistic_click", "c"),
        clicks=(pc_click("c", 10 * MINUTE - SECOND),),
        install=STEAM_INSTALL,
        settings=replace(VIEW_THROUGH, desktop_window_minutes=10),
    ),
    Row(
        "the PC stores are one family: an Epic click matches a Steam install",
        ("attributed", "probabilistic_click", "c"),
        clicks=(pc_click("c", 5 * MINUTE, platform="epic"),),
        install=STEAM_INSTALL,
    ),
    Row(
        "a PC browser's click routed to the web matches as pc",
        ("attributed", "probabilistic_click", "c"),
        clicks=(pc_click("c", 5 * MINUTE, platform="web", os_family="macos"),),
        install=STEAM_INSTALL,
    ),
    Row(
        "a PC browser's impression matches by view-through",
        ("attributed", "probabilistic_impression", "i"),
        impressions=(impression("i", 5 * MINUTE, **PC_TOUCH),),
        install=STEAM_INSTALL,
    ),
    Row(
        "a console install matches only a click to its own store",
        ("attributed", "probabilistic_click", "ps"),
        clicks=(
            pc_click("steam", 2 * MINUTE),
            pc_click("ps", 5 * MINUTE, platform="playstation"),
        ),
        install={**STEAM_INSTALL, "platform": "playstation"},
        losers={"steam": "signal_mismatch"},
    ),
    Row(
        "a phone's click is not a PC touch",
        ("organic", None, None),
        clicks=(click("c", 5 * MINUTE),),
        install=STEAM_INSTALL,
        losers={"c": "signal_mismatch"},
    ),
    Row(
        "another IP is no desktop match",
        ("organic", None, None),
        clicks=(pc_click("c", 5 * MINUTE, ip=OTHER_IP),),
        install=STEAM_INSTALL,
        losers={"c": "signal_mismatch"},
    ),
    Row(
        "no mobile OS check: the install's OS version and model are not compared",
        ("attributed", "probabilistic_click", "c"),
        clicks=(pc_click("c", 5 * MINUTE, os_version="11", device_model="Surface"),),
        install={**STEAM_INSTALL, "os_version": "Windows 10", "device_model": "Desktop"},
    ),
    Row(
        "a desktop click seconds before the install is still click injection",
        ("rejected", "probabilistic_click", "c"),
        clicks=(pc_click("c", 3),),
        install=STEAM_INSTALL,
        reason="click_injection",
    ),
    Row(
        "a phone install keeps the phone rule: a PC click never matches it",
        ("organic", None, None),
        clicks=(pc_click("c", 5 * MINUTE),),
        losers={"c": "signal_mismatch"},
    ),
]


@pytest.mark.parametrize("row", WINDOW_ROWS, ids=_ids(WINDOW_ROWS))
def test_windows(row: Row) -> None:
    check(row)


@pytest.mark.parametrize("row", STATE_WINDOW_ROWS, ids=_ids(STATE_WINDOW_ROWS))
def test_reinstall_and_click_injection(row: Row) -> None:
    check(row)


@pytest.mark.parametrize("row", REFERRER_ROWS, ids=_ids(REFERRER_ROWS))
def test_referrer_tier_and_tier_order(row: Row) -> None:
    check(row)


@pytest.mark.parametrize("row", PROBABILISTIC_ROWS, ids=_ids(PROBABILISTIC_ROWS))
def test_probabilistic_tiers(row: Row) -> None:
    check(row)


@pytest.mark.parametrize("row", IOS_ROWS, ids=_ids(IOS_ROWS))
def test_ios_installs(row: Row) -> None:
    check(row)


@pytest.mark.parametrize("row", REJECTED_ROWS, ids=_ids(REJECTED_ROWS))
def test_rejected_installs(row: Row) -> None:
    check(row)


def test_receipt_explains_the_decision() -> None:
    decision = check(
        Row(
            "receipt",
            ("attributed", "probabilistic_click", "win"),
            referrer=click("ref", 8 * DAY),
            clicks=(
                click("win", HOUR, os_version=None),
                click("older", 2 * HOUR),
                click("stale", 2 * DAY),
                click("elsewhere", 30 * 60, ip=OTHER_IP),
                click("taken", 20 * 60, claimed_by="instance-2"),
                click("robot", 10 * 60, verdict="bot"),
            ),
            impressions=(impression("view", 60),),
            losers={
                "ref": "outside_window",
                "older": "older",
                "stale": "outside_window",
                "elsewhere": "signal_mismatch",
                "taken": "claimed",
                "robot": "bot",
            },
        )
    )
    receipt: Any = decision.receipt
    assert receipt["status"] == "attributed"
    assert receipt["tier"] == "probabilistic_click"
    assert receipt["touch"] == {
        "id": "win",
        "type": "click",
        "time": "2026-11-21T09:00:00Z",
        "pid": "tiktokweb_int",
        "campaign": "summer",
        "campaign_id": "1700",
    }
    assert receipt["signals"] == {
        "ip": "equal",
        "os": "equal",
        "os_version": "unknown",
        "device_model": "equal",
    }
    assert receipt["windows"]["click_lookback_days"] == 7
    assert receipt["windows"]["probabilistic_window_hours"] == 24
    tiers = {tier["tier"]: tier for tier in receipt["tiers"]}
    # The impression tier was never needed: clicks beat impressions.
    assert list(tiers) == ["referrer", "probabilistic_click"]
    assert tiers["referrer"]["candidates"] == 1
    assert tiers["probabilistic_click"]["candidates"] == 6
    assert tiers["probabilistic_click"]["window_start"] == "2026-11-20T10:00:00Z"
    mismatch = next(
        loser for loser in tiers["probabilistic_click"]["losers"] if loser["id"] == "elsewhere"
    )
    assert mismatch["signals"]["ip"] == "differs"


def test_receipt_of_an_unknown_referrer_click() -> None:
    decision = run(Row("unknown", ("organic", None, None), unknown_referrer_id="forged"))
    assert decision.receipt["notes"] == ["referrer_unknown_click"]
    assert decision.receipt["referrer_click_id"] == "forged"
    assert decision.receipt["tier"] == "referrer"


def test_receipt_of_a_skipped_tier() -> None:
    decision = run(
        Row(
            "skipped",
            ("organic", None, None),
            clicks=(ios_click("c", HOUR),),
            install={**IOS_INSTALL, "att_status": "denied"},
        )
    )
    tiers: Any = decision.receipt["tiers"]
    assert [(tier["tier"], tier.get("skipped")) for tier in tiers] == [
        ("referrer", "no_referrer_click_id"),
        ("probabilistic_click", "att_denied"),
        ("probabilistic_impression", "att_denied"),
    ]
    assert decision.receipt["tier"] == "organic"


def test_receipt_of_a_reinstall_names_the_first_install() -> None:
    decision = run(
        Row(
            "reinstall",
            ("reinstall", None, None),
            install={"prior_install_id": "first", "prior_install_time": INSTALL_TIME - DAY},
        )
    )
    assert decision.receipt["prior_install"] == {
        "id": "first",
        "time": "2026-11-20T10:00:00Z",
        "first_install_id": "first",
        "first_install_time": "2026-11-20T10:00:00Z",
        "within_reattribution_window": True,
    }


def test_receipt_of_a_reattribution_says_why() -> None:
    decision = run(
        Row(
            "reattributed",
            ("reattributed", "probabilistic_click", "c"),
            clicks=(click("c", HOUR),),
            install={
                "prior_install_id": "again",
                "prior_install_time": INSTALL_TIME - 30 * DAY,
                "first_install_id": "first",
                "first_install_time": INSTALL_TIME - 100 * DAY,
            },
        )
    )
    assert decision.receipt["status"] == "reattributed"
    assert decision.receipt["notes"] == ["reattribution"]
    assert decision.receipt["prior_install"] == {
        "id": "again",
        "time": "2026-10-22T10:00:00Z",
        "first_install_id": "first",
        "first_install_time": "2026-08-13T10:00:00Z",
        "within_reattribution_window": False,
    }
    answer = conversion_data(decision, "i-1", True, DEFAULT_UNIFIED_PIDS)
    assert (answer["status"], answer["af_status"], answer["media_source"]) == (
        "reattributed",
        "Non-organic",
        "tiktokglobal_int",
    )


@pytest.mark.parametrize("row", DESKTOP_ROWS, ids=_ids(DESKTOP_ROWS))
def test_desktop_installs(row: Row) -> None:
    check(row)


def test_receipt_of_a_desktop_match_explains_it() -> None:
    decision = check(DESKTOP_ROWS[0])
    assert decision.receipt["signals"] == {"ip": "equal", "platform_family": "equal"}
    tiers: Any = decision.receipt["tiers"]
    click_tier = tiers[1]
    assert (click_tier["tier"], click_tier["rule"], click_tier["platform_family"]) == (
        "probabilistic_click",
        "desktop",
        "pc",
    )
    assert click_tier["window_seconds"] == 3600
    windows: Any = decision.receipt["windows"]
    assert windows["desktop_window_minutes"] == 60


def test_receipt_of_click_injection_says_how_fast() -> None:
    decision = run(Row("fast", ("rejected", None, None), clicks=(click("c", 3),)))
    assert decision.receipt["reason"] == "click_injection"
    assert decision.receipt["click_to_install_seconds"] == 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("gw_click_id=abc&pid=tiktokweb_int", {"gw_click_id": "abc", "pid": "tiktokweb_int"}),
        ("gw_click_id%3Dabc%26pid%3Dtiktokweb_int", {"gw_click_id": "abc", "pid": "tiktokweb_int"}),
        ("gw_click_id%253Dabc%2526c%253Dsummer", {"gw_click_id": "abc", "c": "summer"}),
        ("gw_click_id=abc&c=summer%20sale", {"gw_click_id": "abc", "c": "summer sale"}),
        ("gw_click_id%3Dabc%26c%3Dsummer%2520sale", {"gw_click_id": "abc", "c": "summer sale"}),
        ("?gw_click_id=abc", {"gw_click_id": "abc"}),
        ("gw_click_id=first&gw_click_id=second", {"gw_click_id": "first"}),
        (
            "utm_source=google-play&utm_medium=organic",
            {"utm_source": "google-play", "utm_medium": "organic"},
        ),
        ("", {}),
        (None, {}),
        ("=abc&&gw_click_id=abc", {"gw_click_id": "abc"}),
    ],
)
def test_parse_install_referrer(raw: str | None, expected: dict[str, str]) -> None:
    assert parse_install_referrer(raw) == expected


@pytest.mark.parametrize("raw", ["%", "%%%3D%zz&&==", "%25%25%25", "\x00=\udcff", "=" * 10_000])
def test_a_garbled_referrer_names_no_click(raw: str) -> None:
    assert referrer_click_id(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("gw_click_id%3Dabc%26pid%3Dtiktokweb_int", "abc"),
        ("utm_source=google-play&utm_medium=organic", None),
        ("gw_click_id=&pid=tiktokweb_int", None),
        (None, None),
    ],
)
def test_referrer_click_id(raw: str | None, expected: str | None) -> None:
    assert referrer_click_id(raw) == expected


def test_candidates_refuse_a_referrer_click_that_is_not_the_named_one() -> None:
    with pytest.raises(ValueError):
        Candidates(referrer_click=click("r", HOUR), referrer_click_id="other")


def test_unified_pid() -> None:
    assert unified_pid("tiktokweb_int", DEFAULT_UNIFIED_PIDS) == "tiktokglobal_int"
    assert unified_pid("othernet_int", DEFAULT_UNIFIED_PIDS) == "othernet_int"
    assert unified_pid(None, DEFAULT_UNIFIED_PIDS) == "organic"
    assert unified_pid("othernet_int", {"othernet_int": "othernet"}) == "othernet"


def _decision_for(touch: Touch) -> Decision:
    candidates = Candidates(referrer_click=touch, referrer_click_id=touch.id)
    return decide(install(), candidates, AttributionSettings())


ORGANIC_ANSWER = {
    "af_status": "Organic",
    "media_source": "organic",
    "original_media_source": None,
    "match_type": None,
    "touch": None,
    "campaign": None,
    "campaign_id": None,
    "adset": None,
    "adset_id": None,
    "ad": None,
    "ad_id": None,
    "af_sub1": None,
    "af_sub2": None,
    "af_sub3": None,
    "af_sub4": None,
    "af_sub5": None,
    "ttclid": None,
    "deep_link_value": None,
    "original_url": None,
}


def test_conversion_data_of_an_attributed_install() -> None:
    touch = click(
        "clk",
        HOUR,
        params={
            "c": "summer",
            "af_c_id": "1700",
            "af_adset": "set",
            "af_adset_id": "1701",
            "af_ad": "ad",
            "af_ad_id": "1702",
            "af_sub1": "E.C.P.abc",
            "af_sub3": "three",
            "deep_link_value": "level-3",
        },
        ttclid="E.C.P.abc",
        original_url="https://example.com/lp/demo?pid=tiktokweb_int&ttclid=E.C.P.abc",
    )
    answer = conversion_data(_decision_for(touch), "inst-9", True, DEFAULT_UNIFIED_PIDS)
    assert answer == {
        "install_id": "inst-9",
        "is_first_launch": True,
        "status": "attributed",
        "af_status": "Non-organic",
        "media_source": "tiktokglobal_int",
        "original_media_source": "tiktokweb_int",
        "match_type": "referrer",
        "touch": {"type": "click", "id": "clk", "time": "2026-11-21T09:00:00Z"},
        "campaign": "summer",
        "campaign_id": "1700",
        "adset": "set",
        "adset_id": "1701",
        "ad": "ad",
        "ad_id": "1702",
        "af_sub1": "E.C.P.abc",
        "af_sub2": None,
        "af_sub3": "three",
        "af_sub4": None,
        "af_sub5": None,
        "ttclid": "E.C.P.abc",
        "deep_link_value": "level-3",
        "original_url": "https://example.com/lp/demo?pid=tiktokweb_int&ttclid=E.C.P.abc",
    }
    # The key order of the spec's example, so answers read the same in every client.
    assert list(answer)[:8] == [
        "install_id",
        "is_first_launch",
        "status",
        "af_status",
        "media_source",
        "original_media_source",
        "match_type",
        "touch",
    ]


def test_conversion_data_of_an_organic_install() -> None:
    decision = decide(install(), Candidates(), AttributionSettings())
    answer = conversion_data(decision, "inst-9", True, DEFAULT_UNIFIED_PIDS)
    assert answer == {
        "install_id": "inst-9",
        "is_first_launch": True,
        "status": "organic",
        **ORGANIC_ANSWER,
    }


def test_conversion_data_repeats_with_is_first_launch_false() -> None:
    decision = _decision_for(click("clk", HOUR))
    answer = conversion_data(decision, "inst-9", False, DEFAULT_UNIFIED_PIDS)
    assert answer["is_first_launch"] is False
    assert answer["media_source"] == "tiktokglobal_int"


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"prior_install_id": "first", "prior_install_time": INSTALL_TIME - DAY}, "reinstall"),
        ({"is_bot": True}, "rejected"),
    ],
)
def test_conversion_data_of_reinstalls_and_rejections_is_organic(
    fields: dict[str, Any], status: str
) -> None:
    touch = click("clk", HOUR)
    candidates = Candidates(referrer_click=touch, referrer_click_id=touch.id)
    decision = decide(install(**fields), candidates, AttributionSettings())
    answer = conversion_data(decision, "inst-9", True, DEFAULT_UNIFIED_PIDS)
    assert answer == {
        "install_id": "inst-9",
        "is_first_launch": True,
        "status": status,
        **ORGANIC_ANSWER,
    }


def test_conversion_data_of_click_injection_hides_the_click() -> None:
    decision = _decision_for(click("clk", 2))
    assert decision.status == "rejected" and decision.touch is not None
    answer = conversion_data(decision, "inst-9", True, DEFAULT_UNIFIED_PIDS)
    assert answer == {
        "install_id": "inst-9",
        "is_first_launch": True,
        "status": "rejected",
        **ORGANIC_ANSWER,
    }


# -- settings from an app's config ---------------------------------------------------------------


def test_an_app_config_without_attribution_settings_gets_the_spec_defaults() -> None:
    validated = validate_app({"name": "Demo"})["attribution"]
    assert settings_from_config(validated, view_through=False) == AttributionSettings()
    # A config stored before a setting existed lacks it: the default fills in.
    assert settings_from_config({}, view_through=False) == AttributionSettings()


def test_settings_from_config_take_each_setting_and_the_view_through_switch() -> None:
    config = {
        "click_lookback_days": 30,
        "probabilistic_window_hours": 6,
        "viewthrough_lookback_hours": 1,
        "reattribution_window_days": 365,
        "min_click_to_install_seconds": 0,
        "desktop_window_minutes": 15,
        "probabilistic_ios": False,
    }
    settings = settings_from_config(config, view_through=True)
    assert settings == AttributionSettings(**config, view_through_pids=frozenset({"tiktokweb_int"}))
    partial = settings_from_config({"click_lookback_days": 3}, view_through=False)
    assert partial == AttributionSettings(click_lookback_days=3)
