"""Registering versions: by upload (streamed, hashed, size-limited) or by
reference to an object already in S3 (read once to verify and copy it in, so a
registered version's artifact never changes)."""

import json
from uuid import UUID

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from modelog_contract.domain import RegisterVersion
from modelog_contract.domain.types import Artifact
from modelog_platform.identity.http import Caller
from modelog_platform.web import ApiError
from registrar.denials import publishes
from registrar.uploads import ReceivedFile, receive, receive_reference
from registrar.writes import Write, WriteContext

router = APIRouter(prefix="/v1", tags=["versions"])


def parse_json_form(field: str, raw: str | None) -> dict:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ApiError(400, "invalid_json", f"{field} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_json", f"{field} must be a JSON object")
    return value


@router.post("/models/{name}/versions", status_code=201, **publishes(RegisterVersion))
async def register_version(
    name: str,
    write: Write,
    file: UploadFile = File(..., description="the model artifact"),
    sha256: str | None = Form(None, description="the digest the client expects"),
    run_id: str | None = Form(None),
    description: str = Form(""),
    metrics: str | None = Form(None, description="JSON object of name -> number"),
    params: str | None = Form(None, description="JSON object of name -> string"),
    tags: str | None = Form(None, description="JSON object of name -> string"),
):
    """Upload an artifact and register it as the model's next version (the model
    is created on its first version)."""
    fields: dict[str, object] = {k: parse_json_form(k, v) for k, v in
                                 {"metrics": metrics, "params": params, "tags": tags}.items()}
    fields.update(run_id=run_id, description=description)
    write.command(RegisterVersion, name, artifact=PLACEHOLDER, **fields)  # refuse bad fields before reading
    received = await receive(file, write.request.app.state.settings.max_upload_bytes, sha256)
    return await register_received(write, name, received, fields)


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uri: str = Field(description="s3://bucket/key of an object the registry can read")
    sha256: str | None = Field(None, description="the digest the caller expects")
    run_id: str | None = None
    description: str = ""
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    tags: dict[str, str] = {}


@router.post("/models/{name}/versions/by-reference", status_code=201, **publishes(RegisterVersion))
async def register_version_by_reference(name: str, body: Reference, write: Write):
    """Register an object already in S3. Its bytes are read, hashed and copied
    into the registry's content-addressed store: the version keeps them even if
    the source object is later changed or deleted."""
    fields = body.model_dump(exclude={"uri", "sha256"})
    write.command(RegisterVersion, name, artifact=PLACEHOLDER, **fields)
    state = write.request.app.state
    received = await receive_reference(state.artifacts, body.uri, state.settings.max_upload_bytes, body.sha256)
    return await register_received(write, name, received, fields)


# Stands in for the artifact while the other fields are checked.
PLACEHOLDER = Artifact(uri="s3://placeholder", sha256="0" * 64, size=0)


async def register_received(write: WriteContext, name: str, received: ReceivedFile, fields: dict):
    artifacts = write.request.app.state.artifacts
    try:
        await artifacts.put_file(received.path, received.sha256)
    finally:
        received.path.unlink(missing_ok=True)
    artifact = Artifact(uri=artifacts.uri(received.sha256), sha256=received.sha256, size=received.size)
    return await write.submit(write.command(RegisterVersion, name, artifact=artifact, **fields), created=True)


@router.get("/commands/{command_id}", tags=["commands"])
async def command_status(command_id: UUID, request: Request, caller: Caller):
    """A command's committed outcome; 404 outcome_pending until it has one."""
    outcome = await request.app.state.outcomes.wait_for(command_id, 0)
    if outcome is None:
        raise ApiError(404, "outcome_pending", f"no outcome yet for command {command_id}")
    return outcome
