"""Who may do what: each command's permission, roles, grants."""

import typing
from datetime import datetime, timezone
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelog_contract.domain import commands as c
from modelog_contract.domain.policy import Policy
from modelog_platform.identity.permissions import (
    ROLES,
    authorize,
    authorize_every_model,
    check,
    effective_roles,
    grant_claim,
    lacks_role,
    may_act_on,
    required_permission,
    roles_of,
)
from modelog_platform.identity.tokens import Identity
from tests.unit.builders import artifact

T0 = datetime(2026, 11, 2, 9, 14, tzinfo=timezone.utc)
COMMAND_TYPES = typing.get_args(typing.get_args(c.Command)[0])
# Each command type's fields beyond the envelope, and the role it needs (or roles, any one of which).
EXAMPLES = [
    (c.CreateModel, {}, "publisher"),
    (c.RegisterVersion, {"artifact": artifact(1)}, "publisher"),
    (c.UpdateModel, {"description": "d"}, "publisher"),
    (c.UpdateVersion, {"version": 1, "description": "d"}, "publisher"),
    (c.ReviseModelCard, {"version": 1, "model_card": "# Card", "summary": "s"}, ("publisher", "approver")),
    (c.SetTag, {"key": "k", "value": "v"}, "publisher"),
    (c.DeleteTag, {"key": "k"}, "publisher"),
    (c.ReportMetrics, {"version": 1, "metrics": {"auc": 0.9}}, "publisher"),
    (c.RequestTransition, {"version": 1, "to_stage": "Staging"}, "publisher"),
    (c.RequestTransition, {"version": 1, "to_stage": "Production"}, "publisher"),
    (c.RequestTransition, {"version": 1, "to_stage": "Archived"}, "operator"),
    (c.ApproveTransition, {"request_id": uuid4()}, "approver"),
    (c.DenyTransition, {"request_id": uuid4()}, "approver"),
    (c.Rollback, {"version": 1}, "operator"),
    (c.SetTrafficSplit, {"routes": [{"version": 1, "weight": 100}]}, "operator"),
    (c.ReportServing, {"instance": "web-1", "version": 1, "since": T0}, ("server", "operator")),
    (c.SetAlias, {"alias": "champion", "version": 1}, "publisher"),
    (c.SetAlias, {"alias": "champion", "version": 1, "protected": True}, "admin"),
    (c.DeleteAlias, {"alias": "champion"}, "publisher"),
    (c.SetPolicy, {"policy": Policy()}, "admin"),
    (c.DeleteVersion, {"version": 1}, "admin"),
    (c.DeleteModel, {}, "admin"),
]


def build(kind, fields, model="team-a.fraud"):
    return kind(command_id=uuid4(), model=model, actor={"subject": "x"}, issued_at=T0, **fields)


def who(*roles, grants=()):
    return Identity(subject="alice", roles=roles, issuer="modelog-dev", token_id="t", expires_at=T0,
                    grants=grants)


def test_every_command_type_has_a_permission():
    assert {kind for kind, _, _ in EXAMPLES} == set(COMMAND_TYPES)


@pytest.mark.parametrize("kind, fields, role", EXAMPLES, ids=lambda v: getattr(v, "__name__", None))
def test_each_command_needs_its_role_and_admin_may_do_anything(kind, fields, role):
    command = build(kind, fields)
    assert required_permission(command) == role
    for enough in roles_of(role):
        assert check(who(enough), command) is None
    assert check(who("admin"), command) is None
    others = [r for r in ROLES if r not in (*roles_of(role), "admin")]
    for other in others:
        refusal = check(who(other), command)
        assert refusal is not None and refusal.code == "forbidden"
        assert refusal.missing == f"{' or '.join(roles_of(role))} on team-a.fraud"
        assert all(repr(r) in refusal.message for r in roles_of(role))


def test_a_model_card_is_revised_by_its_author_or_a_reviewer_and_a_refusal_names_both():
    refusal = check(who("operator"), build(c.ReviseModelCard, {"version": 1, "model_card": "# Card", "summary": "s"}))
    assert refusal is not None
    assert refusal.message == "alice needs the 'publisher' or 'approver' role on model 'team-a.fraud'"
    assert refusal.missing == "publisher or approver on team-a.fraud"


