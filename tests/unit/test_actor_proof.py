"""The actor of an event may carry the proof of who it is (the token's issuer
and id); events from before authentication keep their bytes and their hashes."""

import json

from modelog_contract.codec import decode_event, encode
from modelog_contract.domain import ModelState
from modelog_contract.domain.chain import first_broken_link
from modelog_contract.domain.decider import reject_unauthenticated
from tests.unit.builders import ALICE, Scenario, register

PROVEN_ALICE = ALICE.model_copy(update={"issuer": "modelog-dev", "token_id": "jti-1"})


def test_an_actor_without_proof_serialises_as_before():
    assert json.loads(ALICE.model_dump_json()) == {"subject": "alice", "roles": ["publisher"]}


def test_an_event_stored_before_actors_had_proof_keeps_its_bytes_and_hash():
    events = Scenario().given(register(n=1), register(n=2)).events
    stored = [json.loads(encode(e)) for e in events]
    assert all("issuer" not in s["actor"] and "token_id" not in s["actor"] for s in stored)
    replayed = [decode_event(json.dumps(s).encode()) for s in stored]
    assert [json.loads(encode(e)) for e in replayed] == stored
    assert first_broken_link(replayed) is None and first_broken_link(stored) is None


def test_the_proof_is_part_of_the_event_and_of_its_hash():
    [created, registered] = Scenario().when(register(n=1, actor=PROVEN_ALICE))
    stored = json.loads(encode(registered))
    assert stored["actor"] == {"subject": "alice", "roles": ["publisher"],
                               "issuer": "modelog-dev", "token_id": "jti-1"}
    assert decode_event(encode(registered)).actor == PROVEN_ALICE
    stored["actor"]["token_id"] = "jti-2"  # claiming another token breaks the chain
    assert first_broken_link([json.loads(encode(created)), stored]) == (1, "hash does not match the event's content")


def test_an_unauthenticated_command_is_refused_on_whoever_the_token_proved():
    state = ModelState(name="fraud-detector")
    command = register(n=1)
    [event] = reject_unauthenticated(state, command, "no token", position=None)
    assert (event.type, event.payload.reason, event.payload.command_type) == (
        "CommandRejected", "unauthenticated", "RegisterVersion")
    assert event.actor.subject == "unknown"  # never the actor the command claims
    assert event.command_id == command.command_id and event.occurred_at == command.issued_at
    [event] = reject_unauthenticated(state, command, "actor mismatch", proven=PROVEN_ALICE)
    assert event.actor == PROVEN_ALICE


def test_a_command_already_decided_is_not_refused_again():
    scenario = Scenario()
    command = register(n=1)
    scenario.when(command)
    assert reject_unauthenticated(scenario.state, command, "token expired since") == []
