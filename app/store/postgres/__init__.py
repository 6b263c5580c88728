"""The PostgreSQL backend: several Gangway nodes on one database (docs/scale.md).

`PostgresStore` implements `app.store.interfaces.Store` with one object per concern, all sharing
the database's connection pool (`connections.Database`), as `SqliteStore` shares its file's
`Connections`. Nothing outside `app/store/postgres/` writes PostgreSQL's SQL. psycopg is
imported only when a `postgresql://` URL is opened, so an embedded installation never needs it.
"""

from __future__ import annotations

import logging

from app.clock import system_clock
from app.sealing import TokenSealer
from app.store.config_cache import CachedConfigs
from app.store.postgres.audiences import PostgresAudiences
from app.store.postgres.candidates import PostgresCandidates
from app.store.postgres.configs import PostgresConfigs, PostgresTokens
from app.store.postgres.connections import Database
from app.store.postgres.console import PostgresActivity, PostgresUsers
from app.store.postgres.cost import PostgresCost
from app.store.postgres.installs import PostgresEvents, PostgresInstalls
from app.store.postgres.leases import PostgresLeases
from app.store.postgres.outbox import PostgresOutbox
from app.store.postgres.partitions import days_ahead, ensure_days
from app.store.postgres.privacy import PostgresPrivacy
from app.store.postgres.reports import PostgresReports
from app.store.postgres.schema import migrate
from app.store.postgres.tiktok_ads import PostgresTikTokAds
from app.store.postgres.touches import PostgresTouches
from app.store.records import StoreStats
from app.store.urls import redacted

__all__ = ["PostgresStore"]

log = logging.getLogger("gangway.store")


class PostgresStore:
    """Open with `await PostgresStore.open(url)`; close with `await close()`."""

    def __init__(self, db: Database, sealer: TokenSealer | None = None) -> None:
        self.url = db.url
        self._db = db
        self._configs = CachedConfigs(PostgresConfigs(db, sealer))
        self._tokens = PostgresTokens(db)
        self._touches = PostgresTouches(db)
        self._candidates = PostgresCandidates(db)
        self._installs = PostgresInstalls(db)
        self._events = PostgresEvents(db)
        self._outbox = PostgresOutbox(db)
        self._leases = PostgresLeases(db)
        self._users = PostgresUsers(db)
        self._activity = PostgresActivity(db)
        self._reports = PostgresReports(db)
        self._cost = PostgresCost(db)
        self._privacy = PostgresPrivacy(db)
        self._audiences = PostgresAudiences(db)
        self._tiktok_ads = PostgresTikTokAds(db)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        now: float | None = None,
        sealer: TokenSealer | None = None,
    ) -> PostgresStore:
        """Connect, apply pending migrations (refusing a newer schema), make the touch
        partitions of the days ahead. `sealer` seals access tokens at rest (`app.sealing`)."""
        db = await Database.open(url, min_size=min_size, max_size=max_size)
        try:
            async with db.pool.connection() as conn:
                applied = await migrate(conn)
                if applied:
                    log.info("migrated %s: %s", redacted(url), ", ".join(applied))
            store = cls(db, sealer)
            await store.upkeep(system_clock() if now is None else now)
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        await self._db.close()

    async def upkeep(self, now: float) -> None:
        """Make the touch partitions of yesterday, today and the week ahead."""
        async with self._db.pool.connection() as conn:
            created = await ensure_days(conn, days_ahead(now))
        if created:
            log.info("created %d touch partitions", created)

    @property
    def database(self) -> Database:
        """The connection pool, for this backend's own tests, the copy and benchmarks."""
        return self._db

    # -- the parts, by concern -----------------------------------------------------------------

    @property
    def configs(self) -> CachedConfigs:
        return self._configs

    @property
    def tokens(self) -> PostgresTokens:
        return self._tokens

    @property
    def touches(self) -> PostgresTouches:
        return self._touches

    @property
    def candidates(self) -> PostgresCandidates:
        return self._candidates

    @property
    def installs(self) -> PostgresInstalls:
        return self._installs

    @property
    def events(self) -> PostgresEvents:
        return self._events

    @property
    def outbox(self) -> PostgresOutbox:
        return self._outbox

    @property
    def leases(self) -> PostgresLeases:
        return self._leases

    @property
    def users(self) -> PostgresUsers:
        return self._users

    @property
    def activity(self) -> PostgresActivity:
        return self._activity

    @property
    def reports(self) -> PostgresReports:
        return self._reports

    @property
    def cost(self) -> PostgresCost:
        return self._cost

    @property
    def privacy(self) -> PostgresPrivacy:
        return self._privacy

    @property
    def audiences(self) -> PostgresAudiences:
        return self._audiences

    @property
    def tiktok_ads(self) -> PostgresTikTokAds:
        return self._tiktok_ads

    def stats(self) -> StoreStats:
        return self._db.store_stats()
