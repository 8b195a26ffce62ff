"""The model lifecycle, rule by rule and reason code by reason code."""

from datetime import time, timedelta
from uuid import uuid4

import pytest

from modelog_contract.domain.commands import (
    ApproveTransition,
    DeleteAlias,
    DeleteModel,
    DeleteTag,
    DeleteVersion,
    DenyTransition,
    ReportMetrics,
    RequestTransition,
    Rollback,
    SetAlias,
    SetPolicy,
    SetTag,
    UpdateModel,
    UpdateVersion,
)
from modelog_contract.domain.policy import ChampionRule, FreezeWindow, MetricThreshold, Policy
from modelog_contract.domain.types import Actor
from tests.unit.builders import ALICE, BOB, CAROL, OPS, T0, Scenario, command, create, register

LINEAGE = {"run_id": "run-7", "dataset_uri": "s3://data/tx.parquet", "dataset_sha256": "d" * 64,
           "model_card": "# fraud-detector\nintended use: card payments"}


def in_production(s: Scenario, version: int, at=T0) -> None:
    """Staging, requested for Production by alice, approved by bob."""
    s.when(command(RequestTransition, version=version, to_stage="Staging", at=at))
    [requested] = s.when(command(RequestTransition, version=version, to_stage="Production", at=at))
    s.when(command(ApproveTransition, actor=BOB, request_id=requested.payload.request_id, at=at))


def stages(s: Scenario) -> dict[int, str]:
    return {n: v.stage for n, v in s.state.versions.items()}


# --- transitions and approvals -------------------------------------------------

def test_staging_needs_no_approval_by_default():
    s = Scenario().given(register(n=1))
    [moved] = s.when(command(RequestTransition, version=1, to_stage="Staging"))
    assert (moved.type, moved.payload.why) == ("StageChanged", "promoted")
    assert {r.rule for r in moved.payload.rule_results} >= {"transition_allowed", "metric_thresholds"}


def test_production_waits_for_an_approver_then_moves_in_the_same_decision():
    s = Scenario().given(register(n=1), command(RequestTransition, version=1, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, version=1, to_stage="Production"))
    assert requested.type == "TransitionRequested" and requested.payload.approvals_required == 1
    events = s.when(command(ApproveTransition, actor=BOB, request_id=requested.payload.request_id))
    assert [e.type for e in events] == ["ApprovalGranted", "StageChanged"]
    assert stages(s) == {1: "Production"} and s.state.pending == {}


def test_a_disallowed_transition_fails_the_gate_and_names_the_step_to_take_first():
    s = Scenario().given(register(n=1))
    [refused] = s.when(command(RequestTransition, version=1, to_stage="Production"))
    assert refused.payload.reason == "gate_failed"
    failed = [r for r in refused.payload.rule_results if not r.passed]
    told = ("version 1 of fraud-detector is in no stage; a version reaches Production from Staging: "
            "promote it to Staging first")
    assert [(r.rule, r.detail) for r in failed] == [("transition_allowed", told)]
    assert refused.payload.message == f"version 1 of 'fraud-detector' to Production: transition_allowed: {told}"


def test_an_archived_version_is_pointed_to_a_rollback_for_production():
    s = Scenario().given(register(n=1), register(n=2))
    in_production(s, 1)
    in_production(s, 2)
    [refused] = s.when(command(RequestTransition, version=1, to_stage="Production"))
    assert refused.payload.message.endswith(
        "version 1 of fraud-detector is in Archived; an Archived version returns to Production by a rollback, "
        "which an operator makes")


def test_a_stage_no_allowed_move_leads_to_is_refused_with_where_it_may_go():
    policy = Policy(allowed_transitions=(("None", "Staging"), ("Staging", "Production"), ("None", "Archived")))
    s = Scenario().given(register(n=1), command(SetPolicy, policy=policy),
                         command(RequestTransition, version=1, to_stage="Archived"))
    [refused] = s.when(command(RequestTransition, version=1, to_stage="Staging"))
    assert refused.payload.message.endswith(
        "version 1 of fraud-detector is in Archived; a version reaches Staging from no stage, "
        "and the policy allows no move out of Archived")


def test_moving_to_the_stage_it_is_in_is_refused():
    s = Scenario().given(register(n=1))
    assert s.rejected(command(RequestTransition, version=1, to_stage="None")) == "stage_unchanged"


