"""Schema migrations: plain versioned SQL, applied at service start, idempotent."""

from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from modelog_platform.adapters.postgres import migrate

ROOT = Path(__file__).parents[2]
MIGRATIONS = {
    "modelog": ROOT / "shared/modelog/adapters/migrations",
    "projector": ROOT / "services/projector/projector/migrations",
    "auditor": ROOT / "services/auditor/auditor/migrations",
}


@pytest.fixture
async def empty_schema(engines):
    """A DSN whose search_path is a brand-new, empty schema."""
    schema = f"migrations_{uuid4().hex[:10]}"
    conn = await asyncpg.connect(engines.postgres_dsn)
    await conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{engines.postgres_dsn}?search_path={schema}", schema
    await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    await conn.close()


async def columns(dsn: str, schema: str) -> list[tuple]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = $1 ORDER BY 1, 2", schema)
        return [tuple(r) for r in rows]
    finally:
        await conn.close()


async def test_migrations_apply_from_empty_then_again_without_change(empty_schema):
    dsn, schema = empty_schema
    for service, folder in MIGRATIONS.items():
        applied = await migrate(dsn, service, folder)
        assert applied == sorted(p.stem for p in folder.glob("*.sql"))
    after_first = await columns(dsn, schema)
    assert {"models", "model_versions", "command_outcomes", "audit_events",
            "projection_checkpoints"} <= {table for table, _, _ in after_first}

    for service, folder in MIGRATIONS.items():
        assert await migrate(dsn, service, folder) == []
    assert await columns(dsn, schema) == after_first


async def test_the_audit_store_refuses_update_and_delete(empty_schema):
    dsn, _ = empty_schema
    await migrate(dsn, "auditor", MIGRATIONS["auditor"])
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO audit_events VALUES ('m', 1, $1, 'ModelCreated', now(), 'alice', $2,"
            " 'h', 'p', 0, 0, '{}')", uuid4(), uuid4())
        for statement in ("UPDATE audit_events SET actor_subject = 'mallory'",
                          "DELETE FROM audit_events", "TRUNCATE audit_events"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT actor_subject FROM audit_events") == "alice"
    finally:
        await conn.close()
