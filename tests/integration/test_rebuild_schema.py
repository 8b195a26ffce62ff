"""What a rebuild leaves in PostgreSQL: the rows COPY'd into bare tables get
the very keys and indexes the migrations make; a malformed event is refused
before any schema exists; a failure once the schema exists drops it; an event
the log's writer did not sign is skipped and reported, never folded."""

import base64
import json
from uuid import uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from modelog_contract.codec import encode
from modelog_contract.domain.chain import GENESIS_HASH, link_hash
from modelog_contract.domain.commands import ApproveTransition, ReportMetrics, RequestTransition, SetAlias, SetTag
from modelog_contract.signing import key_id, sign_event, signed_bytes
from modelog_platform.adapters.kafka_connection import kafka_connection
from modelog_platform.adapters.postgres import connect
from modelog_platform.log_signing import LogWriterSettings, signing_key
from modelog_platform.settings import PostgresLogin
from projector.rebuild import READ_MODELS, MalformedEvent, drop_schema, fresh_schema, rebuild, table_rows
from tests.e2e.helpers import new_topic
from tests.unit.builders import BOB, Scenario, command, register

pytestmark = pytest.mark.engines
MODELS = [f"model-{n}" for n in range(4)]


def histories() -> list:
    """Every model: two versions, a tag, metrics, a move to Staging, a
    Production request a reviewer approves, an alias."""
    events = []
    for model in MODELS:
        s = Scenario(model)
        for n in (1, 2):
            s.when(register(model, n=n, metrics={"auc": n / 4}, tags={"team": "risk"}))
            s.when(command(SetTag, model=model, version=n, key="validated", value="yes"))
            s.when(command(ReportMetrics, model=model, version=n, metrics={"loss": 0.3}))
            s.when(command(RequestTransition, model=model, version=n, to_stage="Staging"))
            [requested] = s.when(command(RequestTransition, model=model, version=n, to_stage="Production"))
            s.when(command(ApproveTransition, actor=BOB, model=model, request_id=requested.payload.request_id))
            s.when(command(SetAlias, model=model, alias="champion", version=n))
        events += s.events
    return events


async def topic_with(engines, records: list[tuple[bytes, bytes]]) -> str:
    topic = await new_topic(engines, "rebuild-schema", partitions=4)
    producer = AIOKafkaProducer(**kafka_connection(engines))
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
    return topic


def keyed(events: list) -> list[tuple[bytes, bytes]]:
    """As the promoter writes them: signed by the stack's log writer key."""
    writer = signing_key(LogWriterSettings())
    return [(event.model.encode(), encode(sign_event(event, writer))) for event in events]


def signed_malformed() -> bytes:
    """A record the writer's key signed that is no valid event: a writer's bug, not a forgery."""
    writer = signing_key(LogWriterSettings())
    fields = {"type": "TagSet", "model": "fraud", "prev_hash": GENESIS_HASH}
    fields["hash"] = link_hash(GENESIS_HASH, fields)
    fields["signature"] = {"key_id": key_id(writer.public_key()),
                           "value": base64.b64encode(writer.sign(signed_bytes(fields["hash"]))).decode()}
    return json.dumps(fields).encode()


async def schema_exists(login: PostgresLogin, schema: str) -> bool:
    conn = await connect(login)
    try:
        return await conn.fetchval("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", schema)
    finally:
        await conn.close()


async def keys_and_indexes(dsn: str) -> list[tuple]:
    """The read-model tables' constraints and index definitions, schema names left out."""
    conn = await connect(dsn)
    try:
        schema = await conn.fetchval("SELECT current_schema()")
        constraints = await conn.fetch(
            "SELECT t.relname, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
            " JOIN pg_class t ON t.oid = c.conrelid WHERE t.relnamespace = current_schema()::regnamespace"
            " AND t.relname = ANY($1) ORDER BY 1, 2", list(READ_MODELS))
        indexes = await conn.fetch("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = $1"
                                   " AND tablename = ANY($2) ORDER BY 1, 2", schema, list(READ_MODELS))
        return [tuple(r) for r in constraints] + [(t, i, d.replace(f"{schema}.", "")) for t, i, d in indexes]
    finally:
        await conn.close()


