"""The MLflow side of the MLflow tests: the test stack's MLflow tracking
server (engines/mlflow.py), a real `mlflow server` started with the other
engines; the registrar copies versions' files from it."""

import pytest

from modelog_platform.engines.layout import Layout
from modelog_platform.engines.mlflow import MlflowTracking
from modelog_platform.settings import LocalStack


@pytest.fixture(scope="session")
def mlflow_server(engines) -> str:
    """The tracking server's URL (also usable as an MLflow registry of its own,
    for differential tests)."""
    return MlflowTracking().url(Layout(engines, LocalStack(), print))
