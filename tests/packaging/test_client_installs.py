"""The client installs alone on every Python it supports, and talks to a registry.

A serving system on Python 3.12 or a training job on 3.10 runs
`pip install modelog` and nothing of the server side comes with it. Each
supported interpreter other than the services' own gets a fresh virtual
environment with only shared/client installed, then runs `modelog ls` against
the test stack. The interpreters are the ones under pyenv on this machine's
image; a missing one fails the test rather than skipping it.
"""

import os
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import pytest

from modelog import Client
from tests.e2e.helpers import token_for

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "shared/client"
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
SUPPORTED = ("3.10", "3.12", "3.13")

pytestmark = pytest.mark.engines


def interpreter(minor: str) -> Path:
    found = sorted(PYENV.glob(f"{minor}.*/bin/python{minor}"))
    assert found, f"no CPython {minor} under {PYENV}: the client is tested on each version it supports"
    return found[-1]


def uv() -> list[str]:
    return [sys.executable, "-m", "uv"] if subprocess.run(
        [sys.executable, "-m", "uv", "--version"], capture_output=True).returncode == 0 else ["uv"]


@pytest.fixture(scope="module", params=SUPPORTED)
def client_only(request, tmp_path_factory) -> Path:
    """A virtual environment of that Python with the client alone; its bin/."""
    venv = tmp_path_factory.mktemp(f"client-py{request.param}") / "venv"
    run = lambda *args: subprocess.run([*uv(), *args], capture_output=True, text=True, timeout=600)  # noqa: E731
    made = run("venv", "--quiet", "--python", str(interpreter(request.param)), str(venv))
    assert made.returncode == 0, made.stderr
    installed = run("pip", "install", "--quiet", "--python", str(venv / "bin/python"), str(CLIENT))
    assert installed.returncode == 0, installed.stderr
    return venv / "bin"


def test_the_client_brings_no_server_package(client_only):
    listed = subprocess.run([client_only / "python", "-m", "pip", "list", "--format=freeze"],
                            capture_output=True, text=True)
    names = {line.split("==")[0].lower() for line in listed.stdout.split()}
    if listed.returncode != 0:  # uv's environments carry no pip: ask uv
        names = {line.split("==")[0].lower() for line in subprocess.run(
            [*uv(), "pip", "freeze", "--python", str(client_only / "python")],
            capture_output=True, text=True, check=True).stdout.split()}
    assert "modelog" in names
    assert not names & {"modelog-platform", "modelog-contract", "aiokafka", "asyncpg", "fastapi", "uvicorn",
                        "minio", "structlog", "pydantic-settings"}


def test_from_modelog_import_client_works(client_only):
    done = subprocess.run([client_only / "python", "-c",
                           "import sys; from modelog import Client, ModelogError; "
                           "print(Client.__name__, sys.version_info[:2])"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Client (3, 1")


def test_modelog_ls_talks_to_the_registry(client_only, stack):
    model = f"py-client-{uuid4().hex[:8]}"
    with Client(stack.url("registrar"), stack.url("projector"), token=token_for("ci-pipeline", "publisher")) as c:
        c.create_model(model, description="listed by a client on another Python")
    done = subprocess.run([client_only / "modelog", "ls", "--name", model], capture_output=True, text=True,
                          env={**os.environ, "MODELOG_TOKEN": token_for("serving", "reader"), "COLUMNS": "200"},
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert model in done.stdout


def test_platform_commands_say_where_they_come_from(client_only):
    done = subprocess.run([client_only / "modelog", "up"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "pip install modelog-platform" in done.stderr
