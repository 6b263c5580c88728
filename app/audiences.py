"""Audiences (tiktok-ads.md section 3): a rule over an app's installs, kept in sync with a
TikTok custom audience of hashed device IDs. Pure: no HTTP, no SQL.

What lives here:
- the rule an owner writes (`validate_rule`), read with `app.fields` so a bad field is a 400
  naming it;
- the member ID: trimmed, lower-cased, hyphens kept, MD5 in lower-case hex (`member_hash`);
  an all-zero ID (iOS without ATT consent) or a blank one is no member;
- which installs the store must look at (`member_query`): the rule's filters plus the
  exclusions no audience ever holds (limited data use, retained or erased, past retention);
- the sync plan: what the difference between the members wanted now and those TikTok
  confirmed may send, given TikTok's 1,000-user floor (`plan_sync`).

The store computes the difference itself (`AudienceStore`), so a large app's members are never
all in memory; `difference` states the same rule over plain sets.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any

from app.fields import FieldError, as_object, listing, path, required_string, whole_number
from app.vocabulary import MOBILE_PLATFORMS

# TikTok shows an audience only from 1,000 users and refuses an update that leaves fewer.
MIN_MEMBERS = 1000
ZERO_ID = "00000000-0000-0000-0000-000000000000"
CALCULATE_TYPES: Mapping[str, str] = {"ios": "IDFA_MD5", "android": "GAID_MD5"}
# The install column holding each platform's advertising ID.
ID_COLUMNS: Mapping[str, str] = {"ios": "idfa", "android": "gaid"}
ANY_SOURCE = "any"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_DAYS = 3650
DEFAULT_DAYS = 30
MAX_EVENTS = 50
MAX_TEXT = 100
DAY = 86_400.0

# States an audience is in after its last sync.
PENDING = "pending"  # never synced
WAITING = "waiting"  # under 1,000 members: not created at TikTok yet
TOO_SMALL = "too_small"  # created, but removing the departed would leave under 1,000
SYNCED = "synced"  # TikTok holds exactly the members
FAILED = "failed"  # the last sync stopped on an error; the next one resumes
STATES = (PENDING, WAITING, TOO_SMALL, SYNCED, FAILED)

APPEND = "APPEND"
REMOVE = "REMOVE"


@dataclass(frozen=True)
class AudienceRule:
    advertiser_id: str
    platform: str
    installed_within_days: int
    media_source: str
    did_event: tuple[str, ...]
    did_not_event: tuple[str, ...]
    event_within_days: int

    @property
    def calculate_type(self) -> str:
        return CALCULATE_TYPES[self.platform]

    def to_config(self) -> dict[str, Any]:
        return {
            "advertiser_id": self.advertiser_id,
            "platform": self.platform,
            "installed_within_days": self.installed_within_days,
            "media_source": self.media_source,
            "did_event": list(self.did_event),
            "did_not_event": list(self.did_not_event),
            "event_within_days": self.event_within_days,
        }


@dataclass(frozen=True)
class Audience:
    """An audience as kept: its rule and what its last sync left."""

    id: str
    app_key: str
    name: str
    rule: AudienceRule
    tiktok_audience_id: str | None
    state: str
    # Members wanted at the last sync, and those TikTok confirmed holding.
    member_count: int
    sent_count: int
    last_sync_at: float | None
    last_error: str | None
    created_at: float
    updated_at: float


def validate_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise FieldError(
            "name",
            "must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
        )
    return name


def _events(body: Mapping[str, Any], key: str) -> tuple[str, ...]:
    items = listing(body, key)
    if len(items) > MAX_EVENTS:
        raise FieldError(key, f"must list at most {MAX_EVENTS} events")
    names: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise FieldError(path(key, i), "must be a non-empty event name")
        if len(item) > MAX_TEXT:
            raise FieldError(path(key, i), f"must be at most {MAX_TEXT} characters")
        if item.strip() not in names:
            names.append(item.strip())
    return tuple(names)


def validate_rule(body: Any) -> AudienceRule:
    """The rule of `PUT .../audiences/{name}`; FieldError names the field it refuses."""
    obj = as_object(body, "")
    advertiser_id = required_string(obj, "advertiser_id", limit=MAX_TEXT)
    if not advertiser_id.isdigit():
        raise FieldError("advertiser_id", "must be TikTok's numeric advertiser ID, as a string")
    platform = required_string(obj, "platform", limit=MAX_TEXT)
    if platform not in MOBILE_PLATFORMS:
        raise FieldError("platform", "must be ios or android (one audience holds one ID type)")
    media_source = required_string(obj, "media_source", limit=MAX_TEXT)
    did_event = _events(obj, "did_event")
    did_not_event = _events(obj, "did_not_event")
    if both := set(did_event) & set(did_not_event):
        raise FieldError("did_not_event", f"also lists did_event's {sorted(both)[0]!r}")
    return AudienceRule(
        advertiser_id=advertiser_id,
        platform=platform,
        installed_within_days=whole_number(
            obj, "installed_within_days", "", DEFAULT_DAYS, 1, MAX_DAYS
        ),
        media_source=media_source,
        did_event=did_event,
        did_not_event=did_not_event,
        event_within_days=whole_number(obj, "event_within_days", "", DEFAULT_DAYS, 1, MAX_DAYS),
    )


def rule_from_config(config: Mapping[str, Any]) -> AudienceRule:
    """A stored rule (written by `AudienceRule.to_config`) read back."""
    return AudienceRule(
        advertiser_id=str(config["advertiser_id"]),
        platform=str(config["platform"]),
        installed_within_days=int(config["installed_within_days"]),
        media_source=str(config["media_source"]),
        did_event=tuple(config.get("did_event") or ()),
        did_not_event=tuple(config.get("did_not_event") or ()),
        event_within_days=int(config["event_within_days"]),
    )


def needs_new_tiktok_audience(old: AudienceRule, new: AudienceRule) -> bool:
    """A TikTok audience holds one ID type in one advertiser account: changing either starts a
    new one (the old one is left at TikTok as it is), and forgets what was sent to the old."""
    return old.platform != new.platform or old.advertiser_id != new.advertiser_id


# -- members ---------------------------------------------------------------------------------


def normalise_id(raw: str | None) -> str | None:
    """An advertising ID as TikTok hashes it: trimmed, lower-cased, hyphens kept. None for no
    ID: blank, or all zeros (what iOS gives without ATT consent, a limited GAID)."""
    if raw is None:
        return None
    value = raw.strip().lower()
    if not value or value == ZERO_ID or not value.strip("0-"):
        return None
    return value


def member_hash(raw: str | None) -> str | None:
    """MD5 of the normalised ID, lower-case hex (`IDFA_MD5`, `GAID_MD5`); None: no member."""
    value = normalise_id(raw)
    return hashlib.md5(value.encode()).hexdigest() if value is not None else None


def member_hashes(raw_ids: Iterable[str | None]) -> list[str]:
    return [h for raw in raw_ids if (h := member_hash(raw)) is not None]


def member_file(hashes: Iterable[str]) -> bytes:
    """A customer file of TikTok's (a `.csv`): one hash a line. Its `file_signature` is the
    MD5 hex of these bytes (the client computes it from what it sends)."""
    return "".join(f"{h}\n" for h in hashes).encode()


@dataclass(frozen=True)
class MemberQuery:
    """Which installs' IDs the store reads for an audience. Besides the rule's filters, never:
    a limited-data-use install, or another install carrying a limited-data-use install's ID;
    an install retained or erased; an install past its media source's retention (`cutoffs`:
    media source -> time before which installs are past it, matched on the media source or
    the original one, as retention does)."""

    app_key: str
    id_column: str
    installed_since: float
    media_source: str | None
    did_event: tuple[str, ...]
    did_not_event: tuple[str, ...]
    events_since: float
    retention_cutoffs: Mapping[str, float]


def member_query(
    app_key: str, rule: AudienceRule, now: float, retention_cutoffs: Mapping[str, float]
) -> MemberQuery:
    return MemberQuery(
        app_key=app_key,
        id_column=ID_COLUMNS[rule.platform],
        installed_since=now - rule.installed_within_days * DAY,
        media_source=None if rule.media_source == ANY_SOURCE else rule.media_source,
        did_event=rule.did_event,
        did_not_event=rule.did_not_event,
        events_since=now - rule.event_within_days * DAY,
        retention_cutoffs=dict(retention_cutoffs),
    )


# -- the sync plan -----------------------------------------------------------------------------


def difference(wanted: Set[str], sent: Set[str]) -> tuple[set[str], set[str]]:
    """(to APPEND, to REMOVE): what TikTok lacks, and what it holds that is no longer wanted."""
    return set(wanted - sent), set(sent - wanted)


@dataclass(frozen=True)
class SyncCounts:
    wanted: int
    to_append: int
    to_remove: int


@dataclass(frozen=True)
class SyncPlan:
    create: bool
    append: bool
    remove: bool
    # The state once what is planned is confirmed.
    state: str


def plan_sync(created: bool, counts: SyncCounts) -> SyncPlan:
    """What to send, appends before removes (so the audience never dips on the way).

    Not created yet: created with every member from 1,000 on, else left `waiting`. Created:
    new members are always appended; the departed are removed only if 1,000 stay, else the
    removal waits and the audience is `too_small`."""
    if not created:
        if counts.wanted < MIN_MEMBERS:
            return SyncPlan(create=False, append=False, remove=False, state=WAITING)
        return SyncPlan(create=True, append=False, remove=False, state=SYNCED)
    small = counts.wanted < MIN_MEMBERS
    return SyncPlan(
        create=False,
        append=counts.to_append > 0,
        remove=counts.to_remove > 0 and not small,
        state=TOO_SMALL if small and counts.to_remove > 0 else SYNCED,
    )


def state_reason(audience: Audience) -> str:
    """Why an audience is in its state, for the owner (API and console)."""
    if audience.state == WAITING:
        return (
            f"{audience.member_count} member(s): TikTok shows an audience only from "
            f"{MIN_MEMBERS:,}, so it is created once it has that many"
        )
    if audience.state == TOO_SMALL:
        return (
            f"{audience.member_count} member(s) match now: TikTok refuses an update leaving "
            f"fewer than {MIN_MEMBERS:,}, so departed members stay until it grows again"
        )
    if audience.state == FAILED:
        return f"the last sync failed ({audience.last_error}); the next one resumes"
    if audience.state == PENDING:
        return "not synced yet"
    return "in sync"
