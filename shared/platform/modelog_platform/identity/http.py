"""FastAPI dependencies: who calls (401 if nobody provable), may they (403),
and not too often (429).

A service installs a verifier once (`install_verifier`; the tokens it has
verified are remembered while valid, see token_cache), then routes take
`caller: Caller` (any valid token), `reader: ModelReader` (`reader` on the
model in the path) or check a permission themselves with `authorize`.
"""

import math
import time
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from modelog_platform.identity import permissions, ratelimit
from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.identity.token_cache import VerifiedTokens
from modelog_platform.identity.tokens import Identity, InvalidToken, TokenVerifier
from modelog_platform.web import ApiError

CHALLENGE = 'Bearer realm="modelog"'


def install_verifier(app: FastAPI, verifier: TokenVerifier) -> None:
    app.state.verified_tokens = VerifiedTokens(verifier)


# What an OpenAPI page (/docs) shows and sends: an HTTP bearer JWT on every
# route that authenticates. auto_error=False: a missing token gets modelog's
# own 401 body below, not the library's.
bearer_scheme = HTTPBearer(bearerFormat="JWT", auto_error=False,
                           description="A token from the issuer the service trusts; locally "
                                       "`modelog token issue --sub you --roles reader`.")
NO_TOKEN = ("a bearer token is required (Authorization: Bearer <token>; the modelog CLI and SDK send "
            "MODELOG_TOKEN). Locally: export MODELOG_TOKEN=$(modelog token issue --sub you --roles "
            f"reader,publisher), the roles from {', '.join(permissions.ROLES)}")


async def authenticated(request: Request,
                        credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> Identity:
    token = credentials.credentials.strip() if credentials else None
    if not token:
        raise _unauthenticated(NO_TOKEN, CHALLENGE)
    tokens: VerifiedTokens = request.app.state.verified_tokens
    # A token seen before costs a dict lookup, on the event loop; a new one is
    # verified in a thread, as fetching an issuer's keys may wait on the network.
    if (identity := tokens.cached(token)) is not None:
        return identity
    try:
        return await run_in_threadpool(tokens.verify, token)
    except InvalidToken as error:
        raise _unauthenticated(str(error), f'{CHALLENGE}, error="invalid_token"') from None


def _unauthenticated(message: str, challenge: str) -> ApiError:
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": challenge})


def authorize(identity: Identity, permission: str, model: str) -> None:
    """403 naming the permission the caller lacks."""
    refused(permissions.authorize(identity, permission, model))


def authorize_role(identity: Identity, permission: str) -> None:
    """403 unless the caller has the role; its grants narrow what it is shown."""
    refused(permissions.lacks_role(identity, permission))


def authorize_every_model(identity: Identity, permission: str) -> None:
    """403 unless the caller has the role on every model (a token without grants)."""
    refused(permissions.authorize_every_model(identity, permission))


def refused(refusal: permissions.Refusal | None) -> None:
    if refusal is not None:
        raise ApiError(403, refusal.code, refusal.message, missing=refusal.missing)


Caller = Annotated[Identity, Depends(authenticated)]


async def model_reader(identity: Caller, name: str) -> Identity:
    """`reader` on the model the path names (`{name}`), within the token's grants."""
    authorize(identity, permissions.READER, name)
    return identity


ModelReader = Annotated[Identity, Depends(model_reader)]


class WriteRateLimit:
    """Per-subject token buckets on writes: `Depends(limiter)` in a write route
    answers 429 with Retry-After once a subject spends its burst."""

    FORGET_AFTER = 10_000  # subjects tracked before full buckets are dropped

    def __init__(self, limit: ratelimit.Limit, clock=time.monotonic):
        self.limit, self.clock = limit, clock
        self.buckets: dict[str, ratelimit.Bucket] = {}

    @classmethod
    def from_settings(cls, settings: IdentitySettings) -> "WriteRateLimit":
        return cls(ratelimit.Limit(settings.identity_write_rate_per_s, settings.identity_write_burst))

    def __call__(self, identity: Identity = Depends(authenticated)) -> Identity:
        now = self.clock()
        bucket, wait_s = ratelimit.take(self.buckets.get(identity.subject), now, self.limit)
        self.buckets[identity.subject] = bucket
        if len(self.buckets) > self.FORGET_AFTER:
            self.buckets = {s: b for s, b in self.buckets.items() if not ratelimit.full(b, now, self.limit)}
        if wait_s is not None:
            raise ApiError(429, "rate_limited", f"{identity.subject} writes too often; retry in {wait_s:.1f}s",
                           headers={"Retry-After": str(math.ceil(wait_s))})
        return identity
