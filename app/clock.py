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


def parse_time(value: object) -> float:
    """An API time: ISO 8601 (`Z` or offset) or Unix seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("expected a time")
    if isinstance(value, int | float):
        if not 0 <= value < 10**11:  # beyond year 5138: almost surely milliseconds
            raise ValueError("expected Unix seconds")
        return float(value)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    raise ValueError("expected an ISO 8601 time or Unix seconds")
