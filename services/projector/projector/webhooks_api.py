"""Registering webhooks and reading back their deliveries."""

import json
from datetime import datetime, timezone
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from modelog.domain.types import InvalidName, check_model_name
from modelog.web import ApiError

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class NewWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: HttpUrl
    secret: str = Field(min_length=16, description="shared with the receiver; signs every delivery")
    model: str | None = Field(None, description="only this model's events; none: every model")
    types: list[str] = Field([], description="only these event types, e.g. StageChanged; none: all")


def view(row) -> dict:  # never the secret
    return {"id": str(row["id"]), "url": row["url"], "model": row["model"], "types": list(row["types"]),
            "created_at": row["created_at"].isoformat(), "active": row["active"]}


@router.post("", status_code=201)
async def register(body: NewWebhook, request: Request):
    """Deliver every event committed from now on that matches, signed with the secret."""
    if body.model is not None:
        try:
            check_model_name(body.model)
        except InvalidName as error:
            raise ApiError(400, "invalid_model_name", str(error)) from None
    async with request.app.state.pool.acquire() as conn:
        row = await conn.fetchrow(
            "INSERT INTO webhooks (id, url, secret, model, types, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
            " RETURNING *", uuid4(), str(body.url), body.secret, body.model, body.types,
            datetime.now(timezone.utc))
    return view(row)


@router.get("")
async def list_webhooks(request: Request):
    async with request.app.state.pool.acquire() as conn:
        return {"webhooks": [view(r) for r in await conn.fetch("SELECT * FROM webhooks ORDER BY created_at")]}


@router.delete("/{webhook_id}")
async def remove(webhook_id: UUID, request: Request):
    async with request.app.state.pool.acquire() as conn:
        if await conn.execute("DELETE FROM webhooks WHERE id = $1", webhook_id) == "DELETE 0":
            raise ApiError(404, "webhook_not_found", f"no webhook {webhook_id}")
    return {"id": str(webhook_id), "removed": True}


@router.get("/{webhook_id}/deliveries")
async def deliveries(webhook_id: UUID, request: Request, limit: int = Query(100, ge=1, le=1000)):
    """Each queued event with every attempt to deliver it, newest first."""
    async with request.app.state.pool.acquire() as conn:
        if not await conn.fetchval("SELECT 1 FROM webhooks WHERE id = $1", webhook_id):
            raise ApiError(404, "webhook_not_found", f"no webhook {webhook_id}")
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
