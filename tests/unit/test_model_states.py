"""A partition's model states read a stored state back only when it is first
asked for, once, and otherwise behave as the dict they replace."""

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain import ModelState, decide, evolve
from promoter.model_states import ModelStates, Stored, StoredStateUnreadable
from tests.unit.builders import register

NAMES = ["fraud-detector", "churn", "ranker"]


@cache  # the same state each time it is asked for: commands carry fresh ids and times
def state_of(name: str, versions: int) -> ModelState:
    state = ModelState(name=name)
    for n in range(versions):
        for event in decide(state, register(model=name, n=n)):
            state = evolve(state, event)
    return state


def stored(*states: ModelState) -> ModelStates:
    return ModelStates(stored={s.name: Stored(s.seq, s.head_hash, s.model_dump_json().encode()) for s in states})


def test_a_stored_state_is_read_back_on_first_use_and_kept():
    states = stored(state_of("churn", 3), state_of("ranker", 1))
    assert len(states) == 2 and "churn" in states and set(states) == {"churn", "ranker"}
    assert states.decoded == {}
    churn = states["churn"]
    assert churn == state_of("churn", 3) and churn.versions_in("None") == [1, 2, 3]
    assert states["churn"] is churn  # read once
    assert set(states.stored) == {"ranker"} and set(states.decoded) == {"churn"}


def test_a_model_not_seen_is_missing_as_from_a_dict():
    states = stored(state_of("churn", 1))
    assert states.get("ranker") is None and "ranker" not in states
    with pytest.raises(KeyError):
        states["ranker"]


def test_setting_a_state_replaces_the_stored_one():
    states = stored(state_of("churn", 1))
    states["churn"] = newer = state_of("churn", 2)
    assert states.stored == {} and states["churn"] is newer and len(states) == 1


def test_a_copy_is_a_cut_later_changes_do_not_reach():
    states = stored(state_of("churn", 1), state_of("ranker", 1))
    cut = states.copy()
    states["churn"] = state_of("churn", 2)
    states["ranker"]  # read back on the live side only
    assert set(cut.stored) == {"churn", "ranker"} and cut["churn"] == state_of("churn", 1)


def test_iterating_while_reading_back_sees_every_model_once():
    states = stored(*(state_of(n, 1) for n in NAMES))
    assert sorted(name for name, _ in states.items()) == sorted(NAMES)
    assert states.stored == {} and len(states) == len(NAMES)


def test_a_stored_states_head_is_known_without_reading_it_back():
    states = stored(state_of("churn", 2))
    assert states.head("churn") == (state_of("churn", 2).seq, state_of("churn", 2).head_hash)
    assert states.decoded == {}
    states["churn"] = state_of("churn", 3)
    assert states.head("churn") == (state_of("churn", 3).seq, state_of("churn", 3).head_hash)


CHURN = state_of("churn", 2)


@pytest.mark.parametrize("line, why", [
    (Stored(0, CHURN.head_hash, b'{"name":"churn","seq":"x"}'), "does not read back"),
    (Stored(0, CHURN.head_hash, b"not json"), "does not read back"),
    (Stored(0, ModelState(name="ranker").head_hash, ModelState(name="ranker").model_dump_json().encode()),
     "holds 'ranker'"),
    (Stored(CHURN.seq - 1, CHURN.head_hash, CHURN.model_dump_json().encode()), "at seq"),
    (Stored(CHURN.seq, "e" * 64, CHURN.model_dump_json().encode()), "at seq"),
])
def test_a_stored_state_that_does_not_read_back_as_its_line_says_is_refused_and_stays_stored(line, why):
    states = ModelStates(stored={"churn": line})
    with pytest.raises(StoredStateUnreadable, match=why):
        states["churn"]
    assert "churn" in states.stored and states.decoded == {}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES), st.integers(0, 3), st.booleans()), max_size=20))
def test_it_holds_what_a_dict_would_for_any_sequence_of_reads_and_writes(steps):
    """As a dict of the same states, whatever is read back or replaced, in any order."""
    states = stored(*(state_of(n, 1) for n in NAMES))
    plain = {n: state_of(n, 1) for n in NAMES}
    for name, versions, write in steps:
        if write:
            states[name] = plain[name] = state_of(name, versions)
        else:
            assert states[name] == plain[name]
    assert dict(states) == plain and len(states) == len(plain)


def test_only_states_unchanged_since_the_cut_go_back_to_json():
    states = ModelStates({n: state_of(n, 1) for n in NAMES})
    cut = states.copy()
    states["churn"] = state_of("churn", 2)  # decided after the cut
    serialised = {n: Stored(state_of(n, 1).seq, state_of(n, 1).head_hash, state_of(n, 1).model_dump_json().encode())
                  for n in NAMES}
    assert states.keep_as_json(serialised, cut.decoded) == len(NAMES) - 1
    assert set(states.stored) == set(NAMES) - {"churn"} and states["churn"] is state_of("churn", 2)
    assert all(states[n] == state_of(n, 1) for n in NAMES if n != "churn")
