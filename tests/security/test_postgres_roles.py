"""Each service's PostgreSQL role against the real server, as the local
supervisor hands it out: allowed what its service does, refused the rest;
and the server itself: SCRAM over TLS or nothing."""

import asyncio
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from modelog_platform import engines as local_engines
from modelog_platform.adapters.postgres import connect
from modelog_platform.settings import EngineEndpoints, LocalStack, PostgresLogin

pytestmark = pytest.mark.engines

ROOT = Path(__file__).parents[2]
AUDIT_TABLES = ("audit_events", "audit_alerts", "audit_denials")


def login_of(engines: EngineEndpoints, service: str) -> PostgresLogin:
    """What a service started by the local supervisor reads from its environment."""
    env = local_engines.service_env(engines, LocalStack(), service)
    fields = {name.removeprefix("MODELOG_").lower(): value for name, value in env.items()
              if name.startswith("MODELOG_POSTGRES_") and value}
    return engines.model_copy(update={k: Path(v) if k.endswith("_file") else v for k, v in fields.items()}).postgres()


async def refused(conn: asyncpg.Connection, statement: str, *args) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await conn.execute(statement, *args)


async def test_each_service_connects_as_its_own_role(stack, engines):
    for service, role in (("projector", "modelog_projector"), ("auditor", "modelog_auditor")):
        login = login_of(engines, service)
        assert login.role == role and login.password not in login.dsn
        conn = await connect(login)
        try:
            assert await conn.fetchval("SELECT current_user") == role
            assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        finally:
            await conn.close()


async def test_the_projector_cannot_read_or_write_the_audit_tables(stack, engines):
    conn = await connect(login_of(engines, "projector"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM models") >= 0  # its own read models
        for table in AUDIT_TABLES:
            await refused(conn, f"SELECT * FROM {table} LIMIT 1")
            await refused(conn, f"DELETE FROM {table}")
        await refused(conn, "INSERT INTO audit_denials (denial_id, kind, at, subject, record, kafka_partition,"
                            " kafka_offset) VALUES ($1, 'denial', now(), 'mallory', '{}', 0, -1)", uuid4())
    finally:
        await conn.close()


async def test_the_auditor_records_and_reads_but_never_changes_or_removes(stack, engines):
    conn = await connect(login_of(engines, "auditor"))
    denial = uuid4()
    try:
        async with conn.transaction():
            # Allowed: what it does with every denial (and, for audit_events, every event).
            await conn.execute(
                "INSERT INTO audit_denials (denial_id, kind, at, subject, record, kafka_partition, kafka_offset)"
                " VALUES ($1, 'denial', now(), 'test', '{}', 0, -1)", denial)
            assert await conn.fetchval("SELECT subject FROM audit_denials WHERE denial_id = $1", denial) == "test"
            raise _Rollback()  # the probe leaves no row behind
    except _Rollback:
        pass
    try:
        for table in AUDIT_TABLES:
            await refused(conn, f"UPDATE {table} SET kafka_offset = kafka_offset")
            await refused(conn, f"DELETE FROM {table}")
            await refused(conn, f"TRUNCATE {table}")
        for read_model in ("models", "model_versions", "command_outcomes", "webhooks"):
            await refused(conn, f"SELECT * FROM {read_model} LIMIT 1")
            await refused(conn, f"DELETE FROM {read_model}")
        # Nor can it change the schema: migrations are the owner's.
        await refused(conn, "CREATE TABLE auditor_was_here (x int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="must be owner"):
            await conn.execute("ALTER TABLE audit_denials DROP COLUMN record")
    finally:
        await conn.close()


class _Rollback(Exception):
    pass


async def test_each_projection_moves_only_its_own_checkpoints(stack, engines):
    """The auditor's exactly-once checkpoint: it sees and moves its rows only,
    and only their offset (row-level security plus a column grant)."""
    admin = await connect(engines.postgres())
    try:
        for _ in range(120):  # until both have been assigned partitions and stored checkpoints
            stored = {r["projection"] for r in await admin.fetch("SELECT projection FROM projection_checkpoints")}
            if {"projector", "auditor"} <= stored:
                break
            await asyncio.sleep(0.25)
        assert {"projector", "auditor"} <= stored
    finally:
        await admin.close()
    conn = await connect(login_of(engines, "auditor"))
    try:
        assert {r["projection"] for r in await conn.fetch("SELECT projection FROM projection_checkpoints")} \
            == {"auditor"}
        assert await conn.execute("UPDATE projection_checkpoints SET next_offset = next_offset"
                                  " WHERE projection = 'projector'") == "UPDATE 0"
        await refused(conn, "UPDATE projection_checkpoints SET projection = 'projector'")
        await refused(conn, "DELETE FROM projection_checkpoints")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.execute("INSERT INTO projection_checkpoints VALUES ('projector', 'modelog.events', 999, 0)")
    finally:
        await conn.close()


def test_the_registrar_has_no_database_role(engines):
    """It reads through the projector's HTTP API: no role, no DSN, no driver."""
    for service in ("registrar", "promoter"):
        assert not [name for name in local_engines.service_env(engines, LocalStack(), service)
                    if name.startswith("MODELOG_POSTGRES")]
    sources = (ROOT / "services/registrar/registrar").rglob("*.py")
    assert not [path.name for path in sources if "asyncpg" in path.read_text()]


async def test_no_role_is_named_for_the_registrar(engines):
    conn = await connect(engines.postgres())
    try:
        roles = {r["rolname"] for r in await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE 'modelog%'")}
    finally:
        await conn.close()
    assert roles == {"modelog_admin", "modelog_owner", "modelog_projector", "modelog_auditor"}


async def test_a_wrong_password_is_refused(engines):
    login = login_of(engines, "projector")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await connect(PostgresLogin(login.dsn, login.password + "x", login.ca_file))


async def test_a_connection_without_tls_is_refused(engines):
    login = login_of(engines, "projector")
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncpg.connect(login.dsn, password=login.password, ssl=False)


async def test_a_server_the_ca_did_not_certify_is_refused(engines, tmp_path):
    """verify-full: a CA other than the stack's does not vouch for the server."""
    from modelog_platform.engines.secrets import LocalSecrets
    from modelog_platform.engines.tls import ensure_ca

    other_ca, _ = ensure_ca(LocalSecrets(tmp_path))
    login = login_of(engines, "projector")
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        await connect(PostgresLogin(login.dsn, login.password, other_ca))


async def test_what_a_rebuild_makes_belongs_to_the_projector_whoever_runs_it(engines):
    """An operator's `modelog projections rebuild --switch` (here the admin, as
    beside a local stack) moves tables the projector must go on writing."""
    from projector.rebuild import drop_schema, fresh_schema, projector_login

    schema = f"rebuild_owner_{uuid4().hex[:8]}"
    await fresh_schema(projector_login(engines), schema)
    admin = await connect(engines.postgres())
    try:
        owners = {r["tableowner"] for r in await admin.fetch(
            "SELECT tableowner FROM pg_tables WHERE schemaname = $1", schema)}
        assert owners == {"modelog_projector"}
        assert await admin.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1",
                                    schema) == "modelog_projector"
    finally:
        await admin.close()
        await drop_schema(engines.postgres(), schema)
