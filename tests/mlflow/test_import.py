"""`modelog import --from-mlflow`: a registry MLflow's own client filled
(models, versions of logged scikit-learn models, descriptions, tags, aliases,
stages, a deleted version) replayed into modelog exactly, and a second import
adds nothing to the log."""

import asyncio
from collections import Counter

import mlflow
import pytest
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from modelog import Client
from modelog.cli import with_installed_commands
from modelog.cli.mlflow_import import mlflow_sources
from modelog_platform.adapters.log_reader import read_committed
from modelog_platform.settings import EVENTS_TOPIC
from tests.e2e.helpers import token_for, unique

MODELOG_FACTS = "modelog."  # tags modelog keeps its own facts under (an MLflow version's source...)


def trained(c: float) -> LogisticRegression:
    features, labels = load_iris(return_X_y=True)
    return LogisticRegression(C=c, max_iter=500).fit(features, labels)


@pytest.fixture(scope="module")
def mlflow_registry(mlflow_server):
    """Two models in MLflow, made with MLflow's own client as a team would have."""
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)
    mlflow.set_experiment(unique("import"))
    fraud, churn = unique("imported-fraud"), unique("imported-churn")
    client = MlflowClient()
    try:
        for name, strengths in ((fraud, (0.1, 1.0, 10.0)), (churn, (0.5, 2.0, 4.0))):
            for c in strengths:
                with mlflow.start_run():
                    mlflow.sklearn.log_model(trained(c), name="model", registered_model_name=name)
        client.update_registered_model(fraud, description="card fraud")
        client.set_registered_model_tag(fraud, "team", "risk")
        client.set_model_version_tag(fraud, "2", "reviewed", "yes")
        client.update_model_version(fraud, "2", description="the champion")
        client.transition_model_version_stage(fraud, "1", "Archived")
        client.transition_model_version_stage(fraud, "2", "Production")
        client.transition_model_version_stage(fraud, "3", "Staging")
        client.set_registered_model_alias(fraud, "champion", "2")
        client.set_registered_model_alias(fraud, "challenger", "3")
        client.delete_model_version(churn, "2")  # a gap modelog's numbers must keep
        client.transition_model_version_stage(churn, "3", "Production")
        client.set_registered_model_alias(churn, "prod", "3")
        client.set_registered_model_alias(churn, "Shadow", "1")  # an alias name modelog refuses
        yield mlflow_server, fraud, churn
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def run_import(url: str, *models: str, dry_run: bool = False):
    args = ["import", "--from-mlflow", url, *(a for m in models for a in ("--model", m))]
    return CliRunner().invoke(with_installed_commands(), args + (["--dry-run"] if dry_run else []),
                              env={"MODELOG_TOKEN": token_for("platform-admin", "admin"), "COLUMNS": "200"})


def events_of(engines, models: tuple[str, ...]) -> Counter:
    records = asyncio.run(read_committed(engines, EVENTS_TOPIC))
    return Counter(r.key.decode() for r in records if r.key and r.key.decode() in models)


def mlflow_facts(url: str, name: str) -> dict:
    """A model as MLflow holds it, in the terms compared."""
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    model = client.get_registered_model(name)
    return {"description": model.description or "", "tags": model.tags,
            "aliases": {a: int(v) for a, v in model.aliases.items()},
            "versions": {int(v.version): (v.current_stage, v.description or "", v.tags, v.run_id, v.source)
                         for v in client.search_model_versions(f"name='{name}'")}}


def modelog_facts(name: str) -> dict:
    with Client(token=token_for("auditor-ines", "reader")) as registry:
        model, versions = registry.get_model(name), registry.list_versions(name)
        sources = mlflow_sources(registry, name)  # as modelog's MLflow API answers them
    live = [v for v in versions if not v["deleted"]]
    return {"description": model["description"], "tags": model["tags"],
            "aliases": {a: v["version"] for v in live for a in v["aliases"]},
            "versions": {v["version"]: (v["stage"], v["description"],
                                        {k: t for k, t in v["tags"].items() if not k.startswith(MODELOG_FACTS)},
                                        v["run_id"] or "", sources.get(v["version"]))
                         for v in live},
            "deleted": [v["version"] for v in versions if v["deleted"]],
            "artifacts": {v["version"]: (v["artifact_uri"], v["artifact_size"]) for v in live}}


def test_an_mlflow_registry_is_imported_exactly_and_a_second_import_adds_nothing(stack, engines, mlflow_registry):
    url, fraud, churn = mlflow_registry
    planned = run_import(url, fraud, churn, dry_run=True)
    assert planned.exit_code == 0, planned.output
    assert f"would register {fraud} version 3" in planned.output and not events_of(engines, (fraud, churn))

    first = run_import(url, fraud, churn)
    assert first.exit_code == 0, first.output
    assert "skipped alias @Shadow" in first.output and "0 failed" in first.output

    theirs, ours = mlflow_facts(url, fraud), modelog_facts(fraud)
    assert {k: ours[k] for k in theirs} == theirs
    assert ours["deleted"] == []
    theirs, ours = mlflow_facts(url, churn), modelog_facts(churn)
    assert {k: ours[k] for k in ("description", "tags", "versions")} == {k: theirs[k] for k in
                                                                          ("description", "tags", "versions")}
    assert ours["aliases"] == {"prod": 3} and theirs["aliases"] == {"prod": 3, "Shadow": 1}
    assert ours["deleted"] == [2]  # MLflow's deleted version 2 keeps its number, deleted here too
    # The artifacts MLflow's tracking server holds were copied into modelog's store and hashed.
    for uri, size in [*modelog_facts(fraud)["artifacts"].values(), *modelog_facts(churn)["artifacts"].values()]:
        assert uri.startswith("s3://") and size > 0

    written = events_of(engines, (fraud, churn))
    second = run_import(url, fraud, churn)
    assert second.exit_code == 0, second.output
    assert f"unchanged {fraud}: 0 written" in second.output and f"unchanged {churn}: 0 written" in second.output
    assert events_of(engines, (fraud, churn)) == written


def test_imported_stages_are_recorded_as_imported_by_the_admin_not_as_promotions(stack, mlflow_registry):
    url, fraud, _ = mlflow_registry
    assert run_import(url, fraud).exit_code == 0
    with Client(token=token_for("auditor-ines", "reader")) as registry:
        moves = registry.stage_history(fraud)
    assert sorted((m["version"], m["to_stage"], m["why"], m["actor"]) for m in moves) == [
        (1, "Archived", "imported", "platform-admin"), (2, "Production", "imported", "platform-admin"),
        (3, "Staging", "imported", "platform-admin")]


def test_an_import_by_someone_who_is_not_an_admin_stops_at_the_stages_and_says_so(stack, mlflow_server):
    name = unique("imported-by-publisher")
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    client.create_registered_model(name)
    client.create_model_version(name, source="s3://elsewhere/model", run_id="")
    client.transition_model_version_stage(name, "1", "Staging")
    result = CliRunner().invoke(with_installed_commands(), ["import", "--from-mlflow", mlflow_server, "--model", name],
                                env={"MODELOG_TOKEN": token_for("ci-pipeline", "publisher"), "COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert f"failed {name}: 2 of 3 written" in result.output and "forbidden" in result.output
