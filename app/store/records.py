"""Values the store hands in and out besides the domain's own (`Touch`, `Install`, `Event`,
the postback values): configuration records, a touch with what only raw data needs, the
candidate query, the store's own figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.attribution import CANDIDATE_LIMIT, Candidates, TimeRange
from app.conversions import Install, PriorInstall


class ClickAlreadyClaimed(Exception):
    """The click an install matched was claimed by another install first (a lost race)."""


@dataclass(frozen=True)
class AppRecord:
    app_key: str
    name: str
    # Credentials stay out of reprs, so a logged record never leaks them.
    sdk_key: str = field(repr=False)
    config: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class PageRecord:
    slug: str
    app_key: str
    config: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class IntegrationRecord:
    app_key: str
    partner: str
    config: dict[str, Any]
    access_token: str | None = field(repr=False)
    updated_at: float


@dataclass(frozen=True)
class PageView:
    """What the impression of one page view recorded that its clicks inherit."""

    original_url: str | None
    page_slug: str | None


@dataclass(frozen=True)
class CandidateQuery:
    """What to look up for one install: its app, IP, the referrer's click id, the tier ranges
    (`app.attribution.candidate_ranges`)."""

    app_key: str
    ip: str | None
    referrer_click_id: str | None
    clicks: TimeRange
    impressions: TimeRange
    limit: int = CANDIDATE_LIMIT


@dataclass(frozen=True)
class InstallInputs:
    """What an install request reads before it is planned, read together (one snapshot): the
    install already stored under its app_instance_id (then nothing else is read), the device's
    latest earlier install and that one's first install, and the attribution candidates."""

    stored: Install | None
    prior: PriorInstall | None = None
    first: Install | None = None
    candidates: Candidates | None = None


# Commit-latency histogram bounds, seconds (Prometheus `le` labels).
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)


@dataclass(frozen=True)
class StoreStats:
    """What `/metrics` shows of the store's write path, whatever the backend."""

    # Writes acknowledged, the transactions (batches) that committed them, writes refused.
    writes: int
    batches: int
    failed_writes: int
    queue_depth: int
    commit_seconds_total: float
    # Cumulative counts of commits at or under each bound of LATENCY_BUCKETS.
    commit_buckets: dict[float, int]


@dataclass(frozen=True)
class UserRecord:
    """A console account. `apps` None: every app; else only those (console.md section 1)."""

    username: str
    password_hash: str = field(repr=False)
    role: str
    apps: tuple[str, ...] | None
    created_at: float


@dataclass(frozen=True)
class SessionRecord:
    """A console session, kept server-side so that logging out ends it for good."""

    id: str = field(repr=False)
    username: str
    csrf_token: str = field(repr=False)
    created_at: float
    last_seen_at: float
    revoked_at: float | None


@dataclass(frozen=True)
class TokenInfo:
    """An admin token as the console lists it: never the token itself."""

    id: str
    label: str
    created_at: float
    last_used_at: float | None


@dataclass(frozen=True)
class ActivityItem:
    """One line of the dashboard's activity feed: an install or an in-app event."""

    kind: str  # "install" | "event"
    id: str
    app_key: str
    time: float
    name: str  # the install's status, the event's name
    media_source: str
    campaign: str | None
    install_id: str  # the receipt to open (an event's install)


@dataclass(frozen=True)
class TouchCounts:
    """What the store can count cheaply for the dashboard (one indexed range each)."""

    impressions: int
    clicks: int
    installs: int
    attributed_installs: int
    events: int
