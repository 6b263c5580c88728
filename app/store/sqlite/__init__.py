"""The SQLite backend: one file, one writer thread with group commit, read connections per
thread.

`SqliteStore` implements `app.store.interfaces.Store` with one object per concern, all sharing
the file's `Connections`. Nothing outside `app/store/sqlite/` writes SQLite's SQL.
"""

from __future__ import annotations

import anyio.to_thread

from app.sealing import TokenSealer
from app.store.config_cache import CachedConfigs
from app.store.records import StoreStats
from app.store.sqlite.audiences import SqliteAudiences
from app.store.sqlite.candidates import SqliteCandidates
from app.store.sqlite.configs import SqliteConfigs, SqliteTokens
from app.store.sqlite.connections import Connections
from app.store.sqlite.console import SqliteActivity, SqliteUsers
from app.store.sqlite.cost import SqliteCost
from app.store.sqlite.installs import SqliteEvents, SqliteInstalls
from app.store.sqlite.outbox import SqliteOutbox
from app.store.sqlite.privacy import SqlitePrivacy
from app.store.sqlite.reports import SqliteReports
from app.store.sqlite.tiktok_ads import SqliteTikTokAds
from app.store.sqlite.touches import SqliteTouches

__all__ = ["SqliteStore"]


class SqliteLeases:
    """Job leases of a store one process owns: that process's jobs are the only ones, so every
    lease is granted."""

    async def acquire(self, name: str, holder: str, now: float, seconds: float) -> bool:
        return True


class SqliteStore:
    """Open with `await SqliteStore.open(path)` (or `open_sync`); close with `await close()`."""

    def __init__(self, conns: Connections, sealer: TokenSealer | None = None) -> None:
        self.path = conns.path
        self._conns = conns
        # Configs from memory, fresh by the version every config write bumps (config_cache).
        self._configs = CachedConfigs(SqliteConfigs(conns, sealer))
        self._tokens = SqliteTokens(conns)
        self._touches = SqliteTouches(conns)
        self._candidates = SqliteCandidates(conns)
        self._installs = SqliteInstalls(conns)
        self._events = SqliteEvents(conns)
        self._outbox = SqliteOutbox(conns)
        self._leases = SqliteLeases()
        self._users = SqliteUsers(conns)
        self._activity = SqliteActivity(conns)
        self._reports = SqliteReports(conns)
        self._cost = SqliteCost(conns)
        self._privacy = SqlitePrivacy(conns)
        self._audiences = SqliteAudiences(conns)
        self._tiktok_ads = SqliteTikTokAds(conns)

    @classmethod
    def open_sync(
        cls, path: str, *, batch_max: int = 256, sealer: TokenSealer | None = None
    ) -> SqliteStore:
        return cls(Connections.open_sync(path, batch_max=batch_max), sealer)

    @classmethod
    async def open(
        cls, path: str, *, batch_max: int = 256, sealer: TokenSealer | None = None
    ) -> SqliteStore:
        return await anyio.to_thread.run_sync(
            lambda: cls.open_sync(path, batch_max=batch_max, sealer=sealer)
        )

    def close_sync(self) -> None:
        self._conns.close_sync()

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.close_sync)

    @property
    def connections(self) -> Connections:
        """The file's connections, for this backend's own tests and benchmarks."""
        return self._conns

    # -- the parts, by concern -----------------------------------------------------------------

    @property
    def configs(self) -> CachedConfigs:
        return self._configs

    @property
    def tokens(self) -> SqliteTokens:
        return self._tokens

    @property
    def touches(self) -> SqliteTouches:
        return self._touches

    @property
    def candidates(self) -> SqliteCandidates:
        return self._candidates

    @property
    def installs(self) -> SqliteInstalls:
        return self._installs

    @property
    def events(self) -> SqliteEvents:
        return self._events

    @property
    def outbox(self) -> SqliteOutbox:
        return self._outbox

    @property
    def leases(self) -> SqliteLeases:
        return self._leases

    async def upkeep(self, now: float) -> None:
        """Nothing to prepare: SQLite's tables need no partitions."""

    @property
    def users(self) -> SqliteUsers:
        return self._users

    @property
    def activity(self) -> SqliteActivity:
        return self._activity

    @property
    def reports(self) -> SqliteReports:
        return self._reports

    @property
    def cost(self) -> SqliteCost:
        return self._cost

    @property
    def privacy(self) -> SqlitePrivacy:
        return self._privacy

    @property
    def audiences(self) -> SqliteAudiences:
        return self._audiences

    @property
    def tiktok_ads(self) -> SqliteTikTokAds:
        return self._tiktok_ads

    def stats(self) -> StoreStats:
        writer = self._conns.writer
        s = writer.stats
        return StoreStats(
            writes=s.writes,
            batches=s.batches,
            failed_writes=s.failed_writes,
            queue_depth=writer.queue_depth,
            commit_seconds_total=s.commit_seconds_total,
            commit_buckets=dict(s.buckets),
        )
