"""The projector's HTTP API: what serving systems and the registrar read."""

import asyncio
from uuid import UUID

from fastapi import APIRouter, Query, Request

from modelog.web import ApiError
from projector import queries

router = APIRouter(prefix="/v1")
POLL_S = 0.01


def pool(request: Request):
    return request.app.state.pool


@router.get("/models/{name}")
async def get_model(name: str, request: Request):
    async with pool(request).acquire() as conn:
        model = await queries.get_model(conn, name)
    if model is None:
        raise ApiError(404, "model_not_found", f"no model named {name!r}")
    return model


@router.get("/models/{name}/versions")
async def list_versions(name: str, request: Request):
    async with pool(request).acquire() as conn:
        if await queries.get_model(conn, name) is None:
            raise ApiError(404, "model_not_found", f"no model named {name!r}")
        return {"model": name, "versions": await queries.list_versions(conn, name)}


@router.get("/models/{name}/versions/{version}")
async def get_version(name: str, version: int, request: Request):
    async with pool(request).acquire() as conn:
        found = await queries.get_version(conn, name, version)
    if found is None:
        raise ApiError(404, "version_not_found", f"model {name!r} has no version {version}")
    return found


@router.get("/commands/{command_id}")
async def command_outcome(command_id: UUID, request: Request, wait: float = Query(0, ge=0)):
    """The outcome of a command once its whole decision is projected; with
    `wait`, holds the request up to that many seconds for it (read-your-writes)."""
    deadline = asyncio.get_running_loop().time() + min(wait, request.app.state.settings.projector_max_wait_s)
    while True:
        async with pool(request).acquire() as conn:
            outcome = await queries.get_outcome(conn, command_id)
        if outcome and outcome["complete"]:
            return outcome
        if asyncio.get_running_loop().time() >= deadline:
            raise ApiError(404, "outcome_pending", f"no outcome yet for command {command_id}")
        await asyncio.sleep(POLL_S)
