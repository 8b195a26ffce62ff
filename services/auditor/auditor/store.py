"""The append-only audit store: writes (inside the projection's transaction) and reads."""

import json

import asyncpg

from modelog.domain.events import Event


async def record_event(conn: asyncpg.Connection, event: Event, partition: int, offset: int) -> None:
    await conn.execute(
        "INSERT INTO audit_events (model, seq, event_id, type, occurred_at, actor_subject,"
        " command_id, hash, prev_hash, kafka_partition, kafka_offset, event)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        event.model, event.seq, event.event_id, event.type, event.occurred_at,
        event.actor.subject, event.command_id, event.hash, event.prev_hash,
        partition, offset, event.model_dump_json())


async def timeline(conn: asyncpg.Connection, model: str, limit: int) -> list[dict]:
    rows = await conn.fetch(
        "SELECT event FROM audit_events WHERE model = $1 ORDER BY seq LIMIT $2", model, limit)
    return [json.loads(r["event"]) for r in rows]
