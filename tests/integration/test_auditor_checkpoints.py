"""The auditor's stored checkpoints against the real PostgreSQL, as its role
sees them: written as events are recorded, read back by as-of answers after
a restart (a new StateReplays on a new connection is all a new process has),
and never trusted past what they prove: a corrupt row or a row of another
state schema is skipped, and the answer still equals a fold from seq 0."""

import logging
import random
from datetime import datetime, timedelta
from hashlib import sha256
from uuid import uuid4

import asyncpg
import pytest

from auditor import checkpoints, store
from auditor.checkpoints import STATE_SCHEMA, CheckpointWriter
from auditor.replays import StateReplays
from modelog_contract.audit.forensics import AtInstant, AtSeq, as_of
from modelog_contract.domain.commands import ApproveTransition, RegisterVersion, ReportMetrics, RequestTransition, SetTag
from modelog_contract.domain.events import Event
from modelog_contract.domain.state import ModelState
from modelog_platform.adapters.postgres import AUDITOR_ROLE, OWNER_ROLE, PROJECTOR_ROLE, connect, migrate_service
from modelog_platform.engines.layout import Layout
from modelog_platform.engines.postgres import Postgres
from modelog_platform.settings import LocalStack
from tests.integration.test_migrations import MIGRATIONS
from tests.unit.builders import ALICE, BOB, T0, Scenario, artifact, command

pytestmark = pytest.mark.engines
K = 128  # checkpoints stored every K events in these tests
EVENTS = 3000


def history(model: str, events: int, seed: int = 7) -> list[Event]:
    """About `events` events decided by the real decider: registrations,
    metrics, tags, promotions approved by a reviewer; stamped a second apart,
    but every 40th command a minute early, so instants cut where the clock
    steps back."""
    rng, s, n = random.Random(seed), Scenario(model), 0

    def at() -> datetime:
        return T0 + timedelta(seconds=n - (60 if n % 40 == 0 else 0))

    while len(s.events) < events:
        n += 1
        versions = s.state.next_version - 1
        roll = rng.random()
        if versions < 3 or roll < 0.05:
            s.when(command(RegisterVersion, at=at(), model=model, artifact=artifact(n), metrics={"auc": 0.9}))
        elif roll < 0.1:
            asked = s.when(command(RequestTransition, at=at(), model=model, version=rng.randint(1, versions),
                                   to_stage="Production"))
            if asked[-1].type == "TransitionRequested":
                s.when(command(ApproveTransition, BOB, at=at(), model=model, request_id=asked[-1].command_id))
        elif roll < 0.15:
            s.when(command(RequestTransition, at=at(), model=model, version=rng.randint(1, versions),
                           to_stage="Staging"))
        elif roll < 0.6:
            s.when(command(ReportMetrics, at=at(), model=model, version=rng.randint(1, versions),
                           metrics={"auc": rng.random()}))
        else:
            s.when(command(SetTag, ALICE, at=at(), model=model, version=rng.randint(1, versions),
                           key=f"k{rng.randint(0, 9)}", value=str(n)))
    return s.events


@pytest.fixture(scope="module")
async def schema(engines):
    """A brand-new schema migrated by the owner, as `python -m auditor migrate` does."""
    name = f"checkpoints_{uuid4().hex[:10]}"
    lay = Layout(engines, LocalStack(), lambda _: None)
    admin = await connect(engines.postgres())
    await admin.execute(f"CREATE SCHEMA {name} AUTHORIZATION {OWNER_ROLE};"
                        f" GRANT USAGE ON SCHEMA {name} TO {AUDITOR_ROLE}, {PROJECTOR_ROLE}")
    await migrate_service(Postgres().login(lay, OWNER_ROLE).in_schema(name), "auditor", MIGRATIONS["auditor"])
    yield lambda role: Postgres().login(lay, role).in_schema(name)
    await admin.execute(f"DROP SCHEMA {name} CASCADE")
    await admin.close()


@pytest.fixture
async def auditor(schema):
    """A connection as the auditor's own role."""
    conn = await connect(schema(AUDITOR_ROLE))
    yield conn
    await conn.close()


