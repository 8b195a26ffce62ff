"""A version's model card revised through the registrar's HTTP API against the
running stack: the version serves the newest card, the audit trail keeps every
revision with its author and answers the card as it stood, and a refused
revision answers in the decider's words."""

import httpx
import pytest

from modelog.client import Client, Conflict, Refused
from modelog_contract.domain.commands import MODEL_CARD_MAX_CHARS
from tests.e2e.helpers import bearer, modelog, token_for, unique, wait_for_timeline

pytestmark = pytest.mark.engines

CARD = "# churn\nintended use: retention offers"
FAIRNESS = CARD + "\n\n## Fairness\nrecall within 2% across age bands"
LIMITS = FAIRNESS + "\n\n## Limits\nnot for customers under 18"


@pytest.fixture
def registrar(stack):
    def as_(subject: str, *roles: str) -> httpx.Client:
        return httpx.Client(base_url=stack.url("registrar"), timeout=30, headers=bearer(subject, *roles))
    return as_


def revise(http: httpx.Client, model: str, card: str, summary: str, version: int = 1, **headers) -> httpx.Response:
    return http.put(f"/v1/models/{model}/versions/{version}/model-card",
                    json={"model_card": card, "summary": summary}, headers=headers)


def registered(http: httpx.Client) -> str:
    model = unique("churn")
    response = http.post(f"/v1/models/{model}/versions", files={"file": ("model.bin", model.encode())})
    assert response.status_code == 201, response.text
    return model


def test_two_revisions_the_version_serves_the_newest_and_the_trail_keeps_both_with_their_authors(registrar, stack):
    alice, bob = registrar("alice", "publisher"), registrar("bob", "approver")
    model = registered(alice)

    first = revise(alice, model, FAIRNESS, "fairness results by age band")
    assert first.status_code == 200, first.text
    assert first.json()["events"] == ["ModelCardRevised"]
    assert first.json()["state"]["version"]["model_card"] == FAIRNESS
    second = revise(bob, model, LIMITS, "reviewer: limits of use", **{"If-Match": first.headers["ETag"]})
    assert second.status_code == 200, second.text

    projector = httpx.Client(base_url=stack.url("projector"), headers=bearer("serving", "reader"), timeout=30)
    assert projector.get(f"/v1/models/{model}/versions/1").json()["model_card"] == LIMITS

    trail = wait_for_timeline(stack.url("auditor"), model, 4)
    revisions = [e for e in trail if e["type"] == "ModelCardRevised"]
    assert [(e["actor"]["subject"], e["payload"]["summary"], e["payload"]["model_card"]) for e in revisions] == [
        ("alice", "fairness results by age band", FAIRNESS), ("bob", "reviewer: limits of use", LIMITS)]
    # The auditor's as-of answer: the card as it stood after the first revision.
    as_of = httpx.get(f"{stack.url('auditor')}/v1/audit/models/{model}/state",
                      params={"seq": revisions[0]["seq"]}, headers=bearer("ines", "auditor")).json()
    assert as_of["state"]["versions"]["1"]["model_card"] == FAIRNESS


def test_a_stale_if_match_is_refused_and_a_retried_revision_is_recorded_once(registrar, stack):
    alice = registrar("alice", "publisher")
    model = registered(alice)
    stale = revise(alice, model, FAIRNESS, "fairness", **{"If-Match": '"1"'})
    assert (stale.status_code, stale.json()["error"]["code"]) == (409, "version_conflict")

    first = revise(alice, model, FAIRNESS, "fairness", **{"Idempotency-Key": "card-1"})
    retry = revise(alice, model, FAIRNESS, "fairness", **{"Idempotency-Key": "card-1"})
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json()["command_id"] == first.json()["command_id"]
    trail = wait_for_timeline(stack.url("auditor"), model, 4)
    assert [e["type"] for e in trail].count("ModelCardRevised") == 1


