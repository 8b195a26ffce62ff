from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.settings import EngineEndpoints, LogTrustSettings, ServicePorts


class ProjectorSettings(EngineEndpoints, ServicePorts, IdentitySettings, LogTrustSettings):
    """Everything the projector reads from its environment."""

    # Longest a caller may ask GET /v1/commands/{id} to wait for an outcome.
    projector_max_wait_s: float = 30.0
    # A waiting GET /v1/commands/{id} is woken by the projection's commit
    # (LISTEN/NOTIFY); it also looks again this often, for a notification lost
    # while the listening connection was down.
    projector_outcome_poll_s: float = 1.0
