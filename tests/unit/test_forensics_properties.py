"""As-of answers equal a replay of the log cut at the same point, for random
histories decided through the real decider (the lifecycle steps) and random
instants, and the checkpointed replay the auditor serves agrees with both."""

from datetime import timedelta
from itertools import takewhile

from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.audit.forensics import AtInstant, AtSeq, Checkpoints, as_of, diff, without_decided
from modelog_contract.domain import ModelState
from tests.unit.builders import MODEL, T0, Scenario
from tests.unit.test_lifecycle_properties import step

# Instants from before the first command to after the last; registrations are
# stamped T0 + n seconds, so the histories also step back in time.
instants = st.integers(-120, 60 * 60).map(lambda s: T0 + timedelta(seconds=s))


def decided_with_states(steps) -> tuple[Scenario, list]:
    """The history, and (issued_at, state the decider held after it) per command."""
    s, held = Scenario(), []
    for minute, make in enumerate(steps):
        cmd = make(s, T0 + timedelta(minutes=minute))
        s.when(cmd)
        held.append((cmd.issued_at, s.state))
    return s, held


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40), instants)
def test_as_of_an_instant_is_the_state_the_decider_held_then(steps, instant):
    s, held = decided_with_states(steps)
    # The log as it stood at the instant: every decision up to the first one issued later.
    before = [state for issued_at, state in takewhile(lambda h: h[0] <= instant, held)]
    expected = before[-1] if before else ModelState(name=MODEL)
    assert as_of(MODEL, s.events, AtInstant(instant)) == without_decided(expected)


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40), instants)
def test_an_instant_and_the_seq_it_cuts_at_give_one_state(steps, instant):
    s, _ = decided_with_states(steps)
    state = as_of(MODEL, s.events, AtInstant(instant))
    assert as_of(MODEL, s.events, AtSeq(state.seq)) == state
    assert diff(state, as_of(MODEL, s.events, AtSeq(state.seq))) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(step, min_size=1, max_size=40), st.integers(1, 9), st.data())
def test_checkpointed_replay_answers_any_order_of_questions_like_a_full_replay(steps, every, data):
    s, _ = decided_with_states(steps)
    checkpoints = Checkpoints(MODEL, every)
    for seq in data.draw(st.lists(st.integers(0, len(s.events)), max_size=12)):
        base = checkpoints.base_for(seq)
        answer = checkpoints.replay(base, s.events[base.seq:seq])
        assert answer == as_of(MODEL, s.events, AtSeq(seq))
    assert all(c.seq == i * every for i, c in enumerate(checkpoints.states))


@settings(max_examples=200, deadline=None)
@given(st.lists(step, max_size=40), st.data())
def test_two_states_differ_exactly_where_the_diff_says(steps, data):
    s, _ = decided_with_states(steps)
    a, b = (as_of(MODEL, s.events, AtSeq(data.draw(st.integers(0, len(s.events))))) for _ in range(2))
    fields = {"name", "seq", "head_hash", "decided"}
    same = a.model_dump(exclude=fields) == b.model_dump(exclude=fields)
    assert (diff(a, b) == []) == same
    assert len(diff(a, b)) == len(diff(b, a))
