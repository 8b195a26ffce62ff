"""Checkpoints kept in memory under a limit: the least recently used are
dropped, never the empty state at seq 0, and every answer still equals a
replay from seq 0; states handed in from a store are used as bases."""

from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.audit.forensics import AtSeq, Checkpoints, as_of
from tests.unit.builders import MODEL, Scenario, register
from tests.unit.test_forensics_properties import decided_with_states
from tests.unit.test_lifecycle_properties import step


@settings(max_examples=200, deadline=None)
@given(st.lists(step, min_size=1, max_size=40), st.integers(1, 5), st.integers(2, 4), st.data())
def test_a_bounded_memory_answers_like_a_full_replay_and_keeps_its_bound(steps, every, limit, data):
    s, _ = decided_with_states(steps)
    checkpoints = Checkpoints(MODEL, every, limit)
    for seq in data.draw(st.lists(st.integers(0, len(s.events)), max_size=12)):
        if data.draw(st.booleans()):  # a state read back from a store
            checkpoints.keep(as_of(MODEL, s.events, AtSeq(data.draw(st.integers(0, seq)))))
        base = checkpoints.base_for(seq)
        assert base.seq <= seq
        assert checkpoints.replay(base, s.events[base.seq:seq]) == as_of(MODEL, s.events, AtSeq(seq))
        assert len(checkpoints.states) <= limit and checkpoints.states[0].seq == 0
        assert [c.seq for c in checkpoints.states] == sorted({c.seq for c in checkpoints.states})


def test_the_least_recently_used_checkpoint_is_dropped_first():
    s = Scenario().given(*(register(n=n) for n in range(1, 4)))
    checkpoints = Checkpoints(MODEL, every=1, limit=3)
    checkpoints.replay(checkpoints.base_for(0), s.events[:2])  # keeps seqs 1 and 2
    checkpoints.base_for(1)  # seq 1 is now used more recently than seq 2
    checkpoints.keep(as_of(MODEL, s.events, AtSeq(3)))
    assert [c.seq for c in checkpoints.states] == [0, 1, 3]
    assert checkpoints.base_for(2) == as_of(MODEL, s.events, AtSeq(1))
