"""Exactly-once from modelog.events into PostgreSQL.

A projection's rows and its consumer offsets commit in one transaction; on every
partition assignment the consumer seeks to the stored offsets, and the
checkpoint update is conditional on the offset this instance last saw, so a
zombie that lost its partitions cannot commit over a newer owner.

Several instances share the partitions as one consumer group. A rebalance runs
beside the batch loop, so a revocation waits for the batch in flight to commit
(the next owner then starts from its checkpoint instead of redoing it and being
fenced), and records fetched before a rebalance are dropped: every partition
kept or taken has been sought back to its checkpoint.

Every record is proven before it is applied (modelog_contract.proven): one the
log's writer did not sign, or whose content no longer matches its signed hash,
is handed to the service's `refuse` instead, in the same transaction, and
changes nothing else.

A service's `apply` gets a whole batch's proven events at once, in log order,
so it can load what they read and write what they change in a few round trips
instead of a few per event.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NamedTuple

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from modelog_contract.domain.events import Event
from modelog_contract.proven import Refused, proven_event
from modelog_contract.signing import TrustedKeys
from modelog_platform import metrics, tracing
from modelog_platform.adapters.log_reader import AT_ONCE, Fetching, committed_consumer
from modelog_platform.adapters.postgres import UNAVAILABLE, create_pool, require_migrated
from modelog_platform.settings import EVENTS_TOPIC, EngineEndpoints
from modelog_platform.tasks import start_critical

log = logging.getLogger("modelog.projection")



class Positioned(NamedTuple):
    """A proven event and where the log holds it."""

    event: Event
    partition: int
    offset: int


# (conn, one partition's batch of proven events in log order), inside the batch transaction.
# How often a projection whose database went away looks for it again.
RECONNECT_S = 1.0

Apply = Callable[[asyncpg.Connection, list[Positioned]], Awaitable[None]]
# (conn, refused record, partition, offset), inside the batch transaction: keep the evidence.
Refuse = Callable[[asyncpg.Connection, Refused, int, int], Awaitable[None]]
# (the batch's proven events), once their transaction has committed: for this
# process's own waiters, who need not wait for a notification to come round.
Committed = Callable[[list[Positioned]], None]
# Advisory lock class of "a projection is between batches": every batch holds
# its projection's lock shared; a blue/green switch takes it exclusive.
BATCH_LOCK = 4_127_001


async def hold_batches_back(conn: asyncpg.Connection, projection: str) -> None:
    """Until this transaction ends: in-flight batches of `projection` have
    committed and no new batch starts (they wait at their first statement,
    holding nothing, so no deadlock with what this transaction locks next)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", BATCH_LOCK, projection)


@asynccontextmanager
async def batch_transaction(conn: asyncpg.Connection, projection: str) -> AsyncIterator[None]:
    """A batch's transaction, committed on leaving and rolled back if the batch
    raises. BEGIN and `projection`'s batch lock, held shared (see
    hold_batches_back), go as one query: one round trip rather than two, paid
    by every batch and so by every write's answer."""
    quoted = "'" + projection.replace("'", "''") + "'"
    try:
        await conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock_shared({BATCH_LOCK}, hashtext({quoted}))")
        yield
    except BaseException:
        if not conn.is_closed() and conn.is_in_transaction():
            # A connection that broke meanwhile is rolled back by the server
            # and discarded by the pool: nothing to report beyond the error.
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


class Fenced(Exception):
    """Another instance moved this partition's checkpoint on: our batch is void."""


