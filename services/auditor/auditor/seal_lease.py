"""Which auditor seals: one at a time, by a PostgreSQL advisory lock.

Every seal links to the one before it, so two auditors sealing at once would
both link to the same seal and fork the chain. Two locks keep that from
happening (why PostgreSQL and not S3: docs/decisions/0012-one-sealer-by-a-postgres-lease.md):

- the lease, a session lock held on a connection of its own: its holder is
  the one auditor that seals every period. PostgreSQL drops the lock when that
  connection ends, so when the holder dies, SIGKILL included, another auditor
  takes the lease at its next period;
- the seal lock, a transaction lock taken around each seal's read of the
  newest seal, signing and write: a seal asked for over HTTP, on any auditor,
  waits for one in progress elsewhere and then links to it.
"""

import logging

import asyncpg

from modelog_platform.adapters.postgres import UNAVAILABLE, connect
from modelog_platform.settings import EngineEndpoints

# Any constants, distinct from the migrators' (adapters/postgres.py).
SEAL_LEASE_LOCK = 7_356_301
SEAL_WRITE_LOCK = 7_356_302

log = logging.getLogger("auditor.seals")


async def hold_seal_lock(conn: asyncpg.Connection) -> None:
    """Inside a transaction: wait for any other auditor's seal to be written; held until commit."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", SEAL_WRITE_LOCK)


class SealLease:
    """The periodic sealer's lease; `held()` asks, and takes it when free."""

    def __init__(self, endpoints: EngineEndpoints):
        self.endpoints = endpoints
        self.conn: asyncpg.Connection | None = None
        self.holding = False

    async def held(self) -> bool:
        """Whether this auditor holds the lease now (taking it if nobody does).
        A lost connection has lost the lease with it: it is asked for again."""
        try:
            if self.conn is None or self.conn.is_closed():
                self.conn, self.holding = await connect(self.endpoints.postgres()), False
            if self.holding:
                # Held while the session lives; a query proves the session does.
                await self.conn.fetchval("SELECT 1")
            else:
                self.holding = bool(await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", SEAL_LEASE_LOCK))
                if self.holding:
                    log.info("this auditor holds the seal lease: it seals every period")
        except (asyncpg.PostgresError, *UNAVAILABLE) as error:
            log.warning("seal lease unknown (%s); not sealing this period", error)
            await self.release()
        return self.holding

    async def release(self) -> None:
        """Closing the session ends the lease (also on a connection already lost)."""
        conn, self.conn, self.holding = self.conn, None, False
        if conn is not None:
            conn.terminate()
