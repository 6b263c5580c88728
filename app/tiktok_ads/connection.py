"""The `tiktok_ads` connection of an app (spec tiktok-ads.md section 1): its config, validated,
and the values the store keeps beside it (the connection's state, the advertisers' currency and
time zone, the log of pulls). Pure.

The config is stored as the app's integration `tiktok_ads` (`ConfigStore`), so its token is
sealed at rest like the Events API token and answered only as `access_token_set`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.fields import (
    FieldError,
    as_object,
    boolean,
    listing,
    optional_object,
    path,
    string,
    valid_unicode,
    whole_number,
)

PARTNER = "tiktok_ads"
MAX_ADVERTISERS = 50
MAX_CAMPAIGNS = 1000
_ID = re.compile(r"[0-9]{1,30}")

# Connection states. `needs_reauth`: TikTok refused the token (40104/40105); pulls stop until
# the owner connects again (a new token clears it).
CONNECTED = "connected"
NEEDS_REAUTH = "needs_reauth"
STATES = (CONNECTED, NEEDS_REAUTH)

DEFAULT_BACKFILL_DAYS = 7
DEFAULT_PULL_EVERY_HOURS = 12
MAX_BACKFILL_DAYS = 365


def _ids(obj: Mapping[str, Any], key: str, parent: str, limit: int) -> list[str]:
    """TikTok IDs: digit strings; numbers are taken too (TikTok itself sends both), as long as
    they are whole (a float has already lost digits of a 19-digit ID)."""
    out: list[str] = []
    for i, raw in enumerate(listing(obj, key, parent)):
        at = path(path(parent, key), i)
        if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
            raw = str(raw)
        if not isinstance(raw, str) or not _ID.fullmatch(raw.strip()):
            raise FieldError(at, "must be a TikTok ID (digits, as a string)")
        if raw.strip() not in out:
            out.append(raw.strip())
    if len(out) > limit:
        raise FieldError(path(parent, key), f"must hold at most {limit} IDs")
    return out


def validate_connection(body: Any) -> tuple[dict[str, Any], str | None]:
    """The connection's config without its token, and the token when one was sent."""
    obj = as_object(body, "")
    advertiser_ids = _ids(obj, "advertiser_ids", "", MAX_ADVERTISERS)
    if not advertiser_ids:
        raise FieldError("advertiser_ids", "must name at least one advertiser")
    token = string(obj, "access_token", limit=512, blank_is_absent=True)
    cost = optional_object(obj, "cost")
    campaign_ids: list[str] | None = None
    if cost.get("campaign_ids") is not None:
        campaign_ids = _ids(cost, "campaign_ids", "cost", MAX_CAMPAIGNS)
        if not campaign_ids:
            raise FieldError("cost.campaign_ids", "must be null (every campaign) or name some")
    config = {
        "advertiser_ids": advertiser_ids,
        "cost": {
            "enabled": boolean(cost, "enabled", "cost", True),
            "backfill_days": whole_number(
                cost, "backfill_days", "cost", DEFAULT_BACKFILL_DAYS, 1, MAX_BACKFILL_DAYS
            ),
            "pull_every_hours": whole_number(
                cost, "pull_every_hours", "cost", DEFAULT_PULL_EVERY_HOURS, 1, 168
            ),
            "by_country": boolean(cost, "by_country", "cost", True),
            "campaign_ids": campaign_ids,
        },
        "audiences_enabled": boolean(obj, "audiences_enabled", "", False),
    }
    valid_unicode(token, "access_token")
    return config, token


@dataclass(frozen=True)
class CostSettings:
    enabled: bool
    backfill_days: int
    pull_every_hours: int
    by_country: bool
    campaign_ids: tuple[str, ...] | None

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> CostSettings:
        cost = config.get("cost") or {}
        ids = cost.get("campaign_ids")
        return cls(
            enabled=bool(cost.get("enabled", True)),
            backfill_days=int(cost.get("backfill_days", DEFAULT_BACKFILL_DAYS)),
            pull_every_hours=int(cost.get("pull_every_hours", DEFAULT_PULL_EVERY_HOURS)),
            by_country=bool(cost.get("by_country", True)),
            campaign_ids=tuple(ids) if ids is not None else None,
        )


