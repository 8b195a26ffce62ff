"""A decision the sentinel asks for carries its monitoring evidence into the
event, and events written before evidence existed keep their bytes; a policy
may list rollback rules, and a policy set before they existed parses unchanged."""

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from modelog_contract.codec import decode_event, encode
from modelog_contract.domain.commands import RequestTransition, Rollback, SetPolicy, SetTrafficSplit
from modelog_contract.domain.monitoring import ErrorRateRule, Evidence, VersionWindow
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.types import Actor
from tests.unit.builders import OPS, Scenario, command, register

ADMIN = Actor(subject="ada", roles=("admin",))
NO_APPROVALS = Policy(approvals_required={})
START = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
EVIDENCE = Evidence(rule=ErrorRateRule(name="errors", max_error_percent=2, window_s=60, min_requests=100),
                    window_start=START, window_end=START.replace(minute=1),
                    versions=(VersionWindow(version=2, requests=400, errors=40, metrics={"latency_ms": 12.5}),),
                    detail="version 2: 40 errors in 400 requests (10.00%) > 2%")


def two_productions() -> Scenario:
    """v1 was in Production, then v2 replaced it (v1 Archived); v3 in Staging."""
    move = lambda n, stage: command(RequestTransition, version=n, to_stage=stage)  # noqa: E731
    return Scenario().given(register(n=1), register(n=2), register(n=3),
                            command(SetPolicy, actor=ADMIN, policy=NO_APPROVALS),
                            move(1, "Staging"), move(1, "Production"), move(2, "Staging"), move(2, "Production"),
                            move(3, "Staging"))


def test_a_rollback_asked_with_evidence_records_it_in_the_stage_change():
    s = two_productions()
    back, archived = s.when(command(Rollback, actor=OPS, version=1, evidence=EVIDENCE))
    assert (back.payload.version, back.payload.why, back.payload.evidence) == (1, "rollback", EVIDENCE)
    assert archived.payload.evidence is None  # the evidence is the decision's, told once
    assert decode_event(encode(back)).payload.evidence == EVIDENCE


def test_a_split_asked_with_evidence_records_it():
    s = two_productions()
    [decided] = s.when(command(SetTrafficSplit, actor=OPS, routes=[{"version": 2, "weight": 100}], evidence=EVIDENCE))
    assert decided.payload.evidence == EVIDENCE


def test_an_event_without_evidence_is_stored_without_the_field():
    s = two_productions()
    back, _ = s.when(command(Rollback, actor=OPS, version=1))
    assert b"evidence" not in encode(back)
    assert decode_event(encode(back)) == back


def test_a_policy_stored_before_rollback_rules_parses_and_stores_the_same_bytes():
    stored = Policy(approvals_required={"Production": 2}).model_dump_json()
    assert "rollback_rules" not in stored
    assert Policy.model_validate_json(stored).model_dump_json() == stored


def test_a_policy_with_rollback_rules_round_trips():
    policy = Policy(rollback_rules=[{"kind": "error_rate", "name": "errors", "max_error_percent": 2,
                                     "window_s": 300, "min_requests": 500},
                                    {"kind": "canary_metric", "name": "slow", "metric": "latency_ms",
                                     "margin": 5, "higher_is_better": False}])
    assert Policy.model_validate_json(policy.model_dump_json()) == policy


@pytest.mark.parametrize("rules", [
    [{"kind": "error_rate", "max_error_percent": 0}],
    [{"kind": "error_rate", "max_error_percent": 101}],
    [{"kind": "error_rate", "max_error_percent": 2, "min_requests": 0}],
    [{"kind": "canary_metric", "metric": "latency_ms", "margin": -1}],
    [{"kind": "error_rate", "max_error_percent": 2}, {"kind": "error_rate", "max_error_percent": 5}],
    [{"kind": "p99", "max_error_percent": 2}],
], ids=["zero-percent", "above-100", "no-requests", "negative-margin", "same-name-twice", "unknown-kind"])
def test_a_policy_with_a_malformed_rollback_rule_is_refused(rules):
    with pytest.raises(ValidationError):
        Policy(rollback_rules=rules)
