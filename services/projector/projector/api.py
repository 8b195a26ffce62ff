"""The projector's HTTP API: what serving systems and the registrar read.

Every route needs a bearer token. A model's reads need `reader` on it; a list
and the change feed show only the models the caller's grants cover; the
cross-model bookkeeping the registrar asks for (artifact references) needs
`reader` on every model."""

from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from modelog_contract.domain.types import Stage
from modelog_platform.identity import permissions
from modelog_platform.identity.http import (
    Caller,
    ModelReader,
    authenticated,
    authorize,
    authorize_every_model,
    authorize_role,
)
from modelog_platform.web import ApiError, VersionNumber
from projector import queries
from projector.changes import change_feed, parse_cursor
from projector.serving import Answer, ServingAnswers, http_answer

router = APIRouter(prefix="/v1", dependencies=[Depends(authenticated)])


def pool(request: Request):
    return request.app.state.pool


@router.get("/models")
async def list_models(request: Request, caller: Caller,
                      name: str | None = Query(None, description="a name pattern: * any run, ? one character"),
                      stage: Stage | None = Query(None, description="models with a version in this stage"),
                      tag: str | None = Query(None, description="key=value"),
                      after: str | None = Query(None, description="the cursor: the last name of the previous page"),
                      limit: int = Query(100, ge=1, le=1000),
                      include_deleted: bool = False):
    """List and search models, in name order, a page at a time: only those the
    caller's grants cover."""
    authorize_role(caller, permissions.READER)
    tag_filter = None
    if tag is not None:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise ApiError(400, "invalid_tag_filter", "tag must be key=value")
        tag_filter = (key, value)
    async with pool(request).acquire() as conn:
        models = await queries.list_models(conn, name=name, stage=stage, tag=tag_filter, after=after,
                                           limit=limit, include_deleted=include_deleted,
                                           grants=caller.grants)
    next_after = models[-1]["name"] if len(models) == limit else None
    return {"models": models, "next": next_after}


@router.get("/models/{name}")
async def get_model(name: str, request: Request, reader: ModelReader):
    async with pool(request).acquire() as conn:
        model = await queries.get_model(conn, name)
    if model is None:
        raise model_not_found(name)
    return model


@router.get("/models/{name}/versions")
async def list_versions(name: str, request: Request, reader: ModelReader):
    async with pool(request).acquire() as conn:
        if await queries.get_model(conn, name) is None:
            raise model_not_found(name)
        return {"model": name, "versions": await queries.list_versions(conn, name)}


@router.get("/models/{name}/versions/{version}")
async def get_version(name: str, version: VersionNumber, request: Request, reader: ModelReader):
    async with pool(request).acquire() as conn:
        found = await queries.get_version(conn, name, version)
    if found is None:
        raise ApiError(404, "version_not_found", f"model {name!r} has no version {version}")
    return found


@router.get("/models/{name}/transitions")
async def pending_transitions(name: str, request: Request, reader: ModelReader):
    """Transition requests waiting for approvals, with the approvals so far."""
    async with pool(request).acquire() as conn:
        await model_seq(conn, name)
        return {"model": name, "pending": await queries.pending_transitions(conn, name)}


@router.get("/transitions")
async def pending_across_models(request: Request, caller: Caller,
                                after_model: str | None = Query(None, description="the cursor: `next` of the previous page"),
                                after_request: UUID | None = None, limit: int = Query(500, ge=1, le=1000)):
    """Transition requests waiting for approvals in every model the caller's
    grants cover, by model: an approver's inbox in one query, not one per model."""
    authorize_role(caller, permissions.READER)
    after = (after_model, str(after_request)) if after_model and after_request else None
    async with pool(request).acquire() as conn:
        pending = await queries.pending_across_models(conn, grants=caller.grants, after=after, limit=limit)
    last = pending[-1] if len(pending) == limit else None
    return {"pending": pending,
            "next": {"after_model": last["model"], "after_request": last["request_id"]} if last else None}


