"""The projector and the auditor are SIGKILLed again and again while they
consume a burst of events, and restarted each time. Afterwards the projector's
read models equal a fresh rebuild from offset 0, and the audit store holds
every event of the log exactly once: rows and offsets commit together."""

import asyncio
import random
import time
from datetime import datetime, timezone
from hashlib import sha256
from uuid import uuid4

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from modelog import services
from modelog.adapters.commands import command_publisher
from modelog.adapters.log_reader import read_committed
from modelog.codec import decode_event
from modelog.domain.commands import RegisterVersion, ReportMetrics, RequestTransition, SetAlias
from modelog.domain.types import Actor, Artifact
from modelog.identity.dev import signed
from modelog.settings import EVENTS_TOPIC, LocalStack
from tests.e2e.helpers import bearer
from projector.rebuild import READ_MODELS, dsn_in_schema, rebuild, table_rows

pytestmark = pytest.mark.engines

MODELS, VERSIONS = 50, 100  # 5,000 registrations, then transitions, aliases, metrics
KILLS_EACH = 5
ACTOR = Actor(subject="fault-test", roles=("approver",))


def burst(run: str) -> list:
    now = datetime.now(timezone.utc)

    def make(kind, model, **fields):  # each signed with a token of its own
        return signed(kind(command_id=uuid4(), model=model, actor=ACTOR, issued_at=now, **fields), ttl_s=3600)

    commands = []
    for v in range(1, VERSIONS + 1):
        for m in range(MODELS):
            digest = sha256(f"{run}/{m}/{v}".encode()).hexdigest()
            commands.append(make(RegisterVersion, f"read-{run}-{m:02d}",
                                 artifact=Artifact(uri=f"s3://b/{digest}", sha256=digest, size=v)))
    for m in range(MODELS):
        model = f"read-{run}-{m:02d}"
        for v in range(1, VERSIONS + 1, 4):
            commands.append(make(RequestTransition, model, version=v, to_stage="Staging"))
            commands.append(make(ReportMetrics, model, version=v, metrics={"auc": 0.5 + v / 1000}))
        commands.append(make(SetAlias, model, alias="champion", version=VERSIONS))
    return commands


async def publish(engines, commands) -> None:
    async with command_publisher(engines) as publisher:
        await publisher.publish_many(commands)


async def lag(engines, projection: str) -> int:
    """Events in the log that the projection has not committed yet."""
    consumer = AIOKafkaConsumer(bootstrap_servers=engines.kafka_bootstrap, isolation_level="read_committed")
    await consumer.start()
    conn = await asyncpg.connect(engines.postgres_dsn)
    try:
        tps = [TopicPartition(EVENTS_TOPIC, p) for p in range(engines.topic_partitions)]
        ends = await consumer.end_offsets(tps)
        done = await conn.fetchval("SELECT coalesce(sum(next_offset), 0) FROM projection_checkpoints"
                                   " WHERE projection = $1", projection)
        return sum(ends.values()) - done  # counts transaction markers too: an upper bound
    finally:
        await conn.close()
        await consumer.stop()


async def lag_once_behind(engines, projection: str, behind: int = 50, patience_s: float = 5) -> int:
    """Wait (briefly) until the projection is mid-stream, so the kill lands there."""
    deadline = time.monotonic() + patience_s
    while (current := await lag(engines, projection)) <= behind and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return current


async def publish_while_killing(stack, engines, commands, rng: random.Random, kills: list) -> None:
    """One round of commands per kill: the projection is mid-stream when it dies."""
    local = LocalStack()
    rounds = KILLS_EACH * 2
    size = len(commands) // rounds + 1
    for i in range(rounds):
        service = ("projector", "auditor")[i % 2]
        await publish(engines, commands[i * size:(i + 1) * size])
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        behind = await lag_once_behind(engines, service)
        services.kill(service, local)
        kills.append((service, behind))
        services.start(service, local)
        await asyncio.to_thread(services.wait_ready, service, local, stack, 120)


async def committed_data_offsets(engines) -> tuple[dict[int, int], list]:
    """Per partition, the offset after the last committed event; and the events."""
    records = await read_committed(engines, EVENTS_TOPIC)
    after_last = {}
    for record in records:
        after_last[record.partition] = max(after_last.get(record.partition, 0), record.offset + 1)
    return after_last, [decode_event(r.value) for r in records]


async def wait_until_caught_up(engines, projection: str, after_last: dict[int, int], timeout_s=180) -> None:
    deadline = time.monotonic() + timeout_s
    conn = await asyncpg.connect(engines.postgres_dsn)
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


async def test_projector_and_auditor_killed_mid_burst_lose_and_duplicate_nothing(stack, engines):
    rng = random.Random()
    commands = burst(uuid4().hex[:6])
    kills: list = []
    await publish_while_killing(stack, engines, commands, rng, kills)
    print("kills (service, events behind)", kills)
    # Most kills must land mid-stream, or this would prove little.
    assert sum(1 for _, behind in kills if behind > 50) >= KILLS_EACH, kills
    await wait_for_all_outcomes(stack, commands)

    after_last, events = await committed_data_offsets(engines)
    for projection in ("projector", "auditor"):
        await wait_until_caught_up(engines, projection, after_last)

    # The live read models equal a replay of the whole log into a fresh schema.
    schema = f"rebuild_{uuid4().hex[:8]}"
    replayed = await rebuild(engines, schema)
    assert replayed.events == len(events)
    assert all(replayed.next_offsets[p] >= offset for p, offset in after_last.items())
    rebuilt_dsn = dsn_in_schema(engines.postgres_dsn, schema)
    for table in READ_MODELS:
        live, rebuilt = await table_rows(engines.postgres_dsn, table), await table_rows(rebuilt_dsn, table)
        assert live == rebuilt, f"{table}: {len(live)} live rows vs {len(rebuilt)} rebuilt"

    # The audit store: every event of the log, once.
    conn = await asyncpg.connect(engines.postgres_dsn)
    try:
        audited = [(r["model"], r["seq"], r["hash"]) for r in await conn.fetch(
            "SELECT model, seq, hash FROM audit_events ORDER BY model, seq")]
    finally:
        await conn.close()
    assert audited == sorted((e.model, e.seq, e.hash) for e in events)
