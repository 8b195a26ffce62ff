"""The registrar's refused writes (modelog.denials), kept in audit_denials and asked.

A consumer of its own beside the events projection: denials are not events
of a model's chain and have no seq. Each record is stored with its Kafka
position, once (the position is unique), and on every assignment reading
resumes after the last position stored: the table is its own checkpoint.
"""

import asyncio
import json
import logging
from datetime import datetime
from typing import NamedTuple

import asyncpg
from aiokafka import ConsumerRebalanceListener, TopicPartition

from modelog_platform.adapters.log_reader import IN_BATCHES, committed_consumer
from modelog_platform.settings import DENIALS_TOPIC, EngineEndpoints

log = logging.getLogger("auditor.denials")
RETRY_AFTER_S = 5.0
COLUMNS = "denial_id, kind, at, subject, model, status, code, suppressed, record"


async def store_denial(conn: asyncpg.Connection, record: dict, partition: int, offset: int) -> None:
    await conn.execute(
        "INSERT INTO audit_denials (denial_id, kind, at, subject, model, status, code, suppressed, record,"
        " kafka_partition, kafka_offset) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT DO NOTHING",
        record["denial_id"], record["kind"], datetime.fromisoformat(record["at"]), record["subject"],
        record.get("model"), record.get("status"), record.get("code"), record.get("suppressed"),
        json.dumps(record), partition, offset)


class Filters(NamedTuple):
    subject: str | None = None
    model: str | None = None
    since: datetime | None = None  # inclusive


async def denials(conn: asyncpg.Connection, filters: Filters, limit: int) -> list[dict]:
    """The newest `limit` records matching `filters`, oldest first."""
    clauses, params = [], []
    for value, clause in ((filters.subject, "subject = ${}"), (filters.model, "model = ${}"),
                          (filters.since, "at >= ${}")):
        if value is not None:
            params.append(value)
            clauses.append(clause.format(len(params)))
    rows = await conn.fetch(
        f"SELECT record FROM (SELECT record, at, kafka_partition, kafka_offset FROM audit_denials"
        f" WHERE {' AND '.join(clauses) or 'TRUE'} ORDER BY at DESC, kafka_partition, kafka_offset DESC"
        f" LIMIT {int(limit)}) newest ORDER BY at, kafka_partition, kafka_offset", *params)
    return [json.loads(r["record"]) for r in rows]


class DenialsConsumer(ConsumerRebalanceListener):
    def __init__(self, endpoints: EngineEndpoints, pool: asyncpg.Pool):
        self.endpoints, self.pool = endpoints, pool
        self.consumer = committed_consumer(endpoints, group="modelog-auditor-denials", fetching=IN_BATCHES)

    async def run_forever(self) -> None:
        """Consume; a failure (Kafka or PostgreSQL away) is logged and reading
        starts again from what is stored."""
        while True:
            try:
                await self.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading modelog.denials failed; again in %ss", RETRY_AFTER_S)
                await asyncio.sleep(RETRY_AFTER_S)
                self.consumer = committed_consumer(self.endpoints, group="modelog-auditor-denials", fetching=IN_BATCHES)

    async def run(self) -> None:
        await self.consumer.start()
        try:
            self.consumer.subscribe([DENIALS_TOPIC], listener=self)
            while True:
                batches = await self.consumer.getmany(timeout_ms=500, max_records=1000)
                for tp, records in batches.items():
                    async with self.pool.acquire() as conn, conn.transaction():
                        for record in records:
                            await self._store(conn, record, tp.partition)
        finally:
            await self.consumer.stop()

    async def _store(self, conn: asyncpg.Connection, record, partition: int) -> None:
        try:
            fields = json.loads(record.value)
            await store_denial(conn, fields, partition, record.offset)
        except (ValueError, KeyError, TypeError) as error:  # kept in the log; the table takes records only
            log.error("denial record at %s/%s not stored: %s", partition, record.offset, error)

    async def on_partitions_revoked(self, revoked) -> None:
        pass

    async def on_partitions_assigned(self, assigned) -> None:
        async with self.pool.acquire() as conn:
            for tp in assigned:
                stored = await conn.fetchval(
                    "SELECT max(kafka_offset) FROM audit_denials WHERE kafka_partition = $1", tp.partition)
                self.consumer.seek(TopicPartition(tp.topic, tp.partition), 0 if stored is None else stored + 1)
