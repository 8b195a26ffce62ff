"""The live projection and a rebuild of the same log give, row for row, the
same read models on PostgreSQL, over random histories of several models: the
live one event by event into the rows each event reads back (in batches, one
transaction each, the models' events interleaved as partitions are), the
rebuild folding everything in memory and copying it into bare tables."""

import asyncio
from datetime import timedelta
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain.commands import (
    ApproveTransition,
    CreateModel,
    DeleteModel,
    DeleteTag,
    ReportServing,
    RequestTransition,
    ReviseModelCard,
    SetPolicy,
    SetTag,
    SetTrafficSplit,
    UpdateModel,
    UpdateVersion,
)
from modelog_contract.domain.policy import Policy
from modelog_platform.adapters.postgres import connect
from modelog_platform.settings import PostgresLogin
from projector.fold import fold
from projector.read_models import apply_event
from projector.rebuild import READ_MODELS, copy_into_fresh_schema, fresh_schema, table_rows
from tests.unit.builders import ALICE, BOB, CAROL, OPS, T0, Scenario, command, register
from tests.unit.test_lifecycle_properties import _pick_request, actors, step, versions

pytestmark = pytest.mark.engines

MODELS = ["fraud-detector", "churn"]
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
tag_keys = st.sampled_from(["team", "owner", "état"])
maybe_version = st.none() | versions

# What the lifecycle steps leave out: the model's own facts, model cards, tags, policies, splits, deletion.
more = st.one_of(
    st.builds(lambda d, tags: lambda s, t: command(CreateModel, at=t, description=d, tags=tags),
              texts, st.dictionaries(tag_keys, texts, max_size=2)),
    st.builds(lambda d: lambda s, t: command(UpdateModel, at=t, description=d), texts),
    st.builds(lambda v, d: lambda s, t: command(UpdateVersion, at=t, version=v, description=d), versions, texts),
    st.builds(lambda a, v, card: lambda s, t: command(ReviseModelCard, actor=a, at=t, version=v, model_card=card,
                                                      summary="revised"), actors, versions, texts.filter(bool)),
    st.builds(lambda a, v, k, value: lambda s, t: command(SetTag, actor=a, at=t, version=v, key=k, value=value),
              actors, maybe_version, tag_keys, texts),
    st.builds(lambda v, k: lambda s, t: command(DeleteTag, at=t, version=v, key=k), maybe_version, tag_keys),
    # Requests by the registrant and approvals by the reviewers, so that some pass.
    st.builds(lambda v, to: lambda s, t: command(RequestTransition, at=t, version=v, to_stage=to),
              versions, st.sampled_from(["Staging", "Production"])),
    st.builds(lambda a, i: lambda s, t: command(ApproveTransition, actor=a, at=t, request_id=_pick_request(s, i)),
              st.sampled_from([BOB, CAROL]), st.integers(0, 3)),
    st.builds(lambda n: lambda s, t: command(SetPolicy, actor=ALICE, at=t, policy=Policy(
        approvals_required={"Staging": n, "Production": n + 1})), st.integers(0, 1)),
    # Splits whose weights often sum to 100, so that stage changes and deletions then reshape them.
    st.builds(lambda routes, shadows: lambda s, t: command(
        SetTrafficSplit, actor=OPS, at=t, routes=[{"version": v, "weight": w} for v, w in routes], shadows=shadows),
        st.lists(st.tuples(versions, st.sampled_from([10, 30, 70, 90, 100])), min_size=1, max_size=2),
        st.lists(versions, max_size=1)),
    # Serving reports: the latest per (model, instance) is kept, whatever the order.
    st.builds(lambda i, v, target: lambda s, t: command(
        ReportServing, actor=OPS, at=t, instance=i, version=v, since=t, target=target),
        st.sampled_from(["web-1", "web-2"]), versions, st.none() | st.just("stage:Production")),
)
# Every model starts with three versions, so that most steps have something to
# act on; the first model's policy wants approvals, so requests wait for them.
registered = [(m, lambda s, t, n=n: register(n=n, params={"lr": f"0.{n}"}, metrics={"auc": n / 4},
                                                tags={"team": "risk"}))
              for m in MODELS for n in range(1, 4)]
