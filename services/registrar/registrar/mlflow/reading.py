"""MLflow's reads, answered from the projector's read models: each asks the
projector with the caller's own Authorization header (so the caller's grants
apply, as for native reads) and turns its refusals into MLflow's words."""

import asyncio
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from modelog_contract.domain.types import MODEL_NAME
from modelog_platform.web import ApiError
from registrar.mlflow.errors import MlflowError, mlflow_error_of
from registrar.reads import callers_headers

LIST_PAGE = 1000  # the projector's largest page


def model_not_found(name: str) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", f"Registered Model with name={name} not found", "model_not_found")


def version_not_found(name: str, version: int | str) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", f"Model Version (name={name}, version={version}) not found",
                       "version_not_found")


def existing_name(name: str) -> str:
    """A name no model can have (modelog's names are Kafka keys and URL
    segments) is not found, as MLflow answers for a name it does not hold;
    it is never sent on to the projector inside a path."""
    if not MODEL_NAME.fullmatch(name):
        raise model_not_found(name)
    return name


async def _get(request: Request, path: str, params: Mapping[str, Any] | None = None) -> tuple[int, Any]:
    response = await request.app.state.outcomes.http.get(path, params=params, headers=callers_headers(request))
    body = response.json() if response.content else {}
    if response.status_code in (200, 404):
        return response.status_code, body
    error = body.get("error", {}) if isinstance(body, dict) else {}
    raise mlflow_error_of(ApiError(response.status_code, error.get("code", "read_failed"),
                                   error.get("message", f"the projector answered {response.status_code}")))


async def model_row(request: Request, name: str) -> dict | None:
    """The model's row with its `deleted` flag; None if no model has the name
    (or the caller's grants do not cover it). Names hold no glob characters, so
    the list's name pattern matches this one name only."""
    _, body = await _get(request, "/v1/models", {"name": existing_name(name), "include_deleted": "true", "limit": 1})
    rows = [m for m in body.get("models", []) if m["name"] == name]
    return rows[0] if rows else None


async def live_model(request: Request, name: str) -> dict:
    """The model's row, or RESOURCE_DOES_NOT_EXIST for no model and a deleted one."""
    row = await model_row(request, name)
    if row is None or row.get("deleted"):
        raise model_not_found(name)
    return row


async def versions(request: Request, name: str) -> list[dict]:
    """Every version row of the model, deleted ones included (with their flag)."""
    status, body = await _get(request, f"/v1/models/{existing_name(name)}/versions")
    if status == 404:
        raise model_not_found(name)
    return list(body["versions"])


async def model_with_versions(request: Request, name: str) -> tuple[dict, list[dict]]:
    existing_name(name)
    row, rows = await asyncio.gather(live_model(request, name), versions(request, name))
    return row, rows


async def live_version(request: Request, name: str, version: int) -> dict:
    """The version's row; RESOURCE_DOES_NOT_EXIST for none, a deleted one, or a deleted model."""
    existing_name(name)
    _, (status, body) = await asyncio.gather(
        live_model(request, name), _get(request, f"/v1/models/{name}/versions/{version}"))
    if status == 404 or body.get("deleted"):
        raise version_not_found(name, version)
    return body


async def all_models(request: Request) -> list[dict]:
    """Every live model the caller may read, a projector page at a time."""
    found: list[dict] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": LIST_PAGE}
        if after:
            params["after"] = after
        _, body = await _get(request, "/v1/models", params)
        found += body["models"]
        after = body.get("next")
        if not after:
            return found