def test_the_requester_may_not_approve_their_own_request():
    s = Scenario().given(register(n=1, actor=BOB), command(RequestTransition, version=1, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, actor=CAROL, version=1, to_stage="Production"))
    assert s.rejected(command(ApproveTransition, actor=CAROL, request_id=requested.payload.request_id)) == "self_approval"


def test_the_registrant_may_not_approve_their_own_version():
    s = Scenario().given(register(n=1, actor=BOB), command(RequestTransition, version=1, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, version=1, to_stage="Production"))
    assert s.rejected(command(ApproveTransition, actor=BOB, request_id=requested.payload.request_id)) == "self_approval"


def test_approving_needs_the_approver_role():
    s = Scenario().given(register(n=1), command(RequestTransition, version=1, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, version=1, to_stage="Production"))
    assert s.rejected(command(ApproveTransition, actor=OPS, request_id=requested.payload.request_id)) == "forbidden"


def test_an_unknown_request_cannot_be_approved_or_denied():
    from uuid import uuid4
    s = Scenario().given(register(n=1))
    assert s.rejected(command(ApproveTransition, actor=BOB, request_id=uuid4())) == "request_not_found"
    assert s.rejected(command(DenyTransition, actor=BOB, request_id=uuid4())) == "request_not_found"


def test_k_of_n_approvals_and_no_one_approves_twice():
    policy = Policy(approvals_required={"Production": 2})
    s = Scenario().given(register(n=1), command(SetPolicy, policy=policy),
                         command(RequestTransition, version=1, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, version=1, to_stage="Production"))
    rid = requested.payload.request_id
    [first] = s.when(command(ApproveTransition, actor=BOB, request_id=rid))
    assert (first.type, first.payload.approvals, stages(s)) == ("ApprovalGranted", 1, {1: "Staging"})
    assert s.rejected(command(ApproveTransition, actor=BOB, request_id=rid)) == "already_approved"
    events = s.when(command(ApproveTransition, actor=CAROL, request_id=rid))
    assert [e.type for e in events] == ["ApprovalGranted", "StageChanged"]


def test_approvals_expire_after_the_policy_ttl():
    policy = Policy(approvals_required={"Production": 2}, approval_ttl_s=3600)
    s = Scenario().given(register(n=1), command(SetPolicy, policy=policy),
                         command(RequestTransition, version=1, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, version=1, to_stage="Production"))
    rid = requested.payload.request_id
    s.when(command(ApproveTransition, actor=BOB, request_id=rid, at=T0))
    [late] = s.when(command(ApproveTransition, actor=CAROL, request_id=rid, at=T0 + timedelta(hours=2)))
    assert (late.type, late.payload.approvals) == ("ApprovalGranted", 1)  # bob's had expired
    assert stages(s) == {1: "Staging"}


def test_a_denied_request_is_closed():
    s = Scenario().given(register(n=1), command(RequestTransition, version=1, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, version=1, to_stage="Production"))
    [denied] = s.when(command(DenyTransition, actor=BOB, request_id=requested.payload.request_id))
    assert denied.type == "ApprovalDenied" and s.state.pending == {}
    assert s.rejected(command(ApproveTransition, actor=CAROL, request_id=requested.payload.request_id)) == "request_not_found"


def test_denying_needs_the_approver_role():
    s = Scenario().given(register(n=1), command(RequestTransition, version=1, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, version=1, to_stage="Production"))
    assert s.rejected(command(DenyTransition, actor=ALICE, request_id=requested.payload.request_id)) == "forbidden"


# --- archive_existing: never zero or two Production versions ------------------

def test_promotion_archives_the_previous_production_version_in_one_decision():
    s = Scenario().given(register(n=1), register(n=2))
    in_production(s, 1)
    s.when(command(RequestTransition, version=2, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, version=2, to_stage="Production"))
    events = s.when(command(ApproveTransition, actor=BOB, request_id=requested.payload.request_id))
    assert [(e.type, getattr(e.payload, "why", None)) for e in events] == [
        ("ApprovalGranted", None), ("StageChanged", "promoted"), ("StageChanged", "archived-by-promotion")]
    assert len({e.seq for e in events}) == 3 and events[-1].closes_decision
    assert stages(s) == {1: "Archived", 2: "Production"}


