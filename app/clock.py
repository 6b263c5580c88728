"""The one clock. Handlers and workers ask `clock()`; tests replace it on the app state."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]


def system_clock() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    """Unix seconds -> `2026-11-21T10:00:00Z` (ISO 8601 UTC, whole seconds, as the spec writes)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The times an API accepts, in Unix seconds: from 1970 to before the year 5138 (a number beyond
# is almost surely milliseconds). ISO 8601 times are held to the same range, so every time we
# store can be written back as ISO 8601 (`iso()` fails before year 1 and after 9999).
MAX_TIME = 10**11


def parse_time(value: object) -> float:
    """An API time: ISO 8601 (`Z` or offset) or Unix seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("expected a time")
    if isinstance(value, int | float):
        if not 0 <= value < MAX_TIME:
            raise ValueError("expected Unix seconds")
        return float(value)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
        if not 0 <= seconds < MAX_TIME:
            raise ValueError("expected a time from 1970 on")
        return seconds
    raise ValueError("expected an ISO 8601 time or Unix seconds")
