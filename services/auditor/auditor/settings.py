from modelog_platform.settings import EngineEndpoints, SealSettings


class AuditorSettings(EngineEndpoints, SealSettings):
    host: str = "127.0.0.1"
    auditor_port: int = 8003
