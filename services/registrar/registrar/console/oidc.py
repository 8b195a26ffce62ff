"""Signing in to the console with OpenID Connect: the authorization code flow with PKCE.

The console sends the browser to the configured issuer with a fresh state,
nonce and PKCE challenge (S256); the issuer signs the person in and sends the
browser back to /console/callback with a code; the console checks the state,
exchanges the code (with the PKCE verifier, and the client's secret where it
has one) for an ID token, verifies that token against the issuer's JWKS
(signature, issuer, audience, expiry, nonce), and maps its claims to the same
`Identity` an API token gives: roles and grants as docs/identity.md says.

Everything but the two HTTP exchanges (discovery and JWKS, the code) is a
plain function of its arguments, clock included, so it is tested without a
provider; the ID token's checks are modelog_platform.identity.oidc's. Every
refusal is a `SignInRefused` with a stable code and words a person can act on.

A console route wires it in a few lines:

    client = OidcClient(config_from_settings(settings), http)  # once
    url, pending = await client.begin()      # sign-in: keep pending.as_dict() in a
                                             # short-lived HttpOnly cookie, redirect to url
    identity = await client.finish(PendingSignIn.from_dict(kept), request.query_params)
                                             # callback: then start a session for identity
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

import httpx

from modelog_platform.identity.oidc import KeySet, SignInRefused, UnknownKey, verify_id_token
from modelog_platform.identity.roles import ROLES, unknown_roles
from modelog_platform.identity.tokens import Identity
from registrar.settings import RegistrarSettings

CALLBACK_PATH = "/console/callback"


@dataclass(frozen=True)
class ClaimMapping:
    """Which claims of the ID token carry modelog's roles and grants.

    `roles_claim` holds a list of strings (an issuer's groups, say); those that
    start with `role_prefix` name a modelog role by the rest of the string, the
    others belong to other systems and are ignored. `grants_claim` holds the
    models the person may act on, as API tokens' `grants` do (model names, or
    prefixes ending in '*'); without it, every model."""

    roles_claim: str = "groups"
    role_prefix: str = "modelog-"
    grants_claim: str = "modelog_grants"


@dataclass(frozen=True)
class ClientConfig:
    issuer: str
    client_id: str
    redirect_uri: str
    client_secret: str | None = field(default=None, repr=False)  # none: a public client, PKCE alone
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    mapping: ClaimMapping = ClaimMapping()
    leeway_s: float = 30.0


@dataclass(frozen=True)
class ProviderMetadata:
    """What the issuer's discovery document says, checked: OpenID Connect Discovery 1.0."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str

    @classmethod
    def from_document(cls, issuer: str, document: Mapping) -> ProviderMetadata:
        # The document must name the issuer it was fetched for (Discovery §4.3):
        # another one would sign tokens this console then trusts.
        if document.get("issuer") != issuer:
            raise SignInRefused("discovery_invalid", f"the discovery document at {issuer} names issuer "
                                f"{document.get('issuer')!r}, not {issuer!r} (MODELOG_OIDC_ISSUER)")
        missing = [name for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
                   if not isinstance(document.get(name), str)]
        if missing:
            raise SignInRefused("discovery_invalid", f"the issuer's discovery document lacks {', '.join(missing)}")
        methods = document.get("code_challenge_methods_supported")
        if methods is not None and "S256" not in methods:
            raise SignInRefused("discovery_invalid", "the issuer does not support PKCE with S256")
        return cls(issuer, document["authorization_endpoint"], document["token_endpoint"], document["jwks_uri"])


@dataclass(frozen=True)
class PendingSignIn:
    """What the console keeps between sending the browser away and its return:
    in a short-lived cookie of its own, never in a URL (only the state travels)."""

    state: str
    nonce: str
    code_verifier: str = field(repr=False)

    def as_dict(self) -> dict[str, str]:
        return {"state": self.state, "nonce": self.nonce, "code_verifier": self.code_verifier}

    @classmethod
    def from_dict(cls, data: Mapping) -> PendingSignIn:
        return cls(str(data["state"]), str(data["nonce"]), str(data["code_verifier"]))


