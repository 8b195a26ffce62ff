"""The auditor's HTTP API: the trail, and the questions asked of it.

Thin: parameters in, store reads, pure answers from modelog_contract.audit.forensics out.

Every route needs a bearer token. A model's questions (timeline, state, diff,
why, approvals, an export of that model) need `reader` on it, within the
token's grants: whoever may read a model may read its trail. The questions
that span models (an actor's events, an export of every model, chain alerts)
need the `auditor` role on every model: they show the work of teams the caller
may not read."""

import asyncio
import json
from datetime import datetime
from typing import overload

import urllib3
from fastapi import APIRouter, Depends, Query, Request, Response
from minio.error import S3Error

from auditor import denials as denial_store
from auditor import store
from auditor.replays import StateReplays
from modelog_contract.audit import forensics
from modelog_contract.domain.events import Event
from modelog_contract.domain.types import Stage
from modelog_platform.identity import permissions
from modelog_platform.identity.http import Caller, ModelReader, authenticated, authorize, authorize_every_model
from modelog_platform.web import ApiError

router = APIRouter(prefix="/v1/audit", dependencies=[Depends(authenticated)])
PAGE = Query(1000, ge=1, le=10000)


def pool(request: Request):
    return request.app.state.pool


def replays(request: Request) -> StateReplays:
    return request.app.state.replays


def as_json(events: list[Event]) -> list[dict]:
    return [e.model_dump(mode="json") for e in events]


def point(text: str, name: str) -> forensics.Point:
    try:
        return forensics.parse_point(text)
    except forensics.InvalidPoint as error:
        raise ApiError(400, "invalid_point", f"{name}: {error}") from None


@overload
def instant(text: str, name: str) -> datetime: ...
@overload
def instant(text: None, name: str) -> None: ...
def instant(text: str | None, name: str) -> datetime | None:
    try:
        return None if text is None else forensics.parse_instant(text)
    except forensics.InvalidPoint as error:
        raise ApiError(400, "invalid_instant", f"{name}: {error}") from None


def cursor(token: str | None) -> store.Cursor | None:
    try:
        return None if token is None else store.Cursor.decode(token)
    except ValueError:
        raise ApiError(400, "invalid_cursor", "`after` must be the `next` of a previous page") from None


@router.get("/models/{name}/timeline")
async def model_timeline(name: str, request: Request, reader: ModelReader, limit: int = PAGE, after_seq: int = Query(0, ge=0)):
    async with pool(request).acquire() as conn:
        events = await store.timeline(conn, name, limit, after_seq)
        if not events and await store.head_seq(conn, name) is None:
            raise ApiError(404, "model_not_found", f"no events for model {name!r}")
    return {"model": name, "events": as_json(events)}


@router.get("/actors/{subject}/events")
async def actor_events(subject: str, request: Request, caller: Caller, limit: int = PAGE,
                       after: str | None = None):
    """Everything one actor did, across models, oldest first; `next` pages on."""
    authorize_every_model(caller, permissions.AUDITOR)
    async with pool(request).acquire() as conn:
        events, following = await store.events_page(conn, store.Filters(actor=subject), cursor(after), limit)
    if not events and after is None:
        raise ApiError(404, "actor_not_found", f"no events by {subject!r}")
    return {"actor": subject, "events": as_json(events), "next": following and following.encode()}


@router.get("/events")
async def events(request: Request, caller: Caller, model: str | None = None, since: str | None = None,
                 until: str | None = None, limit: int = PAGE, after: str | None = None):
    """Every event in [since, until), by time then model then seq: for exports.
    The first page (no `after`) also says how many there are in all."""
    if model is None:
        authorize_every_model(caller, permissions.AUDITOR)
    else:
        authorize(caller, permissions.READER, model)
    filters = store.Filters(model=model, since=instant(since, "since"), until=instant(until, "until"))
    async with pool(request).acquire() as conn:
        page, following = await store.events_page(conn, filters, cursor(after), limit)
        total = await store.count_events(conn, filters) if after is None else None
    return {"events": as_json(page), "next": following and following.encode(), "total": total}


def state_json(state) -> str:
    return state.model_dump_json(exclude={"decided"})


@router.get("/models/{name}/state")
async def state_as_of(name: str, request: Request, reader: ModelReader, at: str | None = None,
                      seq: int | None = Query(None, ge=0)):
    """The model as it stood at an instant (`at`, ISO-8601) or after a seq."""
    asked: forensics.Point
    if seq is not None and at is None:
        asked = forensics.AtSeq(seq)
    elif at is not None and seq is None:
        asked = forensics.AtInstant(instant(at, "at"))
    else:
        raise ApiError(400, "invalid_point", "give exactly one of `at` (ISO-8601) or `seq`")
    async with pool(request).acquire() as conn:
        state = await replays(request).state_at(conn, name, asked)
    # Serialised by pydantic in one pass: FastAPI's encoder or json.dumps of the
    # dumped dict cost more than the replay itself.
    body = f'{{"model":{json.dumps(name)},"seq":{state.seq},"state":{state_json(state)}}}'
    return Response(body, media_type="application/json")


