"""Reads over the read models: plain SQL, rows to JSON-ready dicts."""

import json
from uuid import UUID

import asyncpg

VERSION_NAMES = (
    "model", "version", "stage", "artifact_uri", "artifact_sha256", "artifact_size", "artifact_form", "run_id",
    "dataset_uri", "dataset_sha256", "model_card", "description", "params", "metrics", "tags", "registered_by",
    "registered_at", "deleted", "aliases",
)
VERSION_COLUMNS = ", ".join(VERSION_NAMES[:-1]) + (
    ", (SELECT coalesce(array_agg(alias ORDER BY alias), '{}') FROM aliases a"
    " WHERE a.model = model_versions.model AND a.version = model_versions.version) AS aliases"
)
JSON_COLUMNS = ("params", "metrics", "tags")
MODEL_NAMES = ("name", "seq", "description", "tags", "created_at", "updated_at", "versions")
MODEL_COLUMNS = ", ".join(MODEL_NAMES[:-1]) + (
    ", (SELECT count(*) FROM model_versions WHERE model = models.name) AS versions")
OUTCOME_NAMES = ("command_id", "model", "accepted", "complete", "last_seq", "reason", "message", "version",
                 "decided_at", "events", "rule_results")
OUTCOME_COLUMNS = ", ".join(OUTCOME_NAMES)
# An outcome and, once complete, the model and the version it touched: one
# statement, so a write's answer costs the projector one round trip, and all
# three are read in one snapshot.
OUTCOME_WITH_STATE = (
    f"SELECT o.*, m.*, v.* FROM (SELECT {OUTCOME_COLUMNS} FROM command_outcomes WHERE command_id = $1) o"
    f" LEFT JOIN LATERAL (SELECT {MODEL_COLUMNS} FROM models WHERE name = o.model) m ON o.complete"
    f" LEFT JOIN LATERAL (SELECT {VERSION_COLUMNS} FROM model_versions"
    f"  WHERE model = o.model AND version = o.version) v ON o.complete"
)


def version_row(row: asyncpg.Record | dict) -> dict:
    out = dict(row)
    for column in JSON_COLUMNS:
        out[column] = json.loads(out[column])
    out["registered_at"] = out["registered_at"].isoformat()
    out["aliases"] = list(out["aliases"])
    return out


async def get_model(conn: asyncpg.Connection, name: str) -> dict | None:
    row = await conn.fetchrow(f"SELECT {MODEL_COLUMNS} FROM models WHERE name = $1", name)
    return None if row is None else model_row(row)


def model_row(row: asyncpg.Record | dict) -> dict:
    return {
        "name": row["name"], "seq": row["seq"], "description": row["description"],
        "tags": json.loads(row["tags"]), "versions": row["versions"],
        "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat(),
    }


async def model_seq(conn: asyncpg.Connection, name: str) -> int | None:
    """The model's seq: it moves with every event of the model, in the same transaction."""
    return await conn.fetchval("SELECT seq FROM models WHERE name = $1", name)


async def model_seqs(conn: asyncpg.Connection, names: list[str]) -> dict[str, tuple[int, int]]:
    """The seqs of those of `names` that are models, each with the oid of the
    table it is in: a blue/green switch (`projections rebuild --switch`) puts
    new tables in place, with the same seqs and possibly other rows."""
    rows = await conn.fetch("SELECT name, seq, tableoid::bigint FROM models WHERE name = ANY($1::text[])", names)
    return {name: (seq, table) for name, seq, table in rows}


