"""The read side applies a fetched batch of events at once (one load of the
rows the batch may change, one write of what changed, one notification), and
that gives, row for row, what applying the same events one at a time gives:
for the projector's read models (against a rebuild of the same log), and for
the auditor's trail and alerts, breaks and repeats included."""

import asyncio
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.store import record_event, record_events
from modelog_platform.adapters.postgres import AUDITOR_ROLE, OWNER_ROLE, connect, migrate_service
from modelog_platform.adapters.projection import Positioned
from modelog_platform.engines.layout import Layout
from modelog_platform.engines.postgres import Postgres
from modelog_platform.settings import LocalStack, PostgresLogin
from projector.read_models import apply_events
from tests.integration.test_auditor_checkpoints import history
from tests.integration.test_migrations import MIGRATIONS
from tests.integration.test_read_model_fold import (
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
