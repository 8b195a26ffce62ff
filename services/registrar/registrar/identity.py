"""Who is calling, and may they. The actor of every command comes from the
caller's verified bearer token, never from a request body."""

from typing import Annotated

from fastapi import Depends, FastAPI, Request

from modelog_contract.domain.commands import Command
from modelog_platform.identity import permissions
from modelog_platform.identity.dev import DevIssuer, signed
from modelog_platform.identity.http import WriteRateLimit, authenticated, refused
from modelog_platform.identity.service import ServiceToken
from modelog_platform.identity.tokens import Identity
from registrar.settings import RegistrarSettings

SERVICE_SUBJECT = "modelog-registrar"


def install_write_limit(app: FastAPI, settings: RegistrarSettings) -> None:
    app.state.write_limit = WriteRateLimit.from_settings(settings)


async def within_write_rate(request: Request, identity: Identity = Depends(authenticated)) -> Identity:
    # async, though it waits on nothing: FastAPI runs a plain `def` dependency
    # in its thread pool, a hand-off to a thread and back on every write.
    request.state.caller = identity  # who a refusal from here on is recorded as (registrar.denials)
    limit: WriteRateLimit = request.app.state.write_limit
    return limit(identity)


Writer = Annotated[Identity, Depends(within_write_rate)]  # authenticated, and within its write rate


def permitted(identity: Identity, command: Command) -> None:
    """403 naming the missing permission, before anything is written."""
    refused(permissions.check(identity, command))


def has_signing_key(settings: RegistrarSettings) -> bool:
    return bool(settings.identity_signing_key or settings.identity_signing_key_file
                or settings.identity_dev_signs_commands)


def command_signer(settings: RegistrarSettings):
    """The registrar vouches for the callers it verified: each command it
    publishes carries a fresh one-command token for the caller's subject and
    roles, signed with the registrar's key (MODELOG_IDENTITY_SIGNING_KEY[_FILE];
    the local stack's development key when it runs one). The promoter trusts
    that key; a caller's own token is never forwarded, so it cannot be replayed
    from the log. None: no key, commands go out unsigned."""
    if not has_signing_key(settings):
        return None
    issuer = DevIssuer.local(settings, settings)  # its signing key is the configured one when there is one
    return lambda command: signed(command, issuer)


def service_token(settings: RegistrarSettings) -> ServiceToken | None:
    """The registrar's own identity for its internal reads from the projector
    (command outcomes, the state after a write, artifact references): subject
    modelog-registrar with `reader` on every model, signed with the key it
    signs commands with and renewed before it expires. Reads passed through
    for a caller carry the caller's own token instead. None: no key, and the
    projector will refuse those reads."""
    if not has_signing_key(settings):
        return None
    return ServiceToken(DevIssuer.local(settings, settings), SERVICE_SUBJECT, (permissions.READER,))