def test_without_archive_existing_both_stay_in_production():
    s = Scenario().given(register(n=1), register(n=2))
    in_production(s, 1)
    s.when(command(RequestTransition, version=2, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, version=2, to_stage="Production", archive_existing=False))
    s.when(command(ApproveTransition, actor=BOB, request_id=requested.payload.request_id))
    assert stages(s) == {1: "Production", 2: "Production"}


def test_a_move_to_staging_archives_the_other_staging_versions_only_when_asked():
    # MLflow's archive_existing_versions: the versions already in the target
    # stage go to Archived in the same decision, for Staging as for Production.
    s = Scenario().given(register(n=1), register(n=2), register(n=3),
                         command(RequestTransition, version=1, to_stage="Staging"))
    s.when(command(RequestTransition, version=2, to_stage="Staging"))
    assert stages(s) == {1: "Staging", 2: "Staging", 3: "None"}  # unsaid: a move to Staging archives nothing
    events = s.when(command(RequestTransition, version=3, to_stage="Staging", archive_existing=True))
    assert [(e.payload.version, e.payload.from_stage, e.payload.why) for e in events] == [
        (3, "None", "promoted"), (1, "Staging", "archived-by-promotion"), (2, "Staging", "archived-by-promotion")]
    assert events[-1].closes_decision and not events[0].closes_decision
    assert stages(s) == {1: "Archived", 2: "Archived", 3: "Staging"}


# --- rollback --------------------------------------------------------------------

def test_an_operator_rolls_back_an_archived_version_and_the_current_one_is_archived():
    s = Scenario().given(register(n=1), register(n=2))
    in_production(s, 1)
    in_production(s, 2)
    events = s.when(command(Rollback, actor=OPS, version=1))
    assert [(e.payload.version, e.payload.why) for e in events] == [(1, "rollback"), (2, "archived-by-promotion")]
    assert stages(s) == {1: "Production", 2: "Archived"}


def test_rollback_needs_the_operator_role_and_an_archived_version():
    s = Scenario().given(register(n=1), register(n=2))
    in_production(s, 1)
    in_production(s, 2)
    assert s.rejected(command(Rollback, actor=ALICE, version=1)) == "forbidden"
    assert s.rejected(command(Rollback, actor=OPS, version=2)) == "not_archived"


def test_a_policy_can_forbid_rollbacks():
    s = Scenario().given(register(n=1), command(SetPolicy, policy=Policy(rollback_allowed=False)))
    assert s.rejected(command(Rollback, actor=OPS, version=1)) == "rollback_not_allowed"


# --- gate rules ------------------------------------------------------------------

def test_metric_thresholds_gate_the_stage():
    policy = Policy(metric_thresholds={"Staging": (MetricThreshold(metric="auc", op=">=", value=0.9),
                                                   MetricThreshold(metric="latency_p99_ms", op="<=", value=50))})
    s = Scenario().given(create(), command(SetPolicy, policy=policy),
                         register(n=1, metrics={"auc": 0.88, "latency_p99_ms": 40}))
    [refused] = s.when(command(RequestTransition, version=1, to_stage="Staging"))
    assert refused.payload.reason == "gate_failed"
    assert "auc=0.88 fails >= 0.9" in refused.payload.message
    s.when(command(ReportMetrics, version=1, metrics={"auc": 0.93}))
    [moved] = s.when(command(RequestTransition, version=1, to_stage="Staging"))
    assert moved.type == "StageChanged"


def test_a_missing_metric_fails_its_threshold():
    policy = Policy(metric_thresholds={"Staging": (MetricThreshold(metric="auc", op=">", value=0.5),)})
    s = Scenario().given(create(), command(SetPolicy, policy=policy), register(n=1))
    [refused] = s.when(command(RequestTransition, version=1, to_stage="Staging"))
    assert "auc not reported" in refused.payload.message


