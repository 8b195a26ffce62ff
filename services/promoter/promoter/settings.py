from modelog.settings import EngineEndpoints


class PromoterSettings(EngineEndpoints):
    host: str = "127.0.0.1"
    promoter_port: int = 8001
    # Faust's exactly-once mode commits each partition's transaction on this
    # timer; read_committed consumers see nothing until then, so keep it short.
    promoter_commit_interval_s: float = 0.05
    promoter_app_id: str = "modelog-promoter"
