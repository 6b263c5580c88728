"""Limited data use over time: what CCPA-limited users' installs keep once attribution is done.

An install whose data use is limited (`is_limited_data_use`) keeps its IP, GAID, Android ID and
IDFA while attribution and its postbacks may need them; once `GANGWAY_LDU_MASK_AFTER_DAYS` have
passed since the install (default 30: the longest click lookback window), its IP and its
credited touch's IP are cut to their network, the ad ids removed, and the IP in its finished
postbacks cut too (`InstallStore.mask_limited_installs`). Reinstalls of such a device are then no
longer recognised by those ids, which is the point.
"""

from __future__ import annotations

import logging

from app.clock import Clock
from app.jobs import Periodic
from app.settings import Settings
from app.store.interfaces import Store

log = logging.getLogger("gangway.jobs")

PERIOD_SECONDS = 3600.0
# Installs masked per write (one transaction each): a backlog is worked through in short
# writes, so requests waiting on the writer are not held up by one long one.
BATCH = 500
# Batches one run may take; the rest waits for the next run.
MAX_BATCHES_PER_RUN = 100
_DAY = 86_400


async def mask_limited_data(store: Store, clock: Clock, mask_after_days: float) -> int:
    """Mask every limited-data-use install older than `mask_after_days`; answers how many."""
    before = clock() - mask_after_days * _DAY
    total = 0
    for _ in range(MAX_BATCHES_PER_RUN):
        masked = await store.installs.mask_limited_installs(before, clock(), limit=BATCH)
        total += masked
        if masked < BATCH:
            break
    if total:
        log.info(
            "limited data use: masked %d install(s) older than %g days", total, mask_after_days
        )
    return total


def ldu_masking(store: Store, clock: Clock, settings: Settings) -> Periodic:
    """The hourly job of the server's lifespan."""

    async def run() -> int:
        return await mask_limited_data(store, clock, settings.ldu_mask_after_days)

    # Leased: on several nodes over one database it runs once per period, not once per node.
    return Periodic("ldu-mask", PERIOD_SECONDS, run, delay=60.0, leases=store.leases, clock=clock)
