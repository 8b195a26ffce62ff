"""PostgreSQL: connection pools and plain, versioned SQL migrations.

Each service keeps its migrations as numbered .sql files in its own package
and applies them at start; an advisory lock makes concurrent starts safe and
the ledger table makes a second run change nothing.
"""

from pathlib import Path

import asyncpg

LEDGER = """
CREATE TABLE IF NOT EXISTS modelog_migrations (
    service    text        NOT NULL,
    version    text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, version)
)"""
MIGRATION_LOCK = 7_356_221  # any constant; shared by every service's migrator


async def migrate(dsn: str, service: str, migrations: Path) -> list[str]:
    """Apply the service's pending migrations in file order; return those applied."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        await conn.execute(LEDGER)
        done = {r["version"] for r in await conn.fetch(
            "SELECT version FROM modelog_migrations WHERE service = $1", service)}
        applied = []
        for path in sorted(migrations.glob("*.sql")):
            if path.stem in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute(
                    "INSERT INTO modelog_migrations (service, version) VALUES ($1, $2)",
                    service, path.stem)
            applied.append(path.stem)
        return applied
    finally:
        await conn.close()


async def create_pool(dsn: str, size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=1, max_size=size)
