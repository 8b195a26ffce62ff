"""Who is calling, and may they. The actor of every command comes from the
caller's verified bearer token, never from a request body."""

from typing import Annotated

from fastapi import Depends

from modelog.domain.commands import Command
from modelog.identity import permissions
from modelog.identity.dev import DevIssuer, signed
from modelog.identity.http import WriteRateLimit, authenticated, authorize
from modelog.identity.settings import IdentitySettings
from modelog.identity.tokens import Identity
from modelog.web import ApiError

write_limit = WriteRateLimit.from_settings(IdentitySettings())

Caller = Annotated[Identity, Depends(authenticated)]
Writer = Annotated[Identity, Depends(write_limit)]  # authenticated, and within its write rate


def may_read(identity: Caller, name: str | None = None) -> Identity:
    if name is not None:
        authorize(identity, permissions.READER, name)
    return identity


def permitted(identity: Identity, command: Command) -> None:
    """403 naming the missing permission, before anything is written."""
    refusal = permissions.check(identity, command)
    if refusal is not None:
        raise ApiError(403, refusal.code, refusal.message, missing=refusal.missing)


def command_signer(settings: IdentitySettings):
    """The registrar vouches for the callers it verified: each command it
    publishes carries a fresh one-command token for the caller's subject and
    roles, signed with the registrar's key (MODELOG_IDENTITY_SIGNING_KEY[_FILE];
    the local stack's development key when it runs one). The promoter trusts
    that key; a caller's own token is never forwarded, so it cannot be replayed
    from the log. None: no key, commands go out unsigned."""
    has_key = settings.identity_signing_key or settings.identity_signing_key_file
    if not (has_key or settings.identity_dev_signs_commands):
        return None
    issuer = DevIssuer.local()  # its signing key is the configured one when there is one
    return lambda command: signed(command, issuer)
