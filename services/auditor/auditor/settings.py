from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.settings import EngineEndpoints, SealSettings, ServicePorts


class AuditorSettings(EngineEndpoints, ServicePorts, IdentitySettings, SealSettings):
    """Everything the auditor reads from its environment."""
