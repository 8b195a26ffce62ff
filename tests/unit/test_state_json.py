"""A ModelState stored as JSON (a snapshot, a checkpoint) reads back equal, and
decides exactly as the state it was written from; its JSON keeps the shape
the auditor's as-of answers show."""

import json
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain import STATE_SCHEMA, IdempotencyWindow, ModelState, decide, fold
from modelog_contract.domain.commands import RequestTransition, SetTag
from tests.unit.builders import ALICE, T0, Scenario, command, register
from tests.unit.test_lifecycle_properties import step

SMALL = IdempotencyWindow(commands=5, seconds=600)


def history(steps, window: IdempotencyWindow) -> Scenario:
    s = Scenario(window=window)
    for minute, make in enumerate(steps):
        s.when(make(s, T0 + timedelta(minutes=minute)))
    return s


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40), st.sampled_from([SMALL, IdempotencyWindow()]), st.lists(step, min_size=1, max_size=3))
def test_a_folded_state_round_trips_through_json_and_decides_the_same(steps, window, next_steps):
    s = history(steps, window)
    state = fold(s.state.name, s.events, window)
    from_json = ModelState.model_validate_json(state.model_dump_json())
    from_dict = ModelState.model_validate(json.loads(json.dumps(state.model_dump(mode="json"))))
    assert from_json == state and from_dict == state
    assert from_json.model_dump_json() == state.model_dump_json()
    for minute, make in enumerate(next_steps, start=len(steps)):
        cmd = make(s, T0 + timedelta(minutes=minute))
        assert decide(from_json, cmd) == decide(state, cmd)
    # A retry of each remembered command is recognised after the round trip too.
    for cmd_id in {e.command_id for e in s.events}:
        assert (cmd_id in from_json.decided) == (cmd_id in state.decided)


def test_the_json_keeps_the_fields_and_shape_the_auditor_shows():
    s = Scenario().given(register(n=1), register(n=2), command(SetTag, key="team", value="risk"),
                         command(RequestTransition, version=2, to_stage="Staging"),
                         command(RequestTransition, version=2, to_stage="Production"))
    shown = json.loads(s.state.model_dump_json(exclude={"decided"}))
    assert list(shown) == ["name", "exists", "deleted", "seq", "head_hash", "description", "tags", "versions",
                           "aliases", "pending", "settled", "policy", "traffic_split"]
    assert list(shown["versions"]) == ["1", "2"]
    assert shown["versions"]["1"]["registered_by"] == ALICE.subject
    assert shown["tags"] == {"team": "risk"}
    assert shown["versions"]["2"]["stage"] == "Staging" and len(shown["pending"]) == 1


def test_versions_are_keyed_in_number_order_past_nine():
    s = Scenario().given(*(register(n=n) for n in range(1, 13)))
    assert list(json.loads(s.state.model_dump_json())["versions"]) == [str(n) for n in range(1, 13)]


def test_the_state_schema_names_this_shape():
    assert STATE_SCHEMA == "model-state/3"
