"""Serving reports as facts: an instance says which version it serves, the
promoter records it without gates, and no later decision depends on it."""

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from modelog.cli.audit import describe
from modelog_contract.domain.commands import DeleteVersion, ReportServing, RequestTransition, SetPolicy
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.types import Actor
from tests.unit.builders import ALICE, OPS, T0, Scenario, command, register

SERVER = Actor(subject="web-fleet", roles=("server",))
ADMIN = Actor(subject="ada", roles=("admin",))
# A policy whose every gate would refuse a promotion: reports must not meet it.
STRICT = Policy(approvals_required={"Staging": 3, "Production": 3})


def report(version: int, instance: str = "web-1", actor: Actor = SERVER, **fields) -> ReportServing:
    return command(ReportServing, actor=actor, instance=instance, version=version,
                   since=T0 + timedelta(minutes=version), **fields)


def served() -> Scenario:
    return Scenario().given(register(n=1), register(n=2), command(SetPolicy, actor=ADMIN, policy=STRICT))


def test_a_serving_instance_reports_its_version_as_a_fact_no_gate_stands_in_its_way():
    s = served()
    [fact] = s.when(report(2, host="node-7", target="stage:Production"))
    assert fact.type == "ServingReported" and fact.actor.subject == "web-fleet"
    assert (fact.payload.instance, fact.payload.version, fact.payload.since) == ("web-1", 2, T0 + timedelta(minutes=2))
    assert (fact.payload.host, fact.payload.target) == ("node-7", "stage:Production")


def test_an_operator_may_report_by_hand_and_a_publisher_may_not():
    s = served()
    assert [e.type for e in s.when(report(1, actor=OPS))] == ["ServingReported"]
    assert s.rejected(report(1, actor=ALICE)) == "forbidden"
    assert s.events[-1].payload.message == ("alice needs the 'server' or 'operator' role to report what an "
                                            "instance serves; their roles are publisher")


def test_a_report_of_an_unknown_or_deleted_version_is_refused_with_its_reason():
    s = served()
    assert s.rejected(report(9)) == "version_not_found"
    assert "has no version 9; its versions are 1 to 2" in s.events[-1].payload.message
    s.when(command(DeleteVersion, actor=ADMIN, version=2))
    assert s.rejected(report(2)) == "version_deleted"
    assert "version 2 of 'fraud-detector' was deleted" in s.events[-1].payload.message


def test_a_report_for_a_model_that_does_not_exist_is_refused():
    assert Scenario().rejected(report(1)) == "model_not_found"


def decisions(s: Scenario) -> dict:
    """The state a decision reads, without the head every event moves."""
    return s.state.model_dump(exclude={"seq", "head_hash", "decided"})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.just("report"), st.integers(1, 3), st.sampled_from(["a", "b"])),
                          st.tuples(st.just("move"), st.integers(1, 2), st.sampled_from(["Staging", "Production"]))),
                max_size=12))
def test_reports_change_nothing_a_decision_reads(steps):
    with_reports, without = served(), served()
    for kind, version, arg in steps:
        if kind == "report":
            with_reports.when(report(version, instance=arg))
        else:
            move = command(RequestTransition, version=version, to_stage=arg)
            with_reports.when(move)
            without.when(move)
    assert decisions(with_reports) == decisions(without)


def test_the_audit_timeline_says_a_report_in_words():
    event = {"type": "ServingReported", "payload": {"instance": "web-1", "version": 2, "since": "2026-11-02T09:16:00Z",
                                                     "host": "node-7", "target": "stage:Production"}}
    assert describe(event) == "instance web-1 on node-7 serves v2 since 2026-11-02T09:16:00Z (stage:Production)"
