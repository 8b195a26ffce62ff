"""An imported stage: an admin's import reproduces a stage another registry
recorded, and the log says it was imported, never that modelog promoted it."""

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from modelog_contract.domain.commands import ApproveTransition, RequestTransition, SetPolicy
from modelog_contract.domain.policy import MetricThreshold, Policy
from modelog_contract.domain.types import Actor
from tests.unit.builders import ALICE, BOB, OPS, T0, Scenario, command, register
from tests.unit.test_lifecycle_properties import step

ADMIN = Actor(subject="importer", roles=("admin",))
MLFLOW = "mlflow http://mlflow.internal:5000 fraud-detector version 1"


def imported(version: int, to_stage: str, actor: Actor = ADMIN, **fields):
    return command(RequestTransition, actor=actor, version=version, to_stage=to_stage, imported_from=MLFLOW,
                   **fields)


def test_an_admin_imports_production_straight_from_none_and_the_event_says_imported():
    s = Scenario().given(register(n=1))
    [moved] = s.when(imported(1, "Production"))
    assert (moved.type, moved.payload.why, moved.payload.from_stage) == ("StageChanged", "imported", "None")
    assert moved.payload.request_id is None
    assert s.state.versions[1].stage == "Production" and s.state.pending == {}


def test_an_imported_stage_records_what_the_gates_say_now_failures_included():
    s = Scenario().given(register(n=1), command(SetPolicy, actor=ADMIN, policy=Policy(
        metric_thresholds={"Production": (MetricThreshold(metric="auc", op=">=", value=0.9),)})))
    [moved] = s.when(imported(1, "Production"))
    results = {r.rule: r for r in moved.payload.rule_results}
    assert not results["transition_allowed"].passed and not results["metric_thresholds"].passed
    assert results["imported"].passed and MLFLOW in results["imported"].detail


def test_only_an_admin_imports_a_stage():
    s = Scenario().given(register(n=1))
    for someone in (ALICE, BOB, OPS):
        assert s.rejected(imported(1, "Production", actor=someone)) == "forbidden"
    assert s.state.versions[1].stage == "None"


def test_an_import_moves_only_the_version_it_names_as_the_other_registry_had_it():
    s = Scenario().given(register(n=1), register(n=2), imported(1, "Production"))
    [moved] = s.when(imported(2, "Production", archive_existing=True))
    assert moved.payload.version == 2
    assert {n: v.stage for n, v in s.state.versions.items()} == {1: "Production", 2: "Production"}


def test_an_import_to_the_stage_a_version_is_in_is_refused_as_unchanged():
    s = Scenario().given(register(n=1), imported(1, "Staging"))
    assert s.rejected(imported(1, "Staging")) == "stage_unchanged"


def test_after_an_import_the_next_promotion_is_judged_by_the_policy_again():
    s = Scenario().given(register(n=1), register(n=2), imported(1, "Production"), imported(2, "Staging"))
    [requested] = s.when(command(RequestTransition, version=2, to_stage="Production"))
    assert requested.type == "TransitionRequested"
    events = s.when(command(ApproveTransition, actor=BOB, request_id=requested.payload.request_id))
    assert [(e.payload.version, e.payload.why) for e in events[1:]] == [(2, "promoted"), (1, "archived-by-promotion")]


stages = st.sampled_from(["None", "Staging", "Production", "Archived"])
actors = st.sampled_from([ALICE, BOB, OPS, ADMIN])
import_step = st.builds(lambda a, v, to: lambda s, t: imported(v, to, actor=a, at=t),
                        actors, st.integers(1, 4), stages)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(step, import_step), max_size=40))
def test_a_move_is_imported_exactly_when_an_admin_asked_for_an_import(steps):
    """No silent bypass: every move outside the gates names the import that made
    it and the admin who asked, and no ordinary request is ever recorded as one."""
    s = Scenario()
    for minute, make in enumerate(steps):
        cmd = make(s, T0 + timedelta(minutes=minute))
        events = s.when(cmd)
        moves = [e for e in events if e.type == "StageChanged"]
        asked_import = isinstance(cmd, RequestTransition) and cmd.imported_from is not None
        if asked_import:
            assert all(e.payload.why == "imported" for e in moves) and len(moves) <= 1
            assert not moves or ("admin" in cmd.actor.roles
                                 and any(r.rule == "imported" for r in moves[0].payload.rule_results))
        else:
            assert all(e.payload.why != "imported" for e in moves)