def test_a_challenger_must_beat_the_champion_by_the_margin():
    policy = Policy(champion=ChampionRule(metric="auc", margin=0.01))
    s = Scenario().given(create(), command(SetPolicy, policy=policy),
                         register(n=1, metrics={"auc": 0.90}), register(n=2, metrics={"auc": 0.905}))
    in_production(s, 1)
    s.when(command(RequestTransition, version=2, to_stage="Staging"))
    [refused] = s.when(command(RequestTransition, version=2, to_stage="Production"))
    assert refused.payload.reason == "gate_failed" and "beats_champion" in refused.payload.message
    s.when(command(ReportMetrics, version=2, metrics={"auc": 0.92}))
    [requested] = s.when(command(RequestTransition, version=2, to_stage="Production"))
    assert requested.type == "TransitionRequested"


def test_lower_is_better_champion_metrics():
    policy = Policy(champion=ChampionRule(metric="latency_p99_ms", margin=5, higher_is_better=False))
    s = Scenario().given(create(), command(SetPolicy, policy=policy),
                         register(n=1, metrics={"latency_p99_ms": 40}), register(n=2, metrics={"latency_p99_ms": 30}))
    in_production(s, 1)
    s.when(command(RequestTransition, version=2, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, version=2, to_stage="Production"))
    assert requested.type == "TransitionRequested"


def test_lineage_is_required_where_the_policy_says():
    policy = Policy(lineage_required_for=("Staging", "Production"))
    s = Scenario().given(create(), command(SetPolicy, policy=policy), register(n=1), register(n=2, **LINEAGE))
    [refused] = s.when(command(RequestTransition, version=1, to_stage="Staging"))
    assert "missing run_id, dataset_sha256, model_card" in refused.payload.message
    [moved] = s.when(command(RequestTransition, version=2, to_stage="Staging"))
    assert moved.type == "StageChanged"


def test_no_promotion_to_production_inside_a_freeze_window_judged_by_the_command_time():
    monday_morning = FreezeWindow(weekday=0, start=time(9, 0), end=time(12, 0))
    policy = Policy(freeze_windows=(monday_morning,))
    s = Scenario().given(create(), command(SetPolicy, policy=policy), register(n=1),
                         command(RequestTransition, version=1, to_stage="Staging"))
    [refused] = s.when(command(RequestTransition, version=1, to_stage="Production", at=T0))  # Monday 09:14
    assert refused.payload.reason == "gate_failed" and "frozen until 12:00:00" in refused.payload.message
    [requested] = s.when(command(RequestTransition, version=1, to_stage="Production", at=T0 + timedelta(hours=3)))
    assert requested.type == "TransitionRequested"


def test_gates_are_judged_again_when_the_last_approval_arrives():
    monday_morning = FreezeWindow(weekday=0, start=time(9, 0), end=time(12, 0))
    s = Scenario().given(register(n=1), command(RequestTransition, version=1, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, version=1, to_stage="Production", at=T0 - timedelta(hours=1)))
    s.when(command(SetPolicy, policy=Policy(freeze_windows=(monday_morning,))))
    assert s.rejected(command(ApproveTransition, actor=BOB, request_id=requested.payload.request_id, at=T0)) == "gate_failed"


# --- aliases -------------------------------------------------------------------------

def test_aliases_point_at_versions_and_record_where_they_were():
    s = Scenario().given(register(n=1), register(n=2), command(SetAlias, alias="champion", version=1))
    [moved] = s.when(command(SetAlias, alias="champion", version=2))
    assert (moved.payload.version, moved.payload.previous_version) == (2, 1)
    [deleted] = s.when(command(DeleteAlias, alias="champion"))
    assert deleted.payload.version == 2 and s.state.aliases == {}


def test_only_an_approver_may_protect_or_move_a_protected_alias():
    s = Scenario().given(register(n=1), register(n=2))
    assert s.rejected(command(SetAlias, alias="champion", version=1, protected=True)) == "forbidden"
    s.when(command(SetAlias, actor=BOB, alias="champion", version=1, protected=True))
    assert s.rejected(command(SetAlias, alias="champion", version=2)) == "forbidden"
    assert s.rejected(command(DeleteAlias, alias="champion")) == "forbidden"
    [moved] = s.when(command(SetAlias, actor=CAROL, alias="champion", version=2, protected=True))
    assert moved.type == "AliasSet"


def test_an_unknown_alias_cannot_be_deleted():
    s = Scenario().given(register(n=1))
    assert s.rejected(command(DeleteAlias, alias="challenger")) == "alias_not_found"


# --- deletes are tombstones ----------------------------------------------------------

