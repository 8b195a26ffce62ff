"""PostgreSQL from the Debian server binaries, on a port and socket dir of our own.

initdb and postgres refuse to run as root, so when we are root both run as
the `postgres` OS user, which must own the data directory (and the TLS key)
and be able to traverse every directory above it.

Least privilege: TLS and SCRAM only (pg_hba refuses plaintext TCP; no trust
anywhere), and a role per service, each password made by LocalSecrets:
modelog_admin (the superuser: provisioning and tests only), modelog_owner
(owns the database, applies migrations), modelog_projector (owns the read
models), modelog_auditor (records and reads the audit tables). The
registrar and the promoter have no role.
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

from modelog_platform.adapters.postgres import AUDITOR_ROLE, OWNER_ROLE, PROJECTOR_ROLE, SERVICE_ROLES, connect
from modelog_platform.engines import procs
from modelog_platform.engines.base import Engine, run_sync
from modelog_platform.engines.layout import Layout, port_of
from modelog_platform.engines.secrets import LocalSecrets, write_private
from modelog_platform.engines.tls import ensure_server_certificate
from modelog_platform.settings import LOCAL_POSTGRES_ADMIN, PostgresLogin

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


def _private_copy(source: Path, target: Path, user: str | None) -> None:
    """`source` as `target`, 0600 and owned by the server's user: PostgreSQL
    refuses a key file anyone else may read."""
    target.unlink(missing_ok=True)
    write_private(target, source.read_bytes())
    _chown(target, user)


# TLS and SCRAM only: no trust anywhere, no plaintext TCP.
PG_HBA = """\
local     all  all              scram-sha-256
hostssl   all  all  127.0.0.1/32  scram-sha-256
hostssl   all  all  ::1/128       scram-sha-256
hostnossl all  all  all           reject
"""
# Left in a data directory made with the roles above; one without it predates them.
# Settings for a stack whose writes are many small transactions (the
# projector's and the auditor's batches, the registrar's reads), each with its
# reason. Durability is not traded: every commit waits for its WAL to be on
# disk, so a committed outcome or audit row survives a crash.
TUNING = (
    "-c", "synchronous_commit=on",
    # The read models and the trail are read by key, over and over: twice the
    # default cache keeps their hot pages in PostgreSQL's own buffers.
    "-c", "shared_buffers=256MB",
    # A burst writes WAL fast; at the default 1 GB a checkpoint comes every
    # few minutes of it, and each one makes the next write of every page
    # log the whole page again.
    "-c", "max_wal_size=4GB", "-c", "checkpoint_timeout=15min",
    # Every query here is a short lookup by key; compiling one (only the
    # planner's guess of a large scan, such as an audit export, triggers it)
    # costs more CPU than it saves on two shared cores.
    "-c", "jit=off",
)
ROLES_MARKER = "modelog-roles"
ROLES = (OWNER_ROLE, PROJECTOR_ROLE, AUDITOR_ROLE)


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
        base, pgdata, sock, tls = lay.data(self.name), self.pgdata(lay), self.sockdir(lay), lay.data(self.name) / "tls"
        for d in (base, sock, tls):
            d.mkdir(parents=True, exist_ok=True)
            _chown(d, user)
        lay.logs.mkdir(parents=True, exist_ok=True)
        if user:
            _make_traversable(base)
        if (pgdata / "PG_VERSION").exists() and not (pgdata / ROLES_MARKER).exists():
            raise RuntimeError(f"postgres: {pgdata} was made before modelog had a role per service; "
                               "stop the stack and remove that directory to start afresh")
        if not (pgdata / "PG_VERSION").exists():
            self._initdb(lay, base, pgdata, user)
        secrets = LocalSecrets(lay.home)
        certificate = ensure_server_certificate(secrets, "postgres")
        _private_copy(certificate.certificate, tls / "server.pem", user)
        _private_copy(certificate.key, tls / "server.key", user)
        (pgdata / "pg_hba.conf").write_text(PG_HBA)
        _chown(pgdata / "pg_hba.conf", user)
        return procs.start_detached(
            [str(PG_BIN / "postgres"), "-D", str(pgdata), "-p", str(self.port(lay)),
             "-k", str(sock), "-c", "listen_addresses=127.0.0.1",
             "-c", "ssl=on", "-c", f"ssl_cert_file={tls / 'server.pem'}", "-c", f"ssl_key_file={tls / 'server.key'}",
             "-c", "password_encryption=scram-sha-256",
             "-c", "logging_collector=off", "-c", "max_connections=200", *TUNING],
            lay.log_file(self.name), lay.pid_file(self.name), cwd=base, user=user,
        )

    def _initdb(self, lay: Layout, base: Path, pgdata: Path, user: str | None) -> None:
        lay.report("postgres: initdb (first time)")
        shutil.rmtree(pgdata, ignore_errors=True)  # a half-initialised leftover
        pgdata.mkdir(mode=0o700)
        _chown(pgdata, user)
        # The superuser is the admin, by SCRAM from its first moment: its
        # password reaches initdb in a file the server's user can read, gone after.
        pwfile = base / "admin.password"
        _private_copy(LocalSecrets(lay.home).password_file(self.name, LOCAL_POSTGRES_ADMIN), pwfile, user)
        try:
            subprocess.run(
                [str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", LOCAL_POSTGRES_ADMIN, f"--pwfile={pwfile}",
                 "-E", "UTF8", "--locale=C", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256"],
                check=True, stdout=subprocess.DEVNULL, cwd=base, user=user, group=user,
                extra_groups=[] if user else None,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        (pgdata / ROLES_MARKER).write_text("")

    def login(self, lay: Layout, role: str, database: str | None = None) -> PostgresLogin:
        """`role`'s login on this stack (its password from LocalSecrets), to `database` or the DSN's."""
        dsn = urlsplit(lay.endpoints.postgres_dsn)
        netloc = f"{role}@{dsn.hostname}:{dsn.port}"
        path = f"/{database}" if database else dsn.path
        secrets = LocalSecrets(lay.home)
        return PostgresLogin(dsn._replace(netloc=netloc, path=path, query="").geturl(),
                             secrets.password(self.name, role), secrets.root / "tls" / "ca.pem")

    def service_env(self, lay: Layout, service: str) -> dict[str, str]:
        role = SERVICE_ROLES.get(service)
        return self.role_env(lay, role) if role else {}

    def role_env(self, lay: Layout, role: str) -> dict[str, str]:
        """The MODELOG_POSTGRES_* of a process that connects as `role`: the
        password in its file, never in the DSN (which logs may show)."""
        secrets = LocalSecrets(lay.home)
        return {"MODELOG_POSTGRES_DSN": self.login(lay, role).dsn,
                "MODELOG_POSTGRES_PASSWORD_FILE": str(secrets.password_file(self.name, role)),
                "MODELOG_POSTGRES_PASSWORD": "",  # blanks a caller's inline password, which would win
                "MODELOG_POSTGRES_CA_FILE": str(secrets.root / "tls" / "ca.pem")}

    def ready(self, lay: Layout) -> bool:
        async def probe() -> None:
            conn = await connect(self.login(lay, LOCAL_POSTGRES_ADMIN, "postgres"), timeout=5)
            await conn.close()

        run_sync(probe)
        return True

    def provision(self, lay: Layout) -> None:
        """The roles (passwords reset to their files) and the database, idempotently."""
        db = unquote(urlsplit(lay.endpoints.postgres_dsn).path.lstrip("/") or "modelog")
        secrets = LocalSecrets(lay.home)

        async def go() -> None:
            conn = await connect(self.login(lay, LOCAL_POSTGRES_ADMIN, "postgres"), timeout=5)
            try:
                for role in ROLES:
                    verb = "ALTER" if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role) else "CREATE"
                    await conn.execute(f"{verb} ROLE {_ident(role)} LOGIN PASSWORD "
                                       f"{_literal(secrets.password(self.name, role))}")
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db):
                    await conn.execute(f"CREATE DATABASE {_ident(db)} OWNER {_ident(OWNER_ROLE)}")
                # The owner's migrations create the read models as the projector, who owns them.
                await conn.execute(f"GRANT {_ident(PROJECTOR_ROLE)} TO {_ident(OWNER_ROLE)}")
            finally:
                await conn.close()
            conn = await connect(self.login(lay, LOCAL_POSTGRES_ADMIN, db), timeout=5)
            try:
                await conn.execute(grants(db))
            finally:
                await conn.close()
            # The real readiness check: the owner, who migrates next, connects.
            owner = await connect(self.login(lay, OWNER_ROLE), timeout=5)
            await owner.close()

        run_sync(go)


def grants(db: str) -> str:
    """What each role may do in the database beyond what it owns; table
    privileges come with the migrations that make the tables."""
    return f"""
        REVOKE ALL ON DATABASE {_ident(db)} FROM PUBLIC;
        GRANT CONNECT ON DATABASE {_ident(db)} TO {_ident(PROJECTOR_ROLE)}, {_ident(AUDITOR_ROLE)};
        -- A rebuild replays into a schema of its own, and a switch retires the live tables into another.
        GRANT CREATE ON DATABASE {_ident(db)} TO {_ident(PROJECTOR_ROLE)};
        -- A switch moves the rebuilt tables into public.
        GRANT CREATE ON SCHEMA public TO {_ident(PROJECTOR_ROLE)};
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    """
