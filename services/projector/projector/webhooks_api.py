"""Registering webhooks and reading back their deliveries. MLflow's webhooks
(mlflow_webhooks_api.py) are served under /v1/webhooks/mlflow; they share the
outbox, so their deliveries read back here too."""

import json
from datetime import datetime, timezone
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from modelog_contract.domain.types import InvalidName, check_model_name
from modelog_platform.identity import permissions
from modelog_platform.identity.http import Caller, authenticated, authorize, authorize_every_model
from modelog_platform.identity.tokens import Identity
from modelog_platform.web import ApiError
from projector import mlflow_webhooks_api

# A webhook sends its model's events (every model's, without one): registering,
# reading or removing it needs `reader` on that model (on every model).
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], dependencies=[Depends(authenticated)])


def may_watch(caller: Identity, model: str | None) -> None:
    if model is None:
        authorize_every_model(caller, permissions.READER)
    else:
        authorize(caller, permissions.READER, model)


class NewWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: HttpUrl
    secret: str = Field(min_length=16, description="shared with the receiver; signs every delivery")
    model: str | None = Field(None, description="only this model's events; none: every model")
    types: list[str] = Field([], description="only these event types, e.g. StageChanged; none: all")


def view(row) -> dict:  # never the secret
    return {"id": str(row["id"]), "kind": row["kind"], "url": row["url"], "model": row["model"],
            "types": list(row["types"]), "created_at": row["created_at"].isoformat(), "active": row["active"]}


@router.post("", status_code=201)
async def register(body: NewWebhook, request: Request, caller: Caller):
    """Deliver every event committed from now on that matches, signed with the secret."""
    if body.model is not None:
        try:
            check_model_name(body.model)
        except InvalidName as error:
            raise ApiError(400, "invalid_model_name", str(error)) from None
    may_watch(caller, body.model)
    async with request.app.state.pool.acquire() as conn:
        row = await conn.fetchrow(
            "INSERT INTO webhooks (id, url, secret, model, types, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
            " RETURNING *", uuid4(), str(body.url), body.secret, body.model, body.types,
            datetime.now(timezone.utc))
    return view(row)


@router.get("")
async def list_webhooks(request: Request, caller: Caller):
    """The webhooks of the models the caller may read."""
    every = permissions.authorize_every_model(caller, permissions.READER) is None
    async with request.app.state.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM webhooks ORDER BY created_at")
    return {"webhooks": [view(r) for r in rows if every or (
        r["model"] is not None and permissions.authorize(caller, permissions.READER, r["model"]) is None)]}


async def webhook_scope(conn, webhook_id: UUID, caller: Identity, removing: bool = False) -> None:
    """404 if there is no such webhook; 403 if the caller may not watch its model
    (or, removing an MLflow webhook, is not the admin its API asks for)."""
    row = await conn.fetchrow("SELECT model, kind FROM webhooks WHERE id = $1", webhook_id)
    if row is None:
        raise ApiError(404, "webhook_not_found", f"no webhook {webhook_id}")
    may_watch(caller, row["model"])
    if removing and row["kind"] == "mlflow":
        authorize_every_model(caller, permissions.ADMIN)


@router.delete("/{webhook_id}")
async def remove(webhook_id: UUID, request: Request, caller: Caller):
    async with request.app.state.pool.acquire() as conn:
        await webhook_scope(conn, webhook_id, caller, removing=True)
        await conn.execute("DELETE FROM webhooks WHERE id = $1", webhook_id)
    return {"id": str(webhook_id), "removed": True}


@router.get("/{webhook_id}/deliveries")
async def deliveries(webhook_id: UUID, request: Request, caller: Caller, limit: int = Query(100, ge=1, le=1000)):
    """Each queued event with every attempt to deliver it, newest first."""
    async with request.app.state.pool.acquire() as conn:
        await webhook_scope(conn, webhook_id, caller)
        rows = await conn.fetch(
            "SELECT o.id, o.event_id, o.model, o.seq, o.delivered_at, o.attempts, o.next_attempt_at,"
            " coalesce(jsonb_agg(jsonb_build_object('attempt', a.attempt, 'at', a.at, 'status_code',"
            " a.status_code, 'error', a.error, 'duration_ms', a.duration_ms) ORDER BY a.attempt)"
            " FILTER (WHERE a.attempt IS NOT NULL), '[]') AS attempt_log"
            " FROM webhook_outbox o LEFT JOIN webhook_attempts a ON a.outbox_id = o.id"
            " WHERE o.webhook_id = $1 GROUP BY o.id ORDER BY o.id DESC LIMIT $2", webhook_id, limit)
    return {"webhook": str(webhook_id), "deliveries": [
        {"event_id": str(r["event_id"]), "model": r["model"], "seq": r["seq"],
         "delivered_at": r["delivered_at"] and r["delivered_at"].isoformat(), "attempts": r["attempts"],
         "next_attempt_at": r["next_attempt_at"].isoformat(), "attempt_log": json.loads(r["attempt_log"])}
        for r in rows]}


# After this router's own routes; none of them has two segments where these do.
router.include_router(mlflow_webhooks_api.router)
