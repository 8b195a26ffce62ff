"""A version's files through modelog's own API: listed with their sizes and
digests, and each served by its path, checked against its digest as it is
read. A tree lists what its manifest lists; a version registered as one file
is a tree of that one file (`artifact`), whatever its bytes look like; an
unverified version has no files here. The SDK and the CLI download a tree
with these, as MLflow's loader does through the artifact proxy."""

import base64

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from modelog_platform.adapters.s3 import CorruptArtifact, ObjectMissing
from modelog_platform.identity.http import ModelReader
from modelog_platform.web import ApiError, VersionNumber
from registrar import manifest
from registrar.reads import artifact_of, checked_stream
from registrar.stored_trees import Unverified, files_of

router = APIRouter(tags=["reads"])


async def _files(request: Request, name: str, version: int) -> tuple[dict, list[manifest.ManifestFile]]:
    row = await artifact_of(request, name, version)  # the caller's own grants apply there
    try:
        return row, await files_of(request.app.state.artifacts, row)
    except Unverified:
        raise ApiError(409, "artifact_unverified",
                       f"version {version} of {name} keeps its source {row['artifact_uri']!r} as given: modelog "
                       "could not read it and holds no copy of its files") from None
    except ObjectMissing:
        raise ApiError(410, "artifact_missing", f"the files of version {version} of {name} are gone "
                       "from storage") from None
    except CorruptArtifact as corrupt:
        raise ApiError(500, "artifact_corrupt", str(corrupt)) from None


@router.get("/models/{name}/versions/{version}/files")
async def list_files(name: str, version: VersionNumber, request: Request, reader: ModelReader):
    """Every file of the version: its path, size and sha256."""
    row, files = await _files(request, name, version)
    return {"model": name, "version": version, "artifact_form": row["artifact_form"],
            "sha256": row["artifact_sha256"],
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files]}


@router.get("/models/{name}/versions/{version}/files/{path:path}")
async def download_file(name: str, version: VersionNumber, path: str, request: Request, reader: ModelReader):
    """One file's bytes, with its sha256 (Repr-Digest): a file whose stored
    bytes no longer hash to it is refused before its first byte when it fits
    one chunk, and otherwise ends short, never complete."""
    _, files = await _files(request, name, version)
    found = manifest.file_at(files, path)
    if found is None:
        raise ApiError(404, "file_not_found", f"version {version} of {name} has no file {path!r}: "
                       f"GET /v1/models/{name}/versions/{version}/files lists its files")
    try:
        body = await checked_stream(request.app.state.artifacts, found.sha256)
    except ObjectMissing:
        raise ApiError(410, "artifact_missing", f"{path} ({found.sha256}) is gone from storage") from None
    except CorruptArtifact:
        raise ApiError(500, "artifact_corrupt",
                       f"{path}: its stored bytes no longer hash to sha256 {found.sha256}") from None
    digest_b64 = base64.b64encode(bytes.fromhex(found.sha256)).decode()
    return StreamingResponse(body, media_type="application/octet-stream", headers={
        "Content-Length": str(found.size), "ETag": f'"{found.sha256}"', "Repr-Digest": f"sha-256=:{digest_b64}:"})