async def model_with_versions(conn: asyncpg.Connection, name: str) -> dict | None:
    """The model's row (its seq, `deleted` and the oid of its table, as
    model_seqs names it) and all its version rows; call inside one snapshot
    (a repeatable-read transaction) so the rows are those of that seq."""
    row = await conn.fetchrow(
        "SELECT name, seq, tableoid::bigint AS table, description, tags, deleted, created_at, updated_at"
        " FROM models WHERE name = $1", name)
    if row is None:
        return None
    versions = await list_versions(conn, name)
    model = {"name": row["name"], "seq": row["seq"], "description": row["description"],
             "tags": json.loads(row["tags"]), "deleted": row["deleted"], "versions": len(versions),
             "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat()}
    return {"model": model, "versions": versions, "seq": row["seq"], "table": row["table"]}


async def list_versions(conn: asyncpg.Connection, name: str) -> list[dict]:
    rows = await conn.fetch(
        f"SELECT {VERSION_COLUMNS} FROM model_versions WHERE model = $1 ORDER BY version", name)
    return [version_row(r) for r in rows]


async def get_version(conn: asyncpg.Connection, name: str, version: int) -> dict | None:
    row = await conn.fetchrow(
        f"SELECT {VERSION_COLUMNS} FROM model_versions WHERE model = $1 AND version = $2",
        name, version)
    return version_row(row) if row else None


async def get_outcome(conn: asyncpg.Connection, command_id: UUID, with_state: bool = False) -> dict | None:
    """A command's outcome; `with_state`: and, once complete, the model and the
    version it touched as they are now (`state`), as GET of each would answer."""
    if with_state:
        found = await conn.fetchrow(OUTCOME_WITH_STATE, command_id)
        if found is None:
            return None
        values = list(found.values())
        ends = len(OUTCOME_NAMES), len(OUTCOME_NAMES) + len(MODEL_NAMES)
        outcome = outcome_row(dict(zip(OUTCOME_NAMES, values[:ends[0]], strict=True)))
        if outcome["complete"]:
            model = dict(zip(MODEL_NAMES, values[ends[0]:ends[1]], strict=True))
            version = dict(zip(VERSION_NAMES, values[ends[1]:], strict=True))
            outcome["state"] = {"model": None if model["name"] is None else model_row(model)}
            if outcome["version"] is not None:
                outcome["state"]["version"] = None if version["model"] is None else version_row(version)
        return outcome
    row = await conn.fetchrow(f"SELECT {OUTCOME_COLUMNS} FROM command_outcomes WHERE command_id = $1", command_id)
    return None if row is None else outcome_row(dict(row))


def outcome_row(out: dict) -> dict:
    out["command_id"] = str(out["command_id"])
    out["events"] = list(out["events"])
    out["rule_results"] = json.loads(out["rule_results"])
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


def like_escaped(text: str) -> str:
    """`text` matched literally in a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def glob_to_like(pattern: str) -> str:
    """A name pattern as users type it (`fraud-*`, `team-a.?`) as a LIKE pattern."""
    return like_escaped(pattern).replace("*", "%").replace("?", "_")


def covered_by(grants: tuple[str, ...], column: str, arg) -> str:
    """A WHERE clause: `column` is a name `grants` cover (names, or prefixes ending in '*')."""
    names = [g for g in grants if not g.endswith("*")]
    prefixes = [like_escaped(g[:-1]) + "%" for g in grants if g.endswith("*")]
    return f"({column} = ANY({arg(names)}::text[]) OR {column} LIKE ANY({arg(prefixes)}::text[]))"


async def list_models(conn: asyncpg.Connection, *, name: str | None, stage: str | None,
                      tag: tuple[str, str] | None, after: str | None, limit: int,
                      include_deleted: bool = False, grants: tuple[str, ...] = ()) -> list[dict]:
    """Models in name order, filtered, each with its aliases (alias: version);
    keyset-paginated by name (`after`).
    `grants` (names, or prefixes ending in '*'): only the models they cover; none, all."""
    where, args = [], []

    def arg(value) -> str:
        args.append(value)
        return f"${len(args)}"

    if not include_deleted:
        where.append("NOT m.deleted")
    if name:
        where.append(f"m.name LIKE {arg(glob_to_like(name))}")
    if tag:
        where.append(f"m.tags ->> {arg(tag[0])} = {arg(tag[1])}")
    if stage:
        where.append(f"EXISTS (SELECT 1 FROM model_versions v WHERE v.model = m.name"
                     f" AND v.stage = {arg(stage)} AND NOT v.deleted)")
    if grants:
        where.append(covered_by(grants, "m.name", arg))
    if after:
        where.append(f"m.name > {arg(after)}")
    rows = await conn.fetch(
        "SELECT m.name, m.seq, m.description, m.tags, m.deleted, m.created_at, m.updated_at,"
        " (SELECT count(*) FROM model_versions v WHERE v.model = m.name) AS versions,"
        " (SELECT coalesce(jsonb_object_agg(v.stage, v.versions), '{}') FROM"
        "   (SELECT stage, array_agg(version ORDER BY version) AS versions FROM model_versions"
        "    WHERE model = m.name AND NOT deleted AND stage <> 'None' GROUP BY stage) v) AS stages,"
        " (SELECT coalesce(jsonb_object_agg(a.alias, a.version), '{}') FROM aliases a WHERE a.model = m.name) AS aliases"
        f" FROM models m {'WHERE ' + ' AND '.join(where) if where else ''}"
        f" ORDER BY m.name LIMIT {arg(limit)}", *args)
    return [{"name": r["name"], "seq": r["seq"], "description": r["description"],
             "tags": json.loads(r["tags"]), "deleted": r["deleted"], "versions": r["versions"],
             "stages": json.loads(r["stages"]), "aliases": json.loads(r["aliases"]), "created_at": r["created_at"].isoformat(),
             "updated_at": r["updated_at"].isoformat()} for r in rows]


def pending_row(row: asyncpg.Record) -> dict:
    return {**dict(row), "request_id": str(row["request_id"]), "requested_at": row["requested_at"].isoformat(),
            "approvals": json.loads(row["approvals"])}


async def pending_transitions(conn: asyncpg.Connection, name: str) -> list[dict]:
    rows = await conn.fetch(
        "SELECT request_id, version, to_stage, archive_existing, requested_by, requested_at,"
        " approvals_required, approvals FROM pending_transitions WHERE model = $1"
        " ORDER BY requested_at", name)
    return [pending_row(r) for r in rows]


async def pending_across_models(conn: asyncpg.Connection, *, grants: tuple[str, ...], after: tuple[str, str] | None,
                                limit: int) -> list[dict]:
    """Requests still waiting for approvals, of every model `grants` cover
    (none: all) that is not deleted, by model and request time, in one query;
    keyset-paginated by (model, request id) (`after`)."""
    where, args = ["NOT m.deleted"], []

    def arg(value) -> str:
        args.append(value)
        return f"${len(args)}"

    if grants:
        where.append(covered_by(grants, "p.model", arg))
    if after:
        where.append(f"(p.model, p.request_id) > ({arg(after[0])}, {arg(after[1])}::uuid)")
    rows = await conn.fetch(
        "SELECT p.model, p.request_id, p.version, p.to_stage, p.archive_existing, p.requested_by, p.requested_at,"
        " p.approvals_required, p.approvals FROM pending_transitions p JOIN models m ON m.name = p.model"
        f" WHERE {' AND '.join(where)} ORDER BY p.model, p.request_id LIMIT {arg(limit)}", *args)
    return [pending_row(r) for r in rows]


async def stage_history(conn: asyncpg.Connection, name: str) -> list[dict]:
    rows = await conn.fetch(
        "SELECT seq, version, from_stage, to_stage, why, actor, changed_at FROM stage_history"
        " WHERE model = $1 ORDER BY seq", name)
    return [{**dict(r), "changed_at": r["changed_at"].isoformat()} for r in rows]


async def artifact_references(conn: asyncpg.Connection, sha256: str) -> list[dict]:
    """Every version ever registered with this artifact, deleted ones too:
    the log refers to them forever, so their bytes stay."""
    rows = await conn.fetch("SELECT model, version FROM model_versions WHERE artifact_sha256 = $1"
                            " ORDER BY model, version", sha256)
    return [dict(r) for r in rows]
