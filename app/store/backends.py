"""Opening the store that `GANGWAY_DB` names: a file path is the embedded SQLite backend."""

from __future__ import annotations

from app.store.interfaces import Store
from app.store.sqlite import SqliteStore


async def open_store(db: str, *, batch_max: int = 256) -> Store:
    return await SqliteStore.open(db, batch_max=batch_max)