def test_a_deleted_version_loses_its_aliases_and_can_never_be_promoted():
    s = Scenario().given(register(n=1), command(SetAlias, alias="challenger", version=1))
    events = s.when(command(DeleteVersion, version=1))
    assert [e.type for e in events] == ["AliasDeleted", "VersionDeleted"]
    assert s.rejected(command(RequestTransition, version=1, to_stage="Staging")) == "version_deleted"
    assert s.rejected(command(SetAlias, alias="champion", version=1)) == "version_deleted"
    [next_one] = s.when(register(n=2))
    assert next_one.payload.version == 2  # numbers are never reused


def test_a_production_version_cannot_be_deleted():
    s = Scenario().given(register(n=1))
    in_production(s, 1)
    assert s.rejected(command(DeleteVersion, version=1)) == "version_in_production"
    assert s.rejected(command(DeleteModel)) == "version_in_production"


def test_a_deleted_model_refuses_everything_after():
    s = Scenario().given(register(n=1))
    [deleted] = s.when(command(DeleteModel))
    assert deleted.type == "ModelDeleted"
    assert s.rejected(register(n=2)) == "model_deleted"
    assert s.rejected(create()) == "model_deleted"


# --- descriptions, tags, metrics -----------------------------------------------------

def test_descriptions_tags_and_metrics_update_the_state():
    s = Scenario().given(register(n=1, metrics={"auc": 0.9}))
    s.when(command(UpdateModel, description="scores card payments"))
    s.when(command(UpdateVersion, version=1, description="baseline"))
    s.when(command(SetTag, key="team", value="risk"))
    s.when(command(SetTag, version=1, key="validated", value="yes"))
    s.when(command(ReportMetrics, version=1, metrics={"latency_p99_ms": 12}))
    assert s.state.description == "scores card payments" and s.state.tags == {"team": "risk"}
    v1 = s.state.versions[1]
    assert (v1.description, v1.tags, v1.metrics) == ("baseline", {"validated": "yes"},
                                                      {"auc": 0.9, "latency_p99_ms": 12})
    s.when(command(DeleteTag, version=1, key="validated"))
    assert s.state.versions[1].tags == {}
    assert s.rejected(command(DeleteTag, key="nope")) == "tag_not_found"


@pytest.mark.parametrize("kind, fields", [
    (UpdateVersion, {"version": 9, "description": "x"}),
    (ReportMetrics, {"version": 9, "metrics": {"auc": 1.0}}),
    (RequestTransition, {"version": 9, "to_stage": "Staging"}),
    (SetAlias, {"alias": "champion", "version": 9}),
    (DeleteVersion, {"version": 9}),
    (SetTag, {"version": 9, "key": "k", "value": "v"}),
])
def test_commands_on_a_missing_version_are_refused_with_version_not_found(kind, fields):
    s = Scenario().given(register(n=1))
    assert s.rejected(command(kind, **fields)) == "version_not_found"


@pytest.mark.parametrize("kind, fields", [
    (UpdateModel, {"description": "x"}), (DeleteModel, {}), (SetPolicy, {"policy": Policy()}),
])
def test_commands_on_a_missing_model_are_refused_with_model_not_found(kind, fields):
    assert Scenario().rejected(command(kind, **fields)) == "model_not_found"


# --- the default policy ----------------------------------------------------------------

def test_the_default_policy_is_set_by_an_event_on_its_own_stream():
    from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM
    stream = Scenario(model=DEFAULT_POLICY_STREAM)
    strict = Policy(approvals_required={"Production": 2})
    [installed] = stream.when(command(SetPolicy, model=DEFAULT_POLICY_STREAM, policy=strict))
    assert installed.type == "PolicySet" and installed.seq == 1


def test_a_model_without_a_policy_decides_under_the_default_in_force_and_says_so():
    from modelog_contract.domain import decide
    from modelog_contract.domain.policy import PolicyInForce
    s = Scenario().given(register(n=1), command(RequestTransition, version=1, to_stage="Staging"))
    strict = PolicyInForce(policy=Policy(approvals_required={"Production": 2}), seq=7)
    [requested] = decide(s.state, command(RequestTransition, version=1, to_stage="Production"), default=strict)
    assert requested.payload.approvals_required == 2
    assert requested.payload.rule_results[0].detail == "the default policy set at seq 7"


