"""Builders of the store's records for tests that talk to a store directly: every field a
sensible default, overridden by keyword."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from app.conversions import Event, Install

# Every Install field not named below defaults to None.
_INSTALL_DEFAULTS: dict[str, Any] = {
    "app_key": "demo",
    "platform": "android",
    "time": 1_790_000_000.0,
    "received_at": 1_790_000_000.0,
    "status": "organic",
    "media_source": "organic",
    "is_limited_data_use": False,
    "is_retained_organic": False,
    "receipt": {},
    "answer": {},
}


def make_install(instance: str, **overrides: Any) -> Install:
    values: dict[str, Any] = {f.name: None for f in fields(Install)}
    values |= _INSTALL_DEFAULTS
    values |= {"id": f"i-{instance}", "app_instance_id": instance}
    values |= overrides
    return Install(**values)


def make_event(install: Install, event_id: str, **overrides: Any) -> Event:
    values: dict[str, Any] = {
        "id": f"e-{event_id}",
        "app_key": install.app_key,
        "event_id": event_id,
        "install_id": install.id,
        "app_instance_id": install.app_instance_id,
        "event_name": "af_purchase",
        "event_time": install.time + 60,
        "received_at": install.time + 60,
        "revenue": None,
        "currency": None,
        "event_value": {},
        "media_source": install.media_source,
        "postback": "not_mapped",
        "answer": {"event_id": event_id},
    }
    return Event(**(values | overrides))
