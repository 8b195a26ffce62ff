"""An MLflow Model Registry read over its REST API, for an import into modelog.

httpx only: the client package does not depend on mlflow. The caller's MLflow
credentials are MLflow's own variables (MLFLOW_TRACKING_TOKEN, or
MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD).
"""

import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from modelog.mlflow_plan import MlflowModel, MlflowVersion

API = "/api/2.0/mlflow"
MODELS_PAGE, VERSIONS_PAGE = 1000, 1000  # the most MLflow answers for models in one page


class MlflowUnreadable(Exception):
    """The MLflow registry answered with an error, or not at all."""


def mlflow_http(uri: str, environ: Mapping[str, str] = os.environ, timeout_s: float = 60) -> httpx.Client:
    """A client for the MLflow server at `uri`, with the caller's MLflow credentials."""
    auth: httpx.Auth | None = None
    headers = {}
    if token := environ.get("MLFLOW_TRACKING_TOKEN"):
        headers["Authorization"] = f"Bearer {token}"
    elif user := environ.get("MLFLOW_TRACKING_USERNAME"):
        auth = httpx.BasicAuth(user, environ.get("MLFLOW_TRACKING_PASSWORD", ""))
    return httpx.Client(base_url=uri.rstrip("/"), headers=headers, auth=auth, timeout=timeout_s)


def read_registry(http: httpx.Client, only: set[str] | None = None,
                  seen: Callable[[str], None] = lambda name: None) -> list[MlflowModel]:
    """Every registered model with its live versions (all of them, or those
    named in `only`). `seen(name)` is called as each model is read."""
    versions: dict[str, list[MlflowVersion]] = defaultdict(list)
    for row in _pages(http, "model-versions/search", "model_versions", VERSIONS_PAGE):
        if only is None or row["name"] in only:
            versions[row["name"]].append(version_of(row))
    models = []
    for row in _pages(http, "registered-models/search", "registered_models", MODELS_PAGE):
        if only is not None and row["name"] not in only:
            continue
        # The search answer may leave aliases out; a model's own answer has them all.
        full = _get(http, "registered-models/get", {"name": row["name"]})["registered_model"]
        models.append(model_of(full, versions.get(row["name"], [])))
        seen(row["name"])
    return models


def model_of(row: Mapping[str, Any], versions: list[MlflowVersion]) -> MlflowModel:
    return MlflowModel(name=row["name"], description=row.get("description") or "", tags=_tags(row),
                       aliases={a["alias"]: int(a["version"]) for a in row.get("aliases", [])},
                       versions=tuple(sorted(versions, key=lambda v: v.version)))


def version_of(row: Mapping[str, Any]) -> MlflowVersion:
    return MlflowVersion(version=int(row["version"]), source=row.get("source") or "", run_id=row.get("run_id") or "",
                         run_link=row.get("run_link") or "", model_id=row.get("model_id") or "",
                         description=row.get("description") or "", tags=_tags(row),
                         stage=row.get("current_stage") or "None", status=row.get("status") or "READY")


def _tags(row: Mapping[str, Any]) -> dict[str, str]:
    return {t["key"]: t.get("value") or "" for t in row.get("tags", [])}


def _pages(http: httpx.Client, path: str, key: str, size: int) -> Iterator[dict]:
    token = None
    while True:
        page = _get(http, path, {"max_results": size, **({"page_token": token} if token else {})})
        yield from page.get(key, [])
        if not (token := page.get("next_page_token")):
            return


def _get(http: httpx.Client, path: str, params: Mapping[str, Any]) -> dict:
    try:
        response = http.get(f"{API}/{path}", params=params)
    except httpx.TransportError as error:
        raise MlflowUnreadable(f"cannot reach MLflow at {http.base_url} ({error})") from None
    if not response.is_success:
        try:
            body = response.json()
            said = f"{body.get('error_code', response.status_code)}: {body.get('message', '')}"
        except ValueError:
            said = f"{response.status_code}: {response.text[:300]}"
        raise MlflowUnreadable(f"MLflow at {http.base_url} refused GET {path}: {said}")
    return response.json()
