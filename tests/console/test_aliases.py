"""Aliases from the console: a publisher points one at a version from its
page; moving a protected alias is refused by the decider, and the page says why (moving it needs the approver role)."""

import pickle

import pytest

from modelog.client import Client
from tests.console.helpers import csrf_of, signed_in
from tests.e2e.helpers import token_for, unique

pytestmark = pytest.mark.engines


def test_a_publisher_points_an_alias_and_a_protected_one_stays_where_an_admin_put_it(stack, tmp_path):
    model = unique("aliased")
    artifact = tmp_path / "model.pkl"
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("alice", "publisher")) as alice:
        for weights in ([0.1], [0.2]):
            artifact.write_bytes(pickle.dumps(weights))
            alice.register_version(model, artifact)
    with signed_in(stack, "alice", "publisher") as browser:
        page = browser.get(f"/console/models/{model}/versions/1")
        assert 'name="protected"' not in page.text  # protecting is an admin's
        pointed = browser.post(f"/console/models/{model}/versions/1/aliases",
                               data={"csrf_token": csrf_of(page.text), "alias": "challenger"})
        assert pointed.status_code == 303
        assert "@challenger → " in browser.get(f"/console/models/{model}").text
    with signed_in(stack, "ada", "admin", "approver") as admin:  # protecting is judged as moving: the approver role
        page = admin.get(f"/console/models/{model}/versions/2")
        protected = admin.post(f"/console/models/{model}/versions/2/aliases",
                               data={"csrf_token": csrf_of(page.text), "alias": "champion", "protected": "true"})
        assert protected.status_code == 303
        assert "protected</strong>" in admin.get(f"/console/models/{model}").text
    with signed_in(stack, "alice", "publisher") as browser:
        page = browser.get(f"/console/models/{model}/versions/1")
        moved = browser.post(f"/console/models/{model}/versions/1/aliases",
                             data={"csrf_token": csrf_of(page.text), "alias": "champion"})
    assert moved.status_code == 403 and "Reason code" in moved.text
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("serving", "reader")) as reader:
        held = {v["version"]: v["aliases"] for v in reader.list_versions(model)}
    assert held == {1: ["challenger"], 2: ["champion"]}
