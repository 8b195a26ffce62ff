"""Operator actions in the console: a roll back is confirmed on a page that
says which version goes into Production and which is archived, then decided
as a command with the operator's identity; a reader is offered no roll back
and a forced post is refused with 403."""

import pickle

import pytest

from modelog.client import Client
from tests.console.helpers import csrf_of, signed_in
from tests.e2e.helpers import token_for, unique

pytestmark = pytest.mark.engines


@pytest.fixture
def replaced(stack, tmp_path):
    """Version 2 replaced version 1 in Production; version 1 is Archived."""
    model = unique("churn")
    artifact = tmp_path / "model.pkl"
    with (Client(stack.url("registrar"), stack.url("projector"), token=token_for("alice", "publisher")) as alice,
          Client(stack.url("registrar"), stack.url("projector"), token=token_for("dana", "approver")) as dana):
        for version, weights in ((1, [0.1]), (2, [0.2])):
            artifact.write_bytes(pickle.dumps(weights))
            alice.register_version(model, artifact, metrics={"auc": 0.8 + version / 100})
            alice.request_transition(model, version, "Staging")
            dana.approve(model, alice.request_transition(model, version, "Production")["request_id"])
        assert [v["version"] for v in alice.in_stage(model, "Production")["versions"]] == [2]
    return model


def test_an_operator_rolls_back_after_a_confirmation_that_names_what_moves(stack, replaced):
    model = replaced
    with signed_in(stack, "olga", "operator") as olga:
        assert f'href="/console/models/{model}/versions/1/rollback"' in olga.get(f"/console/models/{model}").text
        confirm = olga.get(f"/console/models/{model}/versions/1/rollback")
        assert confirm.status_code == 200
        assert "Version 1 (registered by alice" in confirm.text and "goes into Production" in confirm.text
        assert "Version 2, in Production now, is archived." in confirm.text
        done = olga.post(f"/console/models/{model}/versions/1/rollback",
                         data={"csrf_token": csrf_of(confirm.text), "comment": "v2 drifts on new traffic"})
        assert done.status_code == 303 and done.headers["location"] == f"/console/models/{model}"
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("serving", "reader")) as reader:
        assert [v["version"] for v in reader.in_stage(model, "Production")["versions"]] == [1]
        assert [v["version"] for v in reader.in_stage(model, "Archived")["versions"]] == [2]


def test_a_reader_is_offered_no_roll_back_and_a_forced_one_is_refused(stack, replaced):
    model = replaced
    with signed_in(stack, "carol", "reader") as carol:
        page = carol.get(f"/console/models/{model}")
        assert "/rollback" not in page.text
        forced = carol.post(f"/console/models/{model}/versions/1/rollback", data={"csrf_token": csrf_of(page.text)})
    assert forced.status_code == 403 and "carol needs the &#39;operator&#39; role" in forced.text
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("serving", "reader")) as reader:
        assert [v["version"] for v in reader.in_stage(model, "Production")["versions"]] == [2]


def test_a_publisher_moves_a_version_from_its_page_and_production_waits_for_approval(stack, tmp_path):
    model = unique("moved")
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(pickle.dumps([0.3]))
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("alice", "publisher")) as alice:
        alice.register_version(model, artifact)
    with signed_in(stack, "alice", "publisher") as browser:
        page = browser.get(f"/console/models/{model}/versions/1")
        assert 'name="to_stage"' in page.text
        moved = browser.post(f"/console/models/{model}/versions/1/transitions",
                             data={"csrf_token": csrf_of(page.text), "to_stage": "Staging"})
        assert moved.status_code == 303
        asked = browser.post(f"/console/models/{model}/versions/1/transitions",
                             data={"csrf_token": csrf_of(page.text), "to_stage": "Production", "comment": "ready"})
        assert asked.status_code == 303
        shown = browser.get(f"/console/models/{model}").text
    assert "v1 to Production, requested by alice" in shown and "0 of 1 approvals" in shown
    with signed_in(stack, "carol", "reader") as carol:
        assert 'name="to_stage"' not in carol.get(f"/console/models/{model}/versions/1").text