def new_sign_in() -> PendingSignIn:
    # 32 random bytes each; the verifier's 64 characters are within RFC 7636's 43 to 128.
    return PendingSignIn(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48))


def code_challenge(verifier: str) -> str:
    """RFC 7636's S256: base64url(sha256(verifier)), unpadded."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def authorization_url(metadata: ProviderMetadata, config: ClientConfig, pending: PendingSignIn) -> str:
    params = {"response_type": "code", "client_id": config.client_id, "redirect_uri": config.redirect_uri,
              "scope": " ".join(config.scopes), "state": pending.state, "nonce": pending.nonce,
              "code_challenge": code_challenge(pending.code_verifier), "code_challenge_method": "S256"}
    endpoint = metadata.authorization_endpoint
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


def code_from_callback(pending: PendingSignIn, params: Mapping[str, str], issuer: str) -> str:
    """The code of the browser's return, once it proves it answers our request."""
    # The state first: an answer to someone else's request (a forged or
    # replayed callback) is refused before anything in it is believed.
    state = params.get("state") or ""
    if not hmac.compare_digest(state.encode(), pending.state.encode()):
        raise SignInRefused("state_mismatch", "this sign-in answers a request this browser did not make "
                            "(its state does not match): start again")
    # RFC 9207: an issuer that names itself must be ours (a mix-up with another issuer).
    if "iss" in params and params["iss"] != issuer:
        raise SignInRefused("issuer_mismatch", f"the answer comes from {params['iss']!r}, not {issuer!r}")
    if "error" in params:
        description = params.get("error_description", "")
        raise SignInRefused("issuer_refused", f"the issuer refused the sign-in: {params['error']}"
                            + (f" ({description})" if description else ""))
    code = params.get("code")
    if not code:
        raise SignInRefused("no_code", "the issuer's answer carries no authorization code")
    return code


