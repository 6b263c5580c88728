"""Cluster-wide leases of scheduled jobs: a job runs once per period across every node.

`acquire` is one upsert on `job_leases (name)`: it takes the row when it is free or expired, in
which case RETURNING answers it, and does nothing when another holder's lease still runs. Two
nodes asking at once are ordered by the row's lock; the second sees the first's fresh lease.
"""

from __future__ import annotations

from app.store.postgres.connections import Conn, Database


class PostgresLeases:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def acquire(self, name: str, holder: str, now: float, seconds: float) -> bool:
        async def write(conn: Conn) -> bool:
            cursor = await conn.execute(
                "INSERT INTO job_leases (name, holder, until) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                "until = excluded.until WHERE job_leases.until <= %s RETURNING holder",
                [name, holder, now + seconds, now],
            )
            return await cursor.fetchone() is not None

        return await self._db.write(write)
