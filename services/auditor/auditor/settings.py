from pydantic import Field

from modelog_platform.identity.settings import IdentitySettings
from modelog_platform.settings import EngineEndpoints, LogTrustSettings, SealSettings, ServicePorts


class AuditorSettings(EngineEndpoints, ServicePorts, IdentitySettings, SealSettings, LogTrustSettings):
    """Everything the auditor reads from its environment."""

    # A model's state is stored every this many of its events, as they are
    # recorded: an as-of answer reads the nearest one and folds at most this
    # many events, also the first answer after a restart. Smaller answers
    # faster and stores more (one state, the size of the model, per this many
    # events). 0 stores none: every answer after a restart folds from seq 0.
    audit_checkpoint_every: int = Field(256, ge=0)