def test_a_refused_revision_answers_with_the_deciders_reason_in_words(registrar):
    alice, bob = registrar("alice", "publisher"), registrar("bob", "approver")
    model = registered(alice)
    assert revise(alice, model, CARD, "first card").status_code == 200

    unchanged = revise(bob, model, CARD, "nothing new")
    assert unchanged.status_code == 409
    assert unchanged.json()["error"]["code"] == "card_unchanged"
    assert unchanged.json()["error"]["message"] == (
        f"the model card of version 1 of {model!r} already reads exactly so ({len(CARD)} characters): "
        "a revision must change its text")

    missing = revise(alice, model, FAIRNESS, "fairness", version=7)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "version_not_found")

    # A reader is turned away at the door, naming either role that would do.
    reader = revise(registrar("rita", "reader"), model, FAIRNESS, "fairness")
    assert (reader.status_code, reader.json()["error"]["code"]) == (403, "forbidden")
    assert reader.json()["error"]["message"] == f"rita needs the 'publisher' or 'approver' role on model {model!r}"

    # Where the policy names its own reviewers, an approver is not one: the decider says so.
    policy = registrar("ada", "admin").put(f"/v1/models/{model}/policy",
                                           json={"policy": {"approver_role": "fairness-board"}})
    assert policy.status_code == 200, policy.text
    outsider = revise(bob, model, FAIRNESS, "fairness")
    assert (outsider.status_code, outsider.json()["error"]["code"]) == (403, "forbidden")
    assert outsider.json()["error"]["message"] == (
        f"bob needs the 'publisher' or 'fairness-board' role to revise the model card of version 1 of {model!r}; "
        "their roles are approver")
    assert "command_id" in outsider.json()["error"]  # decided and refused: a fact in the trail


def test_the_sdk_revises_a_card_and_raises_the_refusal(stack, tmp_path):
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(unique("weights").encode())
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("ci-pipeline", "publisher")) as sdk:
        model = unique("sdk-card")
        sdk.register_version(model, artifact)
        revised = sdk.revise_model_card(model, 1, FAIRNESS, summary="fairness results", idempotency_key="card")
        assert revised["events"] == ["ModelCardRevised"]
        assert sdk.get_version(model, 1)["model_card"] == FAIRNESS
        with pytest.raises(Conflict) as refused:
            sdk.revise_model_card(model, 1, FAIRNESS, summary="again")
        assert refused.value.code == "card_unchanged"
        with pytest.raises(Refused) as invalid:
            sdk.revise_model_card(model, 1, "x" * (MODEL_CARD_MAX_CHARS + 1), summary="too long")
        assert invalid.value.code == "invalid_request" and "model_card" in invalid.value.problems[0]


def test_the_cli_revises_shows_and_lists_a_cards_revisions(stack, tmp_path):
    publisher = {"MODELOG_TOKEN": token_for("alice", "publisher"), "COLUMNS": "200"}
    model = unique("cli-card")
    artifact, card = tmp_path / "model.bin", tmp_path / "card.md"
    artifact.write_bytes(model.encode())
    assert modelog("register", model, str(artifact), env=publisher).exit_code == 0

    card.write_text(FAIRNESS)
    first = modelog("card", "revise", model, "1", str(card), "--summary", "fairness", env=publisher)
    assert first.exit_code == 0 and "ModelCardRevised" in first.output, first.output
    card.write_text(LIMITS)
    assert modelog("card", "revise", model, "1", str(card), "--summary", "limits", env=publisher).exit_code == 0
    again = modelog("card", "revise", model, "1", str(card), "--summary", "again", env=publisher)
    assert again.exit_code == 1 and "card_unchanged" in again.output

    shown = modelog("card", "show", model, "1", env=publisher)
    assert shown.exit_code == 0 and shown.output == LIMITS + "\n"
    wait_for_timeline(stack.url("auditor"), model, 5)
    listed = modelog("card", "history", model, "1", env=publisher)
    assert listed.exit_code == 0, listed.output
    rows = [line.split("│") for line in listed.output.splitlines() if "alice" in line]
    assert [(row[1].strip(), row[5].strip()) for row in rows] == [("3", "fairness"), ("4", "limits")]
    as_it_stood = modelog("card", "show", model, "1", "--at", "3", env=publisher)
    assert as_it_stood.exit_code == 0 and as_it_stood.output == FAIRNESS + "\n"
