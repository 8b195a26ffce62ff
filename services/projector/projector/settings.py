from modelog_platform.settings import EngineEndpoints


class ProjectorSettings(EngineEndpoints):
    host: str = "127.0.0.1"
    projector_port: int = 8002
    # Longest a caller may ask GET /v1/commands/{id} to wait for an outcome.
    projector_max_wait_s: float = 30.0
