"""The TikTok Ads connection's rows as both backends hold them: its state with the advertisers
as a JSON document, and a pull with its days as ISO text, so each reads back as it was put."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, fields
from typing import Any

from app.tiktok_ads.connection import AdvertiserInfo, ConnectionState, PullRecord

# The columns of `tiktok_ads_pulls`, named as `PullRecord`'s fields so a row is the record.
PULL_NAMES = tuple(f.name for f in fields(PullRecord))


def advertisers_json(state: ConnectionState) -> str:
    # One document, not a table: the advertisers are only ever read with their state.
    return json.dumps([asdict(a) for a in state.advertisers])


def connection_state(row: dict[str, Any]) -> ConnectionState:
    return ConnectionState(
        app_key=row["app_key"],
        state=row["state"],
        message=row["message"],
        advertisers=tuple(AdvertiserInfo(**a) for a in json.loads(row["advertisers"])),
        updated_at=row["updated_at"],
    )


def _day_text(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _day(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def pull_values(pull: PullRecord) -> dict[str, Any]:
    """The pull's row by column name, in `PULL_NAMES` order."""
    values = asdict(pull)
    values["start_date"] = _day_text(pull.start_date)
    values["end_date"] = _day_text(pull.end_date)
    return values


def pull_record(row: dict[str, Any]) -> PullRecord:
    return PullRecord(
        **(row | {"start_date": _day(row["start_date"]), "end_date": _day(row["end_date"])})
    )
