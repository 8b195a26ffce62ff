from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.settings import EngineEndpoints, ServicePorts, StackHome


class RegistrarSettings(EngineEndpoints, ServicePorts, IdentitySettings, StackHome):
    """Everything the registrar reads from its environment. It finds the
    projector at MODELOG_PROJECTOR_URL, else at MODELOG_HOST:MODELOG_PROJECTOR_PORT
    (`url("projector")`)."""

    max_upload_bytes: int = 5 * 1024**3
    # Read-your-writes: how long a write waits for the projector to commit its
    # outcome before answering 202 with a status URL instead.
    outcome_wait_s: float = 5.0
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