@router.get("/models/{name}/history")
async def stage_history(name: str, request: Request, reader: ModelReader):
    """Every stage change of the model's versions, oldest first."""
    async with pool(request).acquire() as conn:
        await model_seq(conn, name)
        return {"model": name, "changes": await queries.stage_history(conn, name)}


@router.get("/artifacts/{sha256}")
async def artifact_references(sha256: str, request: Request, caller: Caller):
    """Which versions use an artifact: an object no version uses is an orphan.
    The answer spans models: `reader` on every model (the registrar's own token)."""
    authorize_every_model(caller, permissions.READER)
    async with pool(request).acquire() as conn:
        versions = await queries.artifact_references(conn, sha256.lower())
    return {"sha256": sha256.lower(), "referenced": bool(versions), "versions": versions}


async def model_seq(conn, name: str) -> int:
    seq = await queries.model_seq(conn, name)
    if seq is None:
        raise model_not_found(name)
    return seq


def model_not_found(name: str) -> ApiError:
    return ApiError(404, "model_not_found", f"no model named {name!r}")


def answered(request: Request, name: str, answer: Answer | None) -> Response:
    if answer is None:
        raise model_not_found(name)
    status, headers, body = http_answer(answer, request.headers.get("if-none-match"))
    return Response(body, status_code=status, headers=headers)


def serving(request: Request) -> ServingAnswers:
    return request.app.state.serving


@router.get("/models/{name}/stages/{stage}")
async def serving_stage(name: str, stage: Stage, request: Request, reader: ModelReader):
    """The version(s) in a stage, for serving systems ("what is in Production?")."""
    return answered(request, name, await serving(request).stage(pool(request), name, stage))


@router.get("/models/{name}/aliases/{alias}")
async def serving_alias(name: str, alias: str, request: Request, reader: ModelReader):
    """The version an alias (@champion, @challenger, …) points at."""
    answer = await serving(request).alias(pool(request), name, alias)
    if answer is not None and answer.body is None:
        raise ApiError(404, "alias_not_found", f"model {name!r} has no alias @{alias}")
    return answered(request, name, answer)


@router.get("/changes")
async def changes(request: Request, caller: Caller, model: str | None = None, type: list[str] = Query([]),
                  from_start: bool = False, last_event_id: str | None = Header(None)):
    """Server-Sent Events of committed events (CloudEvents JSON), filtered by model
    and event type; reconnect with Last-Event-ID to resume with no gap. Only
    events of models the caller's grants cover; the stream ends when the
    caller's token expires (reconnect with a fresh one and Last-Event-ID)."""
    if model is None:
        authorize_role(caller, permissions.READER)
    else:
        authorize(caller, permissions.READER, model)
    settings = request.app.state.settings
    if last_event_id:
        parse_cursor(last_event_id, settings.topic_partitions)  # refuse a bad cursor before streaming
    feed = change_feed(settings, request.app.state.trusted_keys, model, set(type), last_event_id, from_start,
                       grants=caller.grants, until=caller.expires_at)
    return StreamingResponse(feed, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("/commands/{command_id}")
async def command_outcome(command_id: UUID, request: Request, caller: Caller, wait: float = Query(0, ge=0),
                          state: bool = Query(False, description="include the model and version as they are now")):
    """The outcome of a command once its whole decision is projected; with
    `wait`, holds the request up to that many seconds for it (read-your-writes):
    the projection's commit wakes it (outcome_wakeups). With `state`, the
    answer carries the model (and the version the command touched) as the
    projector has them now, so a writer needs no second request.
    Needs `reader` on the command's model."""
    authorize_role(caller, permissions.READER)
    settings = request.app.state.settings
    outcome = await request.app.state.outcome_wakeups.complete_outcome(
        pool(request), command_id, min(wait, settings.projector_max_wait_s), settings.projector_outcome_poll_s,
        with_state=state)
    if outcome is None:
        raise ApiError(404, "outcome_pending", pending_message(command_id))
    authorize(caller, permissions.READER, outcome["model"])
    return outcome


def pending_message(command_id: UUID) -> str:
    return f"no outcome yet for command {command_id}"
