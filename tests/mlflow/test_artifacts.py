"""Immutable artifacts from MLflow sources: a real scikit-learn model logged to
the team's MLflow tracking server is copied whole into modelog's
content-addressed store with a manifest, served back through MLflow's
artifact-proxy protocol to MLflow's own loader, and a stored file altered
afterwards is refused, never loaded."""

import asyncio
import hashlib
import io
from types import SimpleNamespace
from uuid import uuid4

import httpx
import numpy as np
import pytest

from modelog_contract.domain import RegisterVersion
from modelog_platform.adapters.s3 import ArtifactStore, artifact_key
from modelog_platform.settings import EngineEndpoints
from registrar import manifest
from registrar.mlflow.sources import artifact_for, tracking_client
from tests.e2e.helpers import bearer, decided, make, token_for, unique

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture(scope="module")
def trained():
    """A real model and the rows it is judged on."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    features, labels = make_classification(n_samples=300, n_features=6, random_state=11)
    return LogisticRegression(max_iter=500).fit(features, labels), features


@pytest.fixture(scope="module")
def logged_model(mlflow_server, trained):
    """The model logged to the tracking server as a training job logs it: models:/m-<id>."""
    import mlflow
    import mlflow.sklearn

    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment(f"artifacts-{uuid4().hex[:6]}")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(trained[0], name="model")
    return info.model_uri


def registrar_as_seen_by_sources(engines, mlflow_server, max_bytes: int = 64 * 1024 * 1024):
    """What artifact_for needs of a request: the registrar's settings and store,
    against the test stack's real S3 and the real tracking server."""
    settings = SimpleNamespace(mlflow_tracking_uri=mlflow_server, max_upload_bytes=max_bytes)
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(settings=settings,
                                                                     artifacts=ArtifactStore(engines))))


def copied(engines, mlflow_server, source: str, **options):
    async def copy():
        request = registrar_as_seen_by_sources(engines, mlflow_server, **options)
        async with tracking_client() as request.app.state.tracking_http:
            return await artifact_for(request, source, None)
    return asyncio.run(copy())


def register_manifest(stack, name: str, artifact) -> None:
    """A version whose artifact is a copied tree's manifest, registered with the
    very artifact (form "manifest") MLflow's model-versions/create gives it: a
    RegisterVersion straight to the commands topic, as another service sends one.
    (Registering the manifest's object by reference would make a version of
    one file, served as that file: the form is the registration's, not the bytes'.)"""
    outcome = asyncio.run(decided(EngineEndpoints(), stack, make(RegisterVersion, name, artifact=artifact)))
    assert outcome["accepted"], outcome


def stored_files(engines, artifact) -> list[manifest.ManifestFile]:
    return manifest.parse(asyncio.run(ArtifactStore(engines).read_verified(artifact.sha256)))


def test_a_logged_model_is_copied_whole_and_pinned_by_its_manifest(engines, stack, mlflow_server, logged_model):
    artifact = copied(engines, mlflow_server, logged_model)

    assert artifact.form == "manifest" and artifact.verified
    files = stored_files(engines, artifact)
    paths = {f.path for f in files}
    assert {"MLmodel", "requirements.txt", "python_env.yaml"} <= paths and paths & {"model.pkl", "model.skops"}
    store = ArtifactStore(engines)
    for file in files:
        data = asyncio.run(store.read_verified(file.sha256))
        assert (len(data), hashlib.sha256(data).hexdigest()) == (file.size, file.sha256)
    assert copied(engines, mlflow_server, logged_model) == artifact  # the same tree: the same digest


def test_mlflows_loader_loads_modelogs_copy_and_predicts_as_the_trained_model(
        engines, stack, mlflow_server, logged_model, trained, monkeypatch):
    import mlflow.sklearn

    name = unique("mlflow-copy")
    register_manifest(stack, name, copied(engines, mlflow_server, logged_model))
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_for("serving", "reader"))

    loaded = mlflow.sklearn.load_model(f"{stack.url('registrar')}{ARTIFACTS}/models/{name}/1")

    model, features = trained
    assert np.array_equal(loaded.predict(features), model.predict(features))


