"""Touch queries: recording impressions and clicks, and finding attribution candidates.

Every write goes through the group-commit writer, so `record_touch` returns only once the row
is on disk. The lookups ride the indexes of migration 0001: the unique `(app_key, pvid)` of
impressions (one page view, one impression), the click id primary key (the Play referrer) and
`(app_key, ip, time)` on both tables (probabilistic candidates).
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

from app.store.base import StoreBase
from app.store.records import TouchRecord
from app.touches import CAMPAIGN_PARAMS


def touch_row(rec: TouchRecord) -> dict[str, Any]:
    t = rec.touch
    row: dict[str, Any] = {
        "id": t.id,
        "app_key": t.app_key,
        "page_slug": rec.page_slug,
        "pvid": t.pvid,
        "time": t.time,
        "ip": t.ip,
        "user_agent": t.user_agent,
        "os_family": t.os_family,
        "os_version": t.os_version,
        "device_model": t.device_model,
        "browser": t.browser,
        "in_app": rec.in_app,
        "language": rec.language,
        "country": t.country,
        "region": t.region,
        "gpc": int(t.gpc),
        "pid": t.pid,
        "ttclid": t.ttclid,
        "params": json.dumps(dict(rec.all_params), ensure_ascii=False),
        "original_url": t.original_url,
        "referrer": t.referrer,
        "verdict": t.verdict,
        "verdict_reasons": ",".join(t.verdict_reasons),
        "flags": ",".join(rec.flags),
    }
    for key in CAMPAIGN_PARAMS:
        row[key] = t.params.get(key)
    if t.kind == "click":
        row["platform"] = t.platform
        row["destination"] = rec.destination
    return row


class TouchQueries(StoreBase):
    # -- touches -----------------------------------------------------------------------------

    async def record_touch(self, rec: TouchRecord) -> str:
        """Store a touch; answers its id. An impression whose `pvid` was seen before is not
        stored again: the first one's id is answered (a page view is one impression)."""
        table = "clicks" if rec.touch.kind == "click" else "impressions"
        row = touch_row(rec)
        columns = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)

        def write(db: Database) -> str:
            if table == "impressions" and rec.touch.pvid is not None:
                existing = db.execute(
                    "SELECT id FROM impressions WHERE app_key = ? AND pvid = ?",
                    [rec.touch.app_key, rec.touch.pvid],
                ).fetchone()
                if existing:
                    return str(existing[0])
            db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", row)
            return rec.touch.id

        return await self.writer.write(write)

    async def page_view(self, app_key: str, pvid: str) -> tuple[str | None, str | None] | None:
        """(original URL, page slug) of the impression of one page view, or None when that page
        view has not been recorded (yet: a fast tap can beat the beacon)."""
        row = await self._one(
            "SELECT original_url, page_slug FROM impressions WHERE app_key = ? AND pvid = ?",
            [app_key, pvid],
        )
        return (row["original_url"], row["page_slug"]) if row else None
