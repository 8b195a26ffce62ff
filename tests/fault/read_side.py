"""What the read-side fault tests share: a burst of commands, how far a
projection lags, waiting for it to catch up, and the proof that its read models
equal a fresh rebuild from offset 0."""

import asyncio
import time
from datetime import datetime, timezone
from hashlib import sha256
from uuid import uuid4

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from modelog_contract.codec import decode_event
from modelog_contract.domain.commands import RegisterVersion, ReportMetrics, RequestTransition, SetAlias
from modelog_contract.domain.types import Actor, Artifact
from modelog_platform.adapters.commands import command_publisher
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.log_reader import read_committed
from modelog_platform.adapters.postgres import connect
from modelog_platform.identity.dev import signed
from modelog_platform.settings import EVENTS_TOPIC
from projector.rebuild import READ_MODELS, rebuild, table_rows
from tests.e2e.helpers import bearer

ACTOR = Actor(subject="fault-test", roles=("approver",))


def burst(run: str, models: int, versions: int) -> list:
    """Registrations of every model's versions, then transitions, metrics and an alias."""
    now = datetime.now(timezone.utc)

    def make(kind, model, **fields):  # each signed with a token of its own
        return signed(kind(command_id=uuid4(), model=model, actor=ACTOR, issued_at=now, **fields), ttl_s=3600)

    commands = []
    for v in range(1, versions + 1):
        for m in range(models):
            digest = sha256(f"{run}/{m}/{v}".encode()).hexdigest()
            commands.append(make(RegisterVersion, f"read-{run}-{m:02d}",
                                 artifact=Artifact(uri=f"s3://b/{digest}", sha256=digest, size=v)))
    for m in range(models):
        model = f"read-{run}-{m:02d}"
        for v in range(1, versions + 1, 4):
            commands.append(make(RequestTransition, model, version=v, to_stage="Staging"))
            commands.append(make(ReportMetrics, model, version=v, metrics={"auc": 0.5 + v / 1000}))
        commands.append(make(SetAlias, model, alias="champion", version=versions))
    return commands


async def publish(engines, commands) -> None:
    async with command_publisher(engines) as publisher:
        await publisher.publish_many(commands)


async def lag(engines, projection: str, partitions: list[int] | None = None) -> int:
    """Events in the log (of these partitions; default all) that the projection
    has not committed yet."""
    consumer = AIOKafkaConsumer(**kafka_connection(engines), isolation_level="read_committed")
    await consumer.start()
    conn = await connect(engines.postgres())
    try:
        partitions = range(engines.topic_partitions) if partitions is None else partitions
        ends = await consumer.end_offsets([TopicPartition(EVENTS_TOPIC, p) for p in partitions])
        done = await conn.fetchval("SELECT coalesce(sum(next_offset), 0) FROM projection_checkpoints"
                                   " WHERE projection = $1 AND partition = ANY($2::int[])",
                                   projection, list(partitions))
        return sum(ends.values()) - done  # counts transaction markers too: an upper bound
    finally:
        await conn.close()
        await consumer.stop()


async def committed_data_offsets(engines) -> tuple[dict[int, int], list]:
    """Per partition, the offset after the last committed event; and the events."""
    records = await read_committed(engines, EVENTS_TOPIC)
    after_last = {}
    for record in records:
        after_last[record.partition] = max(after_last.get(record.partition, 0), record.offset + 1)
    return after_last, [decode_event(r.value) for r in records]


async def wait_until_caught_up(engines, projection: str, after_last: dict[int, int], timeout_s=180) -> None:
    deadline = time.monotonic() + timeout_s
    conn = await connect(engines.postgres())
    try:
        while True:
            rows = await conn.fetch("SELECT partition, next_offset FROM projection_checkpoints"
                                    " WHERE projection = $1 AND topic = $2", projection, EVENTS_TOPIC)
            at = {r["partition"]: r["next_offset"] for r in rows}
            if all(at.get(p, 0) >= offset for p, offset in after_last.items()):
                return
            assert time.monotonic() < deadline, f"{projection} stuck at {at}, log ends {after_last}"
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def wait_for_all_outcomes(stack, commands, timeout_s=240) -> None:
    """Every command decided and projected (the projector answers for each)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=stack.url("projector"), headers=bearer("test-harness", "reader")) as projector:
        for command, _ in commands[::25] + commands[-1:]:
            while (await projector.get(f"/v1/commands/{command.command_id}")).status_code != 200:
                assert time.monotonic() < deadline, f"no outcome for {command.command_id}"
                await asyncio.sleep(0.2)


async def assert_read_models_equal_a_rebuild(engines, events: list) -> set[tuple]:
    """The live read models equal a replay of the whole log into a fresh schema.
    Returns (model, seq, hash) of each record the replay quarantined."""
    schema = f"rebuild_{uuid4().hex[:8]}"
    replayed = await rebuild(engines, schema)
    # Forgeries other tests appended are skipped, as the live projection quarantined them.
    assert replayed.events + len(replayed.skipped) == len(events)
    rebuilt_dsn = engines.postgres().in_schema(schema)
    for table in READ_MODELS:
        live, rebuilt = await table_rows(engines.postgres(), table), await table_rows(rebuilt_dsn, table)
        assert live == rebuilt, f"{table}: {len(live)} live rows vs {len(rebuilt)} rebuilt"
    return {(s.refused.fields.get("model"), s.refused.fields.get("seq"), s.refused.fields.get("hash"))
            for s in replayed.skipped}


async def assert_read_side_equals_the_log(engines, after_last: dict[int, int], events: list) -> None:
    """Once the projector and the auditor have read up to `after_last`: the read
    models equal a rebuild, and the audit store holds every event of the log
    once (but the forgeries other tests appended, which it quarantines too)."""
    for projection in ("projector", "auditor"):
        await wait_until_caught_up(engines, projection, after_last)
    quarantined = await assert_read_models_equal_a_rebuild(engines, events)
    conn = await connect(engines.postgres())
    try:
        audited = [(r["model"], r["seq"], r["hash"]) for r in await conn.fetch(
            "SELECT model, seq, hash FROM audit_events ORDER BY model, seq")]
    finally:
        await conn.close()
    assert audited == sorted(k for k in ((e.model, e.seq, e.hash) for e in events) if k not in quarantined)