def test_a_model_policy_overrides_the_default():
    from modelog_contract.domain import decide
    from modelog_contract.domain.policy import PolicyInForce
    s = Scenario().given(register(n=1), command(SetPolicy, policy=Policy(approvals_required={})),
                         command(RequestTransition, version=1, to_stage="Staging"))
    strict = PolicyInForce(policy=Policy(approvals_required={"Production": 2}), seq=7)
    [moved] = decide(s.state, command(RequestTransition, version=1, to_stage="Production"), default=strict)
    assert moved.type == "StageChanged"
    assert moved.payload.rule_results[0].detail == "the model's own policy"


def test_reserved_names_hold_no_models():
    from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM
    assert Scenario(model="modelog.anything").rejected(register(model="modelog.anything")) == "reserved_name"
    stream = Scenario(model=DEFAULT_POLICY_STREAM)
    assert stream.rejected(register(model=DEFAULT_POLICY_STREAM)) == "reserved_name"


# --- refusals say what was wrong and what to do ----------------------------------------

def refusal(s: Scenario, cmd) -> str:
    """The message of the refusal (fails if the command was accepted)."""
    s.rejected(cmd)
    return s.events[-1].payload.message


def requested_for_production(s: Scenario, version: int = 1, at=T0):
    s.when(command(RequestTransition, version=version, to_stage="Staging", at=at))
    [requested] = s.when(command(RequestTransition, version=version, to_stage="Production", at=at))
    return requested.payload.request_id


def test_approving_a_denied_request_says_who_denied_it_and_when():
    s = Scenario().given(register(n=1))
    rid = requested_for_production(s)
    s.when(command(DenyTransition, actor=BOB, request_id=rid, at=T0 + timedelta(minutes=5)))
    assert refusal(s, command(ApproveTransition, actor=CAROL, request_id=rid)) == (
        f"request {rid} (version 1 to Production) is no longer pending: bob denied it at "
        "2026-11-02T09:19:00+00:00; request the transition again if it is still wanted")


def test_approving_an_applied_request_says_who_approved_it_and_when_it_was_applied():
    policy = Policy(approvals_required={"Production": 2})
    s = Scenario().given(register(n=1), command(SetPolicy, policy=policy))
    rid = requested_for_production(s)
    s.when(command(ApproveTransition, actor=BOB, request_id=rid, at=T0 + timedelta(minutes=1)))
    s.when(command(ApproveTransition, actor=CAROL, request_id=rid, at=T0 + timedelta(minutes=2)))
    late = Actor(subject="dave", roles=("approver",))
    assert refusal(s, command(DenyTransition, actor=late, request_id=rid)) == (
        f"request {rid} (version 1 to Production) is no longer pending: approved by bob and carol and applied "
        "at 2026-11-02T09:16:00+00:00; version 1 is in Production now")


def test_approving_a_request_another_decision_overtook_says_which_move_closed_it():
    s = Scenario().given(register(n=1))
    first = requested_for_production(s)
    [second] = s.when(command(RequestTransition, version=1, to_stage="Production"))
    s.when(command(ApproveTransition, actor=BOB, request_id=first, at=T0 + timedelta(minutes=3)))
    message = refusal(s, command(ApproveTransition, actor=CAROL, request_id=second.payload.request_id))
    assert message.endswith(
        "is no longer pending: bob moved version 1 by another decision at 2026-11-02T09:17:00+00:00, which "
        "closed it; the version is in Production now; request the transition again if it is still wanted")


def test_approving_a_request_for_a_version_deleted_since_says_who_deleted_it():
    s = Scenario().given(register(n=1))
    rid = requested_for_production(s)
    s.when(command(DeleteVersion, version=1, at=T0 + timedelta(minutes=4)))
    assert refusal(s, command(ApproveTransition, actor=BOB, request_id=rid)) == (
        f"request {rid} (version 1 to Production) is no longer pending: alice deleted version 1 at "
        "2026-11-02T09:18:00+00:00, which closed it")


