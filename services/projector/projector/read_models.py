"""Fold one event into the read model rows. Runs inside the projection's transaction."""

import json

import asyncpg

from modelog_contract.domain import events as e
from modelog_contract.domain.events import Event
from projector.webhooks import enqueue as enqueue_webhooks


async def apply_event(conn: asyncpg.Connection, event: Event, partition: int, offset: int) -> None:
    await _apply_payload(conn, event, event.payload)
    # Every event moves the model's head, rejections included (they are in its chain).
    await conn.execute("UPDATE models SET seq = $2, head_hash = $3, updated_at = $4 WHERE name = $1",
                       event.model, event.seq, event.hash, event.occurred_at)
    await record_outcome(conn, event)
    await enqueue_webhooks(conn, event)


async def _apply_payload(conn: asyncpg.Connection, event: Event, p) -> None:
    model = event.model
    match p:
        case e.ModelCreated():
            await conn.execute(
                "INSERT INTO models (name, seq, head_hash, description, tags, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $6)",
                model, event.seq, event.hash, p.description, json.dumps(p.tags), event.occurred_at)
        case e.VersionRegistered():
            await conn.execute(
                "INSERT INTO model_versions (model, version, artifact_uri, artifact_sha256,"
                " artifact_size, run_id, description, params, metrics, tags, registered_by,"
                " registered_at, dataset_uri, dataset_sha256, model_card)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                model, p.version, p.artifact.uri, p.artifact.sha256, p.artifact.size, p.run_id,
                p.description, json.dumps(p.params), json.dumps(p.metrics), json.dumps(p.tags),
                event.actor.subject, event.occurred_at, p.dataset_uri, p.dataset_sha256, p.model_card)
        case e.ModelUpdated():
            await conn.execute("UPDATE models SET description = $2 WHERE name = $1", model, p.description)
        case e.VersionUpdated():
            await _update_version(conn, model, p.version, "description = $3", p.description)
        case e.TagSet(version=None):
            await conn.execute("UPDATE models SET tags = tags || jsonb_build_object($2::text, $3::text)"
                               " WHERE name = $1", model, p.key, p.value)
        case e.TagSet():
            await _update_version(conn, model, p.version,
                                  "tags = tags || jsonb_build_object($3::text, $4::text)", p.key, p.value)
        case e.TagDeleted(version=None):
            await conn.execute("UPDATE models SET tags = tags - $2::text WHERE name = $1", model, p.key)
        case e.TagDeleted():
            await _update_version(conn, model, p.version, "tags = tags - $3::text", p.key)
        case e.MetricsReported():
            await _update_version(conn, model, p.version, "metrics = metrics || $3::jsonb", json.dumps(p.metrics))
        case e.TransitionRequested():
            await conn.execute(
                "INSERT INTO pending_transitions (request_id, model, version, to_stage, archive_existing,"
                " requested_by, requested_at, approvals_required) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                p.request_id, model, p.version, p.to_stage, p.archive_existing, event.actor.subject,
                event.occurred_at, p.approvals_required)
        case e.ApprovalGranted():
            approval = json.dumps([{"subject": event.actor.subject, "at": event.occurred_at.isoformat()}])
            await conn.execute("UPDATE pending_transitions SET approvals = approvals || $2::jsonb"
                               " WHERE request_id = $1", p.request_id, approval)
        case e.ApprovalDenied():
            await conn.execute("DELETE FROM pending_transitions WHERE request_id = $1", p.request_id)
        case e.StageChanged():
            await _update_version(conn, model, p.version, "stage = $3", p.to_stage)
            await conn.execute("DELETE FROM pending_transitions WHERE model = $1 AND version = $2",
                               model, p.version)
            await conn.execute(
                "INSERT INTO stage_history VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                model, event.seq, p.version, p.from_stage, p.to_stage, p.why, event.actor.subject,
                event.occurred_at)
        case e.AliasSet():
            await conn.execute(
                "INSERT INTO aliases VALUES ($1, $2, $3, $4) ON CONFLICT (model, alias)"
                " DO UPDATE SET version = EXCLUDED.version, protected = EXCLUDED.protected",
                model, p.alias, p.version, p.protected)
        case e.AliasDeleted():
            await conn.execute("DELETE FROM aliases WHERE model = $1 AND alias = $2", model, p.alias)
        case e.VersionDeleted():
            await _update_version(conn, model, p.version, "deleted = true")
            await conn.execute("DELETE FROM pending_transitions WHERE model = $1 AND version = $2",
                               model, p.version)
        case e.ModelDeleted():
            await conn.execute("UPDATE models SET deleted = true WHERE name = $1", model)
            await conn.execute("DELETE FROM aliases WHERE model = $1", model)
            await conn.execute("DELETE FROM pending_transitions WHERE model = $1", model)
        case e.PolicySet() | e.CommandRejected():
            pass  # the audit trail keeps these; no serving read model needs them yet


async def _update_version(conn: asyncpg.Connection, model: str, version: int, assignment: str, *args) -> None:
    await conn.execute(f"UPDATE model_versions SET {assignment} WHERE model = $1 AND version = $2",
                       model, version, *args)


async def record_outcome(conn: asyncpg.Connection, event: Event) -> None:
    p = event.payload
    rejected = p if isinstance(p, e.CommandRejected) else None
    version = getattr(p, "version", None)
    rule_results = json.dumps([r.model_dump() for r in rejected.rule_results] if rejected else [])
    await conn.execute(
        "INSERT INTO command_outcomes (command_id, model, accepted, complete, last_seq, reason,"
        " message, version, decided_at, events, rule_results)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, ARRAY[$10::text], $11)"
        " ON CONFLICT (command_id) DO UPDATE SET complete = EXCLUDED.complete,"
        " last_seq = EXCLUDED.last_seq, version = coalesce(command_outcomes.version, EXCLUDED.version),"
        " events = command_outcomes.events || EXCLUDED.events",
        event.command_id, event.model, rejected is None, event.closes_decision, event.seq,
        rejected and rejected.reason, rejected and rejected.message, version, event.occurred_at,
        p.type, rule_results)
