"""Which columns a touch, an install and an event are stored in, derived from the domain values.

The domain dataclasses are the one declaration of those fields: a backend reads its column lists
from here, so a field added to `Touch` or `Install` is a column everywhere at once (and the
schema test of each backend fails until a migration adds it).
"""

from __future__ import annotations

from dataclasses import fields

from app.conversions import Event, Install
from app.touches import CAMPAIGN_PARAMS, Touch

# Touch fields that are no column of their own: the table is the kind, `params` is spread over
# one column per campaign param, and two are kept for clicks only.
_NOT_TOUCH_COLUMNS = frozenset({"kind", "params", "platform", "claimed_by"})
CLICK_ONLY_FIELDS = ("platform", "claimed_by")

# What a `Touch` is read back from, in the order the candidate lookups select it.
TOUCH_COLUMNS: tuple[str, ...] = (
    *(f.name for f in fields(Touch) if f.name not in _NOT_TOUCH_COLUMNS),
    *CAMPAIGN_PARAMS,
)
CLICK_COLUMNS: tuple[str, ...] = (*TOUCH_COLUMNS, *CLICK_ONLY_FIELDS)
# Kept for raw data only, never read by attribution: written from the `TouchRecord`.
TOUCH_RECORD_COLUMNS = ("page_slug", "language", "in_app", "params", "flags")
CLICK_RECORD_COLUMNS = ("destination",)

INSTALL_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Install))
EVENT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Event))
# Columns holding JSON documents, and flags kept as 0/1 where the backend has no boolean.
JSON_COLUMNS = frozenset({"receipt", "answer", "event_value"})
BOOLEAN_COLUMNS = frozenset({"is_limited_data_use", "is_retained_organic", "gpc"})
