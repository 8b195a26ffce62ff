"""The console's as-of page says each change of the auditor's diff in a
sentence: given a model's history, the diff between two of its states reads
as what happened, and a change it has no sentence for still reads in full."""

from modelog_contract.audit import forensics
from modelog_contract.domain.commands import DeleteAlias, RequestTransition, SetAlias, UpdateModel
from registrar.console.time_travel import as_utc, change_words, form_value
from tests.unit.builders import OPS, Scenario, command, create, register


def said(before, after) -> list[str]:
    """The words of each change, as the auditor's diff endpoint answers them."""
    return [change_words({**c.model_dump(mode="json"), "text": str(c)})["words"]
            for c in forensics.diff(before, after)]


def test_registrations_moves_and_aliases_read_as_what_happened():
    history = Scenario().given(create(), register(n=1), command(SetAlias, alias="champion", version=1),
                               command(SetAlias, alias="canary", version=1))
    then = history.state
    history.given(register(n=2), command(RequestTransition, OPS, version=1, to_stage="Archived"),
                  command(SetAlias, alias="champion", version=2), command(DeleteAlias, alias="canary"),
                  command(UpdateModel, description="scores card payments"))
    words = said(then, history.state)
    assert "@canary was removed (it pointed at v1)." in words
    assert "@champion moved from v1 to v2." in words
    assert "v1 moved from no stage to Archived." in words
    assert "v2 was registered by alice, in no stage." in words
    assert "description changed from '' to 'scores card payments'." in words


def test_a_model_that_did_not_exist_then_reads_as_created():
    history = Scenario()
    then = history.state
    history.given(create(), register(n=1))
    assert said(then, history.state)[:1] == ["The model was created."]


def test_an_instant_without_a_zone_is_utc_and_shows_again_to_the_millisecond():
    assert as_utc("2026-03-01T09:14:05.250") == "2026-03-01T09:14:05.250000+00:00"
    assert as_utc("last tuesday") == "last tuesday"  # the auditor refuses it, in its words
    assert form_value("2026-03-01T10:14:05.250999+01:00") == "2026-03-01T09:14:05.250"
