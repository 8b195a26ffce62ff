"""A service's own identity for its internal calls (the registrar asking the
projector for outcomes and artifact references): a bearer token it mints with
its signing key, renewed well before it expires.

As an httpx auth: a request that already carries an Authorization header (a
caller's own, passed through) keeps it; any other gets the service's token.
"""

import threading
import time
from collections.abc import Callable, Generator
from datetime import datetime, timezone

import httpx

from modelog_platform.identity.dev import DevIssuer

SERVICE_TOKEN_TTL_S = 900
RENEW_BEFORE_S = 120  # renewed this long before expiry, so no request carries a token about to lapse


class ServiceToken(httpx.Auth):
    def __init__(self, issuer: DevIssuer, subject: str, roles: tuple[str, ...],
                 ttl_s: float = SERVICE_TOKEN_TTL_S, renew_before_s: float = RENEW_BEFORE_S,
                 clock: Callable[[], float] = time.time):
        self.issuer, self.subject, self.roles = issuer, subject, roles
        self.ttl_s, self.renew_before_s, self.clock = ttl_s, renew_before_s, clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            now = self.clock()
            if self._token is None or now >= self._expires_at - self.renew_before_s:
                identity, self._token = self.issuer.issue(self.subject, self.roles, ttl_s=self.ttl_s,
                                                          now=datetime.fromtimestamp(now, timezone.utc))
                self._expires_at = identity.expires_at.timestamp()
            return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "authorization" not in request.headers:
            request.headers["Authorization"] = f"Bearer {self.token()}"
        yield request
