"""The development issuer: an Ed25519 key pair made on first use under the
local stack's home, so a local stack and its tests can sign tokens without an
identity provider. Production verifies tokens of its real issuer instead.
"""

import functools
import os
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_contract.domain.commands import CommandBase
from modelog_contract.domain.types import Actor
from modelog_platform.identity.command_binding import command_digest
from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.identity.tokens import Identity, StaticKey, TokenVerifier, claims_for, identity_of, sign
from modelog_platform.settings import StackHome

# A command token is used for one command: short-lived is enough.
COMMAND_TOKEN_TTL_S = 300

C = TypeVar("C", bound=CommandBase)


class DevIssuer:
    def __init__(self, directory: Path, settings: IdentitySettings | None = None):
        self.directory = directory
        self.settings = settings or IdentitySettings()

    @classmethod
    def local(cls, stack: StackHome | None = None, settings: IdentitySettings | None = None) -> "DevIssuer":
        """The issuer under the stack home; with `settings`, a service's own
        (its configured signing key, issuer and audience), else the environment's."""
        directory = cls.directory_in(stack or StackHome())
        return cls(directory, settings) if settings is not None else _local_issuer(directory)

    @staticmethod
    def directory_in(stack: StackHome) -> Path:
        return stack.home.expanduser().resolve() / "identity"

    def can_sign(self) -> bool:
        """A signing key is configured, or the key pair exists: nothing would be made by issuing."""
        return (self.settings.identity_signing_key is not None or self.settings.identity_signing_key_file is not None
                or (self.private_key_file.exists() and self.public_key_file.exists()))

    @property
    def public_key_file(self) -> Path:
        return self.directory / "public.pem"

    @property
    def private_key_file(self) -> Path:
        return self.directory / "private.pem"

    def ensure(self) -> "DevIssuer":
        """Create the key pair unless it exists; the private key readable by us only."""
        ensure_key_pair(self.directory)
        return self

    @functools.cached_property
    def _signing_key(self):
        return self.signing_key()

    def signing_key(self):
        """The configured signing key (env or file) if any, else the local pair's."""
        if self.settings.identity_signing_key is not None:
            pem = self.settings.identity_signing_key.get_secret_value().encode()
        elif self.settings.identity_signing_key_file is not None:
            pem = self.settings.identity_signing_key_file.read_bytes()
        else:
            pem = self.ensure().private_key_file.read_bytes()
        return serialization.load_pem_private_key(pem, password=None)

    def issue(self, subject: str, roles=(), grants=(), ttl_s: float = 3600, now=None,
              command: str | None = None) -> tuple[Identity, str]:
        """A new token, and the identity it proves. The roles as given: the
        registrar vouches for callers whose real issuer may give them roles of
        other systems too (`modelog token issue` refuses unknown ones).
        `command`: the digest of the one command a command token is bound to."""
        claims = claims_for(issuer=self.settings.identity_issuer, audience=self.settings.identity_audience,
                            subject=subject, roles=roles, grants=grants, ttl_s=ttl_s, now=now, command=command)
        return identity_of(claims), sign(claims, self._signing_key)

    def verifier(self) -> TokenVerifier:
        return TokenVerifier(StaticKey.from_file(self.ensure().public_key_file), self.settings.identity_issuer,
                             self.settings.identity_audience, self.settings.identity_leeway_s)

    def service_env(self) -> dict[str, str]:
        """What a locally started service needs to trust this issuer, and to
        sign what it publishes for callers who bring no token yet."""
        return {"MODELOG_IDENTITY_PUBLIC_KEY_FILE": str(self.ensure().public_key_file),
                "MODELOG_IDENTITY_ISSUER": self.settings.identity_issuer,
                "MODELOG_IDENTITY_DEV_SIGNS_COMMANDS": "true"}


def ensure_key_pair(directory: Path) -> tuple[Path, Path]:
    """An Ed25519 pair in `directory` (private.pem readable by us only,
    public.pem), made unless both exist: (private file, public file)."""
    private, public = directory / "private.pem", directory / "public.pem"
    if private.exists() and public.exists():
        return private, public
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    _write_private(private, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@functools.cache
def _local_issuer(directory: Path) -> DevIssuer:
    return DevIssuer(directory)  # one per home: the key is read once


def _write_private(path: Path, pem: bytes) -> None:
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    partial.replace(path)  # whole or absent, even if two processes race


def sign_for(actor: Actor, ttl_s: float = COMMAND_TOKEN_TTL_S, issuer: DevIssuer | None = None,
             command: str | None = None) -> tuple[Actor, str]:
    """A fresh dev-issuer token for `actor`'s subject and roles (bound to the
    command whose digest is `command`, if given), and the actor as that token
    proves it (with issuer and token id): the actor a command signed with the
    token must carry."""
    identity, token = (issuer or DevIssuer.local()).issue(actor.subject, actor.roles, ttl_s=ttl_s, command=command)
    return identity.actor, token


def signed(command: C, issuer: DevIssuer | None = None, ttl_s: float = COMMAND_TOKEN_TTL_S) -> tuple[C, str]:
    """`command` with its actor proven by a fresh token bound to this command
    alone (identity/command_binding.py), and the token."""
    actor, token = sign_for(command.actor, ttl_s, issuer, command_digest(command))
    return command.model_copy(update={"actor": actor}), token


def dev_token(subject: str, *roles: str, ttl_s: float = 3600) -> str:
    """A bearer token from the local stack's development issuer (demo, benchmarks)."""
    return DevIssuer.local().issue(subject, roles, ttl_s=ttl_s)[1]
