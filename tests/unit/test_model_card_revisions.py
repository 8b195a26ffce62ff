"""A version's model card, revised after registration: each revision a fact of
its own, by its author or a reviewer, never a revision that changes nothing."""

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modelog_contract.domain import fold
from modelog_contract.domain.chain import first_broken_link
from modelog_contract.domain.commands import MODEL_CARD_MAX_CHARS, DeleteVersion, ReviseModelCard, SetPolicy
from modelog_contract.domain.policy import Policy
from modelog_contract.domain.types import Actor
from tests.unit.builders import ALICE, BOB, CAROL, OPS, T0, Scenario, command, register

CARD = "# fraud-detector\nintended use: card payments"
FAIRNESS = CARD + "\n\n## Fairness\nfalse positive rate within 1% across age bands"
ADMIN = Actor(subject="ada", roles=("admin",))


def revise(version: int = 1, card: str = FAIRNESS, actor: Actor = BOB, summary: str = "fairness results", **fields):
    return command(ReviseModelCard, actor=actor, version=version, model_card=card, summary=summary, **fields)


def test_a_reviewer_revises_the_card_and_the_version_reads_the_new_text():
    s = Scenario().given(register(n=1, model_card=CARD, metrics={"auc": 0.9}))
    [revised] = s.when(revise(summary="fairness results by age band"))
    assert revised.type == "ModelCardRevised" and revised.actor.subject == "bob"
    assert (revised.payload.version, revised.payload.model_card, revised.payload.summary) == (
        1, FAIRNESS, "fairness results by age band")
    v1 = s.state.versions[1]
    assert v1.model_card == FAIRNESS
    assert (v1.metrics, v1.registered_by, v1.artifact.size) == ({"auc": 0.9}, "alice", 1)  # the rest as registered


def test_its_author_writes_a_card_the_version_was_registered_without():
    s = Scenario().given(register(n=1))
    assert s.state.versions[1].model_card is None
    s.when(revise(card=CARD, actor=ALICE, summary="first card"))
    assert s.state.versions[1].model_card == CARD


def test_every_revision_stays_in_the_log_in_order_with_its_author():
    s = Scenario().given(register(n=1, model_card=CARD))
    s.when(revise(card=FAIRNESS, actor=BOB, summary="fairness"))
    s.when(revise(card=FAIRNESS + "\n\n## Limits\nnot for wire transfers", actor=ALICE, summary="limits"))
    revisions = [(e.actor.subject, e.payload.summary) for e in s.events if e.type == "ModelCardRevised"]
    assert revisions == [("bob", "fairness"), ("alice", "limits")]
    assert s.state.versions[1].model_card.endswith("not for wire transfers")


def test_an_unchanged_card_is_refused_in_words():
    s = Scenario().given(register(n=1, model_card=CARD))
    [refused] = s.when(revise(card=CARD))
    assert refused.payload.reason == "card_unchanged"
    assert refused.payload.message == (
        f"the model card of version 1 of 'fraud-detector' already reads exactly so ({len(CARD)} characters): "
        "a revision must change its text")
    assert s.state.versions[1].model_card == CARD


@pytest.mark.parametrize("given, revision, reason, told", [
    ([register(n=1)], revise(version=4), "version_not_found",
     "model 'fraud-detector' has no version 4; its only version is 1"),
    ([register(n=1), register(n=2), command(DeleteVersion, version=1)], revise(version=1), "version_deleted",
     "version 1 of 'fraud-detector' was deleted and can no longer change or move; the model's live versions: 2"),
    ([], revise(), "model_not_found",
     "no model named 'fraud-detector': create it, or register a version of it, first"),
    ([register(n=1)], revise(actor=OPS), "forbidden",
     "olga needs the 'publisher' or 'approver' role to revise the model card of version 1 of 'fraud-detector'; "
     "their roles are operator"),
    ([register(n=1)], revise(actor=ADMIN), "forbidden",
     "ada needs the 'publisher' or 'approver' role to revise the model card of version 1 of 'fraud-detector'; "
     "their roles are admin"),
])
def test_a_revision_is_refused_with_what_was_wrong(given, revision, reason, told):
    s = Scenario().given(*given)
    [refused] = s.when(revision)
    assert (refused.type, refused.payload.reason, refused.payload.message) == ("CommandRejected", reason, told)


