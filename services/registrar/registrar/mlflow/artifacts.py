"""modelog's copy of a version's files, served with MLflow's artifact-proxy
protocol (mounted at /api/2.0/mlflow-artifacts): `GET /artifacts?path=<dir>`
lists a directory as {"files": [{path, is_dir, file_size}]}, `GET
/artifacts/<path>` answers a file's bytes. get-download-uri names
`<registrar>/api/2.0/mlflow-artifacts/artifacts/models/<name>/<version>`, so
MLflow's client (`load_model("models:/name/Production")`) downloads from here.

Every path is `models/<name>/<version>/<file>`: the caller's token must read
the model (the projector answers the version with the caller's own grants);
the version is a tree or one file as its registration recorded (never as its
stored bytes look); the manifest and then the file are digest-checked as read,
and bytes that no longer hash to their address are never served (docs/mlflow-artifacts.md)."""

import functools
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from modelog_platform.adapters.s3 import CorruptArtifact, ObjectMissing
from modelog_platform.identity import permissions
from modelog_platform.identity.http import Caller, authorize
from registrar import manifest
from registrar.mlflow.errors import MlflowError
from registrar.reads import artifact_of, checked_stream
from registrar.settings import RegistrarSettings
from registrar.stored_trees import Unverified, files_of

router = APIRouter()
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"  # where registrar.mlflow mounts this router, and /artifacts
ROOT = "models"  # models/<name>/<version>/<path inside the version's tree>


def download_uri(row: Mapping[str, Any]) -> str:
    """Where MLflow's client downloads a version's files (`row`: the
    projector's version read model): modelog's copy, through this registrar;
    a version whose source modelog could not read keeps the source as given
    (MLflow's client reads it with its own access, as without modelog)."""
    if is_unverified(row):
        return str(row["artifact_uri"])
    return f"{registrar_url()}{ARTIFACTS_API}/{ROOT}/{row['model']}/{row['version']}"


@functools.cache
def registrar_url() -> str:
    """This registrar's address as its clients reach it: MODELOG_REGISTRAR_URL,
    else its host and port (the same rule the CLI and SDK follow)."""
    return RegistrarSettings().url("registrar").rstrip("/")


def is_unverified(row: Mapping[str, Any]) -> bool:
    """A version row (as the projector answers it) whose artifact is a source
    kept as given, as its registration recorded."""
    return bool(row["artifact_form"] == "unverified")


def _not_found(path: str) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", f"No artifact at {path}", "artifact_not_found")


def _corrupt(path: str, why: object) -> MlflowError:
    # Not a 5xx: MLflow's client retries those, and a corrupt file stays corrupt.
    return MlflowError("RESOURCE_CONFLICT", f"modelog refuses to serve {path}: {why}", "artifact_corrupt")


async def _version_files(request: Request, caller, path: str) -> tuple[str, list[manifest.ManifestFile]]:
    """The files of the version the path names, and the path inside its tree."""
    root, _, rest = path.strip("/").partition("/")
    name, _, rest = rest.partition("/")
    number, _, inside = rest.partition("/")
    if root != ROOT or not name or not number.isdigit():
        raise _not_found(path)
    authorize(caller, permissions.READER, name)
    row = await artifact_of(request, name, int(number))  # the caller's own grants apply there too
    if row.get("deleted"):
        raise _not_found(f"{path} (version {number} of {name} is deleted)")
    try:
        return inside, await files_of(request.app.state.artifacts, row)
    except Unverified:
        raise _not_found(f"{path} (version {number} of {name} keeps its source {row['artifact_uri']!r} "
                         "unverified)") from None
    except ObjectMissing:
        raise _not_found(f"{path} (the version's files are gone from storage)") from None
    except CorruptArtifact as corrupt:
        raise _corrupt(path, corrupt) from None


@router.get("/artifacts")
async def list_artifacts(request: Request, caller: Caller, path: str = Query("")):
    """The entries directly inside a directory of a version's tree."""
    inside, files = await _version_files(request, caller, path)
    entries = manifest.listing(files, inside)
    return {"files": [{"path": e.name, "is_dir": True} if e.is_dir
                      else {"path": e.name, "is_dir": False, "file_size": e.size} for e in entries]}


@router.get("/artifacts/{path:path}")
async def download_artifact(path: str, request: Request, caller: Caller):
    """One file's bytes, checked against the manifest's digest as they are read:
    a file that no longer hashes to it is refused before its first byte when it
    fits one chunk, and otherwise ends short, never complete."""
    inside, files = await _version_files(request, caller, path)
    found = manifest.file_at(files, inside)
    if found is None:
        raise _not_found(path)
    try:
        body = await checked_stream(request.app.state.artifacts, found.sha256)
    except ObjectMissing:
        raise _not_found(f"{path} (gone from storage)") from None
    except CorruptArtifact:
        raise _corrupt(path, f"its stored bytes no longer hash to sha256 {found.sha256}") from None
    return StreamingResponse(body, media_type="application/octet-stream", headers={
        "Content-Length": str(found.size), "ETag": f'"{found.sha256}"'})
