"""How a service learns whom to trust and how a signer finds its key.

Secrets (a signing key) come from the environment or a file and are held as
SecretStr, so they never show up in a repr or a log line.
"""

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_ISSUER = "modelog-dev"
AUDIENCE = "modelog"


class IdentitySettings(BaseSettings):
    """A service's identity concern; each service's settings class includes it."""

    model_config = SettingsConfigDict(env_prefix="MODELOG_", extra="ignore")

    # Verifying: one of the two. A PEM public key (the dev issuer's, or a
    # production issuer's RSA/EC key), or the issuer's JWKS URL.
    identity_public_key_file: Path | None = None
    identity_jwks_url: str | None = None
    identity_issuer: str = DEV_ISSUER
    identity_audience: str = AUDIENCE
    # Clock skew tolerated between the issuer and us.
    identity_leeway_s: float = 30.0
    # Signing (the dev issuer only): a PEM private key, inline or in a file;
    # without either, the dev issuer's key pair under the local stack home.
    identity_signing_key: SecretStr | None = None
    identity_signing_key_file: Path | None = None
    # The local stack only: without a signing key of its own, the registrar
    # signs with the dev issuer's key under the stack home (the one-command
    # tokens it vouches for its callers with, and its own reads from the
    # projector). Never set it where real issuers are used.
    identity_dev_signs_commands: bool = False
    # Writes per subject: a burst, then a steady rate (429 with Retry-After beyond).
    identity_write_rate_per_s: float = 20.0
    identity_write_burst: float = 100.0
