"""Values the store hands in and out: configuration records, touch records, outbox rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.ids import new_id
from app.touches import Touch


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
class TouchRecord:
    """A touch as the tracking handlers record it: the domain value plus what only storage and
    raw data need."""

    touch: Touch
    page_slug: str | None = None
    language: str | None = None
    in_app: str | None = None
    all_params: Mapping[str, str] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    destination: str | None = None


@dataclass(frozen=True)
class NewPostback:
    """An outbox row, written in the same transaction as its install or event."""

    app_key: str
    partner: str
    kind: str  # "install" | "event"
    subject_id: str
    event: str
    payload: dict[str, Any]
    id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class PostbackRecord:
    id: str
    app_key: str
    partner: str
    kind: str
    subject_id: str
    event: str
    payload: dict[str, Any]
    state: str
    attempts: int
    created_at: float
    next_attempt_at: float
    last_code: int | None
    last_message: str | None
    # Start of the current run of retries (None: created_at) and the attempts made in it.
    retry_since: float | None = None
    retry_attempts: int = 0


@dataclass(frozen=True)
class PostbackAttempt:
    postback_id: str
    time: float
    state: str  # the postback's state after this attempt
    next_attempt_at: float
    http_status: int | None = None
    code: int | None = None
    message: str | None = None
    request_id: str | None = None
    # The request's envelope and how many events it carried (None: no request was made).
    pixel_code: str | None = None
    test_event_code: str | None = None
    batch_size: int | None = None
