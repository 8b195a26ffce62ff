"""Webhooks: committed events pushed to a serving system's URL.

The outbox is filled inside the projection's transaction (`enqueue`), so an
event is queued exactly when it is projected. The worker delivers each
webhook's queue in order, one event at a time: a failure holds the rest back
and is retried with exponential backoff, so events arrive in log order per
model, at least once; the CloudEvent id lets a receiver drop a repeat. Every
attempt is recorded. Several projector instances may run the worker: a
webhook is delivered by whichever holds its row lock.
"""

import asyncio
import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx

from modelog_contract.domain.events import Event
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


async def enqueue(conn: asyncpg.Connection, event: Event) -> None:
    """Queue the event for every webhook it matches (inside the projection's transaction)."""
    await conn.execute(
        "INSERT INTO webhook_outbox (webhook_id, event_id, model, seq, body)"
        " SELECT id, $1, $2, $3, $4 FROM webhooks WHERE active"
        " AND (model IS NULL OR model = $2) AND (types = '{}' OR $5 = ANY(types))",
        event.event_id, event.model, event.seq, json.dumps(cloud_event(event)), event.type)


class Deliverer:
    def __init__(self, pool: asyncpg.Pool, poll_s: float = 0.2):
        self.pool, self.poll_s = pool, poll_s
        self.http = httpx.AsyncClient(timeout=TIMEOUT_S)

    async def run_forever(self) -> None:
        try:
            while True:
                try:
                    await self.deliver_due()
                except (asyncpg.PostgresError, OSError):  # retried next round; the outbox keeps everything
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
            hook = await conn.fetchrow("SELECT url, secret FROM webhooks WHERE id = $1 AND active"
                                       " FOR UPDATE SKIP LOCKED", webhook_id)
            if hook is None:
                return  # another instance is delivering it, or it was removed
            pending = await conn.fetch(
                "SELECT id, body, attempts, next_attempt_at FROM webhook_outbox"
                " WHERE webhook_id = $1 AND delivered_at IS NULL ORDER BY id LIMIT $2", webhook_id, BATCH)
            for item in pending:
                if item["next_attempt_at"] > datetime.now(timezone.utc):
                    return  # the head of the queue is backing off: the rest waits behind it
                if not await self.attempt(conn, hook, item):
                    return

    async def attempt(self, conn: asyncpg.Connection, hook, item) -> bool:
        body, attempt = item["body"].encode(), item["attempts"] + 1
        event_id = json.loads(item["body"])["id"]
        started, status, error = time.perf_counter(), None, None
        try:
            response = await self.http.post(hook["url"], content=body, headers={
                "Content-Type": "application/cloudevents+json", "Modelog-Event-Id": event_id,
                "Modelog-Signature": signature(hook["secret"], int(time.time()), body)})
            status = response.status_code
            ok = 200 <= status < 300
        except httpx.HTTPError as failure:
            ok, error = False, f"{type(failure).__name__}: {failure}"[:500]
        now = datetime.now(timezone.utc)
        await conn.execute("INSERT INTO webhook_attempts VALUES ($1, $2, $3, $4, $5, $6)",
                           item["id"], attempt, now, status, error, (time.perf_counter() - started) * 1000)
        await conn.execute(
            "UPDATE webhook_outbox SET attempts = $2, delivered_at = $3, next_attempt_at = $4 WHERE id = $1",
            item["id"], attempt, now if ok else None, now + backoff(attempt))
        return ok