def test_a_stored_file_altered_in_s3_is_refused_and_never_loaded(
        engines, stack, mlflow_server, trained, monkeypatch, tmp_path):
    import mlflow
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException
    from sklearn.linear_model import LogisticRegression

    # A model of its own, so the file altered here is no other test's.
    mlflow.set_tracking_uri(mlflow_server)
    own = LogisticRegression(C=0.37, max_iter=500).fit(*_labelled(trained))
    with mlflow.start_run():
        source = mlflow.sklearn.log_model(own, name="model").model_uri
    name, artifact = unique("mlflow-corrupt"), copied(engines, mlflow_server, source)
    register_manifest(stack, name, artifact)
    weights = next(f for f in stored_files(engines, artifact) if f.path in ("model.pkl", "model.skops"))
    store = ArtifactStore(engines)
    original = asyncio.run(store.read_verified(weights.sha256))
    middle = len(original) // 2
    tampered = original[:middle] + bytes([original[middle] ^ 0xFF]) + original[middle + 1:]  # same length
    store.client.put_object(store.bucket, artifact_key(weights.sha256), io.BytesIO(tampered), len(tampered))
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_for("serving", "reader"))
    location = f"{stack.url('registrar')}{ARTIFACTS}/models/{name}/1"

    with httpx.Client(base_url=stack.url("registrar"), headers=bearer("serving", "reader")) as api:
        refused = api.get(f"{ARTIFACTS}/models/{name}/1/{weights.path}")
    assert refused.status_code == 409 and refused.json()["error_code"] == "RESOURCE_CONFLICT"
    assert f"no longer hash to sha256 {weights.sha256}" in refused.json()["message"]
    with pytest.raises(MlflowException, match="no longer hash"):
        mlflow.sklearn.load_model(location)
    with pytest.raises(MlflowException):
        mlflow.artifacts.download_artifacts(location, dst_path=str(tmp_path))
    assert not (tmp_path / weights.path).exists()


def _labelled(trained):
    model, features = trained
    return features, model.predict(features)


def test_the_copy_is_listed_as_mlflows_artifact_proxy_lists_and_only_to_readers_of_the_model(
        engines, stack, mlflow_server, logged_model):
    name = unique("mlflow-list")
    artifact = copied(engines, mlflow_server, logged_model)
    register_manifest(stack, name, artifact)
    files = {f.path: f for f in stored_files(engines, artifact)}

    with httpx.Client(base_url=stack.url("registrar"), headers=bearer("serving", "reader")) as api:
        listed = api.get(ARTIFACTS, params={"path": f"models/{name}/1"}).json()["files"]
        one = api.get(f"{ARTIFACTS}/models/{name}/1/MLmodel")
    assert {"path": "MLmodel", "is_dir": False, "file_size": files["MLmodel"].size} in listed
    assert one.status_code == 200 and hashlib.sha256(one.content).hexdigest() == files["MLmodel"].sha256

    with httpx.Client(base_url=stack.url("registrar"), headers=bearer("other-team", "reader", grants=("other-*",))) as api:
        forbidden = api.get(ARTIFACTS, params={"path": f"models/{name}/1"})
    assert forbidden.status_code == 403 and forbidden.json()["error_code"] == "PERMISSION_DENIED"
    assert httpx.get(f"{stack.url('registrar')}{ARTIFACTS}/models/{name}/1/MLmodel").status_code == 401


def test_an_s3_prefix_the_registrar_can_read_is_copied_file_by_file(engines, stack, mlflow_server):
    store, prefix = ArtifactStore(engines), f"team-bucket-runs/{uuid4().hex}/model"
    tree = {"MLmodel": b"flavors: {}\n", "data/weights.bin": b"\x00\x01" * 500, "empty.txt": b""}
    for path, data in tree.items():
        store.client.put_object(store.bucket, f"{prefix}/{path}", io.BytesIO(data), len(data))

    artifact = copied(engines, mlflow_server, f"s3://{store.bucket}/{prefix}")

    assert artifact.form == "manifest"
    assert {(f.path, f.size, f.sha256) for f in stored_files(engines, artifact)} == {
        (path, len(data), hashlib.sha256(data).hexdigest()) for path, data in tree.items()}


@pytest.mark.parametrize("source", ["file:///home/alice/mlruns/0/abc/artifacts/model", "dbfs:/models/x",
                                    "models:/m-0000000000000000nosuchmodel", "runs:/nosuchrun/model",
                                    "s3://no-such-bucket-modelog/model", "s3://x/model",  # a name S3 refuses
                                    "mlflow-artifacts://elsewhere:5000/0/x"])
def test_a_source_modelog_cannot_read_is_kept_as_given_and_unverified(engines, stack, mlflow_server, source):
    artifact = copied(engines, mlflow_server, source)

    assert (artifact.uri, artifact.form, artifact.size) == (source, "unverified", 0)
    assert not artifact.verified and artifact.sha256 == hashlib.sha256(source.encode()).hexdigest()


