"""Reads at the front door: the projector answers them; the registrar passes
them through, so a client needs one base URL. A passed-through read carries
the caller's own token, so the projector applies the caller's grants (a list
shows only the models they cover). Artifact downloads are served here, with
the digest checked again on the way out."""

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from modelog_contract.domain.types import Stage
from modelog_platform.adapters.s3 import ArtifactStore, CorruptArtifact, ObjectMissing
from modelog_platform.identity.http import Caller, ModelReader
from modelog_platform.web import ApiError, VersionNumber
from registrar.writes import valid_name

router = APIRouter(prefix="/v1", tags=["reads"])
PASSED_HEADERS = ("etag", "cache-control", "retry-after")  # retry-after: a 503 says when to ask again
FORWARDED_HEADERS = ("if-none-match", "authorization")


def callers_headers(request: Request) -> dict[str, str]:
    """What a passed-through read carries on: the caller's token and cache validator."""
    return {k: v for k, v in request.headers.items() if k in FORWARDED_HEADERS}


async def forward(request: Request) -> Response:
    """The projector's answer to the same path and query, status and ETag kept."""
    if "name" in request.path_params:
        valid_name(request.path_params["name"])  # no model has an invalid name: say so plainly
    response = await request.app.state.outcomes.http.get(
        request.scope["raw_path"].decode("ascii"), params=request.query_params, headers=callers_headers(request))
    kept = {k: v for k, v in response.headers.items() if k in PASSED_HEADERS}
    if response.status_code == 304:
        return Response(status_code=304, headers=kept)
    return Response(response.content, response.status_code, headers=kept, media_type="application/json")


@router.get("/models")
async def list_models(request: Request, caller: Caller,
                      name: str | None = Query(None, description="a name pattern: * any run, ? one character"),
                      stage: Stage | None = None,
                      tag: str | None = Query(None, description="key=value"),
                      after: str | None = Query(None, description="the cursor from the previous page's `next`"),
                      limit: int = Query(100, ge=1, le=1000),
                      include_deleted: bool = False):
    """List and search models by name pattern, tag and stage, a page at a time."""
    return await forward(request)


@router.get("/models/{name}")
async def get_model(name: str, request: Request, reader: ModelReader):
    return await forward(request)


@router.get("/models/{name}/versions")
async def list_versions(name: str, request: Request, reader: ModelReader):
    return await forward(request)


@router.get("/models/{name}/versions/{version}")
async def get_version(name: str, version: VersionNumber, request: Request, reader: ModelReader):
    return await forward(request)


@router.get("/models/{name}/transitions")
async def pending_transitions(name: str, request: Request, reader: ModelReader):
    return await forward(request)


@router.get("/models/{name}/history")
async def stage_history(name: str, request: Request, reader: ModelReader):
    return await forward(request)


@router.get("/models/{name}/stages/{stage}")
async def serving_stage(name: str, stage: Stage, request: Request, reader: ModelReader):
    return await forward(request)


@router.get("/models/{name}/aliases/{alias}")
async def serving_alias(name: str, alias: str, request: Request, reader: ModelReader):
    return await forward(request)


@router.get("/models/{name}/traffic-split")
async def traffic_split(name: str, request: Request, reader: ModelReader):
    return await forward(request)


@router.get("/models/{name}/serving")
async def serving_of_model(name: str, request: Request, reader: ModelReader):
    return await forward(request)


@router.get("/serving")
async def serving_everywhere(request: Request, caller: Caller, after_model: str | None = None,
                             after_instance: str | None = None, limit: int = Query(500, ge=1, le=1000)):
    """Every serving instance's latest report, in the models the caller's grants cover."""
    return await forward(request)


async def artifact_of(request: Request, name: str, version: VersionNumber) -> dict:
    valid_name(name)
    response = await request.app.state.outcomes.http.get(f"/v1/models/{name}/versions/{version}",
                                                         headers=callers_headers(request))
    if response.status_code != 200:
        error = response.json().get("error", {})
        raise ApiError(response.status_code, error.get("code", "version_not_found"),
                       error.get("message", f"model {name!r} has no version {version}"))
    return response.json()


@router.get("/models/{name}/versions/{version}/artifact")
async def download_artifact(name: str, version: VersionNumber, request: Request, reader: ModelReader,
                            presigned: Annotated[bool, Query(description="answer with a URL instead of bytes")] = False):
    """The version's artifact. Streamed bytes carry their sha256 (Repr-Digest);
    the digest is checked as they are read, and a corrupt stored object ends the
    stream early instead of completing. With ?presigned=true: a time-limited URL."""
    found = await artifact_of(request, name, version)
    sha256, artifacts = found["artifact_sha256"], request.app.state.artifacts
    if presigned:
        return JSONResponse({"url": artifacts.download_url(sha256), "sha256": sha256,
                             "size": found["artifact_size"]})
    try:
        body = await checked_stream(artifacts, sha256)
    except ObjectMissing:
        raise ApiError(410, "artifact_missing", f"the artifact {sha256} is gone from storage") from None
    except CorruptArtifact as corrupt:
        raise ApiError(500, "artifact_corrupt", str(corrupt)) from None
    digest_b64 = base64.b64encode(bytes.fromhex(sha256)).decode()
    return StreamingResponse(body, media_type="application/octet-stream", headers={
        "Content-Length": str(found["artifact_size"]), "ETag": f'"{sha256}"',
        "Repr-Digest": f"sha-256=:{digest_b64}:",
        "Content-Disposition": f'attachment; filename="{name}-v{version}.bin"'})


async def checked_stream(artifacts: ArtifactStore, sha256: str) -> AsyncIterator[bytes]:
    """The stored bytes of `sha256`, hashed as they are read. The first chunk is
    read before this returns, so a missing object, or a corrupt one that fits a
    chunk, raises here (ObjectMissing, CorruptArtifact) before any answer has
    started; a longer corrupt one ends short, never complete."""
    chunks = artifacts.stream_verified(sha256)
    first = await asyncio.to_thread(next, chunks, b"")

    async def body() -> AsyncIterator[bytes]:
        yield first
        while chunk := await asyncio.to_thread(next, chunks, b""):
            yield chunk

    return body()
