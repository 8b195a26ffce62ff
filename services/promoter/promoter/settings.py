from modelog.settings import EngineEndpoints


class PromoterSettings(EngineEndpoints):
    host: str = "127.0.0.1"
    promoter_port: int = 8001
    promoter_group_id: str = "modelog-promoter"
    # Commands decided per transaction at most: bigger batches, fewer commits.
    promoter_max_batch: int = 500
