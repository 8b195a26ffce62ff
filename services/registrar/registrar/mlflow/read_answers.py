"""MLflow's single-model reads, answered from a model's row and its version
rows: pure, so the routes (rows fresh from the projector) and the read fast
path (rows from the registrar's cache) give the same answer from the same
rows. Each raises the MlflowError the route answers when there is no answer:
a deleted model or version, an alias no version has, a bad stage."""

from collections.abc import Iterable, Mapping
from typing import Any

from registrar.mlflow import artifacts, shapes
from registrar.mlflow.errors import MlflowError
from registrar.mlflow.reading import model_not_found, version_not_found
from registrar.mlflow.requests import stage

Row = Mapping[str, Any]


def live_model(model: Row) -> Row:
    if model.get("deleted"):
        raise model_not_found(model["name"])
    return model


def live_version(model: Row, versions: Iterable[Row], number: int) -> Row:
    live_model(model)
    found = next((v for v in versions if v["version"] == number), None)
    if found is None or found.get("deleted"):
        raise version_not_found(model["name"], number)
    return found


def latest_versions(model: Row, versions: Iterable[Row], stages: Iterable[str]) -> dict:
    wanted = [stage(s) for s in stages] or list(shapes.STAGES)
    live_model(model)
    return {"model_versions": shapes.latest_per_stage(versions, wanted)}


def by_alias(model: Row, versions: Iterable[Row], alias: str) -> dict:
    live_model(model)
    for version in shapes.live(versions):
        if alias in (version.get("aliases") or []):
            return {"model_version": shapes.model_version(version)}
    raise MlflowError("INVALID_PARAMETER_VALUE", f"Registered model alias {alias} not found.", "alias_not_found")


def registered_model(model: Row, versions: Iterable[Row]) -> dict:
    return {"registered_model": shapes.registered_model(live_model(model), versions)}


def model_version(model: Row, versions: Iterable[Row], number: int) -> dict:
    return {"model_version": shapes.model_version(live_version(model, versions, number))}


def download_uri(model: Row, versions: Iterable[Row], number: int) -> dict:
    return {"artifact_uri": artifacts.download_uri(live_version(model, versions, number))}
