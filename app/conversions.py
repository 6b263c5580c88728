"""Conversions: an install and an in-app event, as Gangway decided and keeps them.

Plain values like `Touch`. The install planner (`app.install_plan`) makes them, the store keeps
and returns them, the owner API shows them. Field order is the order raw data and the install
receipt list them in. Times are Unix seconds (float, UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Install:
    id: str
    app_key: str
    app_instance_id: str
    platform: str
    time: float
    received_at: float
    ip: str | None
    user_agent: str | None
    os_version: str | None
    device_model: str | None
    language: str | None
    idfa: str | None
    idfv: str | None
    gaid: str | None
    android_id: str | None
    att_status: str | None
    install_referrer: str | None
    # attributed | organic | reinstall | rejected
    status: str
    match_type: str | None
    touch_type: str | None
    touch_id: str | None
    touch_time: float | None
    # After the unified PID map (`tiktokglobal_int`); `original_media_source` is the touch's pid.
    media_source: str
    original_media_source: str | None
    campaign: str | None
    campaign_id: str | None
    adset: str | None
    adset_id: str | None
    ad: str | None
    ad_id: str | None
    channel: str | None
    site_id: str | None
    af_sub1: str | None
    af_sub2: str | None
    af_sub3: str | None
    af_sub4: str | None
    af_sub5: str | None
    ttclid: str | None
    deep_link_value: str | None
    original_url: str | None
    country: str | None
    region: str | None
    is_limited_data_use: bool
    is_retained_organic: bool
    # Why it was attributed (attribution.md section 7) and the conversion data it answered.
    receipt: dict[str, Any] = field(repr=False)
    answer: dict[str, Any] = field(repr=False)
    # The first install of the device, when this one is its reinstall (attribution.md 4).
    reinstall_of: str | None = None


@dataclass(frozen=True, slots=True)
class PriorInstall:
    """The latest earlier install of a device: what reinstall detection needs of it."""

    id: str
    time: float
    # The device's first install: the prior one itself, or the one it re-installed.
    first_install_id: str


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    app_key: str
    # The app's own id of the event (idempotency), or one Gangway made.
    event_id: str
    install_id: str
    app_instance_id: str
    event_name: str
    event_time: float
    received_at: float
    # A plain decimal string as sent, and its ISO 4217 currency.
    revenue: str | None
    currency: str | None
    event_value: dict[str, Any] = field(repr=False)
    media_source: str = ""
    # What became of its postback: queued | not_mapped | outside_window | ...
    postback: str = ""
    answer: dict[str, Any] = field(default_factory=dict, repr=False)


def attributing_install(install: Install, first: Install | None) -> Install:
    """The install whose attribution `install`'s events carry: the device's first install for a
    reinstall (attribution.md section 4), else `install` itself. `first` is the install named
    by `install.reinstall_of`, or None when it was erased since (privacy): the reinstall then
    keeps its own, organic, attribution."""
    if install.reinstall_of and first is not None and first.id == install.reinstall_of:
        return first
    return install