async def record(conn: asyncpg.Connection, writer: CheckpointWriter, events: list[Event], batch: int = 500) -> None:
    """As the projection does: a transaction per batch."""
    for start in range(0, len(events), batch):
        async with conn.transaction():
            for offset, event in enumerate(events[start:start + batch], start):
                await writer.record(conn, event, 0, offset)


async def stored_seqs(conn: asyncpg.Connection, model: str) -> list[int]:
    return [r["seq"] for r in await conn.fetch(
        "SELECT seq FROM audit_checkpoints WHERE model = $1 AND state_schema = $2 ORDER BY seq", model, STATE_SCHEMA)]


@pytest.fixture(scope="module")
async def recorded(schema):
    """A model of a few thousand events, recorded by one auditor process and
    then, after a restart (a new writer), by another; one batch of the second
    rolled back and redone, as when a batch is fenced."""
    model = f"long-lived-{uuid4().hex[:6]}"
    events = history(model, EVENTS)
    conn = await connect(schema(AUDITOR_ROLE))
    try:
        half = len(events) // 2
        await record(conn, CheckpointWriter(K), events[:half])
        after_restart = CheckpointWriter(K)
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                for event in events[half:half + 300]:
                    await after_restart.record(conn, event, 0, 0)
                raise RuntimeError("fenced")
        await record(conn, after_restart, events[half:])
    finally:
        await conn.close()
    return model, events


async def test_a_checkpoint_is_stored_at_every_kth_seq_and_holds_the_folded_state(recorded, auditor):
    model, events = recorded
    rows = await auditor.fetch("SELECT seq, state FROM audit_checkpoints WHERE model = $1 AND state_schema = $2"
                               " ORDER BY seq", model, STATE_SCHEMA)
    assert [r["seq"] for r in rows] == list(range(K, len(events) + 1, K))
    for row in rows:
        assert ModelState.model_validate_json(row["state"]) == as_of(model, events, AtSeq(row["seq"]))


async def test_answers_from_stored_checkpoints_equal_a_fold_from_seq_0(recorded, auditor):
    model, events = recorded
    rng = random.Random(11)
    replays = StateReplays(K)
    first, last = events[0].occurred_at, events[-1].occurred_at
    points = [AtSeq(rng.randint(0, len(events))) for _ in range(40)] + [
        AtInstant(first + (last - first) * rng.uniform(-0.01, 1.01)) for _ in range(40)]
    rng.shuffle(points)
    for point in points:
        assert await replays.state_at(auditor, model, point) == as_of(model, events, point), point


async def test_after_a_restart_the_first_answer_folds_at_most_k_events(recorded, schema):
    model, events = recorded
    for seq in (len(events), len(events) - 1, K * 7 + 5):
        conn = await connect(schema(AUDITOR_ROLE))  # a new process: nothing in memory
        try:
            replays, refolded = StateReplays(K), StateReplays(0)
            assert await replays.state_at(conn, model, AtSeq(seq)) == as_of(model, events, AtSeq(seq))
            assert replays.events_read == seq % K
            # What it spares: in memory alone, the first answer folds the whole history.
            await refolded.state_at(conn, model, AtSeq(seq))
            assert refolded.events_read == seq
        finally:
            await conn.close()


async def test_repeated_answers_come_from_memory(recorded, auditor):
    model, events = recorded
    replays = StateReplays(K)
    await replays.state_at(auditor, model, AtSeq(K * 5 + 100))
    read = replays.events_read
    assert await replays.state_at(auditor, model, AtSeq(K * 5 + 90)) == as_of(model, events, AtSeq(K * 5 + 90))
    assert replays.events_read - read <= 64  # from the in-memory checkpoint at K * 5 + 64


async def insert(conn: asyncpg.Connection, model: str, seq: int, data: bytes, digest: str | None = None,
                 state_schema: str = STATE_SCHEMA) -> None:
    await store.save_checkpoint(conn, model, state_schema, seq, data, digest or sha256(data).hexdigest())


@pytest.fixture(scope="module")
async def unchecked(schema):
    """A model recorded with no checkpoints stored (as before the auditor stored them)."""
    model = f"unchecked-{uuid4().hex[:6]}"
    events = history(model, 1200, seed=3)
    conn = await connect(schema(AUDITOR_ROLE))
    try:
        await record(conn, CheckpointWriter(0), events)
    finally:
        await conn.close()
    return model, events


