"""A local MLflow tracking server: the team's own MLflow, beside modelog.

modelog serves MLflow's model registry; tracking (runs, logged models and
their artifacts) stays on the team's MLflow server, and the registrar copies a
version's files from there at registration (MODELOG_MLFLOW_TRACKING_URI). The
local stack runs one so the demo and the tests have the whole picture; it
starts only where the `mlflow` package is installed (the development
environment), since modelog itself never imports it.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import httpx

from modelog_platform.engines import procs
from modelog_platform.engines.base import Engine
from modelog_platform.engines.layout import Layout

# MLflow's server otherwise starts a job runner with a pool of consumer
# processes for its server-side jobs (GenAI evaluation, trace rollups), which
# neither modelog nor a training script's tracking calls ever ask for.
WITHOUT_JOBS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def available() -> bool:
    return importlib.util.find_spec("mlflow") is not None


class MlflowTracking(Engine):
    name = "mlflow"
    # Its start imports much of the scientific stack: ~40 s on an idle 2-core
    # machine, minutes on a loaded one.
    ready_timeout = 600.0

    def port(self, lay: Layout) -> int:
        return lay.stack.mlflow_tracking_port

    def url(self, lay: Layout) -> str:
        return f"http://127.0.0.1:{self.port(lay)}"

    def install(self, lay: Layout) -> None:
        """Nothing to install: the server is the `mlflow` package in this environment."""

    def launch(self, lay: Layout) -> int:
        data = lay.data(self.name)
        data.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port(lay)),
                # One worker: a development tracking server, not a load test subject.
                "--workers", "1",
                "--backend-store-uri", f"sqlite:///{data / 'mlflow.db'}",
                # Artifacts through the server (mlflow-artifacts:/), as a team
                # without shared storage for every laptop runs it.
                "--serve-artifacts", "--artifacts-destination", str(data / "artifacts")]
        return procs.start_detached(argv, lay.log_file(self.name), lay.pid_file(self.name), cwd=data,
                                    env={**os.environ, **WITHOUT_JOBS})

    def ready(self, lay: Layout) -> bool:
        return httpx.get(f"{self.url(lay)}/health", timeout=2).status_code == 200

    def provision(self, lay: Layout) -> None:
        """Nothing to provision: experiments are created by the training code."""

    def service_env(self, lay: Layout, service: str) -> dict[str, str]:
        return {"MODELOG_MLFLOW_TRACKING_URI": self.url(lay)} if service == "registrar" else {}
