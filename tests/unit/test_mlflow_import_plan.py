"""Planning an import from MLflow: what is missing is written, what modelog
holds is kept, and a plan carried out leaves nothing to plan."""

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from modelog.mlflow_plan import (
    CreateModel,
    DescribeModel,
    DescribeVersion,
    ImportStage,
    MlflowModel,
    MlflowVersion,
    ModelogModel,
    ModelogVersion,
    ModelPlan,
    RegisterDeleted,
    RegisterVersion,
    SetAlias,
    TagModel,
    TagVersion,
    plan,
    plan_model,
)

FRAUD = MlflowModel(
    "fraud-detector", description="card fraud", tags={"team": "risk"}, aliases={"champion": 2},
    versions=(MlflowVersion(1, "models:/m-1", run_id="r1", stage="Archived"),
              MlflowVersion(2, "models:/m-2", run_id="r2", stage="Production", description="gbm",
                            tags={"reviewed": "yes"})))


def carried_out(model: ModelogModel | None, planned: ModelPlan) -> ModelogModel:
    """modelog's state after the plan's writes, as the registry would make it."""
    state = model or ModelogModel(planned.model)
    versions = {v.version: v for v in state.versions}

    def change(number: int, **fields) -> None:
        versions[number] = replace(versions[number], **fields)

    for step in planned.steps:
        match step:
            case CreateModel():
                state = replace(state, description=step.description, tags=dict(step.tags))
            case DescribeModel():
                state = replace(state, description=step.description)
            case TagModel():
                state = replace(state, tags={**state.tags, step.key: step.value})
            case RegisterVersion():
                assert step.version == len(versions) + 1, "modelog numbers versions without gaps"
                versions[step.version] = ModelogVersion(step.version, step.run_id, step.description,
                                                        dict(step.tags), source=step.source)
            case RegisterDeleted():
                assert step.version == len(versions) + 1
                versions[step.version] = ModelogVersion(step.version, deleted=True)
            case DescribeVersion():
                change(step.version, description=step.description)
            case TagVersion():
                change(step.version, tags={**versions[step.version].tags, step.key: step.value})
            case ImportStage():
                assert versions[step.version].stage == "None"
                change(step.version, stage=step.stage)
            case SetAlias():
                change(step.version, aliases=(*versions[step.version].aliases, step.alias))
    return replace(state, versions=tuple(versions[n] for n in sorted(versions)))


def test_a_model_new_to_modelog_is_created_registered_staged_and_aliased_in_that_order():
    planned = plan_model(FRAUD, None)
    assert [type(s).__name__ for s in planned.steps] == [
        "CreateModel", "RegisterVersion", "RegisterVersion", "ImportStage", "ImportStage", "SetAlias"]
    assert planned.steps[0] == CreateModel("fraud-detector", "card fraud", {"team": "risk"})
    assert planned.steps[2] == RegisterVersion("fraud-detector", 2, "models:/m-2", "r2", "", "", "gbm",
                                               {"reviewed": "yes"})
    assert planned.steps[3:5] == (ImportStage("fraud-detector", 1, "Archived"),
                                  ImportStage("fraud-detector", 2, "Production"))
    assert planned.skipped == ()


def test_a_second_import_plans_nothing_and_counts_what_is_there():
    again = plan_model(FRAUD, carried_out(None, plan_model(FRAUD, None)))
    assert again.steps == () and again.skipped == ()
    # description, tag, two versions, a version's description and tag, two stages, an alias
    assert again.present == 9


def test_a_gap_in_mlflow_numbers_is_kept_by_a_registered_then_deleted_version():
    gappy = MlflowModel("churn", versions=(MlflowVersion(1, "s3://a/1", run_id="a"),
                                           MlflowVersion(3, "s3://a/3", run_id="c")))
    planned = plan_model(gappy, None)
    assert [(type(s).__name__, getattr(s, "version", None)) for s in planned.steps] == [
        ("CreateModel", None), ("RegisterVersion", 1), ("RegisterDeleted", 2), ("RegisterVersion", 3)]


def test_what_modelog_holds_differently_is_kept_and_said():
    held = carried_out(None, plan_model(FRAUD, None))
    moved = replace(held, description="fraud, v2", versions=(
        held.versions[0], replace(held.versions[1], stage="Archived", tags={"reviewed": "no"})))
    planned = plan_model(FRAUD, moved)
    assert planned.steps == ()
    assert {s.what for s in planned.skipped} == {
        "fraud-detector's description", "version 2 tag 'reviewed'", "version 2's stage"}
    assert all("modelog" in s.why for s in planned.skipped)


