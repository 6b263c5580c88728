"""Opening the store that `GANGWAY_DB` names: a file path is the embedded SQLite backend."""

from __future__ import annotations

from app.sealing import TokenSealer
from app.store.interfaces import Store
from app.store.sqlite import SqliteStore


async def open_store(db: str, *, batch_max: int = 256, sealer: TokenSealer | None = None) -> Store:
    """`sealer` seals access tokens at rest (`app.sealing`); the server and the command line
    always give one, made from the secret key."""
    return await SqliteStore.open(db, batch_max=batch_max, sealer=sealer)