def test_only_the_latest_settled_requests_are_remembered():
    from modelog_contract.domain.state import SETTLED_REMEMBERED
    s = Scenario().given(register(n=1), command(RequestTransition, version=1, to_stage="Staging"))
    denied = []
    for _ in range(SETTLED_REMEMBERED + 1):
        [requested] = s.when(command(RequestTransition, version=1, to_stage="Production"))
        s.when(command(DenyTransition, actor=BOB, request_id=requested.payload.request_id))
        denied.append(requested.payload.request_id)
    assert list(s.state.settled) == denied[1:]
    assert refusal(s, command(ApproveTransition, actor=CAROL, request_id=denied[0])) == (
        f"model 'fraud-detector' has no pending transition request {denied[0]}; it has no pending requests")
    assert "bob denied it" in refusal(s, command(ApproveTransition, actor=CAROL, request_id=denied[1]))


def test_an_unknown_request_is_refused_naming_the_pending_ones():
    s = Scenario().given(register(n=1))
    rid = requested_for_production(s)
    unknown = uuid4()
    assert refusal(s, command(ApproveTransition, actor=BOB, request_id=unknown)) == (
        f"model 'fraud-detector' has no pending transition request {unknown}; its pending requests: {rid}")


def test_approving_twice_says_when_the_first_approval_was_given():
    policy = Policy(approvals_required={"Production": 2})
    s = Scenario().given(register(n=1), command(SetPolicy, policy=policy))
    rid = requested_for_production(s)
    s.when(command(ApproveTransition, actor=BOB, request_id=rid, at=T0 + timedelta(minutes=1)))
    assert refusal(s, command(ApproveTransition, actor=BOB, request_id=rid)) == (
        f"bob already approved request {rid} at 2026-11-02T09:15:00+00:00 (1 of 2 approvals): "
        "another holder of the 'approver' role must approve it")


def test_self_approval_says_which_of_the_two_roles_the_approver_played():
    s = Scenario().given(register(n=1, actor=BOB))
    s.when(command(RequestTransition, version=1, to_stage="Staging"))
    [requested] = s.when(command(RequestTransition, actor=CAROL, version=1, to_stage="Production"))
    rid = requested.payload.request_id
    four_eyes = "four eyes: another holder of the 'approver' role must approve it"
    assert refusal(s, command(ApproveTransition, actor=CAROL, request_id=rid)) == (
        f"carol requested this transition; {four_eyes}")
    assert refusal(s, command(ApproveTransition, actor=BOB, request_id=rid)) == (
        f"bob registered version 1; {four_eyes}")


@pytest.mark.parametrize("given, when, told", [
    ([], command(RequestTransition, actor=OPS, version=1, to_stage="Staging"),
     "no model named 'fraud-detector': create it, or register a version of it, first"),
    ([register(n=1)], create(),
     "model 'fraud-detector' already exists (its only version is 1): register versions of it or update it instead"),
    ([register(n=1)], register(n=2, expected_seq=1),
     "model 'fraud-detector' is at seq 2, not 1 as the command expected: someone changed it first; "
     "read it again and, if the change still applies, retry expecting seq 2"),
    ([register(n=1), register(n=2)], command(UpdateVersion, version=7, description="x"),
     "model 'fraud-detector' has no version 7; its versions are 1 to 2"),
    ([register(n=1), register(n=2), command(DeleteVersion, version=1)],
     command(ReportMetrics, version=1, metrics={"auc": 0.9}),
     "version 1 of 'fraud-detector' was deleted and can no longer change or move; the model's live versions: 2"),
    ([register(n=1)], command(RequestTransition, version=1, to_stage="None"),
     "version 1 of 'fraud-detector' is already in no stage; from there the policy allows a move to "
     "Staging or Archived"),
    ([register(n=1)], command(DeleteTag, version=1, key="team"),
     "version 1 of 'fraud-detector' has no tag 'team'; it has no tags"),
    ([register(n=1), command(SetTag, key="team", value="risk"), command(SetTag, key="tier", value="1")],
     command(DeleteTag, key="owner"),
     "model 'fraud-detector' has no tag 'owner'; its tags: 'team', 'tier'"),
    ([register(n=1), command(SetAlias, alias="champion", version=1)], command(DeleteAlias, alias="challenger"),
     "model 'fraud-detector' has no alias @challenger; its aliases: @champion"),
    ([register(n=1)], command(SetAlias, alias="champion", version=1, protected=True),
     "alice needs the 'approver' role to protect the alias @champion; their roles are publisher"),
    ([register(n=1)], command(Rollback, actor=OPS, version=1),
     "version 1 of 'fraud-detector' is in no stage; only an Archived version can be rolled back to; "
     "the model has no Archived versions"),
    ([register(n=1), command(SetPolicy, policy=Policy(rollback_allowed=False))], command(Rollback, actor=OPS, version=1),
     "the model's own policy does not allow rollbacks (rollback_allowed is false): "
     "promote a version through a transition request instead"),
    ([register(n=1), command(DeleteModel)], command(SetTag, key="team", value="risk"),
     "model 'fraud-detector' was deleted: it takes no more commands"),
    ([register(n=1), command(DeleteModel)], register(n=2),
     "model 'fraud-detector' was deleted: its name is not used for a new model; choose another name"),
])
def test_each_refusal_names_what_was_wrong_and_what_is_allowed(given, when, told):
    assert refusal(Scenario().given(*given), when) == told


