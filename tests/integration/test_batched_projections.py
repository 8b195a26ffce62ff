"""The read side applies a fetched batch of events at once (one load of the
rows the batch may change, one write of what changed, one notification), and
that gives, row for row, what applying the same events one at a time gives:
for the projector's read models (against a rebuild of the same log) and its
webhook outbox (one statement a batch queues each event for the webhooks it
matches, in log order; an inactive webhook is owed nothing), and for the
auditor's trail and alerts, breaks and repeats included."""

import asyncio
import json
from datetime import datetime, timezone
from uuid import NAMESPACE_URL, uuid4, uuid5

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.store import record_event, record_events
from modelog_platform.adapters.postgres import AUDITOR_ROLE, OWNER_ROLE, connect, migrate_service
from modelog_platform.adapters.projection import Positioned
from modelog_platform.engines.layout import Layout
from modelog_platform.engines.postgres import Postgres
from modelog_platform.settings import LocalStack, PostgresLogin
from projector import mlflow_payloads
from projector.changes import cloud_event
from projector.read_models import apply_events
from projector.rebuild import fresh_schema
from tests.integration.test_auditor_checkpoints import history
from tests.integration.test_migrations import MIGRATIONS
from tests.integration.test_read_model_fold import (
    MODELS,
    batch_sizes,
    batches,
    decided,
    drop_schema_if_exists,
    histories,
    interleaved,
    interleavings,
    live_and_rebuilt,
)

pytestmark = pytest.mark.engines


@settings(max_examples=25, deadline=None)
@given(histories, interleavings, batch_sizes)
def test_the_live_projection_in_batches_gives_the_rows_a_rebuild_gives(engines, history, picks, sizes):
    log = interleaved(decided(history), picks)
    tables = asyncio.run(live_and_rebuilt(engines.postgres(), log, sizes, apply=apply_events))
    assert tables["models"][0], "the live projection should have made models"
    for table, (live, rebuilt) in tables.items():
        assert live == rebuilt, table


# (kind, model, types, MLflow-style events): every kind of filter a webhook has.
WEBHOOKS = [("cloudevents", None, [], []), ("cloudevents", MODELS[0], [], []),
            ("cloudevents", None, ["StageChanged", "VersionRegistered"], []),
            ("mlflow", None, [], ["model_version.created", "model_version_tag.set", "registered_model.created"]),
            ("cloudevents", MODELS[1], ["TransitionRequested"], [])]
WEBHOOK_IDS = [uuid5(NAMESPACE_URL, f"modelog:test-webhook/{n}") for n in range(len(WEBHOOKS))]
# Switched off: would take every event, so each one it got would show.
INACTIVE_WEBHOOK_ID = uuid5(NAMESPACE_URL, "modelog:test-webhook/inactive")


def outbox_expected(log: list) -> list[tuple]:
    """What each webhook is owed, in log order: each event, for every webhook whose filter it passes."""
    rows = []
    for event in log:
        for webhook_id, (kind, model, types, mlflow_events) in sorted(zip(WEBHOOK_IDS, WEBHOOKS, strict=True)):
            if model is not None and event.model != model:
                continue
            if kind == "mlflow":
                found = mlflow_payloads.delivery(event)
                if found is not None and found[0] in mlflow_events:
                    rows.append((webhook_id, event.event_id, event.model, event.seq, json.loads(found[1])))
            elif not types or event.type in types:
                rows.append((webhook_id, event.event_id, event.model, event.seq,
                             json.loads(json.dumps(cloud_event(event)))))
    return rows


@settings(max_examples=10, deadline=None)
@given(histories, interleavings, batch_sizes)
def test_a_batch_queues_each_event_for_the_webhooks_it_matches_in_log_order(engines, history, picks, sizes):
    log = interleaved(decided(history), picks)

    async def outbox() -> list[tuple]:
        schema = f"outbox_{uuid4().hex[:8]}"
        try:
            conn = await connect(await fresh_schema(engines.postgres(), schema))
            try:
                await conn.executemany(
                    "INSERT INTO webhooks (id, url, secret, model, types, created_at, kind, events)"
                    " VALUES ($1, 'http://127.0.0.1:9/hook', 's', $2, $3, $4, $5, $6)",
                    [(webhook_id, model, types, datetime.now(timezone.utc), kind, events)
                     for webhook_id, (kind, model, types, events) in zip(WEBHOOK_IDS, WEBHOOKS, strict=True)])
                await conn.execute(
                    "INSERT INTO webhooks (id, url, secret, created_at, active)"
                    " VALUES ($1, 'http://127.0.0.1:9/hook', 's', now(), false)", INACTIVE_WEBHOOK_ID)
                for batch in batches(log, sizes):
                    async with conn.transaction():
                        await apply_events(conn, batch)
                return [(*row[:4], json.loads(row[4])) for row in await conn.fetch(
                    "SELECT webhook_id, event_id, model, seq, body FROM webhook_outbox ORDER BY id")]
            finally:
                await conn.close()
        finally:
            await drop_schema_if_exists(engines.postgres(), schema)

    queued, expected = asyncio.run(outbox()), outbox_expected(log)
    owed = {row[0] for row in expected}
    assert WEBHOOK_IDS[0] in owed and WEBHOOK_IDS[3] in owed, "the log should give both kinds something to send"
    assert queued == expected


