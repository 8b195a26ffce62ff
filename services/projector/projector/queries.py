"""Reads over the read models: plain SQL, rows to JSON-ready dicts."""

import json
from uuid import UUID

import asyncpg

VERSION_COLUMNS = (
    "model, version, stage, artifact_uri, artifact_sha256, artifact_size, run_id, dataset_uri,"
    " dataset_sha256, model_card, description, params, metrics, tags, registered_by, registered_at,"
    " deleted, (SELECT coalesce(array_agg(alias ORDER BY alias), '{}') FROM aliases a"
    " WHERE a.model = model_versions.model AND a.version = model_versions.version) AS aliases"
)
JSON_COLUMNS = ("params", "metrics", "tags")


def version_row(row: asyncpg.Record) -> dict:
    out = dict(row)
    for column in JSON_COLUMNS:
        out[column] = json.loads(out[column])
    out["registered_at"] = out["registered_at"].isoformat()
    out["aliases"] = list(out["aliases"])
    return out


async def get_model(conn: asyncpg.Connection, name: str) -> dict | None:
    row = await conn.fetchrow(
        "SELECT name, seq, description, tags, created_at, updated_at FROM models WHERE name = $1", name)
    if row is None:
        return None
    versions = await conn.fetchval("SELECT count(*) FROM model_versions WHERE model = $1", name)
    return {
        "name": row["name"], "seq": row["seq"], "description": row["description"],
        "tags": json.loads(row["tags"]), "versions": versions,
        "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat(),
    }


async def list_versions(conn: asyncpg.Connection, name: str) -> list[dict]:
    rows = await conn.fetch(
        f"SELECT {VERSION_COLUMNS} FROM model_versions WHERE model = $1 ORDER BY version", name)
    return [version_row(r) for r in rows]


async def get_version(conn: asyncpg.Connection, name: str, version: int) -> dict | None:
    row = await conn.fetchrow(
        f"SELECT {VERSION_COLUMNS} FROM model_versions WHERE model = $1 AND version = $2",
        name, version)
    return version_row(row) if row else None


async def get_outcome(conn: asyncpg.Connection, command_id: UUID) -> dict | None:
    row = await conn.fetchrow(
        "SELECT command_id, model, accepted, complete, last_seq, reason, message, version, decided_at"
        " FROM command_outcomes WHERE command_id = $1", command_id)
    if row is None:
        return None
    out = dict(row)
    out["command_id"] = str(out["command_id"])
    out["decided_at"] = out["decided_at"].isoformat()
    return out


async def versions_in_stage(conn: asyncpg.Connection, name: str, stage: str) -> list[dict]:
    rows = await conn.fetch(
        f"SELECT {VERSION_COLUMNS} FROM model_versions WHERE model = $1 AND stage = $2 AND NOT deleted"
        " ORDER BY version DESC", name, stage)
    return [version_row(r) for r in rows]


async def version_for_alias(conn: asyncpg.Connection, name: str, alias: str) -> dict | None:
    row = await conn.fetchrow(
        f"SELECT {VERSION_COLUMNS} FROM model_versions WHERE model = $1 AND version ="
        " (SELECT version FROM aliases WHERE model = $1 AND alias = $2)", name, alias)
    return version_row(row) if row else None
