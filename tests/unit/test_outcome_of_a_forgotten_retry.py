"""A retry the model had forgotten is refused (command_expired) in the trail,
but the command's recorded outcome stays the first one: the registrar answers
retries from that record, so it must not turn into the refusal."""

from modelog_contract.domain.idempotency import IdempotencyWindow
from projector.fold import ReadModelRows
from tests.unit.builders import Scenario, register


def test_the_first_outcome_stands_when_a_forgotten_retry_is_refused():
    history = Scenario(window=IdempotencyWindow(commands=1))
    first = register(n=1)
    history.given(first, register(n=2))  # the second pushes the first out of a window of one
    assert history.rejected(first) == "command_expired"

    rows = ReadModelRows()
    for event in history.events:
        rows.apply(event)

    outcome = rows.command_outcomes[first.command_id]
    assert outcome["accepted"] is True
    assert outcome["events"] == ["ModelCreated", "VersionRegistered"]
    assert outcome["version"] == 1
    assert outcome["last_seq"] == 2
