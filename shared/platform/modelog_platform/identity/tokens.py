"""Bearer JWTs: issue one, verify one into an Identity.

A verified token becomes an Identity: subject, roles, grants, issuer and token
id. The token itself is never kept, logged or put in an event.
"""

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol
from uuid import uuid4

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from modelog_contract.domain.types import Actor
from modelog_platform.identity.settings import IdentitySettings

DEV_ALGORITHM = "EdDSA"  # Ed25519: what the dev issuer signs with
# What production issuers may sign with. Never HS*: a shared secret would let
# every verifier mint tokens.
ACCEPTED_ALGORITHMS = ("EdDSA", "RS256", "ES256")
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "jti")


class InvalidToken(Exception):
    """The token proves nothing. The message says why, never what the token was."""


@dataclass(frozen=True)
class Identity:
    subject: str
    roles: tuple[str, ...]
    issuer: str
    token_id: str
    expires_at: datetime
    # Model names, or prefixes ending in '*', this identity may act on; empty: all.
    grants: tuple[str, ...] = field(default=())
    # A command token's `cmd` claim: the digest of the one command it signs
    # (identity/command_binding.py); None for any other token.
    command: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(subject=self.subject, roles=self.roles, issuer=self.issuer, token_id=self.token_id)


def claims_for(*, issuer: str, audience: str, subject: str, roles: Sequence[str] = (),
               grants: Sequence[str] = (), ttl_s: float = 3600, now: datetime | None = None,
               command: str | None = None) -> dict:
    """The claims of a new token; each token gets its own id (jti). `command`:
    the digest of the one command a command token is bound to."""
    issued = int((now or datetime.now(timezone.utc)).timestamp())
    claims = {"iss": issuer, "aud": audience, "sub": subject, "roles": list(roles), "iat": issued,
              "exp": issued + int(ttl_s), "jti": str(uuid4())}
    if grants:
        claims["grants"] = list(grants)
    if command is not None:
        claims["cmd"] = command
    return claims


def sign(claims: dict, private_key, algorithm: str = DEV_ALGORITHM) -> str:
    return jwt.encode(claims, private_key, algorithm=algorithm)


def identity_of(claims: dict) -> Identity:
    """The identity claims describe, times unchecked: for claims we just made
    or a verifier already checked."""
    roles, grants, command = claims.get("roles", []), claims.get("grants", []), claims.get("cmd")
    if not _strings(roles) or not _strings(grants):
        raise InvalidToken("token refused: roles and grants must be lists of strings")
    if command is not None and not isinstance(command, str):
        raise InvalidToken("token refused: its cmd claim must be a string")
    return Identity(subject=claims["sub"], roles=tuple(roles), issuer=claims["iss"], token_id=claims["jti"],
                    expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc), grants=tuple(grants),
                    command=command)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value."""
    scheme, _, token = (authorization or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


class TokenVerifier:
    """Checks signature, issuer, audience and time of a token.

    Time is checked against `now`, which callers may pass: the promoter judges
    a command's token at the time the broker accepted the command."""

    def __init__(self, keys: "KeySource", issuer: str, audience: str, leeway_s: float = 30.0):
        self.keys, self.issuer, self.audience, self.leeway_s = keys, issuer, audience, leeway_s

    def verify(self, token: str, now: datetime | None = None) -> Identity:
        key = self.keys.key_for(token)
        claims = ed25519_claims(token, key, self.issuer, self.audience)
        if claims is None:  # not a plain EdDSA token that verifies: the library judges it, and says why
            claims = self.library_claims(token, key)
        return _checked_times(claims, (now or datetime.now(timezone.utc)).timestamp(), self.leeway_s)

    def library_claims(self, token: str, key) -> dict:
        """The claims, as PyJWT verifies them (signature, issuer, audience, required claims)."""
        try:
            return jwt.decode(
                token, key, algorithms=list(ACCEPTED_ALGORITHMS),
                issuer=self.issuer, audience=self.audience,
                # Time is ours to check, against `now` rather than the wall clock.
                options={"require": list(REQUIRED_CLAIMS), "verify_exp": False,
                         "verify_nbf": False, "verify_iat": False})
        except jwt.PyJWTError as error:
            raise InvalidToken(why_refused(error, self.issuer, self.audience)) from None


# The header of a token the direct path takes; any other header goes to PyJWT.
_PLAIN_HEADER = frozenset({"alg", "typ", "kid"})
_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")


