"""What the console keeps for the registrar's lifetime: how it signs sessions
and sign-in links, the links already used, the short-lived read tokens it
mints for sessions, its templates, and its client of the auditor."""

import threading
import time
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import httpx
import jinja2

from modelog_platform.identity.dev import DevIssuer
from modelog_platform.identity.tokens import Identity, TokenVerifier
from registrar.console.oidc import OidcClient, config_from_settings
from registrar.console.sessions import SessionKey
from registrar.identity import has_signing_key
from registrar.settings import RegistrarSettings

LINK_AUDIENCE = "modelog-console-sign-in"  # a link is no bearer token for the API, nor the reverse
LINK_TTL_S = 120
READ_TOKEN_TTL_S = 300
TEMPLATES = Path(__file__).parent / "templates"


def when(value) -> str:
    """An instant as people read it: to the second, in UTC."""
    instant = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class NoSigningKey(Exception):
    """The registrar holds no signing key, so it can vouch for no session."""


class IssuerKey:
    """The registrar's own public key, as the verifier of its sign-in links."""

    def __init__(self, issuer: DevIssuer):
        self.key = issuer.signing_key().public_key()

    def key_for(self, token: str):
        return self.key


class UsedLinks:
    """Link ids already used, kept until the link would have expired anyway."""

    def __init__(self) -> None:
        self.used: dict[str, float] = {}
        self.lock = threading.Lock()

    def first_use(self, link_id: str, expires_at: float) -> bool:
        now = time.time()
        with self.lock:
            self.used = {k: v for k, v in self.used.items() if v > now} if len(self.used) > 1000 else self.used
            if link_id in self.used:
                return False
            self.used[link_id] = expires_at + 60  # beyond the verifier's leeway
            return True


class ConsoleState:
    def __init__(self, settings: RegistrarSettings):
        self.settings = settings
        self.used_links = UsedLinks()
        self.read_tokens: dict[str, tuple[str, float]] = {}
        self.templates = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                            undefined=jinja2.StrictUndefined)
        self.templates.filters["when"] = when
        self._auditor: httpx.AsyncClient | None = None

    @property
    def can_sign(self) -> bool:
        return has_signing_key(self.settings)

    @cached_property
    def issuer(self) -> DevIssuer:
        if not self.can_sign:
            raise NoSigningKey("the registrar has no signing key (MODELOG_IDENTITY_SIGNING_KEY[_FILE])")
        return DevIssuer.local(self.settings, self.settings)

    @cached_property
    def session_key(self) -> SessionKey:
        return SessionKey.of_issuer(self.issuer)

    @cached_property
    def oidc(self) -> OidcClient | None:
        """The client of the configured OpenID Connect issuer (discovery and keys
        kept), or None where no issuer is configured."""
        config = config_from_settings(self.settings)
        return None if config is None else OidcClient(config, httpx.AsyncClient(timeout=15))

    @cached_property
    def link_verifier(self) -> TokenVerifier:
        return TokenVerifier(IssuerKey(self.issuer), self.settings.identity_issuer, LINK_AUDIENCE,
                             self.settings.identity_leeway_s)

    def read_token(self, identity: Identity) -> str:
        """A bearer token for the session's own reads from the projector and the
        auditor: its subject, roles and grants, signed by the registrar as it
        signs commands for callers; reused until a minute before it lapses."""
        now = time.time()
        held = self.read_tokens.get(identity.token_id)
        if held is not None and held[1] - 60 > now:
            return held[0]
        ttl = min(READ_TOKEN_TTL_S, max(identity.expires_at.timestamp() - now, 1))
        minted, token = self.issuer.issue(identity.subject, identity.roles, identity.grants, ttl_s=ttl,
                                          now=datetime.fromtimestamp(now, timezone.utc))
        if len(self.read_tokens) > 10_000:
            self.read_tokens = {k: v for k, v in self.read_tokens.items() if v[1] > now}
        self.read_tokens[identity.token_id] = (token, minted.expires_at.timestamp())
        return token

    @property
    def auditor(self) -> httpx.AsyncClient:
        if self._auditor is None:
            self._auditor = httpx.AsyncClient(base_url=self.settings.url("auditor"), timeout=httpx.Timeout(30.0))
        return self._auditor
