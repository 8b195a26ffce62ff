from modelog.settings import EngineEndpoints


class AuditorSettings(EngineEndpoints):
    host: str = "127.0.0.1"
    auditor_port: int = 8003
