"""The decider, as specifications: given past events, when a command, then events."""

from uuid import uuid4

import pytest
from pydantic import ValidationError

from modelog_contract.codec import decode_event, encode
from modelog_contract.domain import ModelState, decide, fold
from modelog_contract.domain.chain import GENESIS_HASH, first_broken_link
from modelog_contract.domain.decider import event_id, reject_malformed
from modelog_contract.domain.types import Artifact
from tests.unit.builders import T0, create, register


def given(*commands, model="fraud-detector"):
    """The events that deciding these commands in order produced."""
    state, events = ModelState(name=model), []
    for command in commands:
        new = decide(state, command)
        events += new
        state = fold(model, events)
    return state, events


def test_registering_a_version_of_a_new_model_creates_the_model_first():
    state, _ = given()
    events = decide(state, register(n=1))
    assert [e.type for e in events] == ["ModelCreated", "VersionRegistered"]
    assert events[1].payload.version == 1
    assert [e.closes_decision for e in events] == [False, True]


def test_version_numbers_count_up_from_one_per_model():
    state, _ = given(register(n=1), register(n=2))
    events = decide(state, register(n=3))
    assert [e.type for e in events] == ["VersionRegistered"]
    assert events[0].payload.version == 3
    assert events[0].seq == 4  # ModelCreated, v1, v2, then this


def test_creating_an_existing_model_is_rejected_with_model_exists():
    state, _ = given(create())
    [event] = decide(state, create())
    assert event.type == "CommandRejected"
    assert event.payload.reason == "model_exists"
    assert event.seq == 2  # refusals are in the chain too


def test_a_stale_expected_seq_is_rejected_with_version_conflict():
    state, _ = given(register(n=1))
    [event] = decide(state, register(n=2, expected_seq=1))
    assert event.payload.reason == "version_conflict"


def test_a_current_expected_seq_is_accepted():
    state, _ = given(register(n=1))
    [event] = decide(state, register(n=2, expected_seq=2))
    assert event.type == "VersionRegistered"


def test_a_command_decided_twice_yields_its_events_once():
    command = register(n=1)
    state, _ = given(command)
    assert decide(state, command) == []


def test_deciding_is_deterministic_ids_from_the_command_time_from_the_command():
    command = register(n=1)
    first = decide(ModelState(name="fraud-detector"), command)
    again = decide(ModelState(name="fraud-detector"), command)
    assert [encode(e) for e in first] == [encode(e) for e in again]
    assert first[0].event_id == event_id(command.command_id, 0)
    assert first[1].occurred_at == command.issued_at


def test_events_form_a_hash_chain_from_genesis():
    _, events = given(register(n=1), register(n=2), create())
    assert events[0].prev_hash == GENESIS_HASH
    assert first_broken_link(events) is None


def test_a_changed_event_breaks_the_chain_at_that_event():
    _, events = given(register(n=1), register(n=2))
    tampered = events[1].model_copy(update={"actor": events[1].actor.model_copy(update={"subject": "mallory"})})
    assert first_broken_link([events[0], tampered, events[2]]) == (1, "hash does not match the event's content")


def test_a_dropped_event_breaks_the_chain_at_the_gap():
    _, events = given(register(n=1), register(n=2))
    assert first_broken_link([events[0], events[2]]) == (1, "seq 3 follows 1")


def test_events_round_trip_through_their_wire_form():
    _, events = given(register(n=1, metrics={"auc": 0.93}))
    assert [decode_event(encode(e)) for e in events] == events


def test_a_malformed_record_is_rejected_on_its_model_key():
    [event] = reject_malformed(ModelState(name="fraud-detector"), uuid4(), T0, "not json")
    assert event.payload.reason == "malformed_command"
    assert event.seq == 1


@pytest.mark.parametrize("name", ["", "-leading-dash", "has space", "a/b", "x" * 129, "émoji"])
def test_invalid_model_names_are_refused(name):
    with pytest.raises(ValidationError, match="invalid model name"):
        register(model=name)


def test_an_artifact_digest_must_be_sha256_hex():
    with pytest.raises(ValidationError, match="sha256"):
        Artifact(uri="s3://modelog-artifacts/x", sha256="not-a-digest", size=1)


def test_an_old_event_shape_is_upcast_before_it_replays(monkeypatch):
    """A hypothetical v0 VersionRegistered kept its digest under `checksum`."""
    import json

    from modelog_contract.domain import upcasters

    def v0_to_v1(raw):
        artifact = dict(raw["payload"]["artifact"])
        artifact["sha256"] = artifact.pop("checksum")
        return {**raw, "schema_version": 1, "payload": {**raw["payload"], "artifact": artifact}}

    monkeypatch.setitem(upcasters.UPCASTERS, ("VersionRegistered", 0), v0_to_v1)
    _, events = given(register(n=1))
    stored = json.loads(encode(events[1]))
    stored["schema_version"] = 0
    stored["payload"]["artifact"]["checksum"] = stored["payload"]["artifact"].pop("sha256")
    replayed = decode_event(json.dumps(stored).encode())
    assert replayed.payload.artifact.sha256 == events[1].payload.artifact.sha256
    assert replayed.schema_version == 1


def test_the_chain_is_checked_on_the_stored_form_too():
    import json
    _, events = given(register(n=1), register(n=2))
    stored = [json.loads(encode(e)) for e in events]
    assert first_broken_link(stored) is None
    stored[1]["payload"]["run_id"] = "forged"
    assert first_broken_link(stored) == (1, "hash does not match the event's content")
