"""Unverified artifacts in the domain: a version registered from a source
modelog could not read says so for ever, a policy can keep it out of
Production, and events written before artifacts had a form (and policies
before the rule existed) keep their bytes, so their hashes still hold."""

import hashlib
from uuid import uuid4

from modelog_contract.domain.chain import canonical_json
from modelog_contract.domain.commands import ApproveTransition, RequestTransition, SetPolicy
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.types import Artifact
from tests.unit.builders import BOB, T0, Scenario, artifact, command, create, register

SOURCE = "file:///home/alice/mlruns/0/abc/artifacts/model"
UNVERIFIED = Artifact(uri=SOURCE, sha256=hashlib.sha256(SOURCE.encode()).hexdigest(), size=0, form="unverified")
TREE = Artifact(uri="s3://modelog-artifacts/sha256/ab/" + "ab" * 32, sha256="ab" * 32, size=420, form="manifest")
GUARDED = Policy(verified_artifact_required_for=("Production",))


def registered(version_artifact: Artifact, policy: Policy = GUARDED) -> Scenario:
    s = Scenario().given(create(), command(SetPolicy, policy=policy))
    s.when(register(n=1).model_copy(update={"artifact": version_artifact, "command_id": uuid4()}))
    return s


def ask_for_production(s: Scenario) -> list:
    s.when(command(RequestTransition, version=1, to_stage="Staging"))
    asked = s.when(command(RequestTransition, version=1, to_stage="Production"))
    if asked[0].type != "TransitionRequested":
        return asked
    return s.when(command(ApproveTransition, actor=BOB, request_id=asked[0].payload.request_id, at=T0))


def test_an_unverified_version_is_refused_for_production_under_a_policy_that_requires_verified_files():
    s = registered(UNVERIFIED)

    [refused] = ask_for_production(s)

    assert refused.type == "CommandRejected" and refused.payload.reason == "gate_failed"
    assert f"artifact_verified: version 1 was registered from {SOURCE!r}, which modelog could not read" \
           in refused.payload.message
    assert s.state.versions[1].stage == "Staging"  # Staging was not guarded


def test_a_version_whose_tree_modelog_holds_reaches_production_under_that_policy():
    s = registered(TREE)

    ask_for_production(s)

    assert s.state.versions[1].stage == "Production"


def test_without_the_rule_an_unverified_version_may_reach_production():
    s = registered(UNVERIFIED, Policy())

    ask_for_production(s)

    assert s.state.versions[1].stage == "Production" and not s.state.versions[1].artifact.verified


def test_an_artifact_without_a_form_serializes_as_before_forms_existed():
    old = artifact(7)

    assert canonical_json(old.model_dump(mode="json")) == (
        b'{"sha256":"' + f"{7:064x}".encode() + b'","size":7,"uri":"s3://modelog-artifacts/sha256/'
        + f"{7:064x}".encode() + b'"}')
    assert old.verified and old.form is None


def test_a_policy_without_the_rule_serializes_as_before_the_rule_existed():
    assert "verified_artifact_required_for" not in Policy().model_dump(mode="json")
    assert GUARDED.model_dump(mode="json")["verified_artifact_required_for"] == ["Production"]
    assert Policy.model_validate(GUARDED.model_dump(mode="json")) == GUARDED


def test_a_form_reads_back_from_an_event_as_written():
    for each in (TREE, UNVERIFIED):
        assert Artifact.model_validate(each.model_dump(mode="json")) == each
