"""The auditor's questions, on a history decided through the real decider:
two versions promoted with reviews, one displacing the other, then a rollback."""

from datetime import datetime, timedelta, timezone

import pytest

from modelog_contract.audit.forensics import (
    AtInstant,
    AtSeq,
    Checkpoints,
    InvalidPoint,
    VersionNotFound,
    approvals,
    as_of,
    diff,
    parse_point,
    policy_in_effect,
    why,
)
from modelog_contract.domain import decide
from modelog_contract.domain.commands import ApproveTransition, RequestTransition, Rollback, SetPolicy
from modelog_contract.domain.monitoring import ErrorRateRule, Evidence, VersionWindow
from modelog_contract.domain.policy import Policy, PolicyInForce
from modelog_contract.domain.types import Actor
from tests.unit.builders import BOB, CAROL, MODEL, OPS, T0, Scenario, command, register


def at(minutes: int, seconds: int = 0):
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def promoted_twice_then_rolled_back() -> Scenario:
    s = Scenario().given(register(n=1), register(n=2))
    s.when(command(RequestTransition, version=1, to_stage="Staging", at=at(10)))
    [v1_request] = s.when(command(RequestTransition, version=1, to_stage="Production", at=at(11)))
    s.when(command(ApproveTransition, actor=BOB, request_id=v1_request.payload.request_id, at=at(12)))
    s.when(command(RequestTransition, version=2, to_stage="Staging", at=at(19)))
    [v2_request] = s.when(command(RequestTransition, version=2, to_stage="Production", at=at(20)))
    s.when(command(ApproveTransition, actor=CAROL, request_id=v2_request.payload.request_id, at=at(21)))
    s.when(command(Rollback, actor=OPS, version=1, at=at(30)))
    return s


def test_why_a_rolled_back_version_is_in_production_names_the_operator():
    s = promoted_twice_then_rolled_back()
    answer = why(MODEL, s.events, 1)
    assert answer.stage == "Production"
    assert (answer.moved.payload.why, answer.moved.actor.subject) == ("rollback", "olga")
    assert answer.request is None and answer.registered.actor.subject == "alice"
    assert [e.payload.to_stage for e in answer.stage_history] == ["Staging", "Production", "Archived", "Production"]
    assert answer.policy.source == "the built-in default policy"


def test_why_a_displaced_version_is_archived_points_at_the_move_that_displaced_it():
    s = promoted_twice_then_rolled_back()
    answer = why(MODEL, s.events, 2)
    assert (answer.stage, answer.moved.payload.why) == ("Archived", "archived-by-promotion")
    assert (answer.cause.payload.version, answer.cause.payload.why, answer.cause.actor.subject) == (
        1, "rollback", "olga")
    assert any("olga" in line and "archiving" in line for line in answer.summary())


def test_why_a_version_the_sentinel_rolled_back_to_says_the_rule_window_and_figures():
    s = promoted_twice_then_rolled_back()
    sentinel = Actor(subject="modelog-sentinel", roles=("operator",))
    rule = ErrorRateRule(name="errors-above-2pc", max_error_percent=2, window_s=60, min_requests=500)
    evidence = Evidence(rule=rule, window_start=at(40), window_end=at(41),
                        versions=(VersionWindow(version=1, requests=5230, errors=412, metrics={"latency_ms": 44.1}),),
                        detail="version 1: 412 errors in 5230 requests (7.88%) > 2% (at least 500 requests)")
    s.when(command(Rollback, actor=sentinel, version=2, at=at(41, 3), evidence=evidence))
    summary = why(MODEL, s.events, 2).summary()
    decided = next(n for n, line in enumerate(summary) if "decided for modelog-sentinel" in line)
    assert "Archived -> Production (rollback)" in summary[decided]
    assert summary[decided + 1] == (
        "on the evidence of rule errors-above-2pc (more than 2% of requests failing over 60 s, at least 500 "
        "requests), window 2026-11-02T09:54:00+00:00 to 2026-11-02T09:55:00+00:00: v1 5230 requests, 412 errors, "
        "mean latency_ms 44.1; version 1: 412 errors in 5230 requests (7.88%) > 2% (at least 500 requests)")


def test_an_operators_rollback_without_evidence_says_none():
    summary = why(MODEL, promoted_twice_then_rolled_back().events, 1).summary()
    assert not any("evidence" in line for line in summary)


def test_why_a_promoted_version_carries_its_request_reviews_and_gates():
    s = promoted_twice_then_rolled_back()
    answer = why(MODEL, s.events[:7], 1)  # as it stood after v1's promotion
    assert (answer.stage, answer.moved.payload.why) == ("Production", "promoted")
    assert answer.request.requested.actor.subject == "alice"
    assert [(r.type, r.actor.subject) for r in answer.request.reviews] == [("ApprovalGranted", "bob")]
    assert {g.rule for g in answer.gate_results} >= {"policy_in_force", "transition_allowed", "metric_thresholds"}
    assert all(g.passed for g in answer.gate_results)
    summary = "\n".join(answer.summary())
    assert "alice requested Staging -> Production" in summary and "bob (approver) approved" in summary


