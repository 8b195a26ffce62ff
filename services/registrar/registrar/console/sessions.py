"""The console's sessions: who the browser is, in a cookie the registrar signs.

A session holds the identity a bearer token would prove (subject, roles,
grants, issuer), its id, its expiry and its CSRF token, as JSON with an
HMAC-SHA256 over it. The cookie is HttpOnly (no script reads it), SameSite=Lax
(no other site's form posts carry it), Secure when the console is served over
https, and scoped to /console. The HMAC key is derived from the registrar's
signing key, so every registrar holding that key accepts the session and a
new key ends every session.

`start_session` is the one way a session begins: the one-time sign-in link
calls it, and so does an OpenID Connect callback with the identity a verified
ID token proves. `session_identity` turns the cookie back into the same
`Identity` the API's bearer tokens yield, so permissions and the decider
apply unchanged.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from uuid import uuid4

from fastapi import Request
from starlette.responses import Response

from modelog_platform.identity.dev import DevIssuer
from modelog_platform.identity.tokens import Identity

COOKIE = "modelog_session"
COOKIE_PATH = "/console"
SESSION_TTL_S = 8 * 3600  # a working day; signing in again is one command or one redirect
CSRF_FIELD = "csrf_token"


class SessionKey:
    """Signs and checks sessions with a key only the registrar holds."""

    def __init__(self, key: bytes):
        self.key = key

    @classmethod
    def of_issuer(cls, issuer: DevIssuer) -> "SessionKey":
        private = issuer.signing_key().private_bytes_raw()  # Ed25519: what the issuer signs with
        return cls(hashlib.sha256(b"modelog console session\n" + private).digest())

    def seal(self, payload: dict) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{_b64(self._mac(body))}"

    def open(self, cookie: str) -> dict | None:
        """The payload of a cookie this key signed, or None for anything else."""
        body, _, mac = cookie.partition(".")
        try:
            if not hmac.compare_digest(_unb64(mac), self._mac(body)):
                return None
            payload = json.loads(_unb64(body))
        except (ValueError, TypeError):
            return None
        return payload if isinstance(payload, dict) else None

    def _mac(self, body: str) -> bytes:
        return hmac.new(self.key, body.encode("ascii"), hashlib.sha256).digest()


@dataclass(frozen=True)
class Session:
    identity: Identity
    csrf: str


def start_session(request: Request, response: Response, identity: Identity,
                  ttl_s: float = SESSION_TTL_S) -> Session:
    """Set the session cookie for `identity` on `response`: a new session id and
    CSRF token; it ends after `ttl_s` (at most a working day)."""
    key: SessionKey = request.app.state.console.session_key
    expires = int(time.time() + min(ttl_s, SESSION_TTL_S))
    payload = {"sub": identity.subject, "roles": list(identity.roles), "grants": list(identity.grants),
               "iss": identity.issuer, "sid": str(uuid4()), "csrf": secrets.token_urlsafe(24), "exp": expires}
    response.set_cookie(COOKIE, key.seal(payload), max_age=expires - int(time.time()), path=COOKIE_PATH,
                        httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return _session(payload)


def end_session(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")


def current_session(request: Request) -> Session | None:
    """The request's session, if its cookie is one the registrar signed and unexpired."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    payload = request.app.state.console.session_key.open(cookie)
    if payload is None or not _well_formed(payload) or payload["exp"] <= time.time():
        return None
    return _session(payload)


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(session.csrf.encode(), submitted.encode())


def _session(payload: dict) -> Session:
    identity = Identity(subject=payload["sub"], roles=tuple(payload["roles"]), issuer=payload["iss"],
                        token_id=payload["sid"], expires_at=datetime.fromtimestamp(payload["exp"], timezone.utc),
                        grants=tuple(payload["grants"]))
    return Session(identity, payload["csrf"])


def _well_formed(payload: dict) -> bool:
    strings = ("sub", "iss", "sid", "csrf")
    return (all(isinstance(payload.get(k), str) for k in strings) and isinstance(payload.get("exp"), int)
            and all(isinstance(payload.get(k), list) and all(isinstance(v, str) for v in payload[k])
                    for k in ("roles", "grants")))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
