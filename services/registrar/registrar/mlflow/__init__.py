"""MLflow's Model Registry REST API, served by the registrar: MLflow's client
points its registry URI here and keeps working (docs/mlflow.md).

Every route module has one `router`; the same routes answer under
/api/2.0/mlflow and /ajax-api/2.0/mlflow (MLflow's UI uses the second), and
every error under those prefixes is an MLflow error body (errors.py)."""

from fastapi import FastAPI

from registrar.mlflow import artifacts, errors, model_versions, registered_models, webhooks

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACTS_PREFIX = "/api/2.0/mlflow-artifacts"


def install(app: FastAPI) -> None:
    """Mount the routes and make errors under MLflow's prefixes MLflow's.
    Call after install_error_handlers and before denials.install, which wraps
    the handlers in place (so refused MLflow writes are recorded too)."""
    for prefix in PREFIXES:
        for module in (registered_models, model_versions, webhooks):
            app.include_router(module.router, prefix=prefix, tags=["mlflow"])
    app.include_router(artifacts.router, prefix=ARTIFACTS_PREFIX, tags=["mlflow"])
    errors.install(app, PREFIXES + (ARTIFACTS_PREFIX,))