def test_the_reviewers_are_whoever_holds_the_policys_approver_role():
    board = Actor(subject="farid", roles=("fairness-board",))
    s = Scenario().given(register(n=1, model_card=CARD),
                         command(SetPolicy, policy=Policy(approver_role="fairness-board")))
    assert s.when(revise(actor=board))[0].type == "ModelCardRevised"
    [refused] = s.when(revise(card=CARD, actor=BOB))
    assert refused.payload.message == (
        "bob needs the 'publisher' or 'fairness-board' role to revise the model card of version 1 of "
        "'fraud-detector'; their roles are approver")
    assert s.when(revise(card=CARD, actor=ALICE))[0].type == "ModelCardRevised"  # publishers still may


def test_a_retried_revision_is_decided_once():
    s = Scenario().given(register(n=1, model_card=CARD))
    revision = revise()
    assert [e.type for e in s.when(revision)] == ["ModelCardRevised"]
    assert s.when(revision) == []


@pytest.mark.parametrize("card, summary, problem", [
    ("", "s", "at least 1 character"),
    ("x" * (MODEL_CARD_MAX_CHARS + 1), "s", "at most 65536 characters"),
    (FAIRNESS, "", "at least 1 character"),
    (FAIRNESS, "  \n", "should match pattern"),
])
def test_a_card_is_one_to_65536_characters_and_a_revision_says_what_changed(card, summary, problem):
    with pytest.raises(ValidationError, match=problem):
        revise(card=card, summary=summary)
    assert revise(card="x" * MODEL_CARD_MAX_CHARS).model_card == "x" * MODEL_CARD_MAX_CHARS


# --- properties -------------------------------------------------------------------

reviser = st.sampled_from([ALICE, BOB, CAROL, OPS])
# Few texts, so that some revisions repeat the card they would replace.
cards = st.sampled_from([CARD, FAIRNESS, "# v2\nretrained on 2026 data", "tbd"])
steps = st.lists(st.one_of(
    st.builds(lambda a, v, card: revise(version=v, card=card, actor=a, summary=f"by {a.subject}"),
              reviser, st.integers(1, 4), cards),
    st.builds(lambda v: command(DeleteVersion, actor=ADMIN, version=v), st.integers(1, 4)),
), max_size=30)


def played(commands) -> Scenario:
    s = Scenario().given(register(n=1, model_card=CARD), register(n=2), register(n=3, model_card="tbd"))
    for minute, each in enumerate(commands):
        s.when(each.model_copy(update={"issued_at": T0 + timedelta(minutes=minute + 1)}))
    return s


@settings(max_examples=300, deadline=None)
@given(steps)
def test_the_card_is_always_the_last_revision_or_the_registered_one(commands):
    s = played(commands)
    expected = {1: CARD, 2: None, 3: "tbd"}
    for event in s.events:
        if event.type == "ModelCardRevised":
            expected[event.payload.version] = event.payload.model_card
    assert {n: v.model_card for n, v in s.state.versions.items()} == expected


@settings(max_examples=300, deadline=None)
@given(steps)
def test_each_revision_in_the_log_changes_a_live_version_by_an_author_or_a_reviewer(commands):
    s = played(commands)
    card: dict[int, str | None] = {1: CARD, 2: None, 3: "tbd"}
    deleted: set[int] = set()
    for event in s.events:
        p = event.payload
        if event.type == "VersionDeleted":
            deleted.add(p.version)
        elif event.type == "ModelCardRevised":
            assert p.version not in deleted and p.model_card != card[p.version]
            assert {"publisher", "approver"} & set(event.actor.roles)
            card[p.version] = p.model_card


@settings(max_examples=300, deadline=None)
@given(steps)
def test_every_accepted_revision_is_kept_and_the_state_as_of_it_reads_its_card(commands):
    s = played(commands)
    revisions = [e for e in s.events if e.type == "ModelCardRevised"]
    accepted = [c for c in commands if isinstance(c, ReviseModelCard)
                and any(e.command_id == c.command_id for e in revisions)]
    assert [(e.payload.version, e.payload.model_card, e.actor.subject) for e in revisions] == [
        (c.version, c.model_card, c.actor.subject) for c in accepted]
    for revision in revisions:  # what an as-of answer folds: the log up to that seq
        as_of = fold(s.state.name, s.events[:revision.seq])
        assert as_of.versions[revision.payload.version].model_card == revision.payload.model_card
    assert first_broken_link(s.events) is None and fold(s.state.name, s.events) == s.state