async def test_a_corrupt_checkpoint_is_skipped_with_a_log_line_for_an_older_one(unchecked, auditor, caplog):
    model, events = unchecked
    good = as_of(model, events, AtSeq(2 * K))
    await checkpoints.save(auditor, good)
    at = {seq: as_of(model, events, AtSeq(seq)).model_dump_json().encode() for seq in (3 * K, 4 * K, 5 * K, 6 * K)}
    await insert(auditor, model, 3 * K, b'{"name": "' + model.encode() + b'", "seq": ')  # truncated
    await insert(auditor, model, 4 * K, at[4 * K].replace(b'"auc"', b'"aux"'), sha256(at[4 * K]).hexdigest())
    await insert(auditor, model, 5 * K, at[4 * K])  # sound, but of another seq
    await insert(auditor, model, 6 * K, at[6 * K].replace(events[6 * K - 1].hash.encode(), b"0" * 64))
    caplog.set_level(logging.ERROR, logger="auditor.checkpoints")

    replays = StateReplays(K)
    seq = 6 * K + 10
    assert await replays.state_at(auditor, model, AtSeq(seq)) == as_of(model, events, AtSeq(seq))
    assert replays.events_read == seq - 2 * K  # from the one sound checkpoint
    skipped = [r.getMessage() for r in caplog.records]
    assert all(f"at seq {s} skipped" in line for s, line in zip((6 * K, 5 * K, 4 * K, 3 * K), skipped, strict=True))
    assert "head hash" in skipped[0] and "holds" in skipped[1] and "digest" in skipped[2] and "decode" in skipped[3]


async def test_a_checkpoint_of_another_state_schema_is_never_read(auditor):
    model = f"reshaped-{uuid4().hex[:6]}"
    events = history(model, 400, seed=5)
    await record(auditor, CheckpointWriter(0), events)
    # A state stored under another shape's name, which this code would misread:
    # here, one that looks sound but lost its versions.
    wrong = as_of(model, events, AtSeq(3 * K)).model_copy(update={"versions": {}})
    await insert(auditor, model, 3 * K, wrong.model_dump_json().encode(), state_schema="some-older-shape")
    replays = StateReplays(K)
    assert await replays.state_at(auditor, model, AtSeq(3 * K + 1)) == as_of(model, events, AtSeq(3 * K + 1))
    assert replays.events_read == 3 * K + 1


async def test_history_without_stored_checkpoints_gets_them_from_its_first_answer(schema):
    model = f"upgraded-{uuid4().hex[:6]}"
    events = history(model, 1000, seed=9)
    conn = await connect(schema(AUDITOR_ROLE))
    try:
        await record(conn, CheckpointWriter(0), events)
        assert await stored_seqs(conn, model) == []
        first = StateReplays(K)
        assert await first.state_at(conn, model, AtSeq(900)) == as_of(model, events, AtSeq(900))
        assert first.events_read == 900
        assert await stored_seqs(conn, model) == list(range(K, 901, K))
        after_restart = StateReplays(K)
        assert await after_restart.state_at(conn, model, AtSeq(899)) == as_of(model, events, AtSeq(899))
        assert after_restart.events_read == 899 % K
        # Recording goes on from the stored ones: the next multiples are stored as events arrive.
        more = history(model, 1300, seed=9)[1000:]
        await record(conn, CheckpointWriter(K), more)
        assert await stored_seqs(conn, model) == list(range(K, 1301, K))
    finally:
        await conn.close()


async def test_only_the_auditor_writes_checkpoints_and_only_by_adding(recorded, schema):
    model, events = recorded
    auditor, projector = await connect(schema(AUDITOR_ROLE)), await connect(schema(PROJECTOR_ROLE))
    try:
        for statement in ("UPDATE audit_checkpoints SET digest = 'x'", "DELETE FROM audit_checkpoints",
                          "TRUNCATE audit_checkpoints"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await auditor.execute(statement)
        for statement in ("SELECT * FROM audit_checkpoints LIMIT 1",
                          "INSERT INTO audit_checkpoints (model, state_schema, seq, state, digest)"
                          " VALUES ('m', 's', 1, '', '')"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await projector.execute(statement)
        assert len(await stored_seqs(auditor, model)) == len(events) // K
    finally:
        await auditor.close()
        await projector.close()
