from pathlib import Path

from pydantic import BaseModel, SecretStr

from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.settings import EngineEndpoints, ServicePorts, StackHome


class OidcSettings(BaseModel):
    """Signing in to the console with OpenID Connect (docs/identity.md), read
    from MODELOG_OIDC_* as part of RegistrarSettings. Without an issuer, the
    console offers no OIDC sign-in; the local stack points it at its own
    provider (engines/oidc.py)."""

    # The issuer URL exactly as its discovery document names it.
    oidc_issuer: str | None = None
    oidc_client_id: str = "modelog-console"
    # A confidential client's secret, inline or in a file; neither: a public client (PKCE alone).
    oidc_client_secret: SecretStr | None = None
    oidc_client_secret_file: Path | None = None
    # Registered at the issuer; default: the registrar's URL + /console/callback.
    oidc_redirect_uri: str | None = None
    oidc_scopes: str = "openid profile email"
    # Which claims carry modelog's roles and grants (registrar/console/oidc.py, ClaimMapping).
    oidc_roles_claim: str = "groups"
    oidc_role_prefix: str = "modelog-"
    oidc_grants_claim: str = "modelog_grants"

    def oidc_secret(self) -> str | None:
        # An empty inline secret counts as unset: the local supervisor blanks
        # the caller's so the stack's secret file is what the registrar uses.
        inline = self.oidc_client_secret.get_secret_value() if self.oidc_client_secret is not None else ""
        if inline and self.oidc_client_secret_file is not None:
            raise ValueError("set one of MODELOG_OIDC_CLIENT_SECRET and MODELOG_OIDC_CLIENT_SECRET_FILE, not both")
        if self.oidc_client_secret_file is not None:
            inline = self.oidc_client_secret_file.read_text().strip()
        return inline or None


class RegistrarSettings(EngineEndpoints, ServicePorts, IdentitySettings, OidcSettings, StackHome):
    """Everything the registrar reads from its environment. It finds the
    projector at MODELOG_PROJECTOR_URL, else at MODELOG_HOST:MODELOG_PROJECTOR_PORT
    (`url("projector")`)."""

    max_upload_bytes: int = 5 * 1024**3
    # Read-your-writes: how long a write waits for the projector to commit its
    # outcome before answering 202 with a status URL instead.
    outcome_wait_s: float = 5.0
    # How long a write waits for the broker to acknowledge its command before
    # answering 503 log_unavailable (the broker down or unreachable).
    publish_timeout_s: float = 10.0
    # Orphaned artifacts (stored, never registered) are removed once this old.
    orphan_grace_s: float = 3600.0
    reconcile_every_s: float = 600.0
    # Refused writes recorded to modelog.denials per subject and minute; beyond
    # that they are counted, and one summary record per minute says how many.
    denials_per_minute: int = 30
    # The team's MLflow tracking server: versions registered through MLflow's
    # API from runs:/, models:/m-... and mlflow-artifacts: sources are copied
    # from here (docs/mlflow-artifacts.md). Unset: such sources are unverified.
    mlflow_tracking_uri: str | None = None