@router.get("/models/{name}/diff")
async def state_diff(name: str, request: Request, reader: ModelReader, from_: str = Query(..., alias="from"),
                     to: str = Query(...)):
    """What changed from one point to another; each an instant or a seq."""
    start, end = point(from_, "from"), point(to, "to")
    async with pool(request).acquire() as conn:
        before = await replays(request).state_at(conn, name, start)
        after = await replays(request).state_at(conn, name, end)
    changes = forensics.diff(before, after)
    return {"model": name, "from_seq": before.seq, "to_seq": after.seq,
            "changes": [{**c.model_dump(mode="json"), "text": str(c)} for c in changes]}


async def version_story(request: Request, name: str, version: int) -> tuple[list[Event], list[Event]]:
    async with pool(request).acquire() as conn:
        if await store.head_seq(conn, name) is None:
            raise ApiError(404, "model_not_found", f"no events for model {name!r}")
        return await store.version_story(conn, name, version), await store.default_policies(conn)


def version_not_found(name: str, version: int) -> ApiError:
    return ApiError(404, "version_not_found", f"model {name!r} has no version {version}")


@router.get("/models/{name}/versions/{version}/why")
async def why(name: str, version: int, request: Request, reader: ModelReader):
    """Why the version is in its stage: the chain of events that put it there."""
    events, defaults = await version_story(request, name, version)
    try:
        answer = forensics.why(name, events, version, defaults)
    except forensics.VersionNotFound:
        raise version_not_found(name, version) from None
    return {**answer.model_dump(mode="json"), "summary": answer.summary()}


@router.get("/models/{name}/versions/{version}/approvals")
async def approvals(name: str, version: int, request: Request, reader: ModelReader, stage: Stage = "Production"):
    """Every request to move the version to `stage`: reviews, policy, gate results."""
    events, defaults = await version_story(request, name, version)
    try:
        stories = forensics.approvals(events, version, stage, defaults)
    except forensics.VersionNotFound:
        raise version_not_found(name, version) from None
    return {"model": name, "version": version, "stage": stage,
            "requests": [s.model_dump(mode="json") for s in stories]}


@router.get("/alerts")
async def alerts(request: Request, caller: Caller, limit: int = Query(100, ge=1, le=10000)):
    """Chain breaks found as events were recorded: how many, and the latest."""
    authorize_every_model(caller, permissions.AUDITOR)
    async with pool(request).acquire() as conn:
        count, latest = await store.alerts(conn, limit)
    return {"count": count, "alerts": latest}


@router.get("/denials")
async def denials(request: Request, caller: Caller, subject: str | None = None, model: str | None = None,
                  since: str | None = None, limit: int = Query(100, ge=1, le=10000)):
    """Writes the registrar refused before they became commands (who, what,
    when, why), and the summaries of a subject's suppressed ones; the newest
    `limit`, oldest first. They span models and callers: the `auditor` role on
    every model."""
    authorize_every_model(caller, permissions.AUDITOR)
    filters = denial_store.Filters(subject=subject, model=model, since=instant(since, "since"))
    async with pool(request).acquire() as conn:
        found = await denial_store.denials(conn, filters, limit)
    return {"denials": found}


@router.get("/models/{name}/denials")
async def model_denials(name: str, request: Request, caller: Caller, since: str | None = None,
                        limit: int = Query(100, ge=1, le=10000)):
    """The model's refused writes, beside the decider's refusals (CommandRejected
    in its timeline). They show who tried what: the `auditor` role on the model."""
    authorize(caller, permissions.AUDITOR, name)
    filters = denial_store.Filters(model=name, since=instant(since, "since"))
    async with pool(request).acquire() as conn:
        found = await denial_store.denials(conn, filters, limit)
    return {"model": name, "denials": found}


def seal_summary(seal) -> dict:
    return {"number": seal.number, "sealed_at": seal.sealed_at.isoformat(), "models": len(seal.heads),
            "root": seal.root, "digest": seal.digest, "previous": seal.previous, "key_id": seal.key_id,
            "object": seal.object_name}


@router.post("/seals", status_code=201)
async def seal_now(request: Request, caller: Caller):
    """Seal every model's chain head as stored now: signed, chained to the last
    seal, written to S3 under Object Lock where the bucket has it (`locked`).
    Seals cover every model: the `auditor` role on every model."""
    authorize_every_model(caller, permissions.AUDITOR)
    try:
        seal, locked = await request.app.state.sealer.seal(pool(request))
    except (S3Error, urllib3.exceptions.HTTPError, OSError) as error:  # S3 away or refusing
        raise ApiError(503, "seal_failed", f"the seal could not be stored: {error}") from None
    return {**seal_summary(seal), "locked": locked, "seal": seal.model_dump(mode="json")}


@router.get("/seals")
async def seals(request: Request, caller: Caller):
    """Every seal in S3 in order, and any object under seals/ that is not as written."""
    authorize_every_model(caller, permissions.AUDITOR)
    stored = await asyncio.to_thread(request.app.state.sealer.store.all)
    return {"seals": [seal_summary(s) for s in stored.seals],
            "problems": [{**b.model_dump(), "text": str(b)} for b in stored.breaks]}
