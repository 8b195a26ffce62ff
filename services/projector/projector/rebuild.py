"""Replay modelog.events from offset 0 into a fresh schema.

The read models are a pure function of the log: a rebuild must give the same
rows as the live projection, which is how tests (and operators) prove it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from modelog.adapters.postgres import migrate
from modelog.codec import decode_event
from modelog.settings import EVENTS_TOPIC, EngineEndpoints
from projector.read_models import apply_event

MIGRATIONS = Path(__file__).parent / "migrations"
READ_MODELS = {  # table -> the columns that order its rows
    "models": "name", "model_versions": "model, version", "aliases": "model, alias",
    "pending_transitions": "request_id", "stage_history": "model, seq",
    "command_outcomes": "command_id",
}


@dataclass(frozen=True)
class Replayed:
    events: int
    next_offsets: dict[int, int]  # partition -> the offset the replay stopped before


def dsn_in_schema(dsn: str, schema: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}search_path={schema}"


async def rebuild(endpoints: EngineEndpoints, schema: str,
                  progress: Callable[[int, int], None] = lambda done, total: None) -> Replayed:
    """Project every committed event into `schema` (created empty); returns the count."""
    admin = await asyncpg.connect(endpoints.postgres_dsn)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await admin.close()
    dsn = dsn_in_schema(endpoints.postgres_dsn, schema)
    await migrate(dsn, "projector", MIGRATIONS)
    tps = [TopicPartition(EVENTS_TOPIC, p) for p in range(endpoints.topic_partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap,
                                isolation_level="read_committed", enable_auto_commit=False)
    conn = await asyncpg.connect(dsn)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        total, applied = sum(ends.values()), 0
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            async with conn.transaction():
                for tp, records in batches.items():
                    for record in records:
                        if record.offset < ends[tp]:
                            await apply_event(conn, decode_event(record.value), tp.partition, record.offset)
                            applied += 1
            progress(applied, total)
        return Replayed(applied, {tp.partition: offset for tp, offset in ends.items()})
    finally:
        await consumer.stop()
        await conn.close()


async def table_rows(dsn: str, table: str) -> list[tuple]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY {READ_MODELS[table]}")]
    finally:
        await conn.close()
