"""PostgreSQL: connections, pools and plain, versioned SQL migrations.

Every connection is TLS, the server verified (verify-full: its certificate
chains to the login's CA and names the host), and authenticates by SCRAM as
the login's role, its password given apart from the DSN.

Each service keeps its migrations as numbered .sql files in its own package.
They are applied by a one-shot step before the service starts (`python -m
<service> migrate`, as the owner role), never by the serving role; a service
whose schema is behind refuses to start. An advisory lock makes concurrent
runs safe and the ledger table makes a second run change nothing.
"""

import asyncio
import ssl
import sys
from pathlib import Path
from typing import Any

import asyncpg

from modelog_platform.settings import EngineEndpoints, PostgresLogin

# The roles of a modelog database. The owner applies migrations and owns what
# they make, except the read models, which the projector owns (it rebuilds
# and switches them). The registrar and the promoter have none.
OWNER_ROLE = "modelog_owner"
PROJECTOR_ROLE = "modelog_projector"
AUDITOR_ROLE = "modelog_auditor"
SERVICE_ROLES = {"projector": PROJECTOR_ROLE, "auditor": AUDITOR_ROLE}

# The platform's own tables (projection checkpoints), migrated with each service's.
PLATFORM_MIGRATIONS = Path(__file__).parent / "migrations"
PLATFORM = "modelog"

LEDGER = """
CREATE TABLE IF NOT EXISTS modelog_migrations (
    service    text        NOT NULL,
    version    text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, version)
);
-- Versions only: every serving role checks its schema is current before it starts.
GRANT SELECT ON modelog_migrations TO PUBLIC"""
MIGRATION_LOCK = 7_356_221  # any constant; shared by every service's migrator


# What a database that is down, restarting or was lost mid-query raises: an
# outage to wait out (and to answer 503 for), not a bug to crash or 500 on.
# asyncpg's InterfaceError is also "connection is closed" (and ConnectionDoesNotExistError).
# Its InternalClientError is what a connection whose server died mid-answer
# raises on its next use ("cannot switch to state …; another operation is in
# progress"): the protocol still waits for the end of an answer that will
# never come. Uncaught, it ended the projector's projection (and so the
# process) when PostgreSQL was killed under load.
UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError, asyncio.TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError, asyncpg.OperatorInterventionError, asyncpg.InternalClientError,
)


def tls(login: PostgresLogin) -> ssl.SSLContext:
    """verify-full: the server's certificate chains to the login's CA and names the host."""
    return ssl.create_default_context(cafile=str(login.ca_file))


async def connect(login: PostgresLogin, **options: Any) -> asyncpg.Connection:
    return await asyncpg.connect(login.dsn, password=login.password, ssl=tls(login), **options)


async def session_left_as_it_was(conn: asyncpg.Connection) -> None:
    """A pool's reset between uses: nothing beyond asyncpg's own (it rolls back
    an open transaction and drops listeners). Its default also sends a reset
    query (unlock advisory locks, close cursors, UNLISTEN, RESET ALL): a round
    trip on every release, paid before a read's answer or a projection's next
    batch. Pool connections here change no session state: locks are
    transaction-scoped, settings are SET LOCAL, cursors live in transactions,
    and listening uses a connection of its own."""


async def create_pool(login: PostgresLogin, size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(login.dsn, password=login.password, ssl=tls(login), min_size=1, max_size=size,
                                     reset=session_left_as_it_was)


async def migrate(login: PostgresLogin, service: str, migrations: Path, owned_by: str | None = None) -> list[str]:
    """Apply the service's pending migrations in file order; return those applied.
    `owned_by`: the role that owns what they create (the login's own if None),
    which the login must be a member of."""
    conn = await connect(login)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        await conn.execute(LEDGER)
        done = await _applied(conn, service)
        applied = []
        for path in sorted(migrations.glob("*.sql")):
            if path.stem in done:
                continue
            async with conn.transaction():
                if owned_by:
                    await conn.execute(f'SET LOCAL ROLE "{owned_by}"')
                await conn.execute(path.read_text())
                await conn.execute("RESET ROLE")
                await conn.execute(
                    "INSERT INTO modelog_migrations (service, version) VALUES ($1, $2)",
                    service, path.stem)
            applied.append(path.stem)
        return applied
    finally:
        await conn.close()


async def _applied(conn: asyncpg.Connection, service: str) -> set[str]:
    return {r["version"] for r in await conn.fetch("SELECT version FROM modelog_migrations WHERE service = $1",
                                                   service)}


async def migrate_service(login: PostgresLogin, service: str, migrations: Path) -> list[str]:
    """What `python -m <service> migrate` does, as the owner: the platform's
    tables, then the service's (owned by the projector's role for the projector)."""
    applied = await migrate(login, PLATFORM, PLATFORM_MIGRATIONS)
    owned_by = PROJECTOR_ROLE if service == "projector" else None
    return applied + await migrate(login, service, migrations, owned_by)


class NotMigrated(RuntimeError):
    """The schema lacks migrations the service's code expects."""


async def require_migrated(login: PostgresLogin, service: str, migrations: Path) -> None:
    """Refuse to serve on a schema behind the code (NotMigrated names the command that fixes it)."""
    conn = await connect(login)
    try:
        exists = await conn.fetchval("SELECT to_regclass('modelog_migrations') IS NOT NULL")
        pending = []
        for name, folder in ((PLATFORM, PLATFORM_MIGRATIONS), (service, migrations)):
            done = await _applied(conn, name) if exists else set()
            pending += [f"{name}/{p.stem}" for p in sorted(folder.glob("*.sql")) if p.stem not in done]
    finally:
        await conn.close()
    if pending:
        raise NotMigrated(f"{service}: the database is not migrated ({', '.join(pending)} pending): "
                          f"run `python -m {service} migrate` as the owner role ({OWNER_ROLE}) first")


def migrate_main(service: str, migrations: Path) -> None:
    """The one-shot `python -m <service> migrate`: MODELOG_POSTGRES_* name the owner role."""
    applied = asyncio.run(migrate_service(EngineEndpoints().postgres(), service, migrations))
    print(f"{service}: {'applied ' + ', '.join(applied) if applied else 'schema up to date'}", file=sys.stderr)