def test_a_reader_may_write_nothing_and_unknown_roles_count_for_nothing():
    for kind, fields, _ in EXAMPLES:
        assert check(who("reader", "superuser", "root"), build(kind, fields)) is not None


@pytest.mark.parametrize("grants, model, allowed", [
    ((), "anything", True),
    (("team-a.*",), "team-a.fraud", True),
    (("team-a.*",), "team-b.fraud", False),
    (("team-a.*",), "team-a", False),  # the prefix includes the dot
    (("fraud",), "fraud", True),
    (("fraud",), "fraud-2", False),
    (("fraud", "team-b.*"), "team-b.churn", True),
    (("*",), "anything", True),
])
def test_grants_name_models_or_prefixes(grants, model, allowed):
    assert may_act_on(grants, model) is allowed
    refusal = check(who("publisher", grants=grants), build(c.CreateModel, {}, model))
    assert (refusal is None) is allowed
    if not allowed:
        assert model in refusal.message and refusal.missing == f"publisher on {model}"


def test_grant_specs_of_the_cli_become_claims():
    assert grant_claim("prefix:team-a.") == "team-a.*"
    assert grant_claim("model:fraud") == "fraud"
    assert grant_claim("team-a.*") == "team-a.*"
    with pytest.raises(ValueError, match="unknown grant"):
        grant_claim("tenant:x")


examples = st.sampled_from(EXAMPLES)
roles = st.lists(st.sampled_from(ROLES + ("superuser",)), max_size=4).map(tuple)
grant_sets = st.lists(st.sampled_from(["team-a.*", "team-b.*", "team-a.fraud", "churn", "*"]), max_size=3).map(tuple)
models = st.sampled_from(["team-a.fraud", "team-a.churn", "team-b.fraud", "churn", "fraud"])


@given(examples, roles, grant_sets, models, st.sampled_from(ROLES), st.sampled_from(["team-b.*", "fraud"]))
def test_more_roles_or_grants_never_take_a_permission_away(example, held, grants, model, extra_role, extra_grant):
    kind, fields, _ = example
    command = build(kind, fields, model)
    if check(who(*held, grants=grants), command) is None:
        assert check(who(*held, extra_role, grants=grants), command) is None
        if grants:
            assert check(who(*held, grants=grants + (extra_grant,)), command) is None


@given(examples, roles, grant_sets, models)
def test_allowed_exactly_when_a_held_role_covers_the_need_and_a_grant_covers_the_model(example, held, grants, model):
    kind, fields, role = example
    allowed = check(who(*held, grants=grants), build(kind, fields, model)) is None
    assert allowed == (bool(set(roles_of(role)) & set(held) or "admin" in held) and may_act_on(grants, model))


def test_an_auditor_reads_every_model_and_writes_nothing():
    assert effective_roles(("auditor",)) == {"auditor", "reader"}
    assert "auditor" in effective_roles(("admin",))
    assert authorize(who("auditor"), "reader", "team-a.fraud") is None
    for kind, fields, _ in EXAMPLES:
        assert check(who("auditor"), build(kind, fields)) is not None


@pytest.mark.parametrize("roles, grants, refused_because", [
    (("auditor",), (), None),
    (("admin",), (), None),
    (("auditor",), ("*",), None),  # a grant of every model is no narrowing
    (("reader",), (), "needs the 'auditor' role on every model"),
    (("operator", "publisher"), (), "needs the 'auditor' role on every model"),
    (("auditor",), ("team-a.*",), "grants access to some models only (team-a.*)"),
    (("admin",), ("fraud",), "grants access to some models only (fraud)"),
])
def test_a_question_across_every_model_needs_the_role_and_no_narrowing_grants(roles, grants, refused_because):
    refusal = authorize_every_model(who(*roles, grants=grants), "auditor")
    if refused_because is None:
        assert refusal is None
    else:
        assert refusal.code == "forbidden" and refused_because in refusal.message
        assert refusal.missing == "auditor on every model"


def test_the_role_alone_leaves_grants_to_narrow_what_is_shown():
    assert lacks_role(who("reader", grants=("team-a.*",)), "reader") is None
    refusal = lacks_role(who("publisher"), "auditor")
    assert refusal.missing == "auditor on any model" and "'auditor'" in refusal.message