def test_a_version_never_moved_is_in_none_because_it_was_registered():
    s = Scenario().given(register(n=1))
    answer = why(MODEL, s.events, 1)
    assert (answer.stage, answer.moved, answer.registered.payload.version) == ("None", None, 1)
    with pytest.raises(VersionNotFound):
        why(MODEL, s.events, 7)


def test_who_approved_each_version_for_production_and_how_it_ended():
    s = promoted_twice_then_rolled_back()
    [v1] = approvals(s.events, 1)
    assert (v1.status, [r.actor.subject for r in v1.reviews]) == ("promoted", ["bob"])
    assert v1.moved.payload.to_stage == "Production" and v1.policy.source == "the built-in default policy"
    [v2] = approvals(s.events, 2)
    assert (v2.status, [r.actor.subject for r in v2.reviews]) == ("promoted", ["carol"])
    assert approvals(s.events, 1, to_stage="Archived") == []


def test_a_pending_request_under_the_models_own_two_of_n_policy():
    s = Scenario().given(register(n=1), command(SetPolicy, policy=Policy(approvals_required={"Production": 2})))
    s.when(command(RequestTransition, version=1, to_stage="Staging", at=at(1)))
    [request] = s.when(command(RequestTransition, version=1, to_stage="Production", at=at(2)))
    s.when(command(ApproveTransition, actor=BOB, request_id=request.payload.request_id, at=at(3)))
    [story] = approvals(s.events, 1)
    assert story.status == "pending" and story.requested.payload.approvals_required == 2
    assert story.policy.policy.approvals_required == {"Production": 2}
    assert story.policy.source.startswith("the model's own policy, set at seq 3 by alice")


def test_the_default_policy_a_decision_names_is_the_one_reported():
    stricter = Policy(approvals_required={"Production": 3})
    default_stream = Scenario("modelog.default-policy")
    default_stream.given(command(SetPolicy, model="modelog.default-policy", policy=Policy()),
                         command(SetPolicy, model="modelog.default-policy", policy=stricter))
    s = Scenario().given(register(n=1))
    [request] = decide(s.state, command(RequestTransition, version=1, to_stage="Production", at=at(5)),
                       default=PolicyInForce(policy=stricter, seq=2))
    in_effect = policy_in_effect(s.events + [request], default_stream.events, request)
    assert in_effect.policy == stricter and in_effect.source.startswith("the default policy, set at seq 2")


def test_the_diff_across_the_rollback_is_two_stage_swaps():
    s = promoted_twice_then_rolled_back()
    before, after = as_of(MODEL, s.events, AtInstant(at(29))), as_of(MODEL, s.events, AtInstant(at(30)))
    changes = diff(before, after)
    assert [(c.path, c.kind, c.before, c.after) for c in changes] == [
        ("versions.1.stage", "changed", "Archived", "Production"),
        ("versions.2.stage", "changed", "Production", "Archived")]
    assert str(changes[0]) == "~ versions.1.stage: 'Archived' -> 'Production'"


def test_the_diff_from_nothing_adds_the_model_and_its_versions():
    s = Scenario().given(register(n=1))
    changes = diff(as_of(MODEL, s.events, AtSeq(0)), as_of(MODEL, s.events, AtSeq(2)))
    assert {(c.path, c.kind) for c in changes} >= {("exists", "changed"), ("versions.1", "added")}
    assert diff(as_of(MODEL, s.events, AtSeq(2)), as_of(MODEL, s.events, AtSeq(0)))[-1].kind == "removed"


def test_points_are_seqs_or_iso_instants_and_naive_instants_are_utc():
    assert parse_point("42") == AtSeq(42)
    assert parse_point("2026-11-02T09:14:00Z") == AtInstant(T0)
    assert parse_point("2026-11-02T10:14:00+01:00").at == T0
    assert parse_point("2026-11-02T09:14:00") == AtInstant(datetime(2026, 11, 2, 9, 14, tzinfo=timezone.utc))
    for bad in ("yesterday", "-3", "", "4.5"):
        with pytest.raises(InvalidPoint):
            parse_point(bad)


def test_checkpoints_refuse_events_that_do_not_continue_the_state():
    s = Scenario().given(register(n=1), register(n=2))
    checkpoints = Checkpoints(MODEL, every=2)
    with pytest.raises(ValueError, match="seq 2 does not follow 0"):
        checkpoints.replay(checkpoints.base_for(3), s.events[1:])
