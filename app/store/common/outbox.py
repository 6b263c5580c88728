"""The outbox's rows as both backends write and read them.

Each backend's SQL lists the columns of `postbacks` and `postback_attempts` in the order the
row builders here give their values, so the two cannot disagree on what an attempt records or
on what a stored postback reads back as.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.postbacks.postback import (
    LoggedAttempt,
    NewPostback,
    PostbackAttempt,
    PostbackDetail,
    PostbackRecord,
)
from app.store.common.rows import record_of
from app.store.jsontext import json_text


def queued_rows(postbacks: Iterable[NewPostback], now: float) -> list[list[Any]]:
    """The values of new outbox rows, due now: id, app_key, partner, kind, subject_id, event,
    payload, created_at, next_attempt_at."""
    return [
        [
            p.id,
            p.app_key,
            p.partner,
            p.kind,
            p.subject_id,
            p.event,
            json_text(p.payload),
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
    return record_of(PostbackRecord, row, documents=("payload",))


def postback_detail(
    row: Mapping[str, Any], attempts: Iterable[Mapping[str, Any]]
) -> PostbackDetail:
    """The owner's view of one postback: its row and its attempt log's rows, oldest first."""
    return PostbackDetail(postback_from_row(row), [attempt_from_row(a) for a in attempts])


def attempt_from_row(row: Mapping[str, Any]) -> LoggedAttempt:
    return record_of(LoggedAttempt, row)
