"""Opening the store that `GANGWAY_DB` names: a file path is the embedded SQLite backend, a
`postgresql://` URL the PostgreSQL one (several nodes on one database, docs/scale.md)."""

from __future__ import annotations

from app.store.interfaces import Store
from app.store.urls import is_postgres_url


async def open_store(db: str, *, batch_max: int = 256) -> Store:
    if is_postgres_url(db):
        # Imported here: psycopg is needed only by installations that use it.
        from app.store.postgres import PostgresStore

        return await PostgresStore.open(db)
    from app.store.sqlite import SqliteStore

    return await SqliteStore.open(db, batch_max=batch_max)