@dataclass(frozen=True)
class AdvertiserInfo:
    """What `advertiser/info/` said of one advertiser: its currency and time zone."""

    advertiser_id: str
    name: str
    currency: str
    timezone: str

    def zone(self) -> ZoneInfo:
        return zone_of(self.timezone)

    def today(self, now: float) -> dt.date:
        """The advertiser's day at `now`: TikTok's report days are the advertiser's."""
        return dt.datetime.fromtimestamp(now, self.zone()).date()


def zone_of(name: str) -> ZoneInfo:
    """An IANA zone; UTC for a name this system does not know (a day off beats no pull)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def advertiser_info(item: Mapping[str, Any]) -> AdvertiserInfo | None:
    """Read one `advertiser/info/` item; `display_timezone` wins over `timezone` (spec: the
    latter may be a fixed offset such as `Etc/GMT+8`, which knows no daylight saving)."""
    advertiser_id = item.get("advertiser_id")
    if not isinstance(advertiser_id, str | int) or isinstance(advertiser_id, bool):
        return None
    zone = item.get("display_timezone") or item.get("timezone") or "UTC"
    currency = item.get("currency")
    return AdvertiserInfo(
        advertiser_id=str(advertiser_id),
        name=str(item.get("name") or ""),
        currency=currency.upper() if isinstance(currency, str) and currency else "USD",
        timezone=str(zone),
    )


@dataclass(frozen=True)
class ConnectionState:
    """What the pulls learned of a connection: its state, why, and its advertisers."""

    app_key: str
    state: str
    message: str | None
    advertisers: tuple[AdvertiserInfo, ...]
    updated_at: float


@dataclass(frozen=True)
class PullRecord:
    """One cost pull: when, which days, what it stored, and the error if any."""

    id: str
    app_key: str
    trigger: str  # schedule | api | cli
    started_at: float
    finished_at: float | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    rows: int = 0
    changed: int = 0
    # Spend stored, in the app's report currency, as a decimal string.
    spend: str = "0"
    currency: str = ""
    superseded: int = 0
    requests: int = 0
    error: str | None = None


# A pull with no end this long after its start is taken to have died with its process (a
# restart or a crash): the longest measured pull, 365 days of 10,000 ads at TikTok's 10
# requests a second, takes minutes. Its days are pulled again by the next pull anyway.
STALE_PULL_SECONDS = 3600

OK, FAILED, RUNNING, INTERRUPTED = "ok", "failed", "running", "interrupted"


def pull_outcome(p: PullRecord, now: float) -> str:
    """How a pull ended: ok, failed, running, or interrupted (no end, and too old to run)."""
    if p.finished_at is None:
        return RUNNING if now - p.started_at < STALE_PULL_SECONDS else INTERRUPTED
    return FAILED if p.error else OK


def connection_json(
    config: Mapping[str, Any],
    token_set: bool,
    state: ConnectionState | None,
    pulls: Sequence[PullRecord],
    *,
    app_key: str,
    updated_at: str | None,
    now: float,
) -> dict[str, Any]:
    """The answer of GET/PUT: the config, never the token, the state and the last pulls."""
    return {
        "app_key": app_key,
        "partner": PARTNER,
        **config,
        "access_token_set": token_set,
        "state": state.state if state else CONNECTED,
        "state_message": state.message if state else None,
        "advertisers": [
            {
                "advertiser_id": a.advertiser_id,
                "name": a.name,
                "currency": a.currency,
                "timezone": a.timezone,
            }
            for a in (state.advertisers if state else ())
        ],
        "updated_at": updated_at,
        "pulls": [pull_json(p, now) for p in pulls],
    }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pull_json(p: PullRecord, now: float) -> dict[str, Any]:
    return {
        "id": p.id,
        "trigger": p.trigger,
        "outcome": pull_outcome(p, now),
        "started_at": _iso(p.started_at),
        "finished_at": _iso(p.finished_at),
        "start_date": p.start_date.isoformat() if p.start_date else None,
        "end_date": p.end_date.isoformat() if p.end_date else None,
        "rows": p.rows,
        "changed": p.changed,
        "spend": p.spend,
        "currency": p.currency,
        "superseded_uploads": p.superseded,
        "requests": p.requests,
        "error": p.error,
    }
