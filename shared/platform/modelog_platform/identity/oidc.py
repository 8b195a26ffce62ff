"""OpenID Connect ID tokens: verified against the issuer's published keys.

The console's sign-in (registrar/console/oidc.py) gets an ID token from the
issuer's token endpoint; this module judges it, beside the API's own token
checks (tokens.py) and with the same accepted algorithms: a plain function of
the token, the keys, and the clock.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import jwt

from modelog_platform.identity.tokens import ACCEPTED_ALGORITHMS

REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "nonce")


class SignInRefused(Exception):
    """A sign-in that proves nothing; `code` is stable, the message says why in plain words."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class KeySet:
    """An issuer's JWKS, as its jwks_uri answers it."""

    def __init__(self, keys: jwt.PyJWKSet):
        self.keys = keys

    @classmethod
    def from_document(cls, document: Mapping) -> KeySet:
        try:
            return cls(jwt.PyJWKSet.from_dict(dict(document)))
        except jwt.PyJWTError as error:
            raise SignInRefused("issuer_unreachable", f"the issuer's JWKS holds no usable key: {error}") from None


class UnknownKey(Exception):
    """The ID token names a key the JWKS we hold does not have: fetch it again, once."""


def verify_id_token(id_token: str, keys: KeySet, *, issuer: str, client_id: str, nonce: str,
                    now: float, leeway_s: float = 30.0) -> dict:
    """The ID token's claims, once its signature, issuer, audience, times and nonce check out."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as error:
        raise SignInRefused("id_token_invalid", f"the ID token is not a JWT: {error}") from None
    key = _key_for(keys, header.get("kid"))
    try:
        claims = jwt.decode(id_token, key, algorithms=list(ACCEPTED_ALGORITHMS), issuer=issuer, audience=client_id,
                            # Times are checked below, against `now`.
                            options={"require": list(REQUIRED_CLAIMS), "verify_exp": False,
                                     "verify_iat": False, "verify_nbf": False})
    except jwt.InvalidAudienceError:
        raise SignInRefused("id_token_invalid", f"the ID token is for another client, not {client_id!r}") from None
    except jwt.PyJWTError as error:
        raise SignInRefused("id_token_invalid", f"the ID token does not verify: {error}") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    # Core §3.1.3.7: with several audiences, the token must say it was issued to us.
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise SignInRefused("id_token_invalid", f"the ID token was issued to {claims.get('azp')!r}, not {client_id!r}")
    times = [claims["exp"], claims["iat"]]
    if any(isinstance(t, bool) or not isinstance(t, (int, float)) for t in times):
        raise SignInRefused("id_token_invalid", "the ID token's exp and iat must be numbers")
    if claims["exp"] + leeway_s < now:
        raise SignInRefused("id_token_expired", "the ID token has expired: start again")
    if claims["iat"] - leeway_s > now:
        raise SignInRefused("id_token_invalid", "the ID token was issued in the future: check the clocks")
    if not isinstance(claims["nonce"], str) or not hmac.compare_digest(claims["nonce"].encode(), nonce.encode()):
        raise SignInRefused("nonce_mismatch", "the ID token was issued for another sign-in (its nonce does not match)")
    return claims


def _key_for(keys: KeySet, kid: str | None):
    for candidate in keys.keys.keys:
        if kid is None or candidate.key_id == kid:
            return candidate
    raise UnknownKey(kid)
