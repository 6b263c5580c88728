"""Installs and events as both backends read, write and mask them, away from their SQL.

Each backend keeps its own transaction (how a repeat or a lost click race is found differs);
what goes into it and what is read out of it is decided here once, so an install stored by one
backend reads back, and is masked, exactly as the other would.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.addresses import truncate_ip
from app.conversions import Event, Install, PriorInstall
from app.postbacks.postback import NewPostback
from app.reports.rollups import Increment
from app.store.columns import EVENT_COLUMNS, INSTALL_COLUMNS
from app.store.common.rows import from_row

# The device ids a reinstall is recognised by.
DEVICE_ID_COLUMNS = ("idfa", "idfv", "gaid", "android_id")
# The tables of the touches an install can be credited to, by its `touch_type`.
_TOUCH_TABLES = {"click": "clicks", "impression": "impressions"}


@dataclass(frozen=True)
class NewRow:
    """A new install or event as its transaction writes it: its row, the postbacks it queues
    and the rollups it adds. Read into lists up front, so the transaction (on SQLite, run in
    the writer's thread) never iterates a caller's generator."""

    row: dict[str, Any]
    postbacks: list[NewPostback]
    rollups: list[Increment]
    now: float


def new_row(
    row: dict[str, Any],
    postbacks: Iterable[NewPostback],
    rollups: Iterable[Increment],
    now: float,
) -> NewRow:
    return NewRow(row, list(postbacks), list(rollups), now)


def install_from_row(row: Mapping[str, Any]) -> Install:
    return from_row(Install, row, INSTALL_COLUMNS)


def event_from_row(row: Mapping[str, Any]) -> Event:
    return from_row(Event, row, EVENT_COLUMNS)


# -- reinstalls --------------------------------------------------------------------------------


def device_lookups(device_ids: Mapping[str, str]) -> list[tuple[str, str]]:
    """The (column, value) pairs worth a lookup: only known columns are ever put into SQL, and
    an empty id would match every install that lacks one."""
    return [(c, v) for c, v in device_ids.items() if c in DEVICE_ID_COLUMNS and v]


def later_prior(best: PriorInstall | None, row: Mapping[str, Any] | None) -> PriorInstall | None:
    """The later of `best` and the install of one device id's lookup (`row`: id, time,
    reinstall_of); a device's ids may point at different installs, and the latest is the one
    it reinstalls."""
    if row and (best is None or row["time"] > best.time):
        return PriorInstall(row["id"], row["time"], row["reinstall_of"] or row["id"])
    return best


def first_install_to_read(prior: PriorInstall | None) -> str | None:
    """The id of the prior's first install when it is another install (to be read with it);
    None when there is no prior or it is its own first."""
    if prior is not None and prior.first_install_id != prior.id:
        return prior.first_install_id
    return None


# -- masking -----------------------------------------------------------------------------------


def credited_table(touch_type: str | None, touch_id: str | None) -> str | None:
    """The table of the touch an install was credited to; None for an organic install."""
    table = _TOUCH_TABLES.get(touch_type or "")
    return table if table and touch_id else None


def masked_ip(ip: str | None) -> str | None:
    return truncate_ip(ip) if ip else None


def masked_payload(payload: str) -> str | None:
    """A sent postback's JSON with its `user.ip` cut to the network; None when it holds none
    (nothing to write back)."""
    document = json.loads(payload)
    user = document.get("user")
    if not (isinstance(user, dict) and isinstance(user.get("ip"), str)):
        return None
    user["ip"] = truncate_ip(user["ip"])
    return json.dumps(document, ensure_ascii=False)
