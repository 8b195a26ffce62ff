"""Traffic splits as decisions: an operator shares a model's requests between
its Staging and Production versions under policy, and the split stays
consistent as versions leave those stages."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain.commands import (
    DeleteVersion,
    RequestTransition,
    Rollback,
    SetPolicy,
    SetTrafficSplit,
)
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.splits import Route, TrafficSplit, without_version
from modelog_contract.domain.types import Actor
from tests.unit.builders import ALICE, BOB, OPS, Scenario, command, register

ADMIN = Actor(subject="ada", roles=("admin",))
NO_APPROVALS = Policy(approvals_required={})


def split(*routes: tuple[int, int], shadows: tuple[int, ...] = (), actor: Actor = OPS, **fields) -> SetTrafficSplit:
    return command(SetTrafficSplit, actor=actor, routes=[{"version": v, "weight": w} for v, w in routes],
                   shadows=shadows, **fields)


def move(version: int, stage: str, **fields) -> RequestTransition:
    return command(RequestTransition, version=version, to_stage=stage, **fields)


def canary_ready(policy: Policy = NO_APPROVALS) -> Scenario:
    """v1 in Production, v2 and v3 in Staging (kept there side by side), v4 registered only."""
    return Scenario().given(register(n=1), register(n=2), register(n=3), register(n=4),
                            command(SetPolicy, actor=ADMIN, policy=policy),
                            move(1, "Staging"), move(1, "Production"), move(2, "Staging"),
                            move(3, "Staging", archive_existing=False))


def routes_of(s: Scenario) -> list[tuple[int, int]] | None:
    current = s.state.traffic_split
    return None if current is None else [(r.version, r.weight) for r in current.routes]


def test_an_operator_sends_a_tenth_of_the_traffic_to_a_staging_canary():
    s = canary_ready()
    [decided] = s.when(split((1, 90), (2, 10), shadows=(3,), comment="canary v2"))
    assert decided.type == "TrafficSplitSet" and decided.actor.subject == "olga"
    assert (decided.payload.production_version, decided.payload.shadows, decided.payload.comment) == (1, (3,),
                                                                                                      "canary v2")
    assert [r.rule for r in decided.payload.rule_results] == [
        "policy_in_force", "serving_stages", "weights", "max_canary_percent"]
    assert all(r.passed for r in decided.payload.rule_results)
    assert decided.payload.rule_results[2].detail == "90 + 10 = 100"
    assert routes_of(s) == [(1, 90), (2, 10)] and s.state.traffic_split.shadows == (3,)


def test_a_publisher_without_the_operator_role_is_refused():
    s = canary_ready()
    [refused] = s.when(split((1, 90), (2, 10), actor=ALICE))
    assert refused.payload.reason == "forbidden"
    assert refused.payload.message == ("alice needs the 'operator' role to set a traffic split; "
                                       "their roles are publisher")
    assert s.state.traffic_split is None


@pytest.mark.parametrize("routes, shadows, reason", [
    (((1, 90), (4, 10)), (), "version_not_serving"),   # v4 has no stage
    (((1, 100),), (4,), "version_not_serving"),         # nor may it shadow
    (((1, 90), (2, 20)), (), "split_weights_invalid"),
    (((1, 100), (2, 0)), (), "split_weights_invalid"),
    (((1, 110), (2, -10)), (), "split_weights_invalid"),
    (((1, 50), (1, 50)), (), "invalid_split"),
    (((1, 90), (2, 10)), (2,), "invalid_split"),
    (((1, 90), (9, 10)), (), "version_not_found"),
])
def test_a_split_that_cannot_be_served_is_refused_with_its_code(routes, shadows, reason):
    s = canary_ready()
    assert s.rejected(split(*routes, shadows=shadows)) == reason
    assert s.state.traffic_split is None


def test_an_archived_version_is_refused_in_words_with_the_stages_as_evidence():
    s = canary_ready()
    s.given(move(3, "Archived", actor=OPS))
    [refused] = s.when(split((1, 90), (3, 10)))
    assert refused.payload.reason == "version_not_serving"
    assert refused.payload.message == (
        "version 3 of 'fraud-detector' is not in Staging or Production (version 1 in Production; version 3 in "
        "Archived); a split serves only those; the model's versions in Staging or Production: 1, 2")
    assert [(r.rule, r.passed) for r in refused.payload.rule_results] == [
        ("policy_in_force", True), ("serving_stages", False)]


def test_a_canary_above_the_policys_maximum_is_refused_and_one_at_it_is_decided():
    s = canary_ready(NO_APPROVALS.model_copy(update={"max_canary_percent": 20}))
    [refused] = s.when(split((1, 70), (2, 30)))
    assert refused.payload.reason == "canary_above_maximum"
    assert refused.payload.message == (
        "canaries version 2 at 30%; at most 20% each (Production: version 1): the model's own policy allows "
        "a canary at most 20% of the traffic")
    assert s.when(split((1, 60), (2, 20), (3, 20)))[0].type == "TrafficSplitSet"


def test_the_default_policy_sets_no_canary_limit_and_keeps_old_policy_bytes():
    assert Policy().max_canary_percent == 100
    assert "max_canary_percent" not in Policy().model_dump()
    assert Policy(max_canary_percent=5).model_dump()["max_canary_percent"] == 5


def test_a_split_back_to_production_alone_removes_the_canary():
    s = canary_ready()
    s.given(split((1, 90), (2, 10)))
    [cleared] = s.when(split((1, 100)))
    assert cleared.type == "TrafficSplitSet"
    assert s.state.traffic_split is None


def test_promoting_the_canary_over_production_clears_the_split():
    s = canary_ready()
    s.given(split((1, 90), (2, 10)))
    s.when(move(2, "Production"))  # archives v1, the split's Production version
    assert s.state.traffic_split is None


def test_an_archived_canary_gives_its_weight_back_to_production():
    s = canary_ready()
    s.given(split((1, 80), (2, 10), (3, 10), shadows=()))
    s.when(move(2, "Archived", actor=OPS))
    assert routes_of(s) == [(1, 90), (3, 10)]
    s.when(command(DeleteVersion, actor=ADMIN, version=3))
    assert s.state.traffic_split is None  # Production at 100 alone is no split


def test_a_rollback_clears_the_split_and_a_dropped_shadow_leaves_the_routes():
    s = canary_ready()
    s.given(split((1, 90), (2, 10), shadows=(3,)))
    s.when(move(3, "Archived", actor=OPS))
    assert routes_of(s) == [(1, 90), (2, 10)] and s.state.traffic_split.shadows == ()
    s.when(command(Rollback, actor=OPS, version=3))  # v3 back to Production, v1 archived
    assert s.state.traffic_split is None


def test_without_a_production_version_a_leaving_canary_clears_the_split():
    staged = TrafficSplit(routes=(Route(version=2, weight=50), Route(version=3, weight=50)), production_version=None)
    assert without_version(staged, 2) is None
    assert without_version(staged, 7) == staged


# -- properties ----------------------------------------------------------------

VERSIONS = st.integers(1, 4)
WEIGHTS = st.one_of(st.sampled_from([10, 20, 50, 80, 90, 100]), st.integers(-5, 100))  # splits that sum, often
STEPS = st.one_of(
    st.tuples(st.just("move"), VERSIONS, st.sampled_from(["Staging", "Production", "Archived"])),
    st.tuples(st.just("rollback"), VERSIONS, st.none()),
    st.tuples(st.just("delete"), VERSIONS, st.none()),
    st.tuples(st.just("split"), st.lists(st.tuples(VERSIONS, WEIGHTS), min_size=1, max_size=3),
              st.lists(VERSIONS, max_size=2)),
)


def step(kind, a, b):
    match kind:
        case "move":
            return move(a, b, actor=Actor(subject="olga", roles=("operator", "publisher")))
        case "rollback":
            return command(Rollback, actor=OPS, version=a)
        case "delete":
            return command(DeleteVersion, actor=ADMIN, version=a)
    return split(*a, shadows=tuple(b))


@settings(max_examples=200, deadline=None)
@given(st.lists(STEPS, max_size=25))
def test_whatever_happens_a_split_routes_only_to_serving_versions_and_sums_to_100(steps):
    s = canary_ready(NO_APPROVALS.model_copy(update={"max_canary_percent": 50}))
    for kind, a, b in steps:
        s.when(step(kind, a, b))
        current = s.state.traffic_split
        if current is None:
            continue
        assert sum(r.weight for r in current.routes) == 100 and min(r.weight for r in current.routes) > 0
        for number in current.versions():
            version = s.state.versions[number]
            assert version.stage in ("Staging", "Production") and not version.deleted, (number, version.stage)
        assert len(current.versions()) == len(current.routes) + len(current.shadows)


@settings(max_examples=100, deadline=None)
@given(st.lists(STEPS, max_size=25))
def test_every_decided_split_keeps_the_canary_limit_and_records_its_evidence(steps):
    s = canary_ready(NO_APPROVALS.model_copy(update={"max_canary_percent": 50}))
    for kind, a, b in steps:
        for event in s.when(step(kind, a, b)):
            if event.type == "TrafficSplitSet":
                p = event.payload
                assert all(r.weight <= 50 for r in p.routes if r.version != p.production_version)
                assert all(r.passed for r in p.rule_results) and len(p.rule_results) == 4


def test_a_reviewer_is_no_operator_either():
    assert canary_ready().rejected(split((1, 90), (2, 10), actor=BOB)) == "forbidden"
