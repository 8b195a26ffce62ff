"""The registrar's native HTTP API (/v1): validate, store, publish, then answer
with the committed outcome (read-your-writes)."""

import json
from datetime import datetime, timezone
from uuid import UUID, uuid4

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from modelog.domain import RegisterVersion
from modelog.domain.types import Actor, Artifact, InvalidName, check_model_name
from modelog.web import ApiError
from registrar.outcomes import REJECTION_STATUS
from registrar.uploads import receive

router = APIRouter(prefix="/v1")
# Until authentication lands every caller is the same anonymous actor; the
# actor is never read from the request body.
ANONYMOUS = Actor(subject="anonymous")


def valid_name(name: str) -> str:
    try:
        return check_model_name(name)
    except InvalidName as error:
        raise ApiError(400, "invalid_model_name", str(error)) from None


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


@router.post("/models/{name}/versions", status_code=201)
async def register_version(
    name: str,
    request: Request,
    file: UploadFile = File(..., description="the model artifact"),
    sha256: str | None = Form(None, description="the digest the client expects"),
    run_id: str | None = Form(None),
    description: str = Form(""),
    metrics: str | None = Form(None, description="JSON object of name -> number"),
    params: str | None = Form(None, description="JSON object of name -> string"),
    tags: str | None = Form(None, description="JSON object of name -> string"),
):
    state = request.app.state
    valid_name(name)
    fields = {k: parse_json_form(k, v) for k, v in
              {"metrics": metrics, "params": params, "tags": tags}.items()}
    received = await receive(file, state.settings.max_upload_bytes, sha256)
    try:
        command = RegisterVersion(
            command_id=uuid4(), model=name, actor=ANONYMOUS, issued_at=datetime.now(timezone.utc),
            artifact=Artifact(uri=state.artifacts.uri(received.sha256), sha256=received.sha256,
                              size=received.size),
            run_id=run_id, description=description, **fields,
        )
    except ValidationError as error:
        received.path.unlink(missing_ok=True)
        raise ApiError(422, "invalid_request", "the version's fields are invalid",
                       problems=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()])
    try:
        await state.artifacts.put_file(received.path, received.sha256)
    finally:
        received.path.unlink(missing_ok=True)
    await state.publisher.publish(command)
    return await answer(request, command.command_id, created=True)


async def answer(request: Request, command_id: UUID, created: bool):
    """The outcome once committed; 202 and a status URL if it takes too long."""
    state = request.app.state
    outcome = await state.outcomes.wait_for(command_id, state.settings.outcome_wait_s)
    status_url = f"/v1/commands/{command_id}"
    if outcome is None:
        return JSONResponse({"command_id": str(command_id), "status": "pending",
                             "status_url": status_url}, 202, headers={"Location": status_url})
    if not outcome["accepted"]:
        raise ApiError(REJECTION_STATUS.get(outcome["reason"], 422), outcome["reason"],
                       outcome["message"], command_id=str(command_id), model=outcome["model"])
    body = {"command_id": str(command_id), "status": "accepted", "model": outcome["model"],
            "seq": outcome["last_seq"], "version": outcome["version"]}
    return JSONResponse(body, 201 if created else 200)


@router.get("/commands/{command_id}")
async def command_status(command_id: UUID, request: Request):
    outcome = await request.app.state.outcomes.wait_for(command_id, 0)
    if outcome is None:
        raise ApiError(404, "outcome_pending", f"no outcome yet for command {command_id}")
    return outcome
