"""Two reads for a reader that keeps models in a cache of its own, as the
registrar does for MLflow's read API (docs/decisions/0011): a model with all
its versions as of one seq, and the current seqs of many models in one query.

A cached copy read at seq N is right for as long as the model is at N (every
event moves its model's seq in the same transaction as the rows it changes),
so the cache asks for the seqs after each request arrives, and reads a model
whole again only when its seq has moved: read-your-writes on any number of
registrar and projector instances, for one round trip per batch of requests.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from modelog_platform.identity import permissions
from modelog_platform.identity.http import Caller, ModelReader, authenticated, authorize_role
from modelog_platform.web import ApiError
from projector import queries

router = APIRouter(prefix="/v1", dependencies=[Depends(authenticated)])
MAX_SEQS = 1000  # names per request; a registrar's batch is the requests waiting at one moment


@router.get("/models/{name}/with-versions")
async def model_with_versions(name: str, request: Request, reader: ModelReader):
    """The model's row (deleted or not, with its seq and the table it is in)
    and every version row, read in one snapshot of the read models."""
    async with request.app.state.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        found = await queries.model_with_versions(conn, name)
    if found is None:
        raise ApiError(404, "model_not_found", f"no model named {name!r}")
    return found


@router.get("/seqs")
async def model_seqs(request: Request, caller: Caller,
                     name: Annotated[list[str], Query(max_length=MAX_SEQS)]):
    """`{"seqs": {name: [seq, table]}}` for those of the names that are models the
    caller's grants cover; a name left out is no model (or not the caller's)."""
    authorize_role(caller, permissions.READER)
    names = [n for n in name if permissions.may_act_on(caller.grants, n)]
    async with request.app.state.pool.acquire() as conn:
        seqs = await queries.model_seqs(conn, names) if names else {}
    return {"seqs": {n: list(found) for n, found in seqs.items()}}
