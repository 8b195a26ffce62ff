"""PostgreSQL from the Debian server binaries, on a port and socket dir of our own.

initdb and postgres refuse to run as root, so when we are root both run as
the `postgres` OS user, which must own the data directory and be able to
traverse every directory above it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg

from modelog_platform.engines import procs
from modelog_platform.engines.base import Engine, run_sync
from modelog_platform.engines.layout import Layout, port_of

PG_VERSION = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _os_user() -> str | None:
    """The user to run the server as: `postgres` when we are root, else ourselves."""
    return "postgres" if os.geteuid() == 0 else None


def _make_traversable(path: Path) -> None:
    # Add o+x on each ancestor that lacks it (pytest's tmp dirs are 0700);
    # nothing else about their permissions changes.
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(p, mode | stat.S_IXOTH)


def _chown(path: Path, user: str | None) -> None:
    if user:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


class Postgres(Engine):
    name = "postgres"
    # Fast shutdown: SIGTERM is "smart" and would wait for every client to leave.
    stop_signal = signal.SIGINT
    ready_timeout = 60.0

    def port(self, lay: Layout) -> int:
        return port_of(lay.endpoints.postgres_dsn)

    def pgdata(self, lay: Layout) -> Path:
        return lay.data(self.name) / "data"

    def sockdir(self, lay: Layout) -> Path:
        return lay.data(self.name) / "sock"

    def install(self, lay: Layout) -> None:
        if (PG_BIN / "postgres").exists():
            return
        lay.report(f"postgres: installing postgresql-{PG_VERSION} with apt-get (first time, ~1 min)…")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", f"postgresql-{PG_VERSION}"], check=True, env=env)

    def launch(self, lay: Layout) -> int:
        user = _os_user()
        base, pgdata, sock = lay.data(self.name), self.pgdata(lay), self.sockdir(lay)
        for d in (base, sock):
            d.mkdir(parents=True, exist_ok=True)
            _chown(d, user)
        lay.logs.mkdir(parents=True, exist_ok=True)
        if user:
            _make_traversable(base)
        if not (pgdata / "PG_VERSION").exists():
            lay.report("postgres: initdb (first time)")
            shutil.rmtree(pgdata, ignore_errors=True)  # a half-initialised leftover
            pgdata.mkdir(mode=0o700)
            _chown(pgdata, user)
            subprocess.run(
                [str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "postgres",
                 "-E", "UTF8", "--locale=C",
                 # The superuser only over our private socket; the app role by password.
                 "--auth-local=trust", "--auth-host=scram-sha-256"],
                check=True, stdout=subprocess.DEVNULL, cwd=base, user=user, group=user,
                extra_groups=[] if user else None,
            )
        return procs.start_detached(
            [str(PG_BIN / "postgres"), "-D", str(pgdata), "-p", str(self.port(lay)),
             "-k", str(sock), "-c", "listen_addresses=127.0.0.1",
             "-c", "logging_collector=off", "-c", "max_connections=200"],
            lay.log_file(self.name), lay.pid_file(self.name), cwd=base, user=user,
        )

    async def _superuser(self, lay: Layout) -> asyncpg.Connection:
        return await asyncpg.connect(
            host=str(self.sockdir(lay)), port=self.port(lay), user="postgres", database="postgres",
            timeout=5,
        )

    def ready(self, lay: Layout) -> bool:
        async def probe() -> None:
            conn = await self._superuser(lay)
            await conn.close()

        run_sync(probe)
        return True

    def provision(self, lay: Layout) -> None:
        """Role and database of the DSN, created (or password reset) idempotently."""
        dsn = urlsplit(lay.endpoints.postgres_dsn)
        role = unquote(dsn.username or "modelog")
        password = unquote(dsn.password or "")
        db = unquote(dsn.path.lstrip("/") or role)

        async def go() -> None:
            conn = await self._superuser(lay)
            try:
                if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                    await conn.execute(f"ALTER ROLE {_ident(role)} LOGIN PASSWORD {_literal(password)}")
                else:
                    await conn.execute(f"CREATE ROLE {_ident(role)} LOGIN PASSWORD {_literal(password)}")
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db):
                    await conn.execute(f"CREATE DATABASE {_ident(db)} OWNER {_ident(role)}")
            finally:
                await conn.close()
            # The real readiness check: the application's own DSN connects.
            app = await asyncpg.connect(lay.endpoints.postgres_dsn, timeout=5)
            await app.close()

        run_sync(go)