class Projection(ConsumerRebalanceListener):
    def __init__(self, name: str, endpoints: EngineEndpoints, pool: asyncpg.Pool, apply: Apply,
                 trusted: TrustedKeys, refuse: Refuse, fetching: Fetching = AT_ONCE,
                 committed: Committed | None = None):
        self.name = name
        self.endpoints = endpoints
        self.pool = pool
        self.apply = apply  # (conn, the batch's proven events), inside the batch transaction
        self.trusted = trusted  # the log writer's keys: what they did not sign goes to `refuse`
        self.refuse = refuse
        self.committed = committed
        self.fetching = fetching  # how the broker fills a fetch: at once, or in batches for a follower
        self.expected: dict[int, int] = {}  # partition -> next offset we hold
        self.consumer: AIOKafkaConsumer | None = None
        self.assigned = asyncio.Event()
        self.committing = asyncio.Lock()  # held by a batch's transaction; a revocation waits for it
        self.rebalances = 0  # records fetched before the latest one are stale

    async def run(self) -> None:
        self.consumer = committed_consumer(
            self.endpoints, group=f"modelog-{self.name}",
            # How long the broker waits for a live member to give its partitions
            # up (by default the session timeout): the batch in flight commits
            # first, which may take longer than 6 s on a loaded machine.
            rebalance_timeout_ms=60_000, fetching=self.fetching,
        )
        await self.consumer.start()
        self.consumer.subscribe([EVENTS_TOPIC], listener=self)
        try:
            while True:
                fetched_after = self.rebalances
                batches = await self.consumer.getmany(timeout_ms=200, max_records=1000)
                for tp, records in batches.items():
                    async with self.committing:
                        if self.rebalances != fetched_after:
                            self._rewind()
                            break
                        await self._commit_batch(tp, records)
        finally:
            await self.consumer.stop()

    async def _commit_batch(self, tp: TopicPartition, records) -> None:
        start, end = self.expected[tp.partition], records[-1].offset + 1
        # Each traced write among the batch's events gets its commit span.
        with tracing.spans_for(f"{self.name} commit", (r.headers for r in records if r.offset >= start)):
            await self._commit_in_transaction(tp, records, start, end)

    async def _commit_in_transaction(self, tp: TopicPartition, records, start: int, end: int) -> None:
        try:
            async with self.pool.acquire() as conn, batch_transaction(conn, self.name):
                batch = [proven for record in records if record.offset >= start
                         if (proven := await self._proven(conn, record.value, tp.partition, record.offset))]
                if batch:
                    await self.apply(conn, batch)
                status = await conn.execute(
                    "UPDATE projection_checkpoints SET next_offset = $5 WHERE projection = $1"
                    " AND topic = $2 AND partition = $3 AND next_offset = $4",
                    self.name, tp.topic, tp.partition, start, end)
                if status != "UPDATE 1":
                    raise Fenced(f"{self.name} {tp}: checkpoint moved past {start}")
            self.expected[tp.partition] = end
            if batch and self.committed is not None:
                self.committed(batch)
        except Fenced as fenced:
            log.warning("%s; seeking to the stored offset", fenced)
            await self._seek_to_checkpoint([tp])
        except UNAVAILABLE as lost:
            await self._resume_when_the_database_returns(tp, lost)

    async def _resume_when_the_database_returns(self, tp: TopicPartition, lost: BaseException) -> None:
        """The batch's transaction died with the database: nothing or all of it
        committed. Wait the outage out, then go on from the stored offset (a
        commit whose answer was lost moved it; the batch is not applied twice)."""
        log.warning("%s %s: database unavailable (%r); resuming from the stored offset once it returns",
                    self.name, tp, lost)
        while True:
            await asyncio.sleep(RECONNECT_S)
            try:
                await self._seek_to_checkpoint([tp])
                return
            except UNAVAILABLE:
                continue

    async def _proven(self, conn: asyncpg.Connection, raw: bytes, partition: int, offset: int) -> Positioned | None:
        """The record's event if proven; otherwise it goes to `refuse` (and None)."""
        proven = proven_event(raw, self.trusted)
        if isinstance(proven, Refused):
            # Someone other than the promoter wrote to the log (or changed a
            # record): page an operator, and keep serving what is proven.
            log.error("%s: event not proven to come from the log's writer, not applied: %s",
                      self.name, proven.describe(partition, offset))
            await self.refuse(conn, proven, partition, offset)
            return None
        return Positioned(proven, partition, offset)

    def _rewind(self) -> None:
        """Records fetched across a rebalance may predate its seeks, or follow
        them and be dropped here: fetch every partition we hold again from
        the offset we hold."""
        assert self.consumer is not None, "only run() rewinds, once it made the consumer"
        for partition, offset in self.expected.items():
            self.consumer.seek(TopicPartition(EVENTS_TOPIC, partition), offset)

    def lag(self) -> int:
        """Events in the log not yet applied, over the partitions held (and per
        partition into the consumer lag metric)."""
        if self.consumer is None:
            return 0
        consumer = self.consumer
        return metrics.consumer_lag(self.name, EVENTS_TOPIC,
                                    lambda p: consumer.last_stable_offset(TopicPartition(EVENTS_TOPIC, p)),
                                    dict(self.expected))

    @property
    def partitions(self) -> list[int]:
        """The partitions this instance projects now; other instances have the rest."""
        return sorted(self.expected)

    async def on_partitions_revoked(self, revoked) -> None:
        async with self.committing:  # the batch in flight commits before the next owner reads its checkpoint
            self.rebalances += 1
            for tp in revoked:
                self.expected.pop(tp.partition, None)
            self.assigned.clear()

    async def on_partitions_assigned(self, assigned) -> None:
        async with self.committing:
            await self._seek_to_checkpoint(list(assigned))
        if assigned:
            self.assigned.set()

    async def _seek_to_checkpoint(self, tps: list[TopicPartition]) -> None:
        assert self.consumer is not None, "only run()'s consumer assigns partitions or fences a batch"
        async with self.pool.acquire() as conn:
            for tp in tps:
                await conn.execute(
                    "INSERT INTO projection_checkpoints VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING",
                    self.name, tp.topic, tp.partition)
                offset = await conn.fetchval(
                    "SELECT next_offset FROM projection_checkpoints WHERE projection = $1"
                    " AND topic = $2 AND partition = $3", self.name, tp.topic, tp.partition)
                self.expected[tp.partition] = offset
                self.consumer.seek(tp, offset)


@asynccontextmanager
async def projection_running(name: str, endpoints: EngineEndpoints, migrations: Path, apply: Apply,
                             trusted: TrustedKeys, refuse: Refuse, fetching: Fetching = AT_ONCE,
                             committed: Committed | None = None):
    """For a service's lifespan: its schema checked migrated, a pool, its projection
    running (applying what `trusted` proves, refusing the rest; telling
    `committed` of each batch once it commits)."""
    # Migrated beforehand by the owner (`python -m <service> migrate`): this role may not.
    await require_migrated(endpoints.postgres(), name, migrations)
    pool = await create_pool(endpoints.postgres())
    projection = Projection(name, endpoints, pool, apply, trusted, refuse, fetching, committed)
    task = start_critical(projection.run(), f"{name} projection")
    try:
        yield pool, projection
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pool.close()