async def auditor_schema(engines, name: str) -> PostgresLogin:
    """A brand-new schema migrated by the owner, as `python -m auditor migrate` does."""
    lay = Layout(engines, LocalStack(), lambda _: None)
    admin = await connect(engines.postgres())
    try:
        await admin.execute(f"CREATE SCHEMA {name} AUTHORIZATION {OWNER_ROLE}; GRANT USAGE ON SCHEMA {name} TO {AUDITOR_ROLE}")
    finally:
        await admin.close()
    await migrate_service(Postgres().login(lay, OWNER_ROLE).in_schema(name), "auditor", MIGRATIONS["auditor"])
    return Postgres().login(lay, AUDITOR_ROLE).in_schema(name)


async def trail(login: PostgresLogin) -> tuple[list, list]:
    conn = await connect(login)
    try:
        events = [tuple(row) for row in await conn.fetch(
            "SELECT model, seq, event_id, hash, prev_hash, kafka_partition, kafka_offset, event"
            " FROM audit_events ORDER BY model, seq")]
        alerts = [tuple(row) for row in await conn.fetch(
            "SELECT model, seq, event_id, problem, kafka_partition, kafka_offset FROM audit_alerts"
            " ORDER BY kafka_offset, problem")]
        return events, alerts
    finally:
        await conn.close()


# Two models' histories, interleaved, with an event missing (a gap, kept with
# an alert) and an earlier event arriving again (a repeat at a held seq, an alert only).
MODEL_EVENTS = 40
models_log = st.tuples(st.lists(st.sampled_from([0, 1]), min_size=2 * MODEL_EVENTS, max_size=2 * MODEL_EVENTS),
                       st.integers(2, MODEL_EVENTS - 2), st.integers(1, 2 * MODEL_EVENTS - 1))


def auditor_log(picks: list[int], missing: int, repeat_at: int) -> list:
    queues = [history(f"audited-{n}", MODEL_EVENTS, seed=n)[:MODEL_EVENTS] for n in range(2)]
    del queues[0][missing]
    log = [queues[n].pop(0) for n in picks if queues[n]]
    log += [event for queue in queues for event in queue]
    return log[:repeat_at] + [log[0]] + log[repeat_at:]


@settings(max_examples=10, deadline=None)
@given(models_log, batch_sizes)
def test_the_auditor_records_batches_as_it_records_one_event_at_a_time(engines, case, sizes):
    log = auditor_log(*case)

    async def both() -> tuple:
        one, batched = f"audit_one_{uuid4().hex[:8]}", f"audit_batched_{uuid4().hex[:8]}"
        try:
            one_login, batched_login = await auditor_schema(engines, one), await auditor_schema(engines, batched)
            conn = await connect(one_login)
            try:
                for offset, event in enumerate(log):
                    async with conn.transaction():
                        await record_event(conn, event, 0, offset)
            finally:
                await conn.close()
            conn = await connect(batched_login)
            try:
                offset = 0
                for batch in batches(log, sizes):
                    async with conn.transaction():
                        await record_events(conn, [Positioned(event, 0, offset + i) for i, event in enumerate(batch)])
                    offset += len(batch)
            finally:
                await conn.close()
            return await trail(one_login), await trail(batched_login)
        finally:
            for schema in (one, batched):
                await drop_schema_if_exists(engines.postgres(), schema)

    (one_events, one_alerts), (batched_events, batched_alerts) = asyncio.run(both())
    assert len(one_alerts) >= 2, "the log should hold a gap and a repeat"
    assert batched_events == one_events
    assert batched_alerts == one_alerts
