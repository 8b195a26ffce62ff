"""Registering versions: by upload (streamed, hashed, size-limited), one file
or a directory whole, or by reference to an object already in S3 (read once
to verify and copy it in, so a registered version's artifact never changes).
Each way takes the version's lineage too: dataset, model card, signature.

A directory comes as several multipart `file` parts with `tree=true`, each
part's filename its path inside the directory. Not a tar stream: the same
form as one file (a single-file client sends one part, as always), every
file streamed and hashed as itself, nothing for the registry to unpack (no
links, devices or archive headers to guard against), and curl sends it with
one `-F` per file (docs/api.md)."""

import json
from typing import Any
from uuid import UUID

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from modelog_contract.domain import RegisterVersion
from modelog_contract.domain.types import Artifact
from modelog_platform.identity.http import Caller
from modelog_platform.web import ApiError
from registrar import version_files
from registrar.denials import publishes
from registrar.uploads import ReceivedFile, receive, receive_reference, receive_tree
from registrar.writes import Write, WriteContext

router = APIRouter(prefix="/v1", tags=["versions"])
# A version's files are read back beside where they are registered.
router.include_router(version_files.router)


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
    file: list[UploadFile] = File(..., description="the model artifact: one file; or, with tree=true, every "
                                                   "file of a directory, each part's filename its path in it"),
    tree: bool = Form(False, description="the file parts are one directory's files, registered as a tree"),
    sha256: str | None = Form(None, description="the digest the client expects: of the file, or of the "
                                                "tree's manifest"),
    run_id: str | None = Form(None),
    description: str = Form(""),
    metrics: str | None = Form(None, description="JSON object of name -> number"),
    params: str | None = Form(None, description="JSON object of name -> string"),
    tags: str | None = Form(None, description="JSON object of name -> string"),
    dataset_uri: str | None = Form(None, description="where the training data is"),
    dataset_sha256: str | None = Form(None, description="the training data's sha256"),
    model_card: str | None = Form(None, description="the model card, as Markdown"),
    signature: str | None = Form(None, description="JSON object: the model's inputs and outputs"),
):
    """Upload an artifact, one file or a directory, and register it as the
    model's next version (the model is created on its first version)."""
    fields: dict[str, Any] = {k: parse_json_form(k, v) for k, v in
                              {"metrics": metrics, "params": params, "tags": tags, "signature": signature}.items()}
    fields.update(run_id=run_id, description=description, **given(dataset_uri=dataset_uri,
                                                                   dataset_sha256=dataset_sha256,
                                                                   model_card=model_card))
    write.command(RegisterVersion, name, artifact=PLACEHOLDER, **fields)  # refuse bad fields before reading
    state = write.request.app.state
    if tree:
        artifact = await receive_tree(file, state.artifacts, state.settings.max_upload_bytes, sha256)
        return await write.submit(write.command(RegisterVersion, name, artifact=artifact, **fields), created=True)
    if len(file) != 1:
        raise ApiError(400, "several_files", f"{len(file)} file parts came without tree=true: send one file, "
                       "or tree=true to register the parts as one directory, each named by its path in it")
    received = await receive(file[0], state.settings.max_upload_bytes, sha256)
    return await register_received(write, name, received, fields)


def given(**values: str | None) -> dict[str, str]:
    """The optional text fields a form sent; an empty one is not sent."""
    return {k: v for k, v in values.items() if v}


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uri: str = Field(description="s3://bucket/key of an object the registry can read")
    sha256: str | None = Field(None, description="the digest the caller expects")
    run_id: str | None = None
    description: str = ""
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    dataset_uri: str | None = Field(None, description="where the training data is")
    dataset_sha256: str | None = Field(None, description="the training data's sha256")
    model_card: str | None = Field(None, description="the model card, as Markdown")
    signature: dict[str, Any] = Field({}, description="the model's inputs and outputs")


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
