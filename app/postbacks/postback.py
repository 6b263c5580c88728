"""A postback as the outbox holds it: queued, stored, attempted.

Plain values shared by the planners that queue postbacks, the store that keeps them and the
worker that delivers them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.ids import new_id


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
    last_http_status: int | None = None
    last_request_id: str | None = None
    sent_at: float | None = None


@dataclass(frozen=True)
class PostbackAttempt:
    """One delivery attempt of one postback, and the state it left the postback in."""

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


@dataclass(frozen=True)
class LoggedAttempt:
    """An attempt as the attempt log keeps it, for the owner's view."""

    time: float
    state: str | None
    http_status: int | None
    code: int | None
    message: str | None
    request_id: str | None
    pixel_code: str | None
    test_event_code: str | None
    batch_size: int | None


@dataclass(frozen=True)
class PostbackDetail:
    """A postback with every attempt made at it, oldest first: the owner's view."""

    postback: PostbackRecord
    attempts: list[LoggedAttempt]
