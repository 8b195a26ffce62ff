"""The auditor's seals: the chain heads of its own store, signed and kept in
S3, every `audit_seal_every_s` by the auditor holding the seal lease, and
whenever asked; one at a time across every auditor (auditor/seal_lease.py)."""

import asyncio
import logging
from datetime import datetime, timezone

import asyncpg

from auditor import store
from auditor.seal_lease import SealLease, hold_seal_lock
from auditor.settings import AuditorSettings
from modelog_contract.audit.seals import Head, Seal, make_seal
from modelog_platform import metrics
from modelog_platform.adapters.seal_store import SealStore, signing_key
from modelog_platform.log_signing import trusted_keys

log = logging.getLogger("auditor.seals")


class Sealer:
    def __init__(self, settings: AuditorSettings):
        self.settings = settings
        self.store = SealStore(settings, settings)
        self.key = signing_key(settings)
        self.trusted = trusted_keys(settings)  # a seal signs only heads the log's writer signed
        # One seal at a time in this process: each links to the one before it
        # (and across processes, the seal lock in PostgreSQL).
        self.lock = asyncio.Lock()
        self.lease = SealLease(settings)
        self.seal_seen = False  # the newest seal's time is known here (read, or made)

    async def seal(self, pool: asyncpg.Pool) -> tuple[Seal, bool]:
        """Seal the heads as stored now; the seal, and whether S3 locked it."""
        async with self.lock, pool.acquire() as conn, conn.transaction():
            await hold_seal_lock(conn)  # another auditor's seal is written before we read the newest
            heads = [Head(model=m, seq=s, hash=h) for m, s, h, fields in await store.chain_heads(conn)
                     if self._proven_head(m, s, fields)]
            previous = await asyncio.to_thread(self.store.latest)
            at = datetime.now(timezone.utc)
            if previous is not None and at < previous.sealed_at:
                at = previous.sealed_at  # a clock stepped back does not break the chain
            seal = make_seal(heads, previous, self.key, at)
            locked = await asyncio.to_thread(self.store.put, seal)
        metrics.LAST_SEAL.set(seal.sealed_at.timestamp())
        self.seal_seen = True
        log.info("seal %s: %s models, root %s, %s", seal.number, len(seal.heads), seal.root[:16],
                 "locked" if locked else "NOT locked (no Object Lock on the bucket)")
        return seal, locked

    def _proven_head(self, model: str, seq: int, fields: dict) -> bool:
        """Only proven events are recorded, so this holds unless the store was
        written around the auditor: then the model is left out of the seal
        (and the seal after it shows it missing) rather than vouched for."""
        problem = self.trusted.problem(fields)
        if problem is not None:
            log.error("not sealing %s: its head (seq %s) is not proven to come from the log's writer: %s",
                      model, seq, problem)
        return problem is None

    async def report_metrics(self, pool: asyncpg.Pool) -> None:
        """For a scrape: the alerts held (a chain break is one), the seal period,
        and when the newest seal was made (read from S3 until this process seals)."""
        async with pool.acquire() as conn:
            metrics.AUDIT_ALERTS.set(await conn.fetchval("SELECT count(*) FROM audit_alerts"))
        metrics.SEAL_PERIOD.set(self.settings.audit_seal_every_s)
        if not self.seal_seen:
            latest = await asyncio.to_thread(self.store.latest)
            if latest is not None:
                metrics.LAST_SEAL.set(latest.sealed_at.timestamp())
            self.seal_seen = True

    async def every_period(self, pool: asyncpg.Pool) -> None:
        """Seal now and then while holding the lease; a failed seal (S3 away)
        is logged and tried next period."""
        try:
            while True:
                await asyncio.sleep(self.settings.audit_seal_every_s)
                if not await self.lease.held():
                    continue  # another auditor seals
                try:
                    await self.seal(pool)
                except Exception:
                    log.exception("periodic seal failed; next try in %ss", self.settings.audit_seal_every_s)
        finally:
            await self.lease.release()
