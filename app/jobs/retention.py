"""Retention (`reporting.md` section 5): the daily run in the server and `python -m app
retention run`.

Installs past their media source's retention (GANGWAY_RETENTION) lose their user-level fields,
with their events and attributed touch, and become `is_retained_organic`, a batch per
transaction. With GANGWAY_RETENTION_REWRITE_AGGREGATES the rollups of those installs and their
events move to organic in the same transaction; without it they stay as they were. A run over
installs already retained changes nothing, so it is safe to run again or to interrupt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime

from app.clock import Clock
from app.jobs import Periodic
from app.reports.privacy import RetainItem, parse_retention, retention_cutoff, retention_rollups
from app.settings import Settings
from app.store.interfaces import Store

log = logging.getLogger("gangway.retention")

DAY_SECONDS = 86_400.0
# The first run waits a little after start-up, so a restart loop does not run it every time.
FIRST_RUN_DELAY = 300.0
BATCH = 500
Progress = Callable[[int, int], None]


async def run_retention(
    store: Store,
    settings: Settings,
    *,
    as_of: date,
    now: float,
    progress: Progress | None = None,
    batch: int = BATCH,
) -> dict[str, int]:
    """Retain every install due on `as_of`; answers rows changed per table."""
    days = parse_retention(settings.retention)
    cutoffs = {source: retention_cutoff(as_of, n) for source, n in days.items()}
    rewrite = settings.retention_rewrite_aggregates
    total = await store.privacy.count_retention_due(cutoffs)
    counts = {"installs": 0, "events": 0, "clicks": 0, "impressions": 0}
    done = 0
    if progress:
        progress(done, total)
    while True:
        due = await store.privacy.retention_due(cutoffs, limit=batch)
        if not due:
            break
        items = []
        for install in due:
            events = await store.privacy.events_attributed_to(install.id) if rewrite else []
            moves = retention_rollups(install, [(e, install) for e in events], rewrite=rewrite)
            items.append(RetainItem(install.id, moves))
        changed = await store.privacy.retain(items, now)
        for table, n in changed.items():
            counts[table] = counts.get(table, 0) + n
        done += len(due)
        if progress:
            progress(min(done, total), total)
        if not changed.get("installs"):
            break  # nothing moved: never loop on rows another writer holds
    return counts


def retention_job(store: Store, settings: Settings, clock: Clock) -> Periodic:
    """The daily run inside the server."""

    async def run() -> None:
        now = clock()
        counts = await run_retention(
            store, settings, as_of=datetime.fromtimestamp(now, UTC).date(), now=now
        )
        log.info("retention: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))

    # Leased: on several nodes over one database it runs once per day, not once per node.
    return Periodic(
        "retention", DAY_SECONDS, run, delay=FIRST_RUN_DELAY, leases=store.leases, clock=clock
    )