def test_a_tree_beyond_the_upload_limit_is_refused(engines, stack, mlflow_server, logged_model):
    from modelog_platform.web import ApiError

    with pytest.raises(ApiError) as refused:
        copied(engines, mlflow_server, logged_model, max_bytes=100)
    assert refused.value.code == "artifact_too_large"


def test_the_orphan_sweep_keeps_every_file_a_registered_manifest_lists(engines, stack, mlflow_server, logged_model):
    from datetime import timedelta

    from registrar.reconciler import projector_references, reconcile

    kept = copied(engines, mlflow_server, logged_model)
    register_manifest(stack, unique("mlflow-swept"), kept)
    store, prefix = ArtifactStore(engines), f"abandoned/{uuid4().hex}"
    lone = b"a file only an abandoned tree has " + uuid4().bytes
    store.client.put_object(store.bucket, f"{prefix}/weights.bin", io.BytesIO(lone), len(lone))
    abandoned = copied(engines, mlflow_server, f"s3://{store.bucket}/{prefix}")  # copied, never registered

    async def sweep():
        async with httpx.AsyncClient(base_url=stack.url("projector"), headers=bearer("modelog-registrar", "reader"),
                                     timeout=30) as projector:
            return await reconcile(store, projector_references(projector), timedelta(seconds=0))

    swept = asyncio.run(sweep())

    for file in stored_files(engines, kept):
        assert file.sha256 not in swept.removed and asyncio.run(store.exists(file.sha256))
    assert {abandoned.sha256, hashlib.sha256(lone).hexdigest()} <= set(swept.removed)


def test_mlflows_own_calls_register_and_load_modelogs_copy_by_stage_by_number_and_by_alias(
        stack, mlflow_server, trained, monkeypatch):
    """Tracking on the team's MLflow server, the registry on modelog: the
    training code and the serving code use only MLflow's client."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name, registry = unique("mlflow-e2e"), stack.url("registrar")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_for("mlflow-trainer", "publisher"))
    model, features = trained
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(registry)
    try:
        with mlflow.start_run():
            mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
        client = MlflowClient(tracking_uri=mlflow_server, registry_uri=registry)
        client.transition_model_version_stage(name, "1", "Staging")
        with pytest.raises(MlflowException) as pending:  # Production waits for someone else's approval
            client.transition_model_version_stage(name, "1", "Production")
        request_id = next(w for w in pending.value.message.split() if len(w) == 36 and w.count("-") == 4)
        with httpx.Client(base_url=registry, headers=bearer("mlflow-bob", "approver"), timeout=30) as bob:
            bob.post(f"/v1/models/{name}/transitions/{request_id}/approve", json={}).raise_for_status()
        client.set_registered_model_alias(name, "champion", "1")

        assert client.get_model_version_download_uri(name, "1") == f"{registry}{ARTIFACTS}/models/{name}/1"
        for uri in (f"models:/{name}/Production", f"models:/{name}/1", f"models:/{name}@champion"):
            loaded = mlflow.sklearn.load_model(uri)
            assert np.array_equal(loaded.predict(features), model.predict(features)), uri
    finally:
        mlflow.set_registry_uri(None)


def test_a_policy_keeps_a_version_modelog_could_not_read_out_of_production(stack, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name, registry = unique("mlflow-unverified"), stack.url("registrar")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token_for("mlflow-trainer", "publisher"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    client = MlflowClient(tracking_uri="http://127.0.0.1:9", registry_uri=registry)
    client.create_registered_model(name)
    source = "file:///home/alice/mlruns/0/abc/artifacts/model"
    client.create_model_version(name, source)
    with httpx.Client(base_url=registry, headers=bearer("mlflow-admin", "admin"), timeout=30) as admin:
        admin.put(f"/v1/models/{name}/policy",
                  json={"policy": {"verified_artifact_required_for": ["Production"]}}).raise_for_status()
    client.transition_model_version_stage(name, "1", "Staging")

    with pytest.raises(MlflowException) as refused:
        client.transition_model_version_stage(name, "1", "Production")

    assert refused.value.error_code == "INVALID_PARAMETER_VALUE" and "artifact_verified" in refused.value.message
    assert client.get_model_version(name, "1").current_stage == "Staging"
    assert client.get_model_version_download_uri(name, "1") == source  # MLflow's client reads it itself, as before
    assert "unverified" in client.get_model_version(name, "1").status_message
