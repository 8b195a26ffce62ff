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
from typing import NamedTuple
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


# The webhooks that may take any of a batch's events ($1: its models), read in
# the statement that loads the batch's rows (read_models.LOAD): a batch no
# webhook wants, the common case, then costs no statement and no payloads.
HOOKS_IN_SCOPE = ("(SELECT array_agg(ROW(id, kind, model, types, events) ORDER BY id) FROM webhooks"
                  " WHERE active AND (model IS NULL OR model = ANY($1::text[])))")


class Hook(NamedTuple):
    """An active webhook's filter: its model (None: every model), then by kind
    modelog's event types (empty: every type) or MLflow's event names."""

    id: UUID
    kind: str
    model: str | None
    types: Sequence[str]
    mlflow_events: Sequence[str]


def hooks_in_scope(loaded: Sequence[tuple] | None) -> list[Hook]:
    """HOOKS_IN_SCOPE's column as Hooks, in delivery order (by id)."""
    return [Hook(*hook) for hook in loaded or ()]  # array_agg of no rows is NULL


def deliveries(events: Sequence[Event], hooks: Sequence[Hook]) -> list[tuple[UUID, UUID, str, int, str]]:
    """The outbox rows `events` owe `hooks`, in delivery order: the log's, then
    the webhooks' ids. Each is (webhook id, event id, model, seq, JSON body)."""
    rows = []
    for event in events:
        cloud_body: str | None = None
        mlflow: tuple[str, str] | None = None
        mlflow_read = False
        for hook in hooks:
            if hook.model is not None and hook.model != event.model:
                continue
            if hook.kind == "mlflow":
                if not mlflow_read:
                    mlflow, mlflow_read = mlflow_payloads.delivery(event), True
                if mlflow is not None and mlflow[0] in hook.mlflow_events:
                    rows.append((hook.id, event.event_id, event.model, event.seq, mlflow[1]))
            elif not hook.types or event.type in hook.types:
                if cloud_body is None:
                    cloud_body = json.dumps(cloud_event(event))
                rows.append((hook.id, event.event_id, event.model, event.seq, cloud_body))
    return rows


async def enqueue(conn: asyncpg.Connection, events: Sequence[Event], hooks: Sequence[Hook]) -> None:
    """Queue each event, in log order, for every one of `hooks` (HOOKS_IN_SCOPE,
    read in this transaction) it matches, in the body of that webhook's kind,
    inside the projection's transaction: one statement for a batch, none when
    nothing matches (one per event cost a burst's batch of a thousand events a
    thousand round trips)."""
    rows = deliveries(events, hooks)
    if not rows:
        return
    await conn.execute(
        "INSERT INTO webhook_outbox (webhook_id, event_id, model, seq, body)"
        " SELECT webhook_id, event_id, model, seq, body"
        " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::jsonb[])"
        "  WITH ORDINALITY AS d (webhook_id, event_id, model, seq, body, n)"
        # The outbox's id is each webhook's delivery order: the log's.
        " ORDER BY n",
        *(list(column) for column in zip(*rows, strict=True)))


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