def test_deleting_a_model_names_the_versions_still_in_production():
    s = Scenario().given(register(n=1))
    in_production(s, 1)
    assert refusal(s, command(DeleteModel)) == (
        "model 'fraud-detector' has version 1 in Production: archive it first")


def test_reserved_names_say_what_the_registry_keeps_there():
    from modelog_contract.domain.policy import DEFAULT_POLICY_STREAM
    assert refusal(Scenario(model="modelog.anything"), register(model="modelog.anything")) == (
        "'modelog.anything' starts with 'modelog.', which names the registry's own streams: "
        "choose a model name without it")
    assert refusal(Scenario(model=DEFAULT_POLICY_STREAM), register(model=DEFAULT_POLICY_STREAM)) == (
        "'modelog.default-policy' holds only the registry's default policy: it takes SetPolicy, not RegisterVersion")


def test_gate_refusals_name_the_value_and_the_bound():
    policy = Policy(metric_thresholds={"Staging": (MetricThreshold(metric="auc", op=">=", value=0.9),)},
                    champion=ChampionRule(metric="auc", margin=0.01),
                    lineage_required_for=("Staging",))
    s = Scenario().given(create(), command(SetPolicy, policy=policy), register(n=1))
    message = refusal(s, command(RequestTransition, version=1, to_stage="Staging"))
    assert "lineage_present: missing run_id, dataset_sha256, model_card: the policy requires them for Staging; " \
           "register a version that records them" in message
    assert "metric_thresholds: auc not reported (needs >= 0.9): report it first" in message


def test_a_challenger_short_of_the_margin_is_told_the_gain_it_needs():
    policy = Policy(champion=ChampionRule(metric="auc", margin=0.01))
    s = Scenario().given(create(), command(SetPolicy, policy=policy),
                         register(n=1, metrics={"auc": 0.90}), register(n=2, metrics={"auc": 0.905}))
    in_production(s, 1)
    s.when(command(RequestTransition, version=2, to_stage="Staging"))
    assert refusal(s, command(RequestTransition, version=2, to_stage="Production")).endswith(
        "beats_champion: auc 0.905 vs champion v1 0.9: gain 0.005, margin 0.01 (needs a gain of at least 0.01)")


def test_a_freeze_refusal_says_when_to_ask_again():
    monday_morning = FreezeWindow(weekday=0, start=time(9, 0), end=time(12, 0))
    s = Scenario().given(create(), command(SetPolicy, policy=Policy(freeze_windows=(monday_morning,))),
                         register(n=1), command(RequestTransition, version=1, to_stage="Staging"))
    assert refusal(s, command(RequestTransition, version=1, to_stage="Production")).endswith(
        "outside_freeze_window: 2026-11-02T09:14:00+00:00 is in the freeze on Mondays 09:00:00-12:00:00 UTC: "
        "frozen until 12:00:00 UTC; request again after that")


def test_a_long_list_in_a_refusal_names_the_first_few_and_counts_the_rest():
    from modelog_contract.domain.words import LISTED
    tags = [command(SetTag, key=f"k{n:02d}", value="v") for n in range(LISTED + 2)]
    s = Scenario().given(register(n=1), *tags)
    shown = ", ".join(f"'k{n:02d}'" for n in range(LISTED))
    assert refusal(s, command(DeleteTag, key="owner")) == (
        f"model 'fraud-detector' has no tag 'owner'; its tags: {shown} and 2 more")
