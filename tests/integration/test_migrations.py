"""Schema migrations: plain versioned SQL, applied by the owner role before a
service starts (`python -m <service> migrate`), idempotent; a service refuses
a schema behind its code."""

from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from modelog_platform.adapters.postgres import (
    OWNER_ROLE,
    PLATFORM_MIGRATIONS,
    PROJECTOR_ROLE,
    NotMigrated,
    connect,
    migrate_service,
    require_migrated,
)
from modelog_platform.engines.layout import Layout
from modelog_platform.engines.postgres import Postgres
from modelog_platform.settings import LocalStack, PostgresLogin

ROOT = Path(__file__).parents[2]
MIGRATIONS = {
    "projector": ROOT / "services/projector/projector/migrations",
    "auditor": ROOT / "services/auditor/auditor/migrations",
}


@pytest.fixture
async def empty_schema(engines):
    """The owner's login with its search_path on a brand-new, empty schema,
    which the roles may use as they use public."""
    schema = f"migrations_{uuid4().hex[:10]}"
    owner = Postgres().login(Layout(engines, LocalStack(), lambda _: None), OWNER_ROLE)
    admin = await connect(engines.postgres())
    await admin.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {OWNER_ROLE};"
                        f" GRANT USAGE, CREATE ON SCHEMA {schema} TO {PROJECTOR_ROLE};"
                        f" GRANT USAGE ON SCHEMA {schema} TO modelog_auditor")
    yield owner.in_schema(schema), schema
    await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    await admin.close()


async def fetch(login: PostgresLogin, query: str, *args) -> list[tuple]:
    conn = await connect(login)
    try:
        return [tuple(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


async def test_migrations_apply_from_empty_then_again_without_change(empty_schema):
    login, schema = empty_schema
    for service, folder in MIGRATIONS.items():
        applied = await migrate_service(login, service, folder)
        platform = sorted(p.stem for p in PLATFORM_MIGRATIONS.glob("*.sql")) if service == "projector" else []
        assert applied == platform + sorted(p.stem for p in folder.glob("*.sql"))
    columns = ("SELECT table_name, column_name, data_type FROM information_schema.columns"
               " WHERE table_schema = $1 ORDER BY 1, 2")
    after_first = await fetch(login, columns, schema)
    assert {"models", "model_versions", "command_outcomes", "audit_events",
            "projection_checkpoints"} <= {table for table, _, _ in after_first}

    for service, folder in MIGRATIONS.items():
        assert await migrate_service(login, service, folder) == []
    assert await fetch(login, columns, schema) == after_first


async def test_the_projector_owns_the_read_models_and_the_owner_the_rest(empty_schema):
    """The projector rebuilds and switches its tables; nothing else is its own."""
    login, schema = empty_schema
    for service, folder in MIGRATIONS.items():
        await migrate_service(login, service, folder)
    owners = dict(await fetch(login, "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = $1", schema))
    owners_table = {"audit_events", "audit_alerts", "audit_denials", "audit_checkpoints", "projection_checkpoints",
                    "modelog_migrations"}
    assert {owners[table] for table in owners_table} == {OWNER_ROLE}
    assert {"models", "model_versions", "webhooks"} <= set(owners) - owners_table
    assert {owner for table, owner in owners.items() if table not in owners_table} == {PROJECTOR_ROLE}


async def test_a_service_refuses_a_schema_not_migrated(empty_schema):
    login, _ = empty_schema
    with pytest.raises(NotMigrated, match=r"python -m auditor migrate"):
        await require_migrated(login, "auditor", MIGRATIONS["auditor"])
    await migrate_service(login, "auditor", MIGRATIONS["auditor"])
    await require_migrated(login, "auditor", MIGRATIONS["auditor"])
    with pytest.raises(NotMigrated, match=r"projector/001_read_models"):
        await require_migrated(login, "projector", MIGRATIONS["projector"])


async def test_the_audit_store_refuses_update_and_delete_even_to_its_owner(empty_schema):
    login, _ = empty_schema
    await migrate_service(login, "auditor", MIGRATIONS["auditor"])
    conn = await connect(login)
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
