"""Webhooks: committed events pushed to a serving system's URL.

The outbox is filled inside the projection's transaction (`enqueue`), so an
event is queued exactly when it is projected. The worker delivers each
webhook's queue in order, one event at a time: a failure holds the rest back
and is retried with exponential backoff, so events arrive in log order per
model, at least once; the CloudEvent id lets a receiver drop a repeat. Every
attempt is recorded. Several projector instances may run the worker: a
webhook is delivered by whichever holds its row lock.

A webhook is of one of two kinds: modelog's own (`cloudevents`: every event,
as a CloudEvent, `Modelog-Signature`) or MLflow's (`mlflow`: the events
MLflow's receivers know, in MLflow's payload and headers; mlflow_payloads.py).
Both share the outbox, the order and the retries.
"""

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from uuid import NAMESPACE_URL, UUID, uuid5

import asyncpg
import httpx

from modelog_contract.domain.events import Event
from modelog_platform import metrics
from modelog_platform.adapters.postgres import UNAVAILABLE
from projector import mlflow_payloads
from projector.changes import cloud_event

log = logging.getLogger("modelog.webhooks")
BATCH = 100
TIMEOUT_S = 10.0
MAX_BACKOFF_S = 30.0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the receiver recomputes it
    with the shared secret, and rejects old timestamps to stop replays."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(0.5 * 2 ** (attempts - 1), MAX_BACKOFF_S))


async def enqueue(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Queue each event, in log order, for every webhook it matches (inside the
    projection's transaction), in the body of each webhook's kind; one
    statement for a batch, so the projection pays one round trip whatever the
    events and the webhooks (one per event cost a burst's batch of a thousand
    events a thousand round trips)."""
    if not events:
        return
    deliveries = [mlflow_payloads.delivery(event) or (None, None) for event in events]
    await conn.execute(
        "INSERT INTO webhook_outbox (webhook_id, event_id, model, seq, body)"
        " SELECT w.id, e.event_id, e.model, e.seq, CASE w.kind WHEN 'mlflow' THEN e.mlflow_body ELSE e.body END"
        " FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::jsonb[], $5::text[], $6::jsonb[], $7::text[])"
        "  WITH ORDINALITY AS e (event_id, model, seq, body, type, mlflow_body, mlflow_name, n)"
        " JOIN webhooks w ON w.active AND (w.model IS NULL OR w.model = e.model) AND CASE w.kind"
        "  WHEN 'mlflow' THEN e.mlflow_name = ANY(w.events)"
        "  ELSE (w.types = '{}' OR e.type = ANY(w.types)) END"
        # The outbox's id is each webhook's delivery order: the log's.
        " ORDER BY e.n, w.id",
        [event.event_id for event in events], [event.model for event in events], [event.seq for event in events],
        [json.dumps(cloud_event(event)) for event in events], [event.type for event in events],
        [body for _, body in deliveries], [name for name, _ in deliveries])


def delivery_id(webhook_id: UUID, event_id: UUID) -> str:
    """MLflow's X-MLflow-Delivery-Id: the same for every attempt of one event to
    one webhook, so a receiver drops a repeat by it (delivery is at least once)."""
    return str(uuid5(NAMESPACE_URL, f"modelog:webhook/{webhook_id}/event/{event_id}"))


def request_headers(kind: str, secret: str, webhook_id: UUID, event_id: UUID, body: bytes,
                    now: int) -> dict[str, str]:
    """The headers one attempt is sent with, as the webhook's kind wants them."""
    if kind == "mlflow":
        return mlflow_payloads.headers(secret, delivery_id(webhook_id, event_id), now, body)
    return {"Content-Type": "application/cloudevents+json", "Modelog-Event-Id": str(event_id),
            "Modelog-Signature": signature(secret, now, body)}


class Deliverer:
    def __init__(self, pool: asyncpg.Pool, poll_s: float = 0.2):
        self.pool, self.poll_s = pool, poll_s
        self.http = httpx.AsyncClient(timeout=TIMEOUT_S)

    async def run_forever(self) -> None:
        try:
            while True:
                try:
                    await self.deliver_due()
                except (asyncpg.PostgresError, *UNAVAILABLE):  # retried next round; the outbox keeps everything
                    log.exception("webhook delivery round failed")
                await asyncio.sleep(self.poll_s)
        finally:
            await self.http.aclose()

    async def deliver_due(self) -> None:
        async with self.pool.acquire() as conn:
            due = await conn.fetch(
                "SELECT DISTINCT webhook_id FROM webhook_outbox WHERE delivered_at IS NULL"
                " AND next_attempt_at <= now()")
        for row in due:
            await self.deliver_webhook(row["webhook_id"])

    async def deliver_webhook(self, webhook_id) -> None:
        """Deliver this webhook's queue in order until it is empty or an attempt fails."""
        async with self.pool.acquire() as conn, conn.transaction():
            hook = await conn.fetchrow("SELECT id, url, secret, kind FROM webhooks WHERE id = $1 AND active"
                                       " FOR UPDATE SKIP LOCKED", webhook_id)
            if hook is None:
                return  # another instance is delivering it, or it was removed
            pending = await conn.fetch(
                "SELECT id, event_id, body, attempts, next_attempt_at FROM webhook_outbox"
                " WHERE webhook_id = $1 AND delivered_at IS NULL ORDER BY id LIMIT $2", webhook_id, BATCH)
            for item in pending:
                if item["next_attempt_at"] > datetime.now(timezone.utc):
                    return  # the head of the queue is backing off: the rest waits behind it
                if not await self.attempt(conn, hook, item):
                    return

    async def attempt(self, conn: asyncpg.Connection, hook, item) -> bool:
        body, attempt = item["body"].encode(), item["attempts"] + 1
        started, status, error = time.perf_counter(), None, None
        try:
            response = await self.http.post(hook["url"], content=body, headers=request_headers(
                hook["kind"], hook["secret"], hook["id"], item["event_id"], body, int(time.time())))
            status = response.status_code
            ok = 200 <= status < 300
        except (httpx.HTTPError, httpx.InvalidURL) as failure:  # a failed attempt, never a stopped deliverer
            ok, error = False, f"{type(failure).__name__}: {failure}"[:500]
        now = datetime.now(timezone.utc)
        await conn.execute("INSERT INTO webhook_attempts VALUES ($1, $2, $3, $4, $5, $6)",
                           item["id"], attempt, now, status, error, (time.perf_counter() - started) * 1000)
        await conn.execute(
            "UPDATE webhook_outbox SET attempts = $2, delivered_at = $3, next_attempt_at = $4 WHERE id = $1",
            item["id"], attempt, now if ok else None, now + backoff(attempt))
        metrics.webhook_attempted(ok, event_time(item["body"]))
        return ok


def event_time(body: str) -> str | None:
    """When the delivered event occurred: a CloudEvent's `time`, an MLflow payload's `timestamp`."""
    fields = json.loads(body)
    return fields.get("time") or fields.get("timestamp")