registered += [(MODELS[0], lambda s, t: command(SetPolicy, at=t, policy=Policy(
    approvals_required={"Staging": 1, "Production": 2})))]
# Lifecycle steps twice as likely as the others.
any_step = st.sampled_from([step, step, more]).flatmap(lambda kind: kind)
histories = st.tuples(st.lists(st.tuples(st.sampled_from(MODELS), any_step), min_size=20, max_size=60),
                      st.lists(st.sampled_from(MODELS), unique=True, max_size=2))
# How the live projector meets the log: which model's next event comes next
# (models are on partitions of their own), and where its batches end.
interleavings = st.lists(st.sampled_from(MODELS), min_size=300, max_size=300)
batch_sizes = st.lists(st.integers(1, 40), min_size=1, max_size=20)


def decided(history) -> list:
    """The events of the history's commands, decided model by model in command
    order; some models are deleted at the end (before, they would refuse all else)."""
    steps, deleted = history
    deletions = [(m, lambda s, t: command(DeleteModel, at=t)) for m in deleted]
    scenarios = {m: Scenario(m) for m in MODELS}
    events = []
    for minute, (model, make) in enumerate(registered + steps + deletions):
        s = scenarios[model]
        events += s.when(make(s, T0 + timedelta(minutes=minute)).model_copy(update={"model": model}))
    return events


def interleaved(events: list, picks: list[str]) -> list:
    """The events with each model's in log order, the models' taken in turn as
    `picks` says (then whatever is left, in order)."""
    queues = {model: [event for event in events if event.model == model] for model in MODELS}
    out = [queues[model].pop(0) for model in picks if queues[model]]
    return out + [event for model in MODELS for event in queues[model]]


def batches(events: list, sizes: list[int]) -> list[list]:
    out, start = [], 0
    while start < len(events):
        size = sizes[len(out) % len(sizes)]
        out.append(events[start:start + size])
        start += size
    return out


async def one_event_at_a_time(conn, batch: list) -> None:
    for event in batch:
        await apply_event(conn, event, 0, 0)


async def live_and_rebuilt(login: PostgresLogin, log: list, sizes: list[int],
                           apply=one_event_at_a_time) -> dict[str, tuple[list, list]]:
    """Each table's rows as the live projection leaves them, `apply` taking each
    batch in a transaction of its own, and as a rebuild does."""
    live, rebuilt = f"fold_live_{uuid4().hex[:8]}", f"fold_rebuilt_{uuid4().hex[:8]}"
    try:
        conn = await connect(await fresh_schema(login, live))
        try:
            for batch in batches(log, sizes):
                async with conn.transaction():
                    await apply(conn, batch)
        finally:
            await conn.close()
        await copy_into_fresh_schema(login, rebuilt, fold(log))
        return {table: (await table_rows(login.in_schema(live), table),
                        await table_rows(login.in_schema(rebuilt), table))
                for table in READ_MODELS}
    finally:
        for schema in (live, rebuilt):
            await drop_schema_if_exists(login, schema)


async def drop_schema_if_exists(login: PostgresLogin, schema: str) -> None:
    admin = await connect(login)
    try:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await admin.close()


@settings(max_examples=25, deadline=None)
@given(histories, interleavings, batch_sizes)
def test_the_live_projection_gives_the_rows_a_rebuild_gives(engines, history, picks, sizes):
    log = interleaved(decided(history), picks)
    tables = asyncio.run(live_and_rebuilt(engines.postgres(), log, sizes))
    assert tables["models"][0], "the live projection should have made models"
    for table, (live, rebuilt) in tables.items():
        assert live == rebuilt, table
