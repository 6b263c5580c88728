"""Retention and privacy erase rules (`reporting.md` sections 5 and 6). Pure.

Both erase the user-level fields of stored rows: IP, user agent, device ids, ttclid, and the
query of URLs (the original landing URL, the referrer). A value that was erased is also taken
out wherever it was copied (an `af_subN` holding the ttclid, the receipt and conversion data
documents, a touch's incoming params, the JSON of a postback): any string holding one is
removed, and a URL holding one keeps only its scheme, host and path.

Retention keeps the `app_instance_id` (later events must still find their install, to be
counted organic); a privacy erase replaces it with `erased:<install id>`, so the user's device
is no longer recognised and the erased value is kept nowhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.conversions import Event, Install
from app.fields import FieldError
from app.reports.rollups import (
    Increments,
    as_retained,
    event_increments,
    install_increments,
    negated,
)

# Columns holding user-level values, by table. URL columns keep scheme, host and path.
INSTALL_USER_COLUMNS = (
    "ip",
    "user_agent",
    "idfa",
    "idfv",
    "gaid",
    "android_id",
    "ttclid",
    "install_referrer",
)
TOUCH_USER_COLUMNS = ("ip", "user_agent", "ttclid")
URL_COLUMNS = frozenset({"original_url", "referrer"})
# Columns that may hold a copy of an erased value (checked, not always erased).
COPY_COLUMNS = ("af_sub1", "af_sub2", "af_sub3", "af_sub4", "af_sub5", "deep_link_value")
DOCUMENT_COLUMNS = frozenset({"receipt", "answer", "event_value", "params", "payload"})
ERASED_PREFIX = "erased:"
_DURATION = re.compile(r"^(\d{1,5})d$")
DAY = 86_400


def strip_query(url: str | None) -> str | None:
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def user_values(row: Mapping[str, Any], columns: Iterable[str]) -> set[str]:
    """The erased values a row holds: its user-level columns that are set (short values such as
    a two-letter string are no user data and are left alone)."""
    return {v for c in columns if isinstance(v := row.get(c), str) and len(v) >= 6}


def _scrub(value: Any, secrets: frozenset[str]) -> Any:
    if isinstance(value, str):
        if not any(s in value for s in secrets):
            return value
        stripped = strip_query(value)
        if stripped is not None and not any(s in stripped for s in secrets):
            return stripped
        return None
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    return value


def erase_row(
    row: Mapping[str, Any],
    user_columns: Iterable[str],
    *,
    extra_secrets: Iterable[str] = (),
    replace: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The changes that erase a row's user-level data: user columns to None, URL columns to
    their path, every copy of an erased value removed. `{}` when nothing changes (so a second
    erase reports zero)."""
    user_columns = tuple(user_columns)
    secrets = frozenset(user_values(row, user_columns)) | frozenset(
        s for s in extra_secrets if s and len(s) >= 6
    )
    new: dict[str, Any] = {c: None for c in user_columns if c in row}
    for column in URL_COLUMNS & row.keys():
        new[column] = strip_query(row[column])
    for column, value in row.items():
        if column in new:
            continue
        if column in COPY_COLUMNS or column in DOCUMENT_COLUMNS:
            new[column] = _scrub(value, secrets)
    for column, value in (replace or {}).items():
        if column in row:
            new[column] = value
    return {c: v for c, v in new.items() if v != row.get(c)}


# -- retention ---------------------------------------------------------------------------------


def parse_retention(setting: Mapping[str, str]) -> dict[str, int]:
    """GANGWAY_RETENTION (`tiktokweb_int=183d`) as media source -> days."""
    out: dict[str, int] = {}
    for source, raw in setting.items():
        match = _DURATION.match(raw.strip())
        if not match:
            raise ValueError(f"GANGWAY_RETENTION: {source}={raw}: expected days, as 183d")
        out[source] = int(match.group(1))
    return out


def retention_cutoff(as_of: date, days: int) -> float:
    """Installs before this time (Unix seconds) are past their retention on `as_of`: kept
    `days` whole days after install, counted from the start of `as_of` in UTC."""
    start = datetime.combine(as_of, time(0), UTC).timestamp()
    return start - days * DAY


@dataclass(frozen=True)
class RetainItem:
    """One install to retain, with what its rollups change (nothing unless aggregates are
    rewritten)."""

    install_id: str
    rollups: Increments


def retention_rollups(
    install: Install, events: Iterable[tuple[Event, Install]], *, rewrite: bool
) -> Increments:
    """With GANGWAY_RETENTION_REWRITE_AGGREGATES: the install and its events move to organic in
    the rollups (their old increments taken back, the organic ones added); without, nothing.
    `events` are the events whose attribution is this install, each with it as recorded."""
    if not rewrite:
        return ()
    retained = _retained(install)
    out = [
        *negated(install_increments(install)),
        *install_increments(retained, rewrite_retained=True),
    ]
    for event, attributing in events:
        out += negated(event_increments(event, attributing))
        out += event_increments(event, _retained(attributing), rewrite_retained=True)
    return tuple(out)


def _retained(install: Install) -> Install:
    return replace(install, is_retained_organic=True)


def reported_attribution(install: Install) -> Install:
    """The attribution an event of `install` is recorded with: organic once retention made the
    install organic (its flag kept, so the event rules send no postback)."""
    if not install.is_retained_organic:
        return install
    return replace(as_retained(install), is_retained_organic=True)


# -- privacy erase -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EraseKey:
    """Whose data to erase: an app's user (`app_key` + `app_instance_id`) or a `ttclid`."""

    app_key: str | None
    app_instance_id: str | None
    ttclid: str | None

    @property
    def kind(self) -> str:
        return "ttclid" if self.ttclid else "app_instance_id"


def parse_erase(body: Mapping[str, Any]) -> EraseKey:
    def text(name: str) -> str | None:
        value = body.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str) or len(value) > 1024 or "\x00" in value:
            raise FieldError(name, "must be a string of at most 1024 characters")
        return value

    ttclid = text("ttclid")
    app_key = text("app_key")
    instance = text("app_instance_id")
    if ttclid and (app_key or instance):
        raise FieldError("ttclid", "comes alone: send either ttclid or app_key + app_instance_id")
    if ttclid:
        return EraseKey(None, None, ttclid)
    if not app_key:
        raise FieldError("app_key", "is required with app_instance_id (or send ttclid)")
    if not instance:
        raise FieldError("app_instance_id", "is required with app_key (or send ttclid)")
    if instance.startswith(ERASED_PREFIX):
        raise FieldError("app_instance_id", "names an erased user")
    return EraseKey(app_key, instance, None)


ERASE_TABLES = ("installs", "events", "clicks", "impressions", "postbacks")