def identity_from_claims(claims: Mapping, mapping: ClaimMapping, id_token: str) -> Identity:
    """The Identity a verified ID token proves, with modelog's roles and grants."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise SignInRefused("claims_invalid", "the ID token names no subject")
    entries = claims.get(mapping.roles_claim, [])
    if not _strings(entries):
        raise SignInRefused("claims_invalid", f"the ID token's {mapping.roles_claim!r} claim is not a list of strings")
    roles = list(dict.fromkeys(entry[len(mapping.role_prefix):] for entry in entries
                               if entry.startswith(mapping.role_prefix)))
    unknown = unknown_roles(roles)
    if unknown:
        # A misspelt role would silently grant nothing: say so instead.
        raise SignInRefused("unknown_role", f"the issuer gives {subject} roles modelog does not know: "
                            f"{', '.join(unknown)} (modelog's roles: {', '.join(ROLES)})")
    grants = claims.get(mapping.grants_claim, [])
    if not _strings(grants) or any(not grant for grant in grants):
        raise SignInRefused("claims_invalid", f"the ID token's {mapping.grants_claim!r} claim is not a list of "
                            "model names or prefixes ending in '*'")
    # Not every issuer puts a jti in its ID tokens; the token's digest names it then.
    token_id = claims.get("jti") or f"sha256:{hashlib.sha256(id_token.encode()).hexdigest()[:32]}"
    return Identity(subject=subject, roles=tuple(roles), issuer=str(claims["iss"]), token_id=str(token_id),
                    expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc), grants=tuple(grants))


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


class OidcClient:
    """The console's side of the flow against one issuer: `begin` gives the URL
    to send the browser to and what to keep; `finish` turns the browser's
    return into an Identity. Discovery and the JWKS are fetched once and
    kept; the JWKS again when a token names a key it does not have."""

    def __init__(self, config: ClientConfig, http: httpx.AsyncClient):
        self.config, self.http = config, http
        self._metadata: ProviderMetadata | None = None
        self._keys: KeySet | None = None

    async def metadata(self) -> ProviderMetadata:
        if self._metadata is None:
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            self._metadata = ProviderMetadata.from_document(self.config.issuer, await self._json("GET", url))
        return self._metadata

    async def begin(self) -> tuple[str, PendingSignIn]:
        pending = new_sign_in()
        return authorization_url(await self.metadata(), self.config, pending), pending

    async def finish(self, pending: PendingSignIn, params: Mapping[str, str], now: float | None = None) -> Identity:
        metadata = await self.metadata()
        code = code_from_callback(pending, params, metadata.issuer)
        id_token = await self.exchange(metadata, code, pending)
        claims = await self._verified(metadata, id_token, pending.nonce, time.time() if now is None else now)
        return identity_from_claims(claims, self.config.mapping, id_token)

    async def exchange(self, metadata: ProviderMetadata, code: str, pending: PendingSignIn) -> str:
        """The ID token the code is worth; a code works once (RFC 6749 §4.1.2)."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.config.redirect_uri,
                "code_verifier": pending.code_verifier}
        headers = {"Accept": "application/json"}
        if self.config.client_secret is None:
            form["client_id"] = self.config.client_id
        else:  # client_secret_basic: each part form-encoded first (RFC 6749 §2.3.1)
            pair = f"{quote(self.config.client_id, safe='')}:{quote(self.config.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        answer = await self.http.post(metadata.token_endpoint, data=form, headers=headers)
        body = _json_of(answer)
        if answer.status_code != 200:
            error = body.get("error", answer.status_code)
            description = body.get("error_description", "")
            raise SignInRefused("code_refused", f"the issuer refused the authorization code: {error}"
                                + (f" ({description})" if description else "") + "; start again")
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("id_token_invalid", "the issuer answered the code without an ID token "
                                "(is 'openid' among MODELOG_OIDC_SCOPES?)")
        return id_token

    async def _verified(self, metadata: ProviderMetadata, id_token: str, nonce: str, now: float) -> dict:
        for fresh in (False, True):
            if self._keys is None or fresh:
                self._keys = KeySet.from_document(await self._json("GET", metadata.jwks_uri))
            try:
                return verify_id_token(id_token, self._keys, issuer=metadata.issuer, client_id=self.config.client_id,
                                       nonce=nonce, now=now, leeway_s=self.config.leeway_s)
            except UnknownKey:
                continue
        raise SignInRefused("id_token_invalid", "the ID token is signed with a key the issuer does not publish")

    async def _json(self, method: str, url: str) -> dict:
        try:
            answer = await self.http.request(method, url, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise SignInRefused("issuer_unreachable", f"the issuer at {url} cannot be reached: {error}") from None
        if answer.status_code != 200:
            raise SignInRefused("issuer_unreachable", f"the issuer answered {answer.status_code} at {url}")
        return _json_of(answer)


def _json_of(answer: httpx.Response) -> dict:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def config_from_settings(settings: RegistrarSettings) -> ClientConfig | None:
    """The console's OIDC client as the registrar's environment configures it; None without an issuer."""
    if not settings.oidc_issuer:
        return None
    redirect = settings.oidc_redirect_uri or settings.url("registrar").rstrip("/") + CALLBACK_PATH
    mapping = ClaimMapping(settings.oidc_roles_claim, settings.oidc_role_prefix, settings.oidc_grants_claim)
    return ClientConfig(issuer=settings.oidc_issuer, client_id=settings.oidc_client_id, redirect_uri=redirect,
                        client_secret=settings.oidc_secret(), scopes=tuple(settings.oidc_scopes.split()),
                        mapping=mapping, leeway_s=settings.identity_leeway_s)
