"""One script of MLflow client calls, run against a real `mlflow server` as the
registry and against modelog's registrar: every answer, normalized (the model's
name, timestamps), is compared field by field, and every error by exception
class and error_code. Where modelog differs on purpose (user_id is the
caller's subject; get-download-uri points at modelog's copy) the field is left
out here and said in docs/mlflow.md."""

import tempfile
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException

from tests.e2e.helpers import bearer, token_for, unique

pytestmark = pytest.mark.engines

SUBJECT = "mlflow-differential"


def normalized(answer, name: str):
    """An answer as comparable data: the model's name as <model>, timestamps checked and dropped."""
    match answer:
        case RegisteredModel():
            assert answer.creation_timestamp > 0 and answer.last_updated_timestamp >= answer.creation_timestamp
            return {"name": answer.name.replace(name, "<model>"), "description": answer.description or "",
                    "tags": answer.tags, "aliases": answer.aliases,
                    "latest_versions": sorted((v.version, v.current_stage) for v in answer.latest_versions)}
        case ModelVersion():
            assert answer.creation_timestamp > 0 and answer.last_updated_timestamp >= answer.creation_timestamp
            return {"name": answer.name.replace(name, "<model>"), "version": answer.version,
                    "current_stage": answer.current_stage, "description": answer.description or "",
                    "source": answer.source, "run_id": answer.run_id or "", "run_link": answer.run_link or "",
                    "status": answer.status, "tags": answer.tags, "aliases": sorted(answer.aliases)}
        case list():
            return [normalized(item, name) for item in answer]
        case str() | None:
            return answer
    raise AssertionError(f"no normal form for {answer!r}")


def outcome(call: Callable, name: str):
    try:
        return ("answered", normalized(call(), name))
    except MlflowException as error:
        return ("refused", type(error).__name__, error.error_code)


def script(client: MlflowClient, name: str, source: str, run_id: str, before_promotions: Callable[[], None]):
    """The calls, each with its label: a registry's life as MLflow's client drives it."""
    steps: list[tuple[str, Callable]] = [
        ("create model", lambda: client.create_registered_model(name, tags={"team": "fraud"}, description="d")),
        ("duplicate name", lambda: client.create_registered_model(name)),
        ("get model", lambda: client.get_registered_model(name)),
        ("unknown model", lambda: client.get_registered_model(name + "-nope")),
        ("update model", lambda: client.update_registered_model(name, description="d2")),
        ("set model tag", lambda: client.set_registered_model_tag(name, "owner", "alice")),
        ("delete model tag", lambda: client.delete_registered_model_tag(name, "team")),
        ("version of an unknown model", lambda: client.create_model_version(name + "-nope", source, run_id)),
    ]
    steps += [(f"create version {n}", lambda n=n: client.create_model_version(
        name, source, run_id, tags={"n": str(n)}, description=f"v{n}")) for n in (1, 2, 3)]
    steps += [
        ("get version", lambda: client.get_model_version(name, "2")),
        ("bad version string", lambda: client.get_model_version(name, "two")),
        ("unknown version", lambda: client.get_model_version(name, "9")),
        ("update version", lambda: client.update_model_version(name, "2", description="better")),
        ("set version tag", lambda: client.set_model_version_tag(name, "2", "checked", "yes")),
        ("delete version tag", lambda: client.delete_model_version_tag(name, "2", "n")),
        ("bad stage", lambda: client.transition_model_version_stage(name, "1", "Prod")),
        ("policy", before_promotions),
        ("1 to Staging", lambda: client.transition_model_version_stage(name, "1", "Staging")),
        ("1 to Production", lambda: client.transition_model_version_stage(name, "1", "Production")),
        ("2 to Staging", lambda: client.transition_model_version_stage(name, "2", "staging")),
        ("2 to Production, archiving 1", lambda: client.transition_model_version_stage(
            name, "2", "Production", archive_existing_versions=True)),
        ("1 after", lambda: client.get_model_version(name, "1")),
        ("latest", lambda: client.get_latest_versions(name, stages=["Production", "Archived"])),
        ("latest of every stage", lambda: client.get_latest_versions(name)),
        ("set alias", lambda: client.set_registered_model_alias(name, "champion", "2")),
        ("by alias", lambda: client.get_model_version_by_alias(name, "champion")),
        ("model with alias", lambda: client.get_registered_model(name)),
        ("delete alias", lambda: client.delete_registered_model_alias(name, "champion")),
        ("unknown alias", lambda: client.get_model_version_by_alias(name, "champion")),
        ("search models", lambda: list(client.search_registered_models(f"name = '{name}'"))),
        ("search models by tag", lambda: list(client.search_registered_models(
            f"name LIKE '{name}%' AND tags.owner = 'alice'"))),
        ("invalid filter", lambda: client.search_registered_models("name LIKE")),
        ("search versions", lambda: list(client.search_model_versions(f"name = '{name}'",
                                                                      order_by=["version_number ASC"]))),
        ("search versions by run", lambda: [v.version for v in client.search_model_versions(
            f"name = '{name}' AND run_id IN ('{run_id}')", order_by=["version_number DESC"])]),
        ("download uri is answered", lambda: "answered" if client.get_model_version_download_uri(name, "2")
         else "empty"),
        ("delete version", lambda: client.delete_model_version(name, "3")),
        ("deleted version", lambda: client.get_model_version(name, "3")),
        # modelog deletes no model with a version in Production (docs/mlflow.md): archive it first, in both.
        ("2 to Archived", lambda: client.transition_model_version_stage(name, "2", "Archived")),
        ("delete model", lambda: client.delete_registered_model(name)),
        ("deleted model", lambda: client.get_registered_model(name)),
    ]
    return [(label, outcome(call, name)) for label, call in steps]


@pytest.fixture
def logged_run(mlflow_server) -> tuple[str, str]:
    """A run on the tracking server with a model directory: the source both registries are given."""
    tracking = MlflowClient(tracking_uri=mlflow_server)
    experiment = tracking.create_experiment(unique("differential"))
    run = tracking.create_run(experiment)
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "MLmodel").write_text("flavors: {}\n")
        (Path(directory) / "model.pkl").write_bytes(uuid4().bytes)
        tracking.log_artifacts(run.info.run_id, directory, "model")
    tracking.set_terminated(run.info.run_id)
    return f"runs:/{run.info.run_id}/model", run.info.run_id


def test_mlflows_client_gets_the_same_answers_and_errors_from_modelog_as_from_mlflow_server(
        stack, mlflow_server, logged_run, monkeypatch):
    source, run_id = logged_run
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a 5xx is a difference, not a retry

    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    upstream = script(MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server),
                      unique("diff-mlflow"), source, run_id, lambda: None)

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_for(SUBJECT, "publisher", "operator", "admin"))
    name = unique("diff-modelog")

    def no_approvals() -> None:
        """MLflow has no approvals: modelog's policy for this model asks for none, as an admin sets it."""
        with httpx.Client(base_url=stack.url("registrar"), headers=bearer("diff-admin", "admin"), timeout=30) as api:
            api.put(f"/v1/models/{name}/policy", json={"policy": {"approvals_required": {}}}).raise_for_status()

    ours = script(MlflowClient(tracking_uri=mlflow_server, registry_uri=stack.url("registrar")),
                  name, source, run_id, no_approvals)

    differences = [(label, theirs, mine) for (label, theirs), (_, mine) in zip(upstream, ours, strict=True)
                   if theirs != mine]
    assert differences == [], "\n".join(f"{label}:\n  mlflow server: {theirs}\n  modelog:       {mine}"
                                        for label, theirs, mine in differences)