def ed25519_claims(token: str, key, issuer: str, audience: str) -> dict | None:
    """The claims of an EdDSA token whose signature, issuer, audience and
    required claims all check out against `key`, checked with `cryptography`
    directly; None for anything else, which PyJWT then judges (and names the
    refusal). A command's token is verified once, by the promoter, per command:
    PyJWT's pure-Python base64 checks cost more than the Ed25519 verification,
    so the common case is checked here, accepting only a subset of what PyJWT
    accepts: three canonical unpadded base64url segments, a header of alg (EdDSA),
    typ and a string kid only."""
    if not isinstance(key, ed25519.Ed25519PublicKey):
        return None
    if token.count(".") != 2:
        return None
    # Not ASCII: a '?' stands in, which no segment may contain.
    header_segment, payload_segment, signature_segment = token.encode("ascii", "replace").split(b".")
    header_bytes, payload_bytes, signature = (_base64url(header_segment), _base64url(payload_segment),
                                              _base64url(signature_segment))
    if header_bytes is None or payload_bytes is None or signature is None:
        return None
    try:
        header, claims = json.loads(header_bytes), json.loads(payload_bytes)
    except (ValueError, RecursionError):
        return None
    if (not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "EdDSA"
            or not _PLAIN_HEADER.issuperset(header) or not isinstance(header.get("kid", ""), str)):
        return None
    try:
        key.verify(signature, header_segment + b"." + payload_segment)
    except InvalidSignature:
        return None
    aud = claims.get("aud")
    if (any(claims.get(name) is None for name in REQUIRED_CLAIMS) or claims["iss"] != issuer
            or not isinstance(claims["sub"], str) or not isinstance(claims["jti"], str)
            or not (aud == audience or (isinstance(aud, list) and audience in aud and _strings(aud)))):
        return None
    return claims


def _base64url(segment: bytes) -> bytes | None:
    """A canonical unpadded base64url segment, decoded; None for anything else."""
    if len(segment) % 4 == 1 or not _BASE64URL.fullmatch(segment):
        return None
    try:
        decoded = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    except binascii.Error:
        return None
    return decoded if base64.urlsafe_b64encode(decoded).rstrip(b"=") == segment else None


def why_refused(error: jwt.PyJWTError, issuer: str, audience: str) -> str:
    """What the JWT library's refusal means to whoever sent the token, and what to check."""
    match error:
        case jwt.InvalidSignatureError():
            return ("the signature does not verify against the configured issuer's key: the token was made "
                    "by another issuer (a development token: by another stack home; see MODELOG_HOME)")
        case jwt.DecodeError():
            return f"the bearer token is not a JWT: {error}"
        case jwt.InvalidAlgorithmError():
            return f"the token's signing algorithm is not accepted (accepted: {', '.join(ACCEPTED_ALGORITHMS)})"
        case jwt.InvalidIssuerError():
            return f"the token's issuer is not {issuer!r}, the one this service trusts (MODELOG_IDENTITY_ISSUER)"
        case jwt.InvalidAudienceError():
            return f"the token is not for audience {audience!r} (MODELOG_IDENTITY_AUDIENCE)"
        case jwt.MissingRequiredClaimError():
            return f"the token has no {error.claim!r} claim; modelog needs {', '.join(REQUIRED_CLAIMS)}"
    return f"token refused: {error}"


def _checked_times(claims: dict, now: float, leeway_s: float) -> Identity:
    times = {name: claims.get(name) for name in ("exp", "iat", "nbf")}
    if any(value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)))
           for value in times.values()):
        raise InvalidToken("token refused: exp, iat and nbf must be numbers")
    # exp and iat are required claims: the library checked they are there.
    expires, not_before = claims["exp"], max(claims["iat"], times["nbf"] or 0)
    if expires + leeway_s < now:
        raise InvalidToken("token refused: it has expired")
    if not_before - leeway_s > now:
        raise InvalidToken("token refused: it is not valid yet")
    return identity_of(claims)


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


class KeySource(Protocol):
    """Where the public key that checks a token comes from."""

    def key_for(self, token: str): ...


class StaticKey(KeySource):
    """One public key from a PEM file: the dev issuer's, or a production issuer's."""

    def __init__(self, pem: bytes):
        self.key = load_pem_public_key(pem)
        if not isinstance(self.key, (ed25519.Ed25519PublicKey, rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
            raise ValueError("the public key must be Ed25519, RSA or EC")

    @classmethod
    def from_file(cls, path: Path) -> "StaticKey":
        return cls(path.read_bytes())

    def key_for(self, token: str):
        return self.key


class JwksKeys(KeySource):
    """The issuer's published keys, picked by the token's `kid`; cached, so a
    verification fetches only when a key is new."""

    def __init__(self, url: str):
        self.client = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)

    def key_for(self, token: str):
        try:
            return self.client.get_signing_key_from_jwt(token).key
        except jwt.PyJWTError as error:  # PyJWKClientError included: no such kid, JWKS unreachable
            raise InvalidToken(f"token refused: {error}") from None


def verifier_from_settings(settings: IdentitySettings) -> TokenVerifier:
    if settings.identity_jwks_url:
        keys: KeySource = JwksKeys(settings.identity_jwks_url)
    elif settings.identity_public_key_file:
        keys = StaticKey.from_file(settings.identity_public_key_file)
    else:
        raise ValueError("no token issuer configured: set MODELOG_IDENTITY_PUBLIC_KEY_FILE "
                         "or MODELOG_IDENTITY_JWKS_URL")
    return TokenVerifier(keys, settings.identity_issuer, settings.identity_audience, settings.identity_leeway_s)
