"""Touches: what a visitor did before installing (an impression or a click), as the domain sees it.

A `Touch` is a plain value. The store builds it from a row, the attribution engine compares it
with an install, the postback builder copies its browser-side values (ttclid, IP, user agent,
landing URL) into the TikTok payload. Times are Unix seconds (float, UTC) everywhere in the
domain; the store decides how to keep them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

TouchKind = Literal["click", "impression"]
Verdict = Literal["human", "suspect", "bot"]

# Campaign fields a touch carries from its URL into conversion data and reports. AppsFlyer's
# names, because marketers migrate with their links.
CAMPAIGN_PARAMS: tuple[str, ...] = (
    "c",
    "af_c_id",
    "af_adset",
    "af_adset_id",
    "af_ad",
    "af_ad_id",
    "af_channel",
    "af_siteid",
    "af_sub1",
    "af_sub2",
    "af_sub3",
    "af_sub4",
    "af_sub5",
    "deep_link_value",
)

# Campaign fields under the names conversion data, stored installs and reports give them
# (http-api.md section 2), and the touch param each comes from.
CAMPAIGN_COLUMNS: dict[str, str] = {
    "campaign": "c",
    "campaign_id": "af_c_id",
    "adset": "af_adset",
    "adset_id": "af_adset_id",
    "ad": "af_ad",
    "ad_id": "af_ad_id",
    "af_sub1": "af_sub1",
    "af_sub2": "af_sub2",
    "af_sub3": "af_sub3",
    "af_sub4": "af_sub4",
    "af_sub5": "af_sub5",
    "deep_link_value": "deep_link_value",
}


def campaign_columns(params: Mapping[str, str]) -> dict[str, str | None]:
    """A touch's campaign params under their conversion-data names (absent ones None)."""
    return {column: params.get(param) for column, param in CAMPAIGN_COLUMNS.items()}


@dataclass(frozen=True, slots=True)
class Touch:
    id: str
    kind: TouchKind
    app_key: str
    time: float
    ip: str | None = None
    user_agent: str | None = None
    # Lower-case OS family as the device parser names it: "ios", "android", "windows", ...
    os_family: str | None = None
    os_version: str | None = None
    device_model: str | None = None
    browser: str | None = None
    pid: str | None = None
    # Campaign fields (keys from CAMPAIGN_PARAMS) that were present on the touch.
    params: Mapping[str, str] = field(default_factory=dict)
    ttclid: str | None = None
    original_url: str | None = None
    referrer: str | None = None
    pvid: str | None = None
    platform: str | None = None
    verdict: Verdict = "human"
    verdict_reasons: tuple[str, ...] = ()
    country: str | None = None
    region: str | None = None
    # The visitor's browser sent `Sec-GPC: 1` (Global Privacy Control).
    gpc: bool = False
    # The app_instance_id of the install that claimed this click, if any (clicks only).
    claimed_by: str | None = None


@dataclass(frozen=True)
class TouchRecord:
    """A touch as the tracking handlers record it: the domain value plus what only raw data
    needs (the page, language, in-app browser, every incoming param, flags, the destination)."""

    touch: Touch
    page_slug: str | None = None
    language: str | None = None
    in_app: str | None = None
    all_params: Mapping[str, str] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    destination: str | None = None
