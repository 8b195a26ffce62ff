"""modelog's read models in MLflow's shapes: versions as strings, milliseconds,
the registrant as user_id, the MLflow facts kept in reserved tags back in their
own fields and out of the tag list, and latest_versions one per stage."""

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from registrar.mlflow.shapes import (
    STAGES,
    facts_as_tags,
    latest_per_stage,
    millis,
    model_version,
    registered_model,
    stage_of,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


def version_row(number: int, stage: str = "None", deleted: bool = False, aliases=(), tags=None) -> dict:
    return {"model": "fraud", "version": number, "stage": stage, "artifact_uri": f"s3://store/{number}",
            "artifact_sha256": "0" * 64, "artifact_size": 1, "artifact_form": "file", "run_id": None, "description": "",
            "tags": tags or {}, "registered_by": "alice", "deleted": deleted, "aliases": list(aliases),
            "registered_at": (T0 + timedelta(seconds=number)).isoformat()}


def test_a_version_row_becomes_mlflows_model_version_with_its_facts_out_of_the_tags():
    facts = facts_as_tags("runs:/abc/model", "http://tracking/abc", "m-123")
    shape = model_version(version_row(3, "Staging", aliases=["b", "a"], tags={"team": "x", **facts}))
    assert shape == {
        "name": "fraud", "version": "3", "creation_timestamp": millis(T0.isoformat()) + 3000,
        "last_updated_timestamp": millis(T0.isoformat()) + 3000, "user_id": "alice", "current_stage": "Staging",
        "description": "", "source": "runs:/abc/model", "run_id": "", "status": "READY", "status_message": "",
        "tags": [{"key": "team", "value": "x"}], "run_link": "http://tracking/abc", "aliases": ["a", "b"],
        "model_id": "m-123"}


def test_a_version_registered_natively_shows_its_artifact_as_source():
    assert model_version(version_row(1))["source"] == "s3://store/1"


def test_milliseconds_keep_the_milliseconds():
    assert millis(T0.isoformat()) % 1000 == 678


@given(st.lists(st.tuples(st.sampled_from(STAGES), st.booleans()), max_size=12))
def test_latest_versions_are_the_highest_live_version_of_each_stage(rows):
    versions = [version_row(i + 1, stage, deleted) for i, (stage, deleted) in enumerate(rows)]
    latest = latest_per_stage(versions)
    first_reached = list(dict.fromkeys(r["stage"] for r in versions if not r["deleted"]))
    assert [v["current_stage"] for v in latest] == first_reached  # MLflow's order
    for shape in latest:
        live_in_stage = [r["version"] for r in versions if r["stage"] == shape["current_stage"] and not r["deleted"]]
        assert shape["version"] == str(max(live_in_stage))


def test_a_registered_model_lists_the_aliases_of_its_live_versions():
    model = {"name": "fraud", "description": "d", "tags": {"k": "v"}, "created_at": T0.isoformat(),
             "updated_at": (T0 + timedelta(seconds=9)).isoformat()}
    shape = registered_model(model, [version_row(1, aliases=["old"], deleted=True),
                                     version_row(2, "Production", aliases=["champion"])])
    assert shape["aliases"] == [{"alias": "champion", "version": "2"}]
    assert shape["tags"] == [{"key": "k", "value": "v"}]
    assert [v["version"] for v in shape["latest_versions"]] == ["2"]
    assert shape["last_updated_timestamp"] - shape["creation_timestamp"] == 9000


@given(st.sampled_from(STAGES), st.booleans())
def test_stages_are_read_in_any_case(stage, upper):
    assert stage_of(stage.upper() if upper else stage.lower()) == stage
    assert stage_of(stage + "x") is None
