"""The idempotency window: a retry inside it yields nothing; outside it, it is
refused with command_expired and never applied a second time; the memory never
holds more ids than the window's count."""

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modelog_contract.domain import IdempotencyWindow, ModelState, fold
from modelog_contract.domain.commands import SetTag
from modelog_contract.domain.decider import event_id, reject_unauthenticated
from modelog_contract.domain.reasons import Reason
from tests.unit.builders import T0, Scenario, command, create

TWO = IdempotencyWindow(commands=2, seconds=3600)
A_MINUTE = IdempotencyWindow(commands=1000, seconds=60)


def tag(value: str, seconds: float = 0):
    return command(SetTag, key="owner", value=value, at=T0 + timedelta(seconds=seconds))


def test_a_retry_inside_the_window_yields_no_events():
    s = Scenario(window=TWO).given(create())
    first = tag("risk", 1)
    assert [e.type for e in s.when(first)] == ["TagSet"]
    assert first.command_id in s.state.decided
    assert s.when(first) == []


def test_a_retry_the_count_pushed_out_is_refused_as_expired_and_not_applied_again():
    s = Scenario(window=TWO).given(create())
    first = tag("risk", 1)
    [applied] = s.when(first)
    s.given(tag("fraud", 2), tag("ops", 3))
    assert first.command_id not in s.state.decided
    [refused] = s.when(first)
    assert refused.type == "CommandRejected" and refused.payload.reason == Reason.COMMAND_EXPIRED
    assert refused.command_id == first.command_id  # the retry's outcome names its command
    assert refused.event_id not in (applied.event_id, event_id(first.command_id, 0))  # the log keeps ids unique
    assert "new command id" in refused.payload.message
    assert s.state.tags == {"owner": "ops"}  # the last write stands; the retry did not overwrite it
    assert s.when(first) == []  # the refusal is now what the window remembers


def test_a_retry_the_clock_pushed_out_is_refused_as_expired():
    s = Scenario(window=A_MINUTE).given(create())
    first = tag("risk", 1)
    s.given(first, tag("fraud", 62))
    assert first.command_id not in s.state.decided
    assert s.rejected(first) == Reason.COMMAND_EXPIRED


def test_a_new_command_issued_after_the_horizon_is_decided():
    s = Scenario(window=TWO).given(create(), tag("a", 1), tag("b", 2), tag("c", 3))
    assert s.state.decided.horizon == T0 + timedelta(seconds=1)
    assert [e.type for e in s.when(tag("d", 1.5))] == ["TagSet"]


def test_a_new_command_no_newer_than_a_forgotten_one_is_refused_as_it_may_have_been_decided():
    s = Scenario(window=TWO).given(create(), tag("a", 5), tag("b", 6), tag("c", 7))
    assert s.rejected(tag("d", 5)) == Reason.COMMAND_EXPIRED


def test_an_unauthenticated_retry_outside_the_window_is_expired_not_a_second_outcome_of_its_own():
    s = Scenario(window=TWO).given(create())
    first = tag("risk", 1)
    s.given(first, tag("fraud", 2), tag("ops", 3))
    [refused] = reject_unauthenticated(s.state, first, "token already spent")
    assert refused.payload.reason == Reason.COMMAND_EXPIRED


def test_the_window_is_refused_unless_it_counts_and_lasts():
    with pytest.raises(ValidationError):
        IdempotencyWindow(commands=0, seconds=60)
    with pytest.raises(ValidationError):
        IdempotencyWindow(commands=10, seconds=0)


# -- Properties over random streams with retries ------------------------------

windows = st.builds(IdempotencyWindow, commands=st.integers(1, 6), seconds=st.floats(1, 120))
# Each step: a new command at an offset from the newest time (it may step back),
# or a retry of an earlier command.
steps = st.lists(st.one_of(
    st.tuples(st.just("new"), st.integers(-30, 60)),
    st.tuples(st.just("retry"), st.integers(0, 1000)),
), max_size=60)


def play(window: IdempotencyWindow, plan):
    """Decide the plan; per step, (command, whether it retried, what the window
    remembered just before, the events)."""
    s = Scenario(window=window).given(create())
    sent, clock, story = [], T0, []
    for kind, n in plan:
        if kind == "retry" and sent:
            cmd, again = sent[n % len(sent)], True
        else:
            clock += timedelta(seconds=n)
            cmd, again = tag(str(len(sent)), (clock - T0).total_seconds()), False
            sent.append(cmd)
        before = s.state
        story.append((cmd, again, before, s.when(cmd)))
    return s, story


@settings(max_examples=300, deadline=None)
@given(windows, steps)
def test_a_command_is_applied_at_most_once_and_a_retry_gets_nothing_or_command_expired(window, plan):
    _, story = play(window, plan)
    applied: dict = {}
    for cmd, again, before, events in story:
        for event in events:
            if event.type == "TagSet":
                applied[event.command_id] = applied.get(event.command_id, 0) + 1
        if again:
            if cmd.command_id in before.decided:
                assert events == []
            else:
                assert [(e.type, e.payload.reason) for e in events] == [("CommandRejected", Reason.COMMAND_EXPIRED)]
    assert all(count == 1 for count in applied.values())


@settings(max_examples=300, deadline=None)
@given(windows, steps)
def test_a_retry_inside_the_window_yields_nothing(window, plan):
    """Inside: among the newest `commands` ids given an outcome since (itself
    included), and decided no more than `seconds` before the newest decision."""
    _, story = play(window, plan)
    outcomes: list = []  # (command id, issued at) of every decision that yielded events, in order
    for cmd, again, _, events in story:
        ids = [c for c, _ in outcomes]
        if again and cmd.command_id in ids:
            last = len(ids) - 1 - ids[::-1].index(cmd.command_id)
            newest = max([T0] + [at for _, at in outcomes])  # T0: the model's creation
            if len(outcomes) - last <= window.commands and cmd.issued_at >= newest - timedelta(seconds=window.seconds):
                assert events == []
        if events:
            outcomes.append((cmd.command_id, cmd.issued_at))


@settings(max_examples=300, deadline=None)
@given(windows, steps)
def test_the_window_never_holds_more_than_its_count_and_folds_back_the_same(window, plan):
    s, story = play(window, plan)
    for _, _, before, _ in story:
        assert len(before.decided) <= window.commands
    assert len(s.state.decided) <= window.commands
    assert fold(s.state.name, s.events, window) == s.state
    assert ModelState.model_validate_json(s.state.model_dump_json()) == s.state
