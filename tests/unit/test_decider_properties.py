"""Invariants of the decider over random command sequences (hypothesis)."""

from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain import ModelState, decide, evolve, fold
from modelog_contract.domain.chain import first_broken_link
from tests.unit.builders import create, register

MODELS = ["fraud-detector", "churn", "ranker"]

commands = st.lists(
    st.one_of(
        st.builds(lambda m, n: register(model=m, n=n), st.sampled_from(MODELS), st.integers(1, 50)),
        st.builds(lambda m: create(model=m), st.sampled_from(MODELS)),
        st.builds(lambda m, n, s: register(model=m, n=n, expected_seq=s),
                  st.sampled_from(MODELS), st.integers(1, 50), st.integers(0, 10)),
    ),
    max_size=40,
)


def run(sequence, repeat_some: list[bool]):
    """Decide a sequence (some commands delivered twice, as after a crash)."""
    states = {m: ModelState(name=m) for m in MODELS}
    log = {m: [] for m in MODELS}
    for command, again in zip(sequence, repeat_some + [False] * len(sequence), strict=False):
        for _ in range(2 if again else 1):
            for event in decide(states[command.model], command):
                states[command.model] = evolve(states[command.model], event)
                log[command.model].append(event)
    return states, log


@settings(max_examples=200, deadline=None)
@given(commands, st.lists(st.booleans(), max_size=40))
def test_seq_is_gapless_and_every_chain_verifies(sequence, repeats):
    _, log = run(sequence, repeats)
    for events in log.values():
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert first_broken_link(events) is None


@settings(max_examples=200, deadline=None)
@given(commands, st.lists(st.booleans(), max_size=40))
def test_every_command_has_exactly_one_outcome_even_when_redelivered(sequence, repeats):
    _, log = run(sequence, repeats)
    closing: dict[UUID, int] = {}
    for events in log.values():
        for event in events:
            if event.closes_decision:
                closing[event.command_id] = closing.get(event.command_id, 0) + 1
    assert closing == {c.command_id: 1 for c in sequence}


@settings(max_examples=200, deadline=None)
@given(commands)
def test_folding_the_log_reproduces_the_state(sequence):
    states, log = run(sequence, [])
    for model, events in log.items():
        assert fold(model, events) == states[model]


@settings(max_examples=200, deadline=None)
@given(commands)
def test_version_numbers_are_one_to_n_never_reused(sequence):
    _, log = run(sequence, [])
    for events in log.values():
        numbers = [e.payload.version for e in events if e.type == "VersionRegistered"]
        assert numbers == list(range(1, len(numbers) + 1))
