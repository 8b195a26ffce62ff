"""The local OpenID Connect provider people sign in to the console with.

Ory Hydra speaks the protocol (discovery, the authorization code flow with
PKCE, tokens, JWKS); modelog-oidc (deploy/oidc/main.go) runs it and serves
the login and consent pages Hydra leaves to its host, where the stack's
people sign in with a password from the stack's secrets and get their groups
as claims of the ID token. Both are built once with Go from deploy/oidc (a
module pinning Hydra) and cached per pinned version and source.

One TCP port: the issuer's. Hydra's public API is reached through it; its
admin API (accepting logins, registering clients) listens on a unix socket
in the data directory only, readable by this user only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import subprocess
import uuid
from pathlib import Path

import httpx

from modelog_platform.engines import procs
from modelog_platform.engines.base import Engine
from modelog_platform.engines.gobuild import go_build
from modelog_platform.engines.layout import Layout, deploy_dir
from modelog_platform.engines.secrets import LocalSecrets, write_private
from modelog_platform.settings import ServicePorts

HYDRA = "github.com/ory/hydra/v2"
CONSOLE_CLIENT = "modelog-console"
CALLBACK_PATH = "/console/callback"
ID_TOKEN_KEYS = "hydra.openid.id-token"  # the key set Hydra signs ID tokens with
# The stack's people and the groups their ID tokens carry: a group
# "modelog-<role>" is that modelog role; other groups are other systems'
# (docs/identity.md, "Signing in to the console with OIDC").
PEOPLE = {
    "alice": {"name": "Alice", "groups": ["modelog-publisher", "data-science"]},
    "bob": {"name": "Bob", "groups": ["modelog-approver"]},
    "carol": {"name": "Carol", "groups": ["modelog-operator"]},
    "dave": {"name": "Dave", "groups": ["modelog-auditor"]},
}


def pinned_version() -> str:
    text = (deploy_dir() / "oidc" / "go.mod").read_text()
    match = re.search(rf"^\s*{re.escape(HYDRA)}\s+(\S+)", text, re.M)
    if not match:
        raise RuntimeError(f"{HYDRA} is not required in deploy/oidc/go.mod")
    return match.group(1)


def _source_digest() -> str:
    """Names the build of modelog-oidc: a changed source is a new binary."""
    digest = hashlib.sha256()
    for name in ("main.go", "go.mod", "go.sum"):
        digest.update((deploy_dir() / "oidc" / name).read_bytes())
    return digest.hexdigest()[:12]


def _works(binary: Path) -> bool:
    try:
        return subprocess.run([str(binary), "-h"], capture_output=True, timeout=30).returncode in (0, 2)
    except (OSError, subprocess.TimeoutExpired):
        return False


class Oidc(Engine):
    name = "oidc"
    ready_timeout = 60.0

    def port(self, lay: Layout) -> int:
        return lay.stack.oidc_port

    def issuer(self, lay: Layout) -> str:
        return f"http://127.0.0.1:{self.port(lay)}"

    def redirect_uri(self) -> str:
        """The console's callback at the registrar, wherever its settings put it."""
        return ServicePorts().url("registrar").rstrip("/") + CALLBACK_PATH

    def password_file(self, lay: Layout, username: str) -> Path:
        """The file holding a person's password (made on first use)."""
        return LocalSecrets(lay.home).password_file("oidc", username)

    def client_secret_file(self, lay: Layout) -> Path:
        return LocalSecrets(lay.home).password_file("oidc", CONSOLE_CLIENT)

    def admin_socket(self, lay: Layout) -> Path:
        return lay.data(self.name) / "admin.sock"

    def admin(self, lay: Layout) -> httpx.Client:
        """Hydra's admin API: provisioning and tests only."""
        transport = httpx.HTTPTransport(uds=str(self.admin_socket(lay)))
        return httpx.Client(transport=transport, base_url="http://hydra-admin", timeout=10)

    # -- install ---------------------------------------------------------------

    def binaries(self, lay: Layout) -> tuple[Path, Path]:
        """(hydra, modelog-oidc), each cached under what it is built from."""
        root = lay.cache / "oidc"
        return root / f"hydra-{pinned_version()}" / "hydra", root / f"login-{_source_digest()}" / "modelog-oidc"

    def install(self, lay: Layout) -> None:
        hydra, login = self.binaries(lay)
        if hydra.exists() and login.exists():
            return
        lock_path = lay.cache / "oidc" / "build.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        # A concurrent `up` builds into the same cache: wait for it, then find its binaries.
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not hydra.exists():
                # sqlite: Hydra keeps its clients, keys and sessions in one file.
                self._build(lay, hydra, ["-tags", "sqlite,sqlite_omit_load_extension", HYDRA],
                            "hydra (first time, several minutes)")
            if not login.exists():
                self._build(lay, login, ["."], "modelog-oidc")

    def _build(self, lay: Layout, final: Path, args: list[str], what: str) -> None:
        # cgo: Hydra's SQLite driver is C.
        go_build(lay, self.name, final, args, deploy_dir() / "oidc", what, _works, cgo=True)

    # -- run -------------------------------------------------------------------

    def hydra_config(self, lay: Layout) -> dict:
        data, issuer = lay.data(self.name), self.issuer(lay)
        secrets = LocalSecrets(lay.home)
        private = 0o600
        return {
            "dsn": f"sqlite://{data / 'hydra.sqlite'}?_fk=true",
            "serve": {
                "public": {"host": f"unix:{data / 'public.sock'}", "socket": {"mode": private}},
                "admin": {"host": f"unix:{self.admin_socket(lay)}", "socket": {"mode": private}},
                "cookies": {"same_site_mode": "Lax"},
            },
            "urls": {"self": {"issuer": issuer, "public": issuer},
                     "login": f"{issuer}/login", "consent": f"{issuer}/consent"},
            # Encrypts the signing keys and sessions Hydra stores; at least 16 characters.
            "secrets": {"system": [secrets.password("oidc", "hydra-system")]},
            "oidc": {"subject_identifiers": {"supported_types": ["public"]}},
            "ttl": {"id_token": "1h", "access_token": "1h", "auth_code": "10m", "login_consent_request": "30m"},
            "log": {"level": "info", "format": "text"},
        }

    def users(self, lay: Layout) -> dict:
        """modelog-oidc's users file: who may sign in, and the claims of their ID tokens."""
        return {"users": [{"username": username, "password_file": str(self.password_file(lay, username)),
                           "claims": {"name": person["name"], "preferred_username": username,
                                      "email": f"{username}@modelog.test", "groups": person["groups"]}}
                          for username, person in PEOPLE.items()]}

    def launch(self, lay: Layout) -> int:
        data = lay.data(self.name)
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        config, users = data / "hydra.json", data / "users.json"
        for path, content in ((config, self.hydra_config(lay)), (users, self.users(lay))):
            path.unlink(missing_ok=True)  # the config holds Hydra's system secret: private from its first byte
            write_private(path, json.dumps(content, indent=2).encode())
        hydra, login = self.binaries(lay)
        migrated = data / "migrated-to"
        if not migrated.exists() or migrated.read_text() != pinned_version():
            self._migrate(lay, hydra, config)
            migrated.write_text(pinned_version())
        argv = [str(login), f"-listen=127.0.0.1:{self.port(lay)}", f"-hydra={hydra}", f"-config={config}",
                f"-public-socket={data / 'public.sock'}", f"-admin-socket={self.admin_socket(lay)}",
                f"-users={users}"]
        return procs.start_detached(argv, lay.log_file(self.name), lay.pid_file(self.name), cwd=data)

    def _migrate(self, lay: Layout, hydra: Path, config: Path) -> None:
        """Hydra's tables, once per data directory and pinned version: the
        price of a first start (or of a new Hydra) only."""
        result = subprocess.run([str(hydra), "migrate", "sql", "up", "-e", "--yes", "--config", str(config)],
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"oidc: hydra migrate failed\n{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def ready(self, lay: Layout) -> bool:
        # Hydra's own readiness, through the port (so modelog-oidc answers too) and on the admin socket.
        public = httpx.get(f"{self.issuer(lay)}/health/ready", timeout=2)
        with self.admin(lay) as admin:
            return public.status_code == 200 and admin.get("/health/ready").status_code == 200

    def provision(self, lay: Layout) -> None:
        """The key that signs ID tokens, and the console's client as this
        stack's registrar reaches it: made, or brought up to date."""
        with self.admin(lay) as admin:
            # Hydra would make an RSA-4096 key on the first request that needs
            # one, which takes seconds on a busy machine and fails when that
            # request gives up first: an ES256 key is made here, at once.
            if admin.get(f"/admin/keys/{ID_TOKEN_KEYS}").status_code == 404:
                made = admin.post(f"/admin/keys/{ID_TOKEN_KEYS}", json={"alg": "ES256", "use": "sig",
                                                                        "kid": str(uuid.uuid4())})
                if made.status_code != 201:
                    raise RuntimeError(f"oidc: making the ID token key failed: {made.status_code} {made.text}")
            self._register_console(lay, admin)

    def _register_console(self, lay: Layout, admin: httpx.Client) -> None:
        client = {
            "client_id": CONSOLE_CLIENT, "client_name": "modelog console",
            "client_secret": self.client_secret_file(lay).read_text().strip(),
            "grant_types": ["authorization_code"], "response_types": ["code"],
            "scope": "openid profile email", "redirect_uris": [self.redirect_uri()],
            "token_endpoint_auth_method": "client_secret_basic",
        }
        found = admin.get(f"/admin/clients/{CONSOLE_CLIENT}")
        if found.status_code == 404:
            answer = admin.post("/admin/clients", json=client)
        else:
            answer = admin.put(f"/admin/clients/{CONSOLE_CLIENT}", json=client)
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"oidc: registering {CONSOLE_CLIENT} failed: {answer.status_code} {answer.text}")

    def service_env(self, lay: Layout, service: str) -> dict[str, str]:
        if service != "registrar":
            return {}
        return {"MODELOG_OIDC_ISSUER": self.issuer(lay), "MODELOG_OIDC_CLIENT_ID": CONSOLE_CLIENT,
                "MODELOG_OIDC_CLIENT_SECRET_FILE": str(self.client_secret_file(lay)),
                "MODELOG_OIDC_CLIENT_SECRET": "",  # blanks a caller's inline secret, which would win
                "MODELOG_OIDC_REDIRECT_URI": self.redirect_uri()}

    def stop(self, lay: Layout) -> bool:
        stopped = super().stop(lay)
        for sock in ("public.sock", "admin.sock"):
            (lay.data(self.name) / sock).unlink(missing_ok=True)
        return stopped
