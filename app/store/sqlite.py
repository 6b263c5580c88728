"""The SQLite store: the narrow interface handlers and workers use, named for what they need.

Nothing outside `app/store/` writes SQL. Writes go through the single `Writer` (group commit);
reads use read-only connections, one per worker thread, so a slow report never blocks a write.
A second backend (PostgreSQL for configuration, installs and the outbox; ClickHouse for touches
and rollups) would implement the same public methods, grouped as here by what they serve.
"""

from __future__ import annotations

from app.store.candidates import CandidateQueries
from app.store.configs import ConfigQueries
from app.store.installs import InstallQueries
from app.store.outbox import OutboxQueries
from app.store.records import (
    AppRecord,
    ClickAlreadyClaimed,
    IntegrationRecord,
    NewPostback,
    PageRecord,
    PostbackAttempt,
    PostbackRecord,
    TouchRecord,
)
from app.store.touches import TouchQueries

__all__ = [
    "AppRecord",
    "ClickAlreadyClaimed",
    "IntegrationRecord",
    "NewPostback",
    "PageRecord",
    "PostbackAttempt",
    "PostbackRecord",
    "Store",
    "TouchRecord",
]


class Store(ConfigQueries, TouchQueries, CandidateQueries, InstallQueries, OutboxQueries):
    """Every query of the SQLite backend."""
