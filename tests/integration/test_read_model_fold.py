"""The in-memory fold a rebuild uses gives, row for row, the read models the
live projector's apply_event gives, over random histories of several models."""

import asyncio
from datetime import timedelta
from uuid import uuid4

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain.commands import (
    ApproveTransition,
    CreateModel,
    DeleteModel,
    DeleteTag,
    RequestTransition,
    SetPolicy,
    SetTag,
    UpdateModel,
    UpdateVersion,
)
from modelog_contract.domain.policy import Policy
from projector.fold import fold
from projector.read_models import apply_event
from projector.rebuild import READ_MODELS, dsn_in_schema, fresh_schema, table_rows
from tests.unit.builders import ALICE, BOB, CAROL, T0, Scenario, command, register
from tests.unit.test_lifecycle_properties import _pick_request, actors, step, versions

pytestmark = pytest.mark.engines

MODELS = ["fraud-detector", "churn"]
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
tag_keys = st.sampled_from(["team", "owner", "état"])
maybe_version = st.none() | versions

# What the lifecycle steps leave out: the model's own facts, tags, policies, deletion.
more = st.one_of(
    st.builds(lambda d, tags: lambda s, t: command(CreateModel, at=t, description=d, tags=tags),
              texts, st.dictionaries(tag_keys, texts, max_size=2)),
    st.builds(lambda d: lambda s, t: command(UpdateModel, at=t, description=d), texts),
    st.builds(lambda v, d: lambda s, t: command(UpdateVersion, at=t, version=v, description=d), versions, texts),
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


async def both_ways(postgres_dsn: str, events: list) -> dict[str, tuple[list, list]]:
    """Each table's rows projected event by event, and folded then copied."""
    applied, folded = f"fold_applied_{uuid4().hex[:8]}", f"fold_folded_{uuid4().hex[:8]}"
    try:
        conn = await asyncpg.connect(await fresh_schema(postgres_dsn, applied))
        try:
            async with conn.transaction():
                for offset, event in enumerate(events):
                    await apply_event(conn, event, 0, offset)
        finally:
            await conn.close()
        conn = await asyncpg.connect(await fresh_schema(postgres_dsn, folded))
        try:
            await fold(events).copy_to(conn)
        finally:
            await conn.close()
        return {table: (await table_rows(dsn_in_schema(postgres_dsn, applied), table),
                        await table_rows(dsn_in_schema(postgres_dsn, folded), table))
                for table in READ_MODELS}
    finally:
        admin = await asyncpg.connect(postgres_dsn)
        for schema in (applied, folded):
            await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


@settings(max_examples=25, deadline=None)
@given(histories)
def test_the_fold_gives_the_rows_apply_event_gives(engines, history):
    events = decided(history)
    for table, (applied, folded) in asyncio.run(both_ways(engines.postgres_dsn, events)).items():
        assert folded == applied, table