def test_what_modelog_lacks_is_filled_in_without_touching_the_rest():
    held = carried_out(None, plan_model(FRAUD, None))
    bare = replace(held, description="", tags={}, versions=(
        held.versions[0], replace(held.versions[1], description="", tags={}, stage="None", aliases=())))
    assert plan_model(FRAUD, bare).steps == (
        DescribeModel("fraud-detector", "card fraud"), TagModel("fraud-detector", "team", "risk"),
        DescribeVersion("fraud-detector", 2, "gbm"), TagVersion("fraud-detector", 2, "reviewed", "yes"),
        ImportStage("fraud-detector", 2, "Production"), SetAlias("fraud-detector", "champion", 2))


def test_a_modelog_version_of_another_run_is_not_taken_for_mlflows_nor_is_what_hangs_on_it():
    theirs = ModelogModel("fraud-detector", versions=(ModelogVersion(1, run_id="r1"), ModelogVersion(2, run_id="zz")))
    planned = plan_model(FRAUD, theirs)
    assert not any(getattr(s, "version", None) == 2 for s in planned.steps)
    assert {s.what for s in planned.skipped} == {"version 2", "alias @champion"}


def test_a_modelog_version_of_another_source_is_not_taken_for_mlflows():
    theirs = ModelogModel("fraud-detector", versions=(ModelogVersion(1, run_id="r1", source="s3://other/1"),))
    assert [s.what for s in plan_model(FRAUD, theirs).skipped] == ["version 1"]


def test_names_modelog_refuses_and_prompts_are_skipped_with_why():
    prompt = MlflowModel("greeting", tags={"mlflow.prompt.is_prompt": "true"})
    spaced = MlflowModel("my model")
    odd = MlflowModel("ok", aliases={"Champion": 1}, tags={"modelog.x": "1", "big": "x" * 5001},
                      versions=(MlflowVersion(1, "s3://b/1"),))
    plans = {p.model: p for p in plan([prompt, spaced, odd], {})}
    assert plans["greeting"].steps == () and "prompt" in plans["greeting"].skipped[0].why
    assert plans["my model"].steps == () and "names" in plans["my model"].skipped[0].why
    assert [s.what for s in plans["ok"].skipped] == ["model tag 'big'", "model tag 'modelog.x'", "alias @Champion"]
    assert plans["ok"].steps[0] == CreateModel("ok", "", {})


def test_a_model_deleted_in_modelog_is_left_alone():
    assert plan_model(FRAUD, ModelogModel("fraud-detector", deleted=True)).steps == ()


# -- the property: whatever MLflow and modelog hold, carrying a plan out leaves nothing to plan

texts = st.sampled_from(["", "a", "b"])
tags = st.dictionaries(st.sampled_from(["team", "owner", "modelog.x"]), texts, max_size=2)
stages = st.sampled_from(["None", "Staging", "Production", "Archived"])
mlflow_versions = st.lists(
    st.builds(lambda n, run, stage, status, d, t: MlflowVersion(n, f"s3://b/{run}", run_id=run, stage=stage,
                                                                  status=status, description=d, tags=t),
              st.integers(1, 6), st.sampled_from(["r1", "r2", ""]), stages,
              st.sampled_from(["READY", "READY", "FAILED_REGISTRATION"]), texts, tags),
    max_size=5, unique_by=lambda v: v.version)
mlflow_models = st.builds(
    lambda v, d, t, a: MlflowModel("m", d, t, {k: n for k, n in a.items()}, tuple(sorted(v, key=lambda x: x.version))),
    mlflow_versions, texts, tags, st.dictionaries(st.sampled_from(["champion", "Bad", "prod"]), st.integers(1, 6)))
modelog_models = st.one_of(st.none(), st.builds(
    lambda vs, d, t: ModelogModel("m", d, t, versions=tuple(
        ModelogVersion(i + 1, run, stage=stage, deleted=deleted) for i, (run, stage, deleted) in enumerate(vs))),
    st.lists(st.tuples(st.sampled_from(["r1", "r2", ""]), stages, st.booleans()), max_size=4), texts, tags))


@settings(max_examples=400, deadline=None)
@given(mlflow_models, modelog_models)
def test_carrying_out_a_plan_leaves_nothing_to_plan(source, target):
    first = plan_model(source, target)
    after = carried_out(target, first)
    again = plan_model(source, after)
    assert again.steps == ()
    assert sorted(again.skipped, key=repr) == sorted(first.skipped, key=repr)


@settings(max_examples=400, deadline=None)
@given(mlflow_models, modelog_models)
def test_an_import_never_changes_what_modelog_holds(source, target):
    """It only adds: every value modelog had before is still there after."""
    after = carried_out(target, plan_model(source, target))
    before = target or ModelogModel("m")
    assert before.description in ("", after.description)
    assert all(after.tags[k] == v for k, v in before.tags.items())
    for old, new in zip(before.versions, after.versions, strict=False):  # after may have more
        assert (old.run_id, old.deleted) == (new.run_id, new.deleted)
        assert old.stage in ("None", new.stage)
        assert all(new.tags[k] == v for k, v in old.tags.items())
