from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.settings import EngineEndpoints, LogTrustSettings, LogWriterSettings, ServicePorts


class PromoterSettings(EngineEndpoints, ServicePorts, IdentitySettings, LogWriterSettings, LogTrustSettings):
    """Everything the promoter reads from its environment."""

    promoter_group_id: str = "modelog-promoter"
    # Commands decided per transaction at most: bigger batches, fewer commits.
    promoter_max_batch: int = 500
    # Refuse (CommandRejected, reason unauthenticated) every command whose
    # token does not prove its actor. Off only for a stack without identities.
    require_signed_commands: bool = True
    # Longest a command's token may still be valid when it is decided: bounds
    # how long spent token ids are remembered (see promoter.authentication).
    command_token_max_ttl_s: float = 3600
