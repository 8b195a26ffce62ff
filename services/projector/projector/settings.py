from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.settings import EngineEndpoints, LogTrustSettings, ServicePorts


class ProjectorSettings(EngineEndpoints, ServicePorts, IdentitySettings, LogTrustSettings):
    """Everything the projector reads from its environment."""

    # Longest a caller may ask GET /v1/commands/{id} to wait for an outcome.
    projector_max_wait_s: float = 30.0
