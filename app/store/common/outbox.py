"""The outbox's rows as both backends write and read them.

Each backend's SQL lists the columns of `postbacks` and `postback_attempts` in the order the
row builders here give their values, so the two cannot disagree on what an attempt records or
on what a stored postback reads back as.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from app.postbacks.postback import (
    LoggedAttempt,
    NewPostback,
    PostbackAttempt,
    PostbackDetail,
    PostbackRecord,
)


def queued_rows(
    postbacks: Iterable[NewPostback], now: float, payload_text: Callable[[Any], str]
) -> list[list[Any]]:
    """The values of new outbox rows, due now: id, app_key, partner, kind, subject_id, event,
    payload, created_at, next_attempt_at. Each backend says how its payload is written."""
    return [
        [
            p.id,
            p.app_key,
            p.partner,
            p.kind,
            p.subject_id,
            p.event,
            payload_text(p.payload),
            now,
            now,
        ]
        for p in postbacks
    ]


def attempt_log_rows(attempts: Sequence[PostbackAttempt]) -> list[list[Any]]:
    """The attempt log's values: postback_id, time, http_status, code, message, request_id,
    state, pixel_code, test_event_code, batch_size."""
    return [
        [
            a.postback_id,
            a.time,
            a.http_status,
            a.code,
            a.message,
            a.request_id,
            a.state,
            a.pixel_code,
            a.test_event_code,
            a.batch_size,
        ]
        for a in attempts
    ]


def attempt_state_rows(attempts: Sequence[PostbackAttempt]) -> list[list[Any]]:
    """What each attempt leaves its postback with: state, last_attempt_at, last_http_status,
    last_code, last_message, last_request_id, next_attempt_at, then the state and time again
    (`sent_at` is set only when the state is `sent`), and the postback's id."""
    return [
        [
            a.state,
            a.time,
            a.http_status,
            a.code,
            a.message,
            a.request_id,
            a.next_attempt_at,
            a.state,
            a.time,
            a.postback_id,
        ]
        for a in attempts
    ]


def state_counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Postbacks by state, from rows of (state, n)."""
    return {r["state"]: int(r["n"]) for r in rows}


def postback_from_row(row: Mapping[str, Any]) -> PostbackRecord:
    return PostbackRecord(
        id=row["id"],
        app_key=row["app_key"],
        partner=row["partner"],
        kind=row["kind"],
        subject_id=row["subject_id"],
        event=row["event"],
        payload=json.loads(row["payload"]),
        state=row["state"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        last_code=row["last_code"],
        last_message=row["last_message"],
        retry_since=row["retry_since"],
        retry_attempts=row["retry_attempts"],
        last_http_status=row["last_http_status"],
        last_request_id=row["last_request_id"],
        sent_at=row["sent_at"],
    )


def postback_detail(
    row: Mapping[str, Any], attempts: Iterable[Mapping[str, Any]]
) -> PostbackDetail:
    """The owner's view of one postback: its row and its attempt log's rows, oldest first."""
    return PostbackDetail(postback_from_row(row), [attempt_from_row(a) for a in attempts])


def attempt_from_row(row: Mapping[str, Any]) -> LoggedAttempt:
    return LoggedAttempt(
        time=row["time"],
        state=row["state"],
        http_status=row["http_status"],
        code=row["code"],
        message=row["message"],
        request_id=row["request_id"],
        pixel_code=row["pixel_code"],
        test_event_code=row["test_event_code"],
        batch_size=row["batch_size"],
    )
