"""The local stack's secrets: a password or key per principal, made on first use.

Each engine gives every service an identity of its own (a Kafka principal, a
PostgreSQL role, an S3 identity) with a random secret kept in a file under
<home>/secrets/<engine>/, readable by this user only. Nothing is baked in:
a fresh home gets fresh secrets, and a deployment passes its own through
files (docker-compose.yml's secrets, Kubernetes Secrets).
"""

import os
import secrets
from pathlib import Path


class LocalSecrets:
    def __init__(self, home: Path):
        self.root = home.expanduser().resolve() / "secrets"

    def directory(self, engine: str) -> Path:
        path = self.root / engine
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def password_file(self, engine: str, principal: str) -> Path:
        """The file holding `principal`'s password on `engine`, made unless it exists."""
        path = self.directory(engine) / f"{principal}.password"
        if not path.exists():
            write_private(path, secrets.token_urlsafe(24).encode())
        return path

    def password(self, engine: str, principal: str) -> str:
        return self.password_file(engine, principal).read_text().strip()


def write_private(path: Path, data: bytes) -> None:
    """Whole or absent, readable by this user only, even when two processes race."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    if path.exists():  # another process won the race: keep its secret, everyone already read it
        partial.unlink()
        return
    partial.replace(path)
