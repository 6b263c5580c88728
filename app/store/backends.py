"""Which backend a `db` setting names: a postgresql:// URL is PostgreSQL, anything else is a
SQLite file."""

from __future__ import annotations

from app.sealing import TokenSealer
from app.store.interfaces import Store
from app.store.urls import is_postgres_url


async def open_store(db: str, *, batch_max: int = 256, sealer: TokenSealer | None = None) -> Store:
    """`sealer` seals access tokens at rest (`app.sealing`); the server and the command line
    always give one, made from the secret key."""
    if is_postgres_url(db):
        # Imported here: psycopg is needed only by installations that use it.
        from app.store.postgres import PostgresStore

        return await PostgresStore.open(db, sealer=sealer)
    from app.store.sqlite import SqliteStore

    return await SqliteStore.open(db, batch_max=batch_max, sealer=sealer)
