"""The MLflow side of the MLflow tests: a real `mlflow server` (tracking and,
for the differential tests, its own model registry), started for the session
on a port of its own, its data in a temporary directory."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import port

MLFLOW_PORT = port(21450)  # inside the test ports' 500-wide range, so port shifts never collide
START_TIMEOUT_S = 120


@pytest.fixture(scope="session")
def mlflow_server():
    """`mlflow server` with a SQLite store and artifacts it serves itself
    (mlflow-artifacts:/), as a team's tracking server would be run. Yields its URL."""
    home = Path(tempfile.mkdtemp(prefix="modelog-test-mlflow-"))
    url = f"http://127.0.0.1:{MLFLOW_PORT}"
    log = (home / "mlflow.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(MLFLOW_PORT),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
         "--artifacts-destination", str(home / "artifacts"), "--serve-artifacts"],
        cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE": "true"})
    try:
        _wait_until_up(url, process, home / "mlflow.log")
        yield url
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"mlflow server not up within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
