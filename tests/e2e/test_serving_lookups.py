"""Serving lookups are answered from a cache, and still read-your-writes: the
moment a write is answered (by the registrar, or as an outcome at
/v1/commands/{id}) a stage or alias lookup shows it with a new ETag, even
right after the old answer was cached; 304 keeps working; and a cached answer
is never shown to a caller who may not read the model."""

import asyncio
from uuid import uuid4

import pytest

from modelog.client import Client
from modelog_contract.domain.commands import RequestTransition
from tests.e2e.helpers import bearer, decided, make, reading_projector, token_for, unique

pytestmark = pytest.mark.engines


@pytest.fixture
def model(client, tmp_path):
    """A model with two versions, registered by the pipeline."""
    name = unique("serving-cache")
    for n in (1, 2):
        artifact = tmp_path / f"v{n}.bin"
        artifact.write_bytes(uuid4().bytes)
        client.register_version(name, artifact)
    return name


@pytest.fixture
def approver(stack):
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("bob", "approver")) as bob:
        yield bob


def promote(client: Client, approver: Client, model: str, version: int) -> None:
    client.request_transition(model, version, "Staging")
    requested = client.request_transition(model, version, "Production")
    approver.approve(model, requested["request_id"])


def served(response) -> list[int]:
    assert response.status_code == 200, response.text
    return [v["version"] for v in response.json()["versions"]]


def test_a_stage_lookup_right_after_a_promotion_answers_the_new_version_with_a_new_etag(
        client, admin_client, approver, stack, model):
    # One approval, whatever default policy other tests have set meanwhile.
    admin_client.set_policy(model, {"approvals_required": {"Production": 1}})
    projector = reading_projector(stack)
    production = f"/v1/models/{model}/stages/Production"
    promote(client, approver, model, 1)
    before = projector.get(production)
    assert served(before) == [1]
    assert projector.get(production, headers={"If-None-Match": before.headers["etag"]}).status_code == 304

    promote(client, approver, model, 2)  # answered once projected: read-your-writes from here on

    after = projector.get(production, headers={"If-None-Match": before.headers["etag"]})
    assert served(after) == [2] and after.headers["etag"] != before.headers["etag"]
    assert after.json()["seq"] == int(after.headers["etag"].strip('"'))
    assert projector.get(production, headers={"If-None-Match": after.headers["etag"]}).status_code == 304
    assert served(projector.get(f"/v1/models/{model}/stages/Archived")) == [1]


def test_an_alias_lookup_right_after_the_alias_moves_answers_the_new_version(client, stack, model):
    projector = reading_projector(stack)
    champion, staging = f"/v1/models/{model}/aliases/champion", f"/v1/models/{model}/stages/None"
    client.set_alias(model, "champion", 1)
    before = projector.get(champion)
    assert before.json()["version"] == 1
    assert [v["aliases"] for v in projector.get(staging).json()["versions"]] == [[], ["champion"]]

    client.set_alias(model, "champion", 2)

    after = projector.get(champion, headers={"If-None-Match": before.headers["etag"]})
    assert (after.status_code, after.json()["version"]) == (200, 2)
    assert after.headers["etag"] != before.headers["etag"]
    assert projector.get(champion, headers={"If-None-Match": after.headers["etag"]}).status_code == 304
    # Every cached answer of the model moved with it, not only the alias's.
    assert [v["aliases"] for v in projector.get(staging).json()["versions"]] == [["champion"], []]
    client.delete_alias(model, "champion")
    gone = projector.get(champion)
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "alias_not_found")


def test_a_command_straight_to_kafka_shows_in_lookups_once_its_outcome_is_visible(client, engines, stack, model):
    projector = reading_projector(stack)
    staging = f"/v1/models/{model}/stages/Staging"
    client.request_transition(model, 1, "Staging")
    assert served(projector.get(staging)) == [1]

    outcome = asyncio.run(decided(engines, stack, make(RequestTransition, model, version=1, to_stage="Archived")))
    assert outcome["accepted"], outcome

    assert served(projector.get(staging)) == []


def test_a_cached_answer_is_refused_to_a_caller_without_reader_on_the_model(stack, model):
    projector = reading_projector(stack)
    lookup = f"{stack.url('projector')}/v1/models/{model}/stages/None"
    assert served(projector.get(lookup)) == [2, 1]  # cached now
    other_team = bearer("other-serving", "reader", grants=("team-x.*",))
    refused = projector.get(lookup, headers=other_team)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
