from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.settings import EngineEndpoints, LogTrustSettings, SealSettings, ServicePorts


class AuditorSettings(EngineEndpoints, ServicePorts, IdentitySettings, SealSettings, LogTrustSettings):
    """Everything the auditor reads from its environment."""
