"""Retention and privacy erase as both backends apply them to stored rows, away from their SQL.

`app.reports.privacy` decides what one row loses; this module is what the store adds around it
alike in both backends: documents decoded for it and encoded again, which values of the user
are looked for in other rows, what an erased id or claim becomes, and the erase's audit row.
Each backend keeps finding and locking the rows, and writing only the columns that changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from app.ids import new_id
from app.reports.privacy import (
    ERASED_PREFIX,
    INSTALL_USER_COLUMNS,
    TOUCH_USER_COLUMNS,
    EraseKey,
    erase_row,
    user_values,
)
from app.store.jsontext import json_text

# Columns stored as JSON text that `erase_row` must read as documents, to scrub inside them.
_JSON = frozenset({"receipt", "answer", "event_value", "params", "payload"})
# Postbacks not (yet) delivered: an erase drops them rather than scrubbing them.
UNDELIVERED = ("pending", "retrying", "failed", "dead")
# What retention changes, counted by table.
RETAIN_TABLES = ("installs", "events", "clicks", "impressions")


def decoded(row: dict[str, Any]) -> dict[str, Any]:
    """`row` (changed in place) with its JSON documents decoded."""
    for column in _JSON & row.keys():
        if isinstance(row[column], str):
            row[column] = json.loads(row[column])
    return row


def update_values(changes: Mapping[str, Any]) -> list[Any]:
    """The new values of `changes` in its column order, documents as JSON text again."""
    return [json_text(v) if c in _JSON else v for c, v in changes.items()]


# -- retention ---------------------------------------------------------------------------------


def cutoff_params(cutoffs: Mapping[str, float]) -> list[Any]:
    """The arguments of one clause per media source (its own or original source, before its
    cutoff), sorted: the same cutoffs always make the same statement."""
    params: list[Any] = []
    for source, cutoff in sorted(cutoffs.items()):
        params += [source, source, cutoff]
    return params


def retained(install: Mapping[str, Any], flag: object) -> tuple[set[str], dict[str, Any]]:
    """What retention takes from an install: the user values its touch and events lose with
    it, and its own changes, marked retained (`flag`: true as its backend stores a flag)."""
    secrets = user_values(install, INSTALL_USER_COLUMNS)
    changes = erase_row(install, INSTALL_USER_COLUMNS)
    changes["is_retained_organic"] = flag
    return secrets, changes


def touch_changes(
    row: Mapping[str, Any], secrets: set[str], replace: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What a touch loses. Its own user values join `secrets` after, so the rows erased next
    lose any copy of them too."""
    changes = erase_row(row, TOUCH_USER_COLUMNS, extra_secrets=secrets, replace=replace)
    secrets |= user_values(row, TOUCH_USER_COLUMNS)
    return changes


# -- erase -------------------------------------------------------------------------------------


def erased_id(install: Mapping[str, Any]) -> dict[str, str]:
    """An erased install's `app_instance_id`, in it and its events: its device is no longer
    recognised, and the row still says which install it was."""
    return {"app_instance_id": ERASED_PREFIX + install["id"]}


def erased_claim(install: Mapping[str, Any]) -> dict[str, str]:
    """A click's `claimed_by` once the install that claimed it is erased (it held the
    install's `app_instance_id`)."""
    return {"claimed_by": ERASED_PREFIX + install["id"]}


def claim_of(install: Mapping[str, Any], touch: Mapping[str, Any]) -> dict[str, str] | None:
    """The claim to replace on the install's credited touch: only a click this very install
    claimed names it."""
    if touch.get("claimed_by") == install["app_instance_id"]:
        return erased_claim(install)
    return None


def erase_secrets(key: EraseKey, installs: Iterable[Mapping[str, Any]]) -> set[str]:
    """The user's values an erase looks for wherever they were copied: the key's own, and
    every user value (its `app_instance_id` too) of the installs it found."""
    if key.ttclid:
        secrets = {key.ttclid}
    else:
        assert key.app_instance_id is not None
        secrets = {key.app_instance_id}
    for install in installs:
        secrets |= user_values(install, (*INSTALL_USER_COLUMNS, "app_instance_id"))
    return secrets


def erase_ttclids(key: EraseKey, installs: Iterable[Mapping[str, Any]]) -> set[str]:
    """The ttclids whose touches go: the key's, or those of the installs it found."""
    return {key.ttclid} if key.ttclid else {i["ttclid"] for i in installs if i["ttclid"]}


def erase_apps(key: EraseKey, installs: Iterable[Mapping[str, Any]]) -> set[str]:
    """The apps whose postbacks may hold the user's ttclid."""
    return {i["app_key"] for i in installs} | ({key.app_key} if key.app_key else set())


def payload_pattern(ttclid: str) -> str:
    """A LIKE pattern (escape character `\\`) for a postback payload holding `ttclid`."""
    return "%" + ttclid.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def erasure_row(key: EraseKey, actor: str, now: float, counts: Mapping[str, int]) -> list[Any]:
    """The audit record of one erase: id, time, actor, key_kind, app_key, counts. What kind of
    key it was, never the erased value."""
    return [new_id(), now, actor, key.kind, key.app_key, json.dumps(counts)]


def erasure_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return dict(row) | {"counts": json.loads(row["counts"])}