async def test_the_rebuilt_tables_have_the_keys_and_indexes_the_migrations_make(engines):
    events = histories()
    topic = await topic_with(engines, keyed(events))
    rebuilt, migrated = (f"rebuild_{name}_{uuid4().hex[:8]}" for name in ("rows", "migrated"))
    try:
        assert (await rebuild(engines, rebuilt, topic=topic)).events == len(events)
        dsn = engines.postgres().in_schema(rebuilt)
        assert len(await table_rows(dsn, "models")) == len(MODELS)
        assert len(await table_rows(dsn, "model_versions")) == 2 * len(MODELS)
        assert len(await keys_and_indexes(dsn)) > len(READ_MODELS)  # every table has a key, some an index more
        assert await keys_and_indexes(dsn) == await keys_and_indexes(
            await fresh_schema(engines.postgres(), migrated))
    finally:
        for schema in (rebuilt, migrated):
            if await schema_exists(engines.postgres(), schema):
                await drop_schema(engines.postgres(), schema)


async def test_a_malformed_event_is_refused_before_any_schema_is_made(engines):
    events = histories()
    records = keyed(events)
    records.insert(len(records) // 2, (events[0].model.encode(), signed_malformed()))
    topic = await topic_with(engines, records)
    schema = f"rebuild_{uuid4().hex[:8]}"

    with pytest.raises(MalformedEvent, match=rf"{topic} partition \d+ offset \d+ is not a valid event"):
        await rebuild(engines, schema, topic=topic)
    assert not await schema_exists(engines.postgres(), schema)


async def test_a_failure_once_the_schema_is_made_drops_it(engines):
    """A log that lost a model's creation (written wrongly) folds into versions
    of a model with no row: the versions' foreign key cannot be made."""
    events = [event for event in histories() if not (event.model == MODELS[0] and event.type == "ModelCreated")]
    topic = await topic_with(engines, keyed(events))
    schema = f"rebuild_{uuid4().hex[:8]}"

    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await rebuild(engines, schema, topic=topic)
    assert not await schema_exists(engines.postgres(), schema)


async def test_an_event_the_writer_did_not_sign_is_skipped_and_reported(engines):
    events = histories()
    records = keyed(events)
    forged = json.dumps({**json.loads(records[5][1]), "signature": None}).encode()  # its signature struck out
    records.insert(len(records) // 2, (events[5].model.encode(), forged))
    topic = await topic_with(engines, records)
    schema = f"rebuild_{uuid4().hex[:8]}"
    try:
        replayed = await rebuild(engines, schema, topic=topic)
        assert replayed.events == len(events)
        [skipped] = replayed.skipped
        assert (skipped.refused.model, skipped.refused.seq) == (events[5].model, events[5].seq)
        assert skipped.refused.problem.startswith("unsigned") and f"offset {skipped.offset}" in str(skipped)
    finally:
        if await schema_exists(engines.postgres(), schema):
            await drop_schema(engines.postgres(), schema)


async def test_worker_processes_rebuild_the_same_rows_and_skip_the_same_records(engines):
    """Proving records in worker processes only makes a long replay faster:
    with them, a log holding an unsigned and a re-signed event rebuilds the
    same rows and skips the same records, named alike."""
    events = histories()
    records = keyed(events)
    unsigned = json.dumps({**json.loads(records[5][1]), "signature": None}).encode()
    resigned = json.loads(records[9][1])
    resigned["signature"] = json.loads(records[8][1])["signature"]  # a real signature, over another hash
    records.insert(len(records) // 2, (events[5].model.encode(), unsigned))
    records.insert(len(records) // 3, (events[9].model.encode(), json.dumps(resigned).encode()))
    topic = await topic_with(engines, records)
    schemas = [f"rebuild_alone_{uuid4().hex[:8]}", f"rebuild_workers_{uuid4().hex[:8]}"]
    try:
        alone = await rebuild(engines, schemas[0], topic=topic, workers=0)
        with_workers = await rebuild(engines, schemas[1], topic=topic, workers=2)
        assert alone.events == with_workers.events == len(events)
        assert sorted(str(s) for s in alone.skipped) == sorted(str(s) for s in with_workers.skipped)
        assert {s.refused.problem.split(":")[0] for s in alone.skipped} == {
            "unsigned", "the writer's signature does not verify"}
        for table in READ_MODELS:
            assert await table_rows(engines.postgres().in_schema(schemas[0]), table) == await table_rows(
                engines.postgres().in_schema(schemas[1]), table)
    finally:
        for schema in schemas:
            if await schema_exists(engines.postgres(), schema):
                await drop_schema(engines.postgres(), schema)


async def test_worker_processes_refuse_a_malformed_event_alike(engines):
    events = histories()
    records = keyed(events)
    records.insert(len(records) // 2, (events[0].model.encode(), signed_malformed()))
    topic = await topic_with(engines, records)
    schema = f"rebuild_{uuid4().hex[:8]}"

    with pytest.raises(MalformedEvent, match=rf"{topic} partition \d+ offset \d+ is not a valid event"):
        await rebuild(engines, schema, topic=topic, workers=2)
    assert not await schema_exists(engines.postgres(), schema)
