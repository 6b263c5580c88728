"""The console's data alike in both backends: how long sessions and failed logins are kept,
and how an account, a session and the dashboard's counts are read back from a row."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from app.store.common.rows import record_of
from app.store.records import SessionRecord, TouchCounts, UserRecord

# A session's last use is written at most this often: a page's burst of requests writes once.
SESSION_USE_RESOLUTION_SECONDS = 60.0
# Sessions unused this long, and failed logins this old, are deleted as new ones are written:
# past every limit that reads them (7 days, 15 minutes), so nothing grows without end.
KEEP_SESSIONS_SECONDS = 8 * 24 * 3600.0
KEEP_FAILURES_SECONDS = 24 * 3600.0


def apps_document(apps: Sequence[str] | None) -> str | None:
    """An account's app list as stored: None (every app) stays NULL; else sorted and without
    repeats, so the same list is always the same text."""
    return None if apps is None else json.dumps(sorted(set(apps)))


def user_from(row: Mapping[str, Any]) -> UserRecord:
    apps = row["apps"]
    return UserRecord(
        username=row["username"],
        password_hash=row["password_hash"],
        role=row["role"],
        apps=None if apps is None else tuple(json.loads(apps)),
        created_at=row["created_at"],
    )


def session_from(row: Mapping[str, Any]) -> SessionRecord:
    return record_of(SessionRecord, row)


def touch_counts(row: Mapping[str, Any]) -> TouchCounts:
    """The dashboard's counts; a driver may hand back its own integer type for count(*)."""
    return TouchCounts(**{k: int(v) for k, v in row.items()})
