"""The attribution engine: which touch an install is credited to, and the receipt saying why.

Everything here is pure. `decide` takes the install's facts, the candidate touches the store
found (`Candidates`) and the app's `AttributionSettings`, and returns a `Decision` whose receipt is
plain JSON. `conversion_data` turns a decision into the answer of `POST /api/v1/installs`, and
`unified_pid` is the reporting map from a touch's pid to the media source shown in reports.

Order of the decision (`attribution.md` sections 3 and 4):
1. The install's own IP and user agent are a bot's (`InstallFacts.is_bot`): `rejected`, reason
   `bot_install`. Checked first because nothing the request says (device ids included) is
   trusted then.
2. A prior install of this app by one of the device's ids within `reattribution_window_days`
   of the device's first install (the one whose attribution the device carries: its first
   install, or its latest re-attribution): `reinstall`, no touch. An unknown time counts as
   within the window: the device is known to have installed already. Outside the window the
   waterfall runs as for a new install, and a touch it matches makes the install
   `reattributed` (re-engagement: its own status, the note `reattribution` in the receipt);
   with no touch it is `organic`.
3. The waterfall, first tier with a candidate decides, latest touch inside a tier wins (a tie at
   the same time goes to the greater touch id, so input order never matters):
   `referrer` -> `probabilistic_click` -> `probabilistic_impression` -> `organic`.
   A referrer naming a `gw_click_id` the store does not know ends the waterfall as `organic` with
   the note `referrer_unknown_click`: our parameters in a Play referrer mean the visitor came
   through one of our clicks, so a probabilistic guess could only pick a wrong touch.
4. A chosen click less than `min_click_to_install_seconds` before the install: `rejected`, reason
   `click_injection` (the decision still names the click). Impressions are never rejected this
   way: injecting needs a click.

A touch is a candidate of a tier only when it passes, in this order (the first failing check is
the loser's reason in the receipt; a tier the install cannot use records it as `skipped`, and
the referrer tier is `skipped` as `no_referrer_click_id` when the referrer names no click):
- `ios_probabilistic_off` / `att_denied` / `att_restricted`: the whole probabilistic tier is off
  for this iOS install (setting `probabilistic_ios`, or the ATT status the SDK reported).
- `outside_window`: not within `install_time - window <= touch_time <= install_time`.
- `bot`: the touch's verdict is `bot` (`suspect` touches may match).
- `claimed`: a click already claimed by an install. The referrer tier ignores a claim by the same
  `app_instance_id`; the probabilistic tiers honour every claim, as the spec says.
- `not_view_through`: an impression whose pid is not in `view_through_pids`.
- `signal_mismatch` (probabilistic tiers only): the IP, or the OS family against the install's
  platform, is not equal; or the OS major version or device model differ where both are known.
The desktop rule: an install whose platform is not a phone's (a PC store: `steam`, `epic`,
`nativepc`, `battlenet`; a console or TV store) has no mobile OS, version or model to compare,
and its client reports no Play referrer. Its probabilistic tiers use `desktop_window_minutes`
(default 60) for clicks and impressions alike, and compare two signals: the IP, and the
`platform_family` (`pc` for every PC store, else the console or TV store itself) against the
touch's (the store its click was routed to, such as a Steam button or a direct click URL; else
`pc` for a touch from a Windows, macOS, Linux or ChromeOS browser). The tier entries say
`"rule": "desktop"` with the install's `platform_family`, and the receipt's `signals` are these
two.

Candidates that pass but are not chosen lose as `older`, or `tie` when they have the winner's
time and lost on the id. The referrer tier compares no signals: the Play referrer is proof.

The receipt (`attribution.md` section 5) is JSON with: `status`; `tier`, the waterfall tier that
decided (`organic` when none matched, null when decided before the waterfall); `reason`
(`bot_install`, `click_injection` or null); `notes`; `touch` (id, type, time, pid, campaign,
campaign_id); `signals` of a probabilistic match (ip, os, os_version, device_model: `equal`,
`differs` or `unknown`); `windows`, the settings used; `tiers`, each tier tried with its window,
how many candidates it saw and its `losers` (id, type, time, reason, and the signals of a
`signal_mismatch`); `referrer_click_id`; `prior_install`; `click_to_install_seconds` of a
matched click.

Signal comparison, where the spec says "decide sensibly":
- IPs are compared as addresses (an IPv4-mapped IPv6 address equals its IPv4 address).
- Browsers freeze parts of their user agent. Chrome's reduced UA says `Android 10; K` on every
  Android phone, and Safari since iOS 26 says iOS 18. A touch reporting such a frozen major
  version is `unknown` against an install on a later major; model `K` and the parser's generic
  models (`Smartphone`, `Generic Smartphone`, ...) are `unknown`.
- Apple's UAs name only the family (`iPhone`, `iPad`); it agrees with an install model of that
  family (`iPhone15,2`). Other models are compared case- and whitespace-insensitively.

What the store searches (`candidate_ranges`): per probabilistic tier, its own window widened by
`NEAR_MISS_SECONDS` on both sides, latest first, at most `CANDIDATE_LIMIT` touches per tier. The
margin costs a few rows and lets the receipt name the click that missed by minutes (or came after
the install, from a phone whose clock is behind) as `outside_window`, the question a marketer
asks first. The cap bounds the work one carrier-NAT address can cause; a tier that hit it says
`"capped": true` in the receipt (older touches behind the cap were not seen).

Bot installs (`is_bot_install`): a user agent a crawler list names is a bot's, except the bare
HTTP client libraries (`okhttp`, `CFNetwork`, `python-httpx`, ...) that SDKs and server-to-server
callers send as a matter of course: those say which HTTP stack posted, not who installed.

Conversion data: a `reattributed` answer is shaped like an attributed one (`Non-organic`, the
touch's media source and campaign) with its own `status`. `reinstall` and `rejected` answers are
shaped like organic ones (`af_status` `Organic`, media source `organic`, nulls) with their own
`status`, as AppsFlyer reports an organic re-install when nothing re-attributed it, and a
rejected install must not hand its campaign to the app (nor tell a fraudster which click was
caught).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

from app.addresses import parse_ip
from app.clock import iso
from app.touches import Touch, campaign_columns
from app.vocabulary import (
    MOBILE_PLATFORMS,
    PARTNER,
    PC_OS_FAMILIES,
    REFERRER_CLICK_PARAM,
    platform_family,
)

Status = Literal["attributed", "reattributed", "organic", "reinstall", "rejected"]
MatchType = Literal["referrer", "probabilistic_click", "probabilistic_impression"]
Signal = Literal["equal", "differs", "unknown"]

ORGANIC = "organic"
# The statuses that credit a touch: conversion data, reports and claims name it.
CREDITED: frozenset[str] = frozenset({"attributed", "reattributed"})

# attribution.md section 2: setting -> (default, lowest, highest). The one table of these
# numbers: `AttributionSettings` takes its defaults from it, `app.configs` its allowed ranges.
ATTRIBUTION_RANGES: Mapping[str, tuple[int, int, int]] = {
    "click_lookback_days": (7, 1, 30),
    "probabilistic_window_hours": (24, 1, 24),
    "viewthrough_lookback_hours": (24, 1, 24),
    "reattribution_window_days": (90, 1, 730),
    "min_click_to_install_seconds": (10, 0, 3600),
    # The window of the desktop rule (PC, console and TV installs; see the module docstring).
    "desktop_window_minutes": (60, 1, 1440),
}
DEFAULT_PROBABILISTIC_IOS = True

_DAY = 86_400
_HOUR = 3_600
# A referrer may arrive encoded more than once (store link, SDK, server-to-server caller); the
# bound keeps a hostile string from costing more than a few passes.
_MAX_REFERRER_DECODES = 3
_ATT_BLOCKING = frozenset({"denied", "restricted"})
# OS major versions that browsers freeze in their user agent (Chrome's reduced UA on Android,
# WebKit since iOS 26): a touch saying this may be on any later version.
_FROZEN_UA_OS_MAJOR: Mapping[str, int] = {"android": 10, "ios": 18}
# Models a UA parser reports when the UA names no model (Chrome's reduced UA says `K`).
_PLACEHOLDER_MODELS = frozenset(
    {
        "k",
        "smartphone",
        "tablet",
        "generic smartphone",
        "generic tablet",
        "generic feature phone",
        # What the parser calls an Apple device a CFNetwork (app HTTP stack) UA came from.
        "ios-device",
    }
)
# Apple's UAs name only the device family, never the model the SDK reports.
_FAMILY_MODELS = frozenset({"iphone", "ipad", "ipod"})
_LEADING_NUMBER = re.compile(r"\s*(\d+)")
# Seconds each side of a probabilistic window the store also searches, for the receipt's sake.
NEAR_MISS_SECONDS = 3_600
# Touches per tier the store hands over at most (latest first).
CANDIDATE_LIMIT = 500
# HTTP client libraries whose user agent an install request legitimately carries: crawler lists
# name them (a page view from okhttp is no person), an install posted by one is normal.
_HTTP_CLIENT_UA = re.compile(
    r"^\s*(?:okhttp|Dalvik|CFNetwork|[^/\s]+/[^\s]+\s+CFNetwork/|python-httpx|python-requests"
    r"|aiohttp|Go-http-client|Java/|Apache-HttpClient|axios|node-fetch|undici|Dart/|ktor-client"
    r"|Ruby|Faraday|GuzzleHttp|curl/|libcurl|UnityPlayer|UnityWebRequest)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class AttributionSettings:
    """An app's `attribution` config; the defaults are the spec's (section 2).

    The allowed ranges are checked where the config comes in (`app.configs`), not here.
    """

    click_lookback_days: int = ATTRIBUTION_RANGES["click_lookback_days"][0]
    probabilistic_window_hours: int = ATTRIBUTION_RANGES["probabilistic_window_hours"][0]
    viewthrough_lookback_hours: int = ATTRIBUTION_RANGES["viewthrough_lookback_hours"][0]
    reattribution_window_days: int = ATTRIBUTION_RANGES["reattribution_window_days"][0]
    min_click_to_install_seconds: int = ATTRIBUTION_RANGES["min_click_to_install_seconds"][0]
    desktop_window_minutes: int = ATTRIBUTION_RANGES["desktop_window_minutes"][0]
    probabilistic_ios: bool = DEFAULT_PROBABILISTIC_IOS
    # Pids whose impressions may match (`settings_from_config` adds the partner's when its
    # integration has `view_through` on).
    view_through_pids: frozenset[str] = frozenset()


def settings_from_config(config: Mapping[str, Any], *, view_through: bool) -> AttributionSettings:
    """The engine's settings from an app's `attribution` config, as `app.configs` validated it.

    A setting the config lacks (one stored before the setting existed) takes its default.
    `view_through` says the partner's integration is on with view-through, so impressions of
    the partner's pid may match.
    """
    names = (*ATTRIBUTION_RANGES, "probabilistic_ios")
    given = {name: config[name] for name in names if name in config}
    return AttributionSettings(
        **given, view_through_pids=frozenset({PARTNER}) if view_through else frozenset()
    )


@dataclass(frozen=True)
class InstallFacts:
    """What the install request says, plus what the caller and store found about it."""

    app_instance_id: str
    platform: str  # "ios" | "android" | ...
    time: float
    ip: str | None
    os_version: str | None
    device_model: str | None
    att_status: str | None
    install_referrer: str | None  # the Play Install Referrer, raw or URL-encoded
    is_bot: bool = False  # the install's own IP and user agent are a bot's
    prior_install_id: str | None = None  # an install of this app with one of this device's ids
    prior_install_time: float | None = None
    # The install the prior one re-installed (its attribution), when not the prior itself: the
    # re-attribution window runs from its time.
    first_install_id: str | None = None
    first_install_time: float | None = None


@dataclass(frozen=True)
class TimeRange:
    """Touch times from `start` to `end`, both included (Unix seconds)."""

    start: float
    end: float


@dataclass(frozen=True)
class Candidates:
    """The touches the store found for one install; the engine applies every window itself.

    `referrer_click` is the click of this app named by the referrer's `gw_click_id`
    (`referrer_click_id`, from `referrer_click_id()`), whatever its age; None with an id means
    no click of this app has that id (a click of another app is passed as None too).
    `clicks` and `impressions` are this app's touches from the install's IP in the ranges of
    `candidate_ranges`; `clicks_capped` / `impressions_capped` say the store stopped at
    `CANDIDATE_LIMIT` (the receipt says so).
    """

    referrer_click: Touch | None = None
    referrer_click_id: str | None = None
    clicks: Sequence[Touch] = ()
    impressions: Sequence[Touch] = ()
    clicks_capped: bool = False
    impressions_capped: bool = False

    def __post_init__(self) -> None:
        if self.referrer_click is not None and self.referrer_click.id != self.referrer_click_id:
            raise ValueError("referrer_click must be the click named by referrer_click_id")


@dataclass(frozen=True)
class Decision:
    """What `decide` concluded about one install, and the receipt that explains it."""

    status: Status
    # The tier that matched; also set for a `rejected` click injection.
    match_type: MatchType | None
    # The matched touch; for `rejected` (click_injection) the click that came too fast.
    touch: Touch | None
    receipt: dict[str, object]


@dataclass(frozen=True)
class _Tier:
    """One tier run over its touches: the winner, and the receipt entry it leaves."""

    winner: Touch | None
    entry: dict[str, object]


def parse_install_referrer(raw: str | None) -> dict[str, str]:
    """The parameters of a Play install referrer given raw or URL-encoded (once or more).

    Tolerant: never raises; a parameter given twice keeps its first value.
    """
    if not raw:
        return {}
    text = raw.strip()
    for _ in range(_MAX_REFERRER_DECODES):
        # A raw referrer always has `key=value`; without one, it is still encoded.
        if "=" in text or "%" not in text:
            break
        text = unquote(text)
    params: dict[str, str] = {}
    for key, value in parse_qsl(text.lstrip("?"), keep_blank_values=True):
        if key.strip():
            params.setdefault(key.strip(), value)
    return params


def referrer_click_id(raw: str | None) -> str | None:
    """The click id our `/c/` redirect put in a Play referrer, or None when it names none."""
    click_id = parse_install_referrer(raw).get(REFERRER_CLICK_PARAM, "").strip()
    return click_id or None


def is_desktop(platform: str) -> bool:
    """Whether an install of `platform` is matched by the desktop rule (not a phone)."""
    return platform.strip().lower() not in MOBILE_PLATFORMS


def candidate_ranges(
    settings: AttributionSettings, install_time: float, platform: str | None = None
) -> tuple[TimeRange, TimeRange]:
    """(clicks, impressions): the touch times the store searches for the probabilistic tiers
    of an install of `platform` (the desktop rule's window for PC, console and TV stores).

    Each is its tier's window plus `NEAR_MISS_SECONDS` either side; `decide` applies the exact
    window, so the margin only adds `outside_window` losers to the receipt.
    """
    clicks, impressions = _probabilistic_windows(settings, platform)
    end = install_time + NEAR_MISS_SECONDS
    return (
        TimeRange(install_time - clicks - NEAR_MISS_SECONDS, end),
        TimeRange(install_time - impressions - NEAR_MISS_SECONDS, end),
    )


def _probabilistic_windows(
    settings: AttributionSettings, platform: str | None
) -> tuple[float, float]:
    """(clicks, impressions) window seconds of the probabilistic tiers for `platform`."""
    if platform is not None and is_desktop(platform):
        desktop = settings.desktop_window_minutes * 60
        return desktop, desktop
    return settings.probabilistic_window_hours * _HOUR, settings.viewthrough_lookback_hours * _HOUR


def is_bot_install(user_agent: str | None, verdict: str) -> bool:
    """Whether an install whose user agent got `verdict` (`app.devices.bot_verdict`) is a bot's.

    No user agent is no evidence (server-to-server callers may not know it), and an HTTP client
    library's user agent is what an SDK sends (see the module docstring).
    """
    if verdict != "bot" or not user_agent or not user_agent.strip():
        return False
    return _HTTP_CLIENT_UA.match(user_agent) is None


def is_placeholder_model(model: str | None) -> bool:
    """A device model that names no device (`K`, `Generic Smartphone`, `iOS-Device`, ...)."""
    key = _text_key(model)
    return key is None or key in _PLACEHOLDER_MODELS


def unified_pid(pid: str | None, table: Mapping[str, str]) -> str:
    """The media source reports show for `pid` (`reporting.md` section 1)."""
    if not pid:
        return ORGANIC
    return table.get(pid, pid)


def decide(
    install: InstallFacts, candidates: Candidates, settings: AttributionSettings
) -> Decision:
    """Attribute one install: the decision and its receipt (see the module docstring)."""
    tiers: list[dict[str, object]] = []
    receipt: dict[str, object] = {
        "status": None,
        "tier": None,
        "reason": None,
        "notes": [],
        "touch": None,
        "signals": None,
        "windows": _windows(settings),
        "tiers": tiers,
        "referrer_click_id": candidates.referrer_click_id,
        "prior_install": _prior_install(install, settings),
    }
    if install.is_bot:
        return _finish(receipt, "rejected", None, None, reason="bot_install")
    if install.prior_install_id is not None and _within_reattribution(install, settings):
        return _finish(receipt, "reinstall", None, None)

    if candidates.referrer_click_id is None:
        tiers.append(
            {"tier": "referrer", "skipped": "no_referrer_click_id", "candidates": 0, "losers": []}
        )
    elif candidates.referrer_click is None:
        tiers.append({"tier": "referrer", "candidates": 0, "losers": []})
        receipt["notes"] = ["referrer_unknown_click"]
        return _finish(receipt, "organic", None, None, tier="referrer")
    else:
        referrer = _run_tier(
            [candidates.referrer_click],
            install,
            settings.click_lookback_days * _DAY,
            lambda touch: _referrer_loss(install, touch),
            tier_off=None,
        )
        tiers.append({"tier": "referrer", **referrer.entry})
        if referrer.winner is not None:
            return _matched(receipt, install, settings, "referrer", referrer.winner, None)

    probabilistic_off = _probabilistic_off(install, settings)
    click_window, impression_window = _probabilistic_windows(settings, install.platform)
    desktop = is_desktop(install.platform)
    # The desktop rule: IP and platform family only (no phone OS, version or model to compare).
    compare = _compare_desktop_signals if desktop else _compare_signals
    rule: dict[str, object] = (
        {"rule": "desktop", "platform_family": platform_family(install.platform)} if desktop else {}
    )
    clicks = _run_tier(
        candidates.clicks,
        install,
        click_window,
        lambda touch: _probabilistic_click_loss(touch) or _signal_loss(install, touch, compare),
        tier_off=probabilistic_off,
        capped=candidates.clicks_capped,
    )
    tiers.append({"tier": "probabilistic_click", **rule, **clicks.entry})
    if clicks.winner is not None:
        signals = compare(install, clicks.winner)
        return _matched(receipt, install, settings, "probabilistic_click", clicks.winner, signals)

    impressions = _run_tier(
        candidates.impressions,
        install,
        impression_window,
        lambda touch: _impression_loss(touch, settings) or _signal_loss(install, touch, compare),
        tier_off=probabilistic_off,
        capped=candidates.impressions_capped,
    )
    tiers.append({"tier": "probabilistic_impression", **rule, **impressions.entry})
    if impressions.winner is not None:
        signals = compare(install, impressions.winner)
        return _matched(
            receipt, install, settings, "probabilistic_impression", impressions.winner, signals
        )
    return _finish(receipt, "organic", None, None, tier="organic")


def conversion_data(
    decision: Decision,
    install_id: str,
    is_first_launch: bool,
    unified_table: Mapping[str, str],
) -> dict[str, object]:
    """The answer of `POST /api/v1/installs` for a decision (`http-api.md` section 2)."""
    touch = decision.touch if decision.status in CREDITED else None
    if touch is None:
        params: Mapping[str, str] = {}
        attribution: dict[str, object] = {
            "af_status": "Organic",
            "media_source": ORGANIC,
            "original_media_source": None,
            "match_type": None,
            "touch": None,
        }
    else:
        params = touch.params
        attribution = {
            "af_status": "Non-organic",
            "media_source": unified_pid(touch.pid, unified_table),
            "original_media_source": touch.pid,
            "match_type": decision.match_type,
            "touch": {"type": touch.kind, "id": touch.id, "time": iso(touch.time)},
        }
    return {
        "install_id": install_id,
        "is_first_launch": is_first_launch,
        "status": decision.status,
        **attribution,
        **campaign_columns(params),
        "ttclid": touch.ttclid if touch else None,
        "original_url": touch.original_url if touch else None,
    }


def _run_tier(
    touches: Sequence[Touch],
    install: InstallFacts,
    window: float,
    loss: Callable[[Touch], dict[str, object] | None],
    tier_off: str | None,
    capped: bool = False,
) -> _Tier:
    """Pick the latest touch that passes; every other touch becomes a loser with its reason."""
    winner: Touch | None = None
    losers: list[dict[str, object]] = []
    # Latest first, ties by the greater id: the outcome and the receipt ignore input order.
    for touch in sorted(touches, key=lambda t: (t.time, t.id), reverse=True):
        lost: dict[str, object] | None
        if tier_off is not None:
            lost = {"reason": tier_off}
        elif not install.time - window <= touch.time <= install.time:
            lost = {"reason": "outside_window"}
        else:
            lost = loss(touch)
        if lost is None and winner is not None:
            lost = {"reason": "tie" if touch.time == winner.time else "older"}
        if lost is None:
            winner = touch
        else:
            losers.append({**_touch_summary(touch), **lost})
    entry: dict[str, object] = {
        "window_seconds": window,
        "window_start": iso(install.time - window),
        "candidates": len(touches),
        "losers": losers,
    }
    if tier_off is not None:
        entry["skipped"] = tier_off
    if capped:
        entry["capped"] = True
    return _Tier(winner, entry)


def _referrer_loss(install: InstallFacts, touch: Touch) -> dict[str, object] | None:
    if touch.verdict == "bot":
        return {"reason": "bot"}
    if touch.claimed_by is not None and touch.claimed_by != install.app_instance_id:
        return {"reason": "claimed"}
    return None


def _probabilistic_click_loss(touch: Touch) -> dict[str, object] | None:
    if touch.verdict == "bot":
        return {"reason": "bot"}
    if touch.claimed_by is not None:
        return {"reason": "claimed"}
    return None


def _impression_loss(touch: Touch, settings: AttributionSettings) -> dict[str, object] | None:
    if touch.verdict == "bot":
        return {"reason": "bot"}
    if touch.pid is None or touch.pid not in settings.view_through_pids:
        return {"reason": "not_view_through"}
    return None


def _signal_loss(
    install: InstallFacts,
    touch: Touch,
    compare: Callable[[InstallFacts, Touch], dict[str, Signal]],
) -> dict[str, object] | None:
    signals = compare(install, touch)
    # IP, OS (phones) or platform family (desktop) must be equal; the rest may be unknown.
    agree = all(
        signals[name] == "equal" for name in ("ip", "os", "platform_family") if name in signals
    ) and all(
        signals[name] != "differs" for name in ("os_version", "device_model") if name in signals
    )
    return None if agree else {"reason": "signal_mismatch", "signals": signals}


def _probabilistic_off(install: InstallFacts, settings: AttributionSettings) -> str | None:
    if install.platform.strip().lower() != "ios":
        return None
    if not settings.probabilistic_ios:
        return "ios_probabilistic_off"
    att = (install.att_status or "").strip().lower()
    return f"att_{att}" if att in _ATT_BLOCKING else None


def _matched(
    receipt: dict[str, object],
    install: InstallFacts,
    settings: AttributionSettings,
    match_type: MatchType,
    touch: Touch,
    signals: dict[str, Signal] | None,
) -> Decision:
    receipt["signals"] = signals
    if touch.kind == "click":
        seconds = install.time - touch.time
        receipt["click_to_install_seconds"] = seconds
        if seconds < settings.min_click_to_install_seconds:
            return _finish(
                receipt, "rejected", match_type, touch, tier=match_type, reason="click_injection"
            )
    if install.prior_install_id is not None:
        # `decide` got here past the reinstall check: the device installed before, outside
        # the re-attribution window, and a touch brought it back.
        receipt["notes"] = [*_notes(receipt), "reattribution"]
        return _finish(receipt, "reattributed", match_type, touch, tier=match_type)
    return _finish(receipt, "attributed", match_type, touch, tier=match_type)


def _notes(receipt: Mapping[str, object]) -> list[object]:
    notes = receipt.get("notes")
    return list(notes) if isinstance(notes, list) else []


def _finish(
    receipt: dict[str, object],
    status: Status,
    match_type: MatchType | None,
    touch: Touch | None,
    *,
    tier: str | None = None,
    reason: str | None = None,
) -> Decision:
    receipt["status"] = status
    receipt["tier"] = tier
    receipt["reason"] = reason
    if touch is not None:
        receipt["touch"] = {
            **_touch_summary(touch),
            "pid": touch.pid,
            "campaign": touch.params.get("c"),
            "campaign_id": touch.params.get("af_c_id"),
        }
    return Decision(status, match_type, touch, receipt)


def _first_install_time(install: InstallFacts) -> float | None:
    if (
        install.first_install_id is not None
        and install.first_install_id != install.prior_install_id
    ):
        return install.first_install_time
    return install.prior_install_time


def _within_reattribution(install: InstallFacts, settings: AttributionSettings) -> bool:
    first_time = _first_install_time(install)
    if first_time is None:
        return True
    return install.time - first_time <= settings.reattribution_window_days * _DAY


def _prior_install(
    install: InstallFacts, settings: AttributionSettings
) -> dict[str, object] | None:
    if install.prior_install_id is None:
        return None
    prior_time = install.prior_install_time
    first_time = _first_install_time(install)
    return {
        "id": install.prior_install_id,
        "time": None if prior_time is None else iso(prior_time),
        "first_install_id": install.first_install_id or install.prior_install_id,
        "first_install_time": None if first_time is None else iso(first_time),
        "within_reattribution_window": _within_reattribution(install, settings),
    }


def _windows(settings: AttributionSettings) -> dict[str, object]:
    return {
        "click_lookback_days": settings.click_lookback_days,
        "probabilistic_window_hours": settings.probabilistic_window_hours,
        "viewthrough_lookback_hours": settings.viewthrough_lookback_hours,
        "reattribution_window_days": settings.reattribution_window_days,
        "min_click_to_install_seconds": settings.min_click_to_install_seconds,
        "desktop_window_minutes": settings.desktop_window_minutes,
        "probabilistic_ios": settings.probabilistic_ios,
        "view_through_pids": sorted(settings.view_through_pids),
    }


def _touch_summary(touch: Touch) -> dict[str, object]:
    return {"id": touch.id, "type": touch.kind, "time": iso(touch.time)}


def _compare_signals(install: InstallFacts, touch: Touch) -> dict[str, Signal]:
    return {
        "ip": _compare(_ip_key(install.ip), _ip_key(touch.ip)),
        "os": _compare(_text_key(install.platform), _text_key(touch.os_family)),
        "os_version": _compare_os_version(install, touch),
        "device_model": _compare_model(install.device_model, touch.device_model),
    }


def _compare_desktop_signals(install: InstallFacts, touch: Touch) -> dict[str, Signal]:
    """The desktop rule's signals: the IP, and the install's store family against the touch's
    (the store its click was sent to, else `pc` for a PC browser's touch)."""
    return {
        "ip": _compare(_ip_key(install.ip), _ip_key(touch.ip)),
        "platform_family": _compare(platform_family(install.platform), touch_family(touch)),
    }


def touch_family(touch: Touch) -> str | None:
    """The store family a touch points to: its click's store platform when it had one (a
    Steam button, a direct click URL), else `pc` for a PC browser, else its OS family."""
    family = platform_family(touch.platform) if touch.platform != "web" else None
    if family is not None:
        return family
    os_family = _text_key(touch.os_family)
    return "pc" if os_family in PC_OS_FAMILIES else os_family


def _compare(ours: str | int | None, theirs: str | int | None) -> Signal:
    if ours is None or theirs is None:
        return "unknown"
    return "equal" if ours == theirs else "differs"


def _compare_os_version(install: InstallFacts, touch: Touch) -> Signal:
    install_major = _major(install.os_version)
    touch_major = _major(touch.os_version)
    frozen = _FROZEN_UA_OS_MAJOR.get(_text_key(touch.os_family) or "")
    if (
        install_major is not None
        and touch_major is not None
        and touch_major == frozen
        and install_major > touch_major
    ):
        return "unknown"
    return _compare(install_major, touch_major)


def _compare_model(install_model: str | None, touch_model: str | None) -> Signal:
    ours = _text_key(install_model)
    theirs = _text_key(touch_model)
    if ours is None or theirs is None or theirs in _PLACEHOLDER_MODELS:
        return "unknown"
    if theirs in _FAMILY_MODELS and ours.startswith(theirs):
        return "equal"
    return _compare(ours, theirs)


def _major(version: str | None) -> int | None:
    match = _LEADING_NUMBER.match(version or "")
    return int(match.group(1)) if match else None


def _text_key(value: str | None) -> str | None:
    key = " ".join((value or "").lower().split())
    return key or None


def _ip_key(ip: str | None) -> str | None:
    text = (ip or "").strip()
    if not text:
        return None
    try:
        return str(parse_ip(text))
    except ValueError:
        return text.lower()
