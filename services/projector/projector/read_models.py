"""Fold one event into the read model rows. Runs inside the projection's transaction."""

import json

import asyncpg

from modelog.domain.events import CommandRejected, Event, ModelCreated, VersionRegistered


async def apply_event(conn: asyncpg.Connection, event: Event, partition: int, offset: int) -> None:
    match event.payload:
        case ModelCreated() as created:
            await conn.execute(
                "INSERT INTO models (name, seq, head_hash, description, tags, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $6)",
                event.model, event.seq, event.hash, created.description,
                json.dumps(created.tags), event.occurred_at)
        case VersionRegistered() as registered:
            await conn.execute(
                "INSERT INTO model_versions (model, version, artifact_uri, artifact_sha256,"
                " artifact_size, run_id, description, params, metrics, tags, registered_by,"
                " registered_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                event.model, registered.version, registered.artifact.uri,
                registered.artifact.sha256, registered.artifact.size, registered.run_id,
                registered.description, json.dumps(registered.params),
                json.dumps(registered.metrics), json.dumps(registered.tags),
                event.actor.subject, event.occurred_at)
    # Every event moves the model's head, rejections included (they are in its chain).
    await conn.execute(
        "UPDATE models SET seq = $2, head_hash = $3, updated_at = $4 WHERE name = $1",
        event.model, event.seq, event.hash, event.occurred_at)
    await record_outcome(conn, event)


async def record_outcome(conn: asyncpg.Connection, event: Event) -> None:
    rejected = event.payload if isinstance(event.payload, CommandRejected) else None
    version = event.payload.version if isinstance(event.payload, VersionRegistered) else None
    await conn.execute(
        "INSERT INTO command_outcomes (command_id, model, accepted, complete, last_seq, reason,"
        " message, version, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (command_id) DO UPDATE SET complete = EXCLUDED.complete,"
        " last_seq = EXCLUDED.last_seq, version = coalesce(EXCLUDED.version, command_outcomes.version)",
        event.command_id, event.model, rejected is None, event.closes_decision, event.seq,
        rejected and rejected.reason, rejected and rejected.message, version, event.occurred_at)
