"""Lifecycle invariants over random command sequences from several actors."""

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain import fold
from modelog_contract.domain.chain import first_broken_link
from modelog_contract.domain.commands import (
    ApproveTransition,
    DeleteAlias,
    DeleteVersion,
    DenyTransition,
    ReportMetrics,
    RequestTransition,
    Rollback,
    SetAlias,
)
from tests.unit.builders import ALICE, BOB, CAROL, OPS, T0, Scenario, command, register

actors = st.sampled_from([ALICE, BOB, CAROL, OPS])
versions = st.integers(1, 4)
stages = st.sampled_from(["None", "Staging", "Production", "Archived"])

# A step is a function of the scenario so far: approvals and denials pick a
# request that exists, as real reviewers would.
step = st.one_of(
    st.builds(lambda a, n: lambda s, t: register(n=n, actor=a), actors, st.integers(1, 1000)),
    st.builds(lambda a, v, to: lambda s, t: command(RequestTransition, actor=a, version=v, to_stage=to, at=t),
              actors, versions, stages),
    st.builds(lambda a, i: lambda s, t: command(ApproveTransition, actor=a, at=t,
                                                request_id=_pick_request(s, i)), actors, st.integers(0, 3)),
    st.builds(lambda a, i: lambda s, t: command(DenyTransition, actor=a, at=t,
                                                request_id=_pick_request(s, i)), actors, st.integers(0, 3)),
    st.builds(lambda a, v: lambda s, t: command(Rollback, actor=a, version=v, at=t), actors, versions),
    st.builds(lambda a, v: lambda s, t: command(DeleteVersion, actor=a, version=v, at=t), actors, versions),
    st.builds(lambda a, v, p: lambda s, t: command(SetAlias, actor=a, alias="champion", version=v,
                                                   protected=p, at=t), actors, versions, st.booleans()),
    st.builds(lambda a: lambda s, t: command(DeleteAlias, actor=a, alias="champion", at=t), actors),
    st.builds(lambda v, auc: lambda s, t: command(ReportMetrics, version=v, metrics={"auc": auc}, at=t),
              versions, st.floats(0, 1)),
)


def _pick_request(s: Scenario, i: int):
    from uuid import uuid4
    pending = sorted(s.state.pending)
    return pending[i % len(pending)] if pending else uuid4()


def play(steps) -> Scenario:
    s = Scenario()
    for minute, make in enumerate(steps):
        s.when(make(s, T0 + timedelta(minutes=minute)))
    return s


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40))
def test_with_archive_existing_never_two_production_versions(steps):
    s = Scenario()
    for minute, make in enumerate(steps):
        s.when(make(s, T0 + timedelta(minutes=minute)))
        assert len(s.state.versions_in("Production")) <= 1  # after every decision, never mid-way


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40))
def test_a_deleted_version_is_never_promoted_nor_aliased(steps):
    s = play(steps)
    deleted: set[int] = set()
    for event in s.events:
        p = event.payload
        if event.type == "VersionDeleted":
            deleted.add(p.version)
        if event.type in ("StageChanged", "AliasSet", "TransitionRequested"):
            assert p.version not in deleted


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40))
def test_the_chain_is_gapless_valid_and_folds_back_to_the_state(steps):
    s = play(steps)
    assert [e.seq for e in s.events] == list(range(1, len(s.events) + 1))
    assert first_broken_link(s.events) is None
    assert fold(s.state.name, s.events) == s.state


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40))
def test_nobody_approves_what_they_requested_or_registered(steps):
    s = play(steps)
    requested_by, registered_by = {}, {}
    for event in s.events:
        p = event.payload
        if event.type == "VersionRegistered":
            registered_by[p.version] = event.actor.subject
        elif event.type == "TransitionRequested":
            requested_by[p.request_id] = event.actor.subject
        elif event.type == "ApprovalGranted":
            assert event.actor.subject not in (requested_by[p.request_id], registered_by[p.version])
