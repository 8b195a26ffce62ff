from modelog_platform.settings import EngineEndpoints


class RegistrarSettings(EngineEndpoints):
    host: str = "127.0.0.1"
    registrar_port: int = 8000
    projector_url: str = "http://127.0.0.1:8002"
    max_upload_bytes: int = 5 * 1024**3
    # Read-your-writes: how long a write waits for the projector to commit its
    # outcome before answering 202 with a status URL instead.
    outcome_wait_s: float = 5.0
    # Orphaned artifacts (stored, never registered) are removed once this old.
    orphan_grace_s: float = 3600.0
    reconcile_every_s: float = 600.0
